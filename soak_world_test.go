package main

import (
	crand "crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// The soak's world: the two simulators, the database the bridge starts
// from, and the people with what each last chose.

type soakConfig struct {
	users    int
	kills    int
	duration time.Duration
	rate     float64
	seed     uint64
	settle   time.Duration
	keep     bool
}

// chaos is how long the faults and kills go on: the last fifth of the run
// (at least 10 s) is calm, the office going on without faults, so that the
// figures have calls and changes no fault touched.
func (c soakConfig) chaos() time.Duration {
	return c.duration - max(c.duration/5, 10*time.Second)
}

// soakBridgeContact is the bridge's service account on the UCServer: the
// change log names its writes by it.
const soakBridgeContact = "sip:presencebridge@contoso.example"

// soakProfiles are the profiles people are spread over, with their share.
func soakProfiles() []struct {
	p     psync.Profile
	share int
} {
	mk := func(name string, flags ...psync.ProfileFlag) psync.Profile {
		p := psync.NewProfile(name)
		for _, f := range flags {
			on := true
			if f == psync.FlagSetTeamsPresence {
				on = false // the meetings profile turns it off
			}
			if err := p.SetFlag(f, on); err != nil {
				panic(err)
			}
		}
		return p
	}
	return []struct {
		p     psync.Profile
		share int
	}{
		{mk(psync.DefaultProfileName), 30},
		{mk("protected", psync.FlagCrossDeviceBusy, psync.FlagDNDControlsPresence), 25},
		{mk("busyonbusy", psync.FlagCrossDeviceBusy), 15},
		{mk("dndcontrol", psync.FlagDNDControlsPresence), 15},
		{mk("meetings", psync.FlagCalendarAsCalls, psync.FlagSetTeamsPresence), 15},
	}
}

// person is one member of the office and what the harness knows of them:
// their calls and Teams activity (to act plausibly) and their own last
// choices on the phone (what the end state must show).
type person struct {
	i       int
	contact string
	upn     string
	teamsID string // lower case, as graphsim logs it
	name    string
	prof    psync.Profile
	lines   []string

	calls []*pcall

	// The person's own last choices: the absent state (with its end time)
	// and the DND of each line, with when they were made.
	absent   ucsim.AbsentState
	absentAt time.Time
	dnd      map[string]bool
	dndAt    map[string]time.Time

	tcall      string // "", "call", "meeting", "calendar"
	presenting bool
	tstatus    string // "", "dnd", "away", "busy", "brb"
}

type pcall struct {
	id    string
	line  string
	state int // ucsim call state
}

// expectedAbsent is the absent state the person's own last choice leaves
// at time at: the server resets a state at its end time.
func (p *person) expectedAbsent(at time.Time) ucsim.AbsentState {
	a := p.absent
	if a.State == ucsim.AbsentNotSet || (!a.To.IsZero() && !at.Before(a.To)) {
		return ucsim.AbsentState{State: ucsim.AbsentNotSet}
	}
	return ucsim.AbsentState{State: a.State, To: a.To}
}

type soakWorld struct {
	t      *testing.T
	cfg    soakConfig
	dir    string // database, CA, logs: kept when the soak fails
	graph  *graphsim.Server
	uc     *ucsim.Server
	ca     string
	db     string
	sock   string
	people []*person
	byID   map[string]*person // contact id, Teams object id, line URI → person
	start  time.Time
}

func soakID(i int) string { return fmt.Sprintf("5a5a%04x-0000-4000-8000-%012x", i>>16, i) }

// newSoakWorld starts the simulators with n people (1–3 lines each, a few
// with DND on or an absent state of their own already) and writes the
// database the bridge runs from.
func newSoakWorld(t *testing.T, cfg soakConfig, rng *rand.Rand) *soakWorld {
	t.Helper()
	dir, err := os.MkdirTemp("", "pbsoak") // short: the control socket's path is limited
	if err != nil {
		t.Fatal(err)
	}
	w := &soakWorld{t: t, cfg: cfg, dir: dir, byID: map[string]*person{},
		db: filepath.Join(dir, "state.db"), sock: filepath.Join(dir, "control.sock")}

	profiles := soakProfiles()
	total := 0
	for _, p := range profiles {
		total += p.share
	}
	var gusers []graphsim.User
	ucusers := []ucsim.User{{ContactID: soakBridgeContact, DisplayName: "presencebridge", LoginName: "presencebridge", Password: "uc-pass"}}
	var yaml strings.Builder
	yaml.WriteString("users:\n")
	for i := range cfg.users {
		p := &person{i: i, contact: fmt.Sprintf("sip:u%05d@contoso.example", i), upn: fmt.Sprintf("u%05d@contoso.example", i),
			teamsID: soakID(i), name: fmt.Sprintf("User %05d", i), dnd: map[string]bool{}, dndAt: map[string]time.Time{},
			absent: ucsim.AbsentState{State: ucsim.AbsentNotSet}}
		pick := rng.IntN(total)
		for _, pr := range profiles {
			if pick < pr.share {
				p.prof = pr.p
				break
			}
			pick -= pr.share
		}
		var lines []ucsim.Line
		for l := range 1 + rng.IntN(3) {
			uri := fmt.Sprintf("tel:+4930%05d-%d", i, l)
			p.lines = append(p.lines, uri)
			lines = append(lines, ucsim.Line{URI: uri, Descriptor: []string{"Desk phone", "Softphone", "TAPI line"}[l]})
			p.dnd[uri] = false
			w.byID[uri] = p
		}
		w.people = append(w.people, p)
		w.byID[p.contact], w.byID[p.teamsID] = p, p
		gusers = append(gusers, graphsim.User{ID: p.teamsID, UserPrincipalName: p.upn, DisplayName: p.name})
		ucusers = append(ucusers, ucsim.User{ContactID: p.contact, DisplayName: p.name, Email: p.upn, Lines: lines})
		fmt.Fprintf(&yaml, "  - id: %q\n    teams_id: %q\n    upn: %q\n    name: %q\n    profile: %q\n", p.contact, p.teamsID, p.upn, p.name, p.prof.Name)
	}

	key, err := rsa.GenerateKey(crand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	w.graph, err = graphsim.New(graphsim.Options{TenantID: e2eTenant, SigningKey: key, Seed: cfg.seed,
		Apps:            []graphsim.App{{ClientID: e2eApp, Secrets: []string{e2eSecret}, Roles: []string{"Presence.ReadWrite.All", "User.Read.All"}}},
		Users:           gusers,
		RequestLogLimit: 1 << 30, // taken every 250 ms
		PresenceLog:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.graph.Close() })
	w.ca = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(w.ca, w.graph.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	w.uc = ucsim.New(ucsim.Options{Users: ucusers, ChangeLog: true})
	if err := w.uc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.uc.Close() })
	for _, p := range w.people {
		if err := w.graph.SignIn(p.teamsID); err != nil {
			t.Fatal(err)
		}
	}

	// The database, as an admin would set it up (config set / config import).
	db, err := store.Open(w.db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	settings := teamsSettings(w.graph, e2eSecret)
	for k, v := range map[string]string{"phone.system": "ucserver", "ucserver.url": w.uc.URL(),
		"ucserver.user": "presencebridge", "ucserver.password": "uc-pass", "audit.limit": "10000000"} {
		settings[k] = v
	}
	for k, v := range settings {
		if err := db.SetSetting(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, pr := range profiles {
		if err := db.PutProfile(pr.p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ImportYAML(strings.NewReader(yaml.String()), store.ImportOptions{Merge: true}); err != nil {
		t.Fatal(err)
	}
	return w
}

// setInitialChoices gives some people a state of their own before the
// bridge first starts: line DND on, or a manual absent state.
func (w *soakWorld) setInitialChoices(rng *rand.Rand, now time.Time) {
	for _, p := range w.people {
		for _, l := range p.lines {
			if rng.IntN(10) == 0 {
				w.personLineDND(p, l, true, now)
			}
		}
		if rng.IntN(8) == 0 {
			st := ucsim.AbsentState{State: rng.IntN(4)}
			if rng.IntN(2) == 0 {
				st.To = now.Add(time.Duration(30+rng.IntN(200)) * time.Minute).Truncate(time.Second)
			}
			w.personAbsent(p, st, now)
		}
	}
}

func (w *soakWorld) personAbsent(p *person, st ucsim.AbsentState, now time.Time) {
	if err := w.uc.SetAbsentState(p.contact, st); err != nil {
		w.t.Errorf("soak: %s sets an absent state: %v", p.contact, err)
		return
	}
	if st.State == ucsim.AbsentNotSet {
		st = ucsim.AbsentState{State: ucsim.AbsentNotSet}
	}
	p.absent, p.absentAt = st, now
}

func (w *soakWorld) personLineDND(p *person, line string, on bool, now time.Time) {
	if err := w.uc.SetLineDND(line, on); err != nil {
		w.t.Errorf("soak: %s sets DND on %s: %v", p.contact, line, err)
		return
	}
	p.dnd[line], p.dndAt[line] = on, now
}

// action is one thing a person may do now, with its weight.
type action struct {
	name   string
	weight float64
	do     func() error
}

// act lets a person do one plausible thing; with onCall, something with a
// call they have. end bounds the end times of short absent states so that
// none runs out while the end state is checked.
func (w *soakWorld) act(p *person, rng *rand.Rand, now, end time.Time, onCall bool) (string, error) {
	var acts []action
	add := func(name string, weight float64, do func() error) {
		acts = append(acts, action{name, weight, do})
	}
	uc, g := w.uc, w.graph
	remote := func() string { return fmt.Sprintf("tel:+4989%07d", rng.IntN(10_000_000)) }
	if len(p.calls) < 2 && !onCall {
		line := p.lines[rng.IntN(len(p.lines))]
		add("rings", 3, func() error {
			id, err := uc.Ring(line, remote())
			if err == nil {
				p.calls = append(p.calls, &pcall{id: id, line: line, state: ucsim.CallOffering})
			}
			return err
		})
		add("dials", 2, func() error {
			id, err := uc.Dial(line, remote())
			if err == nil {
				p.calls = append(p.calls, &pcall{id: id, line: line, state: ucsim.CallRingback})
			}
			return err
		})
	}
	for _, c := range p.calls {
		set := func(state int, f func(string) error) func() error {
			return func() error {
				err := f(c.id)
				if err == nil {
					c.state = state
				}
				return err
			}
		}
		gone := func() error {
			err := uc.HangUp(c.id)
			if err == nil {
				p.calls = deleteCall(p.calls, c)
			}
			return err
		}
		switch c.state {
		case ucsim.CallOffering, ucsim.CallRingback:
			add("picks up", 4, set(ucsim.CallConnected, uc.PickUp))
			add("hangs up before answering", 1, gone)
		case ucsim.CallConnected:
			add("holds", 1, set(ucsim.CallHold, uc.Hold))
			add("conferences", 0.7, set(ucsim.CallConferenced, uc.Conference))
			add("hangs up", 2, gone)
			add("is hung up on", 1.5, set(ucsim.CallDisconnected, uc.RemoteHangUp))
		case ucsim.CallHold:
			add("retrieves", 1.5, set(ucsim.CallConnected, uc.PickUp))
			add("conferences a held call", 0.5, set(ucsim.CallConferenced, uc.Conference))
			add("hangs up a held call", 0.5, gone)
			add("is hung up on while holding", 0.3, set(ucsim.CallDisconnected, uc.RemoteHangUp))
		case ucsim.CallConferenced:
			add("holds the conference", 0.7, set(ucsim.CallHold, uc.Hold))
			add("leaves the conference", 1.5, gone)
			add("is dropped from the conference", 1, set(ucsim.CallDisconnected, uc.RemoteHangUp))
		case ucsim.CallDisconnected:
			add("puts the receiver down", 4, gone)
		}
	}
	if onCall && len(acts) > 0 {
		return pick(acts, rng)
	}
	id := p.teamsID
	if p.tcall == "" {
		add("starts a Teams call", 1.2, func() error { p.tcall = "call"; return g.StartTeamsCall(id) })
		add("joins a Teams meeting", 0.8, func() error { p.tcall = "meeting"; return g.JoinMeeting(id) })
		add("has a calendar meeting", 0.3, func() error { p.tcall = "calendar"; return g.StartCalendarMeeting(id) })
	} else {
		add("ends the Teams call", 2, func() error { p.tcall, p.presenting = "", false; return g.EndCall(id) })
	}
	if !p.presenting {
		add("presents", 0.6, func() error { p.presenting = true; return g.StartPresenting(id) })
	} else {
		add("stops presenting", 1.5, func() error { p.presenting = false; return g.StopPresenting(id) })
	}
	if p.tstatus == "" {
		add("picks Teams do not disturb", 0.7, func() error { p.tstatus = "dnd"; return g.SetDND(id) })
		add("picks Teams appear away", 0.2, func() error { p.tstatus = "away"; return g.SetAway(id) })
		add("picks Teams busy", 0.2, func() error { p.tstatus = "busy"; return g.SetBusy(id) })
		add("picks Teams be right back", 0.1, func() error { p.tstatus = "brb"; return g.SetBeRightBack(id) })
	} else {
		add("resets the Teams status", 1.5, func() error { p.tstatus = ""; return g.ResetStatus(id) })
	}
	add("sets an absent state by hand", 0.8, func() error {
		st := ucsim.AbsentState{State: rng.IntN(4)}
		if rng.IntN(3) == 0 {
			// What the phone shows now, set again by hand: often the
			// very value the bridge holds.
			if us, ok := uc.UserState(p.contact); ok && us.Absent.State != ucsim.AbsentNotSet {
				st.State = us.Absent.State
			}
		}
		switch rng.IntN(4) {
		case 0: // until a moment that comes during the run
			if to := now.Add(time.Duration(5+rng.IntN(55)) * time.Second); to.Before(end) {
				st.To = to.Truncate(time.Second)
			}
		case 1: // until later today
			st.To = now.Add(time.Duration(30+rng.IntN(200)) * time.Minute).Truncate(time.Second)
		}
		w.personAbsent(p, st, now)
		return nil
	})
	add("resets the absent state", 0.6, func() error {
		w.personAbsent(p, ucsim.AbsentState{State: ucsim.AbsentNotSet}, now)
		return nil
	})
	add("toggles DND on a line", 0.5, func() error {
		line := p.lines[rng.IntN(len(p.lines))]
		us, ok := uc.UserState(p.contact)
		if !ok {
			return fmt.Errorf("unknown user %s", p.contact)
		}
		for _, l := range us.Lines {
			if l.URI == line {
				// The person looks at the phone and presses the key: DND
				// the bridge set is switched off, and then it is theirs.
				w.personLineDND(p, line, !l.DND, now)
			}
		}
		return nil
	})

	return pick(acts, rng)
}

func pick(acts []action, rng *rand.Rand) (string, error) {
	var sum float64
	for _, a := range acts {
		sum += a.weight
	}
	x := rng.Float64() * sum
	for i, a := range acts {
		if x -= a.weight; x < 0 || i == len(acts)-1 {
			return a.name, a.do()
		}
	}
	return "", nil
}

func deleteCall(cs []*pcall, c *pcall) []*pcall {
	for i, o := range cs {
		if o == c {
			return append(cs[:i], cs[i+1:]...)
		}
	}
	return cs
}

// idle ends everything real-time: calls, Teams calls, presenting and Teams
// statuses. The phone's manual states stay as the person chose them.
func (w *soakWorld) idle(p *person) error {
	for _, c := range p.calls {
		if err := w.uc.HangUp(c.id); err != nil {
			return err
		}
	}
	p.calls = nil
	if err := w.graph.EndCall(p.teamsID); err != nil {
		return err
	}
	if err := w.graph.ResetStatus(p.teamsID); err != nil {
		return err
	}
	p.tcall, p.presenting, p.tstatus = "", false, ""
	return nil
}
