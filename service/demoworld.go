package service

import (
	"fmt"
	"sync"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// simWorld is the demo office acting on the simulators of the real
// protocols: people make Teams calls in graphsim and phone calls in ucsim,
// and the bridge learns of them only through its real adapters.
type simWorld struct {
	graph *graphsim.Server
	uc    *ucsim.Server
	users map[psync.UserID]psync.User
	lines map[psync.UserID][]string // device names, in order

	say func(string)

	mu    sync.Mutex
	conns map[string]string // the office's call id → ucsim connection id
}

var _ simoffice.World = (*simWorld)(nil)

// lineURI is the ucsim line of a user's device: the device name stays
// readable in the demo's output.
func lineURI(id psync.UserID, device string) string { return "tel:" + string(id) + "-" + device }

func (w *simWorld) Call(id psync.UserID, device, callID string, st psync.CallState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	conn, known := w.conns[callID]
	var err error
	switch st {
	case psync.CallRinging:
		conn, err = w.uc.Ring(lineURI(id, device), "tel:+4930123456")
		w.conns[callID] = conn
	case psync.CallConnected:
		err = w.uc.PickUp(conn)
	case psync.CallHeld:
		err = w.uc.Hold(conn)
	case psync.CallConference:
		err = w.uc.Conference(conn)
	case psync.CallEnded:
		err = w.uc.HangUp(conn)
		delete(w.conns, callID)
	}
	if err != nil || (!known && st != psync.CallRinging) {
		// The office's script only does what a phone allows; a refusal
		// here is a demo bug worth seeing, not a reason to stop.
		w.say(fmt.Sprintf("demo: phone call %s %s: %v", callID, st, err))
	}
}

func (w *simWorld) SetPhonePresence(id psync.UserID, p psync.PhonePresence) {
	var err error
	switch p {
	case psync.PhoneNotSet:
		err = w.uc.ResetAbsentState(string(id))
	case psync.PhoneAvailable:
		err = w.uc.SetAbsentState(string(id), ucsim.AbsentState{State: ucsim.AbsentNotAbsent})
	case psync.PhoneAway:
		err = w.uc.SetAbsentState(string(id), ucsim.AbsentState{State: ucsim.AbsentOutOfOffice})
	case psync.PhoneBusy:
		err = w.uc.SetAbsentState(string(id), ucsim.AbsentState{State: ucsim.AbsentBusy})
	case psync.PhoneDND:
		err = w.uc.SetAbsentState(string(id), ucsim.AbsentState{State: ucsim.AbsentDoNotDisturb})
	}
	if err != nil {
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

// SetPhoneSystemDown makes the UCServer answer 503 to new sessions, as a
// web service that is down behind its front end does, and cuts the live
// one, so the connector loses its session and retries; back, it lets them
// in again.
func (w *simWorld) SetPhoneSystemDown(down bool) {
	if !down {
		w.uc.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{})
		return
	}
	w.uc.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{Status: 503})
	w.uc.DropSockets()
}
