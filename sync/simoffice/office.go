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
}

// Office is the simulated office: its sides and its people.
type Office struct {
	Teams  *Teams
	Phone  *Phone
	users  []psync.User
	people []*person
	rng    *rand.Rand
}

// New builds an office of n people on the given clock.
func New(n int, seed uint64, clock psync.Clock) *Office {
	o := &Office{Teams: NewTeams(clock), Phone: NewPhone(clock), users: Users(n), rng: rand.New(rand.NewPCG(seed, seed^0x5bd1e995))}
	for i, u := range o.users {
		o.Phone.AddUser(u.ID, Devices(i)...)
		o.people = append(o.people, &person{user: u})
	}
	return o
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
			devs := o.Phone.State(id).Devices
			p.device = devs[pick(len(devs))].ID
			p.calls++
			p.callID = fmt.Sprintf("%s-%d", id, p.calls)
			p.doing = phoneRinging
			o.Phone.Call(id, p.device, p.callID, psync.CallRinging)
			return fmt.Sprintf("%s's %s rings", name, p.device)
		case 2:
			p.doing = teamsCall
			o.Teams.SetClient(id, "Busy", "InACall")
			return name + " starts a Teams call"
		case 3:
			p.doing = teamsMeeting
			o.Teams.SetClient(id, "Busy", "InAConferenceCall")
			return name + " joins a Teams meeting"
		case 4:
			p.doing = teamsDND
			o.Teams.SetPreferred(id, "DoNotDisturb", "DoNotDisturb")
			return name + " sets do not disturb in Teams"
		case 5:
			p.doing = teamsAway
			o.Teams.SetPreferred(id, "Away", "Away")
			return name + " sets Appear away in Teams"
		case 6:
			p.doing = phoneManual
			o.Phone.SetPresenceByHand(id, psync.PhoneAway)
			return name + " sets Absent on the phone system"
		case 7:
			o.Teams.SetClient(id, "Busy", "InAMeeting")
			p.doing = teamsMeeting
			return name + " is in a calendar meeting"
		default:
			return name + " reads e-mail"
		}
	case phoneRinging:
		if pick(4) == 0 {
			p.doing = idle
			o.Phone.Call(id, p.device, p.callID, psync.CallEnded)
			return name + " misses the call"
		}
		p.doing = phoneCall
		o.Phone.Call(id, p.device, p.callID, psync.CallConnected)
		return fmt.Sprintf("%s answers on the %s", name, p.device)
	case phoneCall, phoneHeld, phoneConference:
		switch pick(4) {
		case 0:
			p.doing = phoneHeld
			o.Phone.Call(id, p.device, p.callID, psync.CallHeld)
			return name + " puts the call on hold"
		case 1:
			p.doing = phoneConference
			o.Phone.Call(id, p.device, p.callID, psync.CallConference)
			return name + " makes it a conference call"
		default:
			p.doing = idle
			o.Phone.Call(id, p.device, p.callID, psync.CallEnded)
			return name + " hangs up the phone"
		}
	case teamsCall:
		p.doing = idle
		o.Teams.SetClient(id, "Available", "Available")
		return name + " ends the Teams call"
	case teamsMeeting:
		if pick(2) == 0 && o.Teams.Presence(id).Activity == "InAConferenceCall" {
			p.doing = teamsPresenting
			o.Teams.SetClient(id, "DoNotDisturb", "Presenting")
			return name + " starts presenting"
		}
		p.doing = idle
		o.Teams.SetClient(id, "Available", "Available")
		return name + " leaves the meeting"
	case teamsPresenting:
		p.doing = teamsMeeting
		o.Teams.SetClient(id, "Busy", "InAConferenceCall")
		return name + " stops presenting"
	case teamsDND, teamsAway:
		p.doing = idle
		o.Teams.SetPreferred(id, "", "")
		return name + " resets the Teams status"
	case phoneManual:
		p.doing = idle
		o.Phone.SetPresenceByHand(id, psync.PhoneAvailable)
		return name + " is back (phone system Present)"
	}
	return ""
}

// Run lets people act every `every` and ticks the sides' leases once a
// second, until ctx ends. Each action is passed to say.
func (o *Office) Run(ctx context.Context, every time.Duration, say func(string)) {
	act := time.NewTicker(every)
	defer act.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-act.C:
			if s := o.Step(); s != "" && say != nil {
				say(s)
			}
		case <-tick.C:
			o.Teams.Tick()
			o.Phone.Tick()
		}
	}
}
