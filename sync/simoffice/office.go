package simoffice

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

var firstNames = []string{"Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Katrin", "Lukas", "Mia", "Noah", "Olga", "Paul", "Quirin", "Rosa", "Sven", "Tara"}

// Profiles returns the office's profiles: the defaults, and "protected" for
// people who must not be disturbed by the desk phone while in Teams, and
// "meetings" where calendar meetings count as calls and phone calls do not
// reach Teams.
func Profiles() []psync.Profile {
	def := psync.NewProfile(psync.DefaultProfileName)
	prot := psync.NewProfile("protected")
	prot.CrossDeviceBusyOnBusy = true
	prot.DNDProtectionControlsPresence = true
	meet := psync.NewProfile("meetings")
	meet.CalendarMeetingsAsCalls = true
	meet.SetTeamsPresence = false
	return []psync.Profile{def, prot, meet}
}

// Users returns n office users: extensions 201..., two or three devices
// each, spread over the profiles.
func Users(n int) []psync.User {
	profiles := []string{"", "protected", "", "meetings"}
	out := make([]psync.User, n)
	for i := range out {
		name := firstNames[i%len(firstNames)]
		if i >= len(firstNames) {
			name = fmt.Sprintf("%s %d", name, i/len(firstNames)+1)
		}
		mail := strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@contoso.example"
		out[i] = psync.User{
			ID: psync.UserID(fmt.Sprintf("%d", 201+i)), Extension: fmt.Sprintf("%d", 201+i),
			TeamsID: fmt.Sprintf("00000000-0000-4000-8000-%012d", 201+i), UPN: mail, DisplayName: name,
			Profile: profiles[i%len(profiles)],
		}
	}
	return out
}

// Devices returns the devices of the i-th user.
func Devices(i int) []string {
	if i%3 == 0 {
		return []string{"desk", "softphone", "mobile"}
	}
	return []string{"desk", "softphone"}
}

type activity uint8

const (
	idle activity = iota
	phoneRinging
	phoneCall
	phoneHeld
	phoneConference
	teamsCall
	teamsMeeting
	teamsPresenting
	teamsDND
	teamsAway
	phoneManual
)

type person struct {
	user   psync.User
	doing  activity
	device string
	callID string
	calls  int
	// byHand: the person picked a phone presence by hand during a Teams
	// call, over the one the bridge set; they reset it once the call ends.
	byHand bool
}

// Office is the simulated office: its sides and its people.
type Office struct {
	Teams *Teams // nil when the office acts on another World
	Phone *Phone
	// Outage is the phone system's scheduled outage during Run (none by
	// default).
	Outage Outage
	world  World
	users  []psync.User
	people []*person
	rng    *rand.Rand
}

// World is what the office's people act on: this package's own sides, or
// the simulators of the real protocols (graphsim, ucsim) behind the real
// adapters, as `demo` does.
type World interface {
	// Call changes one call on one of the user's devices.
	Call(id psync.UserID, device, callID string, st psync.CallState)
	// SetPhonePresence is the person picking a presence on the phone system.
	SetPhonePresence(id psync.UserID, p psync.PhonePresence)
	// SetTeamsClient is what the person's Teams client shows (calls,
	// meetings, presenting).
	SetTeamsClient(id psync.UserID, availability, activity string)
	// SetTeamsPreferred is a status the person picks in Teams ("" resets).
	SetTeamsPreferred(id psync.UserID, availability, activity string)
	// TeamsActivity is the activity Teams shows for the person now.
	TeamsActivity(id psync.UserID) string
	// Devices are the person's phone devices.
	Devices(id psync.UserID) []string
	// Tick lets time-based things happen (leases running out).
	Tick()
	// SetPhoneSystemDown takes the phone system down (it refuses the
	// bridge) or brings it back.
	SetPhoneSystemDown(down bool)
}

// Outage schedules the phone system going down during Run: First after the
// start, for For, then again every Every after the start of the previous
// one (0: once). For 0 means no outage.
type Outage struct {
	First, For, Every time.Duration
}

// New builds an office of n people on the given clock, acting on this
// package's own sides.
func New(n int, seed uint64, clock psync.Clock) *Office {
	o := &Office{Teams: NewTeams(clock), Phone: NewPhone(clock)}
	o.world = sidesWorld{o.Teams, o.Phone}
	o.users = Users(n)
	for i, u := range o.users {
		o.Phone.AddUser(u.ID, Devices(i)...)
	}
	o.init(seed)
	return o
}

// NewInWorld builds an office of these users acting on w.
func NewInWorld(users []psync.User, seed uint64, w World) *Office {
	o := &Office{world: w, users: append([]psync.User(nil), users...)}
	o.init(seed)
	return o
}

func (o *Office) init(seed uint64) {
	o.rng = rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	for _, u := range o.users {
		o.people = append(o.people, &person{user: u})
	}
}

// sidesWorld is the World of this package's own sides.
type sidesWorld struct {
	t *Teams
	p *Phone
}

func (w sidesWorld) Call(id psync.UserID, device, callID string, st psync.CallState) {
	w.p.Call(id, device, callID, st)
}
func (w sidesWorld) SetPhonePresence(id psync.UserID, p psync.PhonePresence) {
	w.p.SetPresenceByHand(id, p)
}
func (w sidesWorld) SetTeamsClient(id psync.UserID, a, act string)    { w.t.SetClient(id, a, act) }
func (w sidesWorld) SetTeamsPreferred(id psync.UserID, a, act string) { w.t.SetPreferred(id, a, act) }
func (w sidesWorld) TeamsActivity(id psync.UserID) string             { return w.t.Presence(id).Activity }
func (w sidesWorld) Tick()                                            { w.t.Tick(); w.p.Tick() }
func (w sidesWorld) SetPhoneSystemDown(down bool)                     { w.p.Gate.SetDown(down) }
func (w sidesWorld) Devices(id psync.UserID) []string {
	var out []string
	for _, d := range w.p.State(id).Devices {
		out = append(out, d.ID)
	}
	return out
}

// Users returns the office's users.
func (o *Office) Users() []psync.User { return append([]psync.User(nil), o.users...) }

// Step lets one person do one thing and says what.
func (o *Office) Step() string {
	p := o.people[o.rng.IntN(len(o.people))]
	id, name := p.user.ID, p.user.Name()
	pick := func(n int) int { return o.rng.IntN(n) }
	switch p.doing {
	case idle:
		switch pick(9) {
		case 0, 1:
			devs := o.world.Devices(id)
			if len(devs) == 0 {
				return name + " reads e-mail"
			}
			p.device = devs[pick(len(devs))]
			p.calls++
			p.callID = fmt.Sprintf("%s-%d", id, p.calls)
			p.doing = phoneRinging
			o.world.Call(id, p.device, p.callID, psync.CallRinging)
			return fmt.Sprintf("%s's %s rings", name, p.device)
		case 2:
			p.doing = teamsCall
			o.world.SetTeamsClient(id, "Busy", "InACall")
			return name + " starts a Teams call"
		case 3:
			p.doing = teamsMeeting
			o.world.SetTeamsClient(id, "Busy", "InAConferenceCall")
			return name + " joins a Teams meeting"
		case 4:
			p.doing = teamsDND
			o.world.SetTeamsPreferred(id, "DoNotDisturb", "DoNotDisturb")
			return name + " sets do not disturb in Teams"
		case 5:
			p.doing = teamsAway
			o.world.SetTeamsPreferred(id, "Away", "Away")
			return name + " sets Appear away in Teams"
		case 6:
			p.doing = phoneManual
			o.world.SetPhonePresence(id, psync.PhoneAway)
			return name + " sets Absent on the phone system"
		case 7:
			o.world.SetTeamsClient(id, "Busy", "InAMeeting")
			p.doing = teamsMeeting
			return name + " is in a calendar meeting"
		default:
			return name + " reads e-mail"
		}
	case phoneRinging:
		if pick(4) == 0 {
			p.doing = idle
			o.world.Call(id, p.device, p.callID, psync.CallEnded)
			return name + " misses the call"
		}
		p.doing = phoneCall
		o.world.Call(id, p.device, p.callID, psync.CallConnected)
		return fmt.Sprintf("%s answers on the %s", name, p.device)
	case phoneCall, phoneHeld, phoneConference:
		switch pick(4) {
		case 0:
			p.doing = phoneHeld
			o.world.Call(id, p.device, p.callID, psync.CallHeld)
			return name + " puts the call on hold"
		case 1:
			p.doing = phoneConference
			o.world.Call(id, p.device, p.callID, psync.CallConference)
			return name + " makes it a conference call"
		default:
			p.doing = idle
			o.world.Call(id, p.device, p.callID, psync.CallEnded)
			return name + " hangs up the phone"
		}
	case teamsCall:
		if s, ok := o.byHand(p); ok {
			return s
		}
		p.doing = o.afterTeams(p)
		o.world.SetTeamsClient(id, "Available", "Available")
		return name + " ends the Teams call"
	case teamsMeeting:
		if s, ok := o.byHand(p); ok {
			return s
		}
		if pick(2) == 0 && o.world.TeamsActivity(id) == "InAConferenceCall" {
			p.doing = teamsPresenting
			o.world.SetTeamsClient(id, "DoNotDisturb", "Presenting")
			return name + " starts presenting"
		}
		p.doing = o.afterTeams(p)
		o.world.SetTeamsClient(id, "Available", "Available")
		return name + " leaves the meeting"
	case teamsPresenting:
		p.doing = teamsMeeting
		o.world.SetTeamsClient(id, "Busy", "InAConferenceCall")
		return name + " stops presenting"
	case teamsDND, teamsAway:
		p.doing = idle
		o.world.SetTeamsPreferred(id, "", "")
		return name + " resets the Teams status"
	case phoneManual:
		p.doing = idle
		o.world.SetPhonePresence(id, psync.PhoneNotSet)
		return name + " is back (phone system Present)"
	}
	return ""
}

// byHand is, once in three times, a person in a Teams call or meeting
// picking a phone presence by hand over the one the bridge set for the
// call: the person's own change wins (sync/RULES.md §4.1), and the
// bridge lets go of it.
func (o *Office) byHand(p *person) (string, bool) {
	if p.byHand || o.rng.IntN(3) != 0 {
		return "", false
	}
	p.byHand = true
	pr := []psync.PhonePresence{psync.PhoneAway, psync.PhoneDND, psync.PhoneAvailable}[o.rng.IntN(3)]
	o.world.SetPhonePresence(p.user.ID, pr)
	return fmt.Sprintf("%s sets %s on the phone system by hand during the Teams call", p.user.Name(), pr), true
}

// afterTeams is what a person does once a Teams call or meeting ends: one
// who set the phone presence by hand puts it back later.
func (o *Office) afterTeams(p *person) activity {
	if p.byHand {
		p.byHand = false
		return phoneManual
	}
	return idle
}

// Run lets people act every `every` and ticks the sides' leases once a
// second, until ctx ends, taking the phone system down as o.Outage says.
// Each action is passed to say. An outage under way when ctx ends is ended.
func (o *Office) Run(ctx context.Context, every time.Duration, say func(string)) {
	if say == nil {
		say = func(string) {}
	}
	act := time.NewTicker(every)
	defer act.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var outage <-chan time.Time // nil: no outage scheduled
	timer := time.NewTimer(max(0, o.Outage.First))
	defer timer.Stop()
	if o.Outage.For > 0 {
		outage = timer.C
	}
	down := false
	defer func() {
		if down {
			o.world.SetPhoneSystemDown(false)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-act.C:
			if s := o.Step(); s != "" {
				say(s)
			}
		case <-tick.C:
			o.world.Tick()
		case <-outage:
			down = !down
			o.world.SetPhoneSystemDown(down)
			switch {
			case down:
				say(fmt.Sprintf("the phone system goes down for %s (scheduled outage)", o.Outage.For))
				timer.Reset(o.Outage.For)
			case o.Outage.Every > o.Outage.For:
				say("the phone system is back")
				timer.Reset(o.Outage.Every - o.Outage.For)
			default:
				say("the phone system is back")
				outage = nil
			}
		}
	}
}
