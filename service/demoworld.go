package service

import (
	"fmt"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

// simWorld is the demo office acting on the simulators of the real
// protocols: people make Teams calls in graphsim and phone calls in the
// phone system's simulator, and the bridge learns of them only through its
// real adapters.
type simWorld struct {
	graph *graphsim.Server
	phone demoPhoneWorld
	users map[psync.UserID]psync.User
	lines map[psync.UserID][]string // device names, in order

	say func(string)
}

var _ simoffice.World = (*simWorld)(nil)

func (w *simWorld) Call(id psync.UserID, device, callID string, st psync.CallState) {
	// The office's script only does what a phone allows; a refusal here
	// is a demo bug worth seeing, not a reason to stop.
	if err := w.phone.Call(id, device, callID, st); err != nil {
		w.say(fmt.Sprintf("demo: phone call %s %s: %v", callID, st, err))
	}
}

func (w *simWorld) SetPhonePresence(id psync.UserID, p psync.PhonePresence) {
	if err := w.phone.SetPresence(id, p); err != nil {
		w.say(fmt.Sprintf("demo: phone presence %s: %v", p, err))
	}
}

func (w *simWorld) SetTeamsClient(id psync.UserID, availability, activity string) {
	oid := w.users[id].TeamsID
	var err error
	switch availability + "/" + activity {
	case "Busy/InACall":
		err = w.graph.StartTeamsCall(oid)
	case "Busy/InAConferenceCall":
		if p, _ := w.graph.Presence(oid); p.Activity == "Presenting" {
			err = w.graph.StopPresenting(oid)
		} else {
			err = w.graph.JoinMeeting(oid)
		}
	case "DoNotDisturb/Presenting":
		err = w.graph.StartPresenting(oid)
	case "Busy/InAMeeting":
		err = w.graph.StartCalendarMeeting(oid)
	default: // back to Available: the call, meeting or presenting ends
		err = w.graph.EndCall(oid)
	}
	if err != nil {
		w.say(fmt.Sprintf("demo: Teams %s/%s: %v", availability, activity, err))
	}
}

func (w *simWorld) SetTeamsPreferred(id psync.UserID, availability, _ string) {
	oid := w.users[id].TeamsID
	var err error
	switch availability {
	case "DoNotDisturb":
		err = w.graph.SetDND(oid)
	case "Away":
		err = w.graph.SetAway(oid)
	case "Busy":
		err = w.graph.SetBusy(oid)
	default:
		err = w.graph.ResetStatus(oid)
	}
	if err != nil {
		w.say(fmt.Sprintf("demo: Teams status %s: %v", availability, err))
	}
}

func (w *simWorld) TeamsActivity(id psync.UserID) string {
	p, _ := w.graph.Presence(w.users[id].TeamsID)
	return p.Activity
}

func (w *simWorld) Devices(id psync.UserID) []string { return w.lines[id] }

// Tick: both simulators keep their own time.
func (w *simWorld) Tick() {}

// SetPhoneSystemDown takes the simulated phone system down (and back up)
// as a real one goes down: the connector loses it and retries.
func (w *simWorld) SetPhoneSystemDown(down bool) { w.phone.SetDown(down) }
