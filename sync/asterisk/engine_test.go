package asterisk_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/asterisk"
	"github.com/presencebridge/presencebridge/sync/asterisk/amisim"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

type memJournal struct {
	mu    sync.Mutex
	holds map[psync.HoldKey]psync.Hold
}

func (j *memJournal) PutHold(h psync.Hold) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.holds[h.Key()] = h
	return nil
}

func (j *memJournal) DeleteHold(k psync.HoldKey) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.holds, k)
	return nil
}

func (j *memJournal) Holds() ([]psync.Hold, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Collect(maps.Values(j.holds)), nil
}

func (j *memJournal) SaveLastKnown([]psync.LastKnown) error { return nil }
func (j *memJournal) AppendAudit([]psync.Decision) error    { return nil }

func (j *memJournal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.holds)
}

// office is the real engine with the real connector against amisim and
// simoffice's Teams; it can be killed (no release, as kill -9) and booted
// again on the same journal and PBX.
type office struct {
	t      *testing.T
	clock  *psync.ManualClock
	sim    *amisim.Server
	teams  *simoffice.Teams
	j      *memJournal
	e      *psync.Engine
	conn   *asterisk.Conn
	cancel context.CancelFunc
	done   chan error
	// noPresence: asterisk.presence false (the default).
	noPresence bool
}

var (
	alice = psync.User{ID: "alice", Extension: "201", UPN: "alice@example.com", Profile: "protected"}
	bob   = psync.User{ID: "bob", Extension: "202", UPN: "bob@example.com"}
)

func newOffice(t *testing.T) *office {
	o := &office{t: t, clock: psync.NewManualClock(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))}
	o.sim = startSim(t)
	o.teams = simoffice.NewTeams(o.clock)
	o.j = &memJournal{holds: map[psync.HoldKey]psync.Hold{}}
	t.Cleanup(o.kill)
	return o
}

func (o *office) boot() {
	cfg := testConfig(o.sim)
	cfg.Presence = !o.noPresence
	conn, err := asterisk.New(cfg)
	if err != nil {
		o.t.Fatal(err)
	}
	o.conn = conn
	o.e, err = psync.NewEngine(psync.EngineConfig{
		Profiles: simoffice.Profiles(), Users: []psync.User{alice, bob}, Teams: o.teams, Phone: conn, Journal: o.j, Clock: o.clock,
	})
	if err != nil {
		o.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel, o.done = cancel, make(chan error, 1)
	go func() { o.done <- o.e.Run(ctx) }()
	o.eventually("both sides synced", func() bool {
		st, err := o.e.Status(ctx)
		return err == nil && st.Phone.Synced && st.Teams.Synced
	})
}

func (o *office) kill() {
	if o.cancel == nil {
		return
	}
	o.cancel()
	<-o.done
	_ = o.conn.Close()
	o.cancel = nil
}

func (o *office) eventually(what string, cond func() bool) {
	o.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			o.t.Fatalf("never: %s", what)
		}
		o.clock.Advance(time.Second)
		time.Sleep(10 * time.Millisecond)
	}
}

func (o *office) dnd(ext string) bool { v, _ := o.sim.DB("DND", ext); return v == "YES" }

// A Teams call sets FreePBX DND for alice (profile protected: call
// protection on); it is not read back as a phone call, so no Teams session
// comes of it; the end of the call clears it.
func TestEngine_TeamsCallSetsFreePBXDND(t *testing.T) {
	o := newOffice(t)
	o.boot()
	o.teams.SetClient("alice", "Busy", "InACall")
	o.eventually("FreePBX DND on for alice", func() bool {
		return o.dnd("201") && o.sim.DeviceState("Custom:DND201") == "BUSY"
	})
	o.eventually("the engine holds both devices", func() bool {
		u, _ := o.e.User(context.Background(), "alice")
		return u.Phone.Devices != nil && len(u.Phone.Devices) == 2 && u.Phone.Devices[0].DND && u.Phone.Devices[1].DND
	})
	// A phone call of bob's, after alice's DND, reaches Teams: by then
	// alice's DND events have been through the engine too.
	o.sim.Answer("PJSIP/202")
	o.eventually("bob in a call in Teams", func() bool {
		act, _ := o.teams.BridgeSession("bob")
		return act == psync.ActivityInACall
	})
	if act, _ := o.teams.BridgeSession("alice"); act != "" {
		t.Fatalf("the bridge's own DND came back as a phone call: Teams session %q", act)
	}
	if u, _ := o.e.User(context.Background(), "alice"); len(u.Phone.Calls) != 0 {
		t.Fatalf("alice has phone calls: %+v", u.Phone.Calls)
	}
	o.teams.SetClient("alice", "Available", "Available")
	o.eventually("DND cleared, nothing of alice's held", func() bool {
		return !o.dnd("201") && o.sim.DeviceState("Custom:DND201") == "UNAVAILABLE"
	})
	o.eventually("only bob's Teams session held", func() bool { return o.j.len() == 1 })
}

// The person's own DND (*78 before the Teams call) survives the call.
func TestEngine_PersonsDNDSurvives(t *testing.T) {
	o := newOffice(t)
	o.sim.PersonDND("201", true)
	o.boot()
	o.teams.SetClient("alice", "Busy", "InACall")
	o.eventually("presence written (the call was seen)", func() bool {
		st, _, _ := o.sim.Presence("201")
		return st == "dnd"
	})
	o.teams.SetClient("alice", "Available", "Available")
	o.eventually("presence given back", func() bool {
		st, _, _ := o.sim.Presence("201")
		return st == "not_set" && o.j.len() == 0
	})
	if !o.dnd("201") {
		t.Fatal("the person's DND was cleared by the bridge")
	}
}

// kill -9 while holding DND; the Teams call ends while the bridge is dead;
// the next start clears the DND (FreePBX's DND has no expiry).
func TestEngine_KilledWhileHoldingDND(t *testing.T) {
	o := newOffice(t)
	o.boot()
	o.teams.SetClient("alice", "Busy", "InACall")
	o.eventually("DND on", func() bool { return o.dnd("201") })
	o.eventually("holds confirmed", func() bool {
		u, _ := o.e.User(context.Background(), "alice")
		return len(u.Holds) > 0 && !slices.ContainsFunc(u.Holds, func(h psync.HoldStatus) bool { return !h.Confirmed })
	})
	o.kill()
	if !o.dnd("201") {
		t.Fatal("a killed bridge released its DND (it should not have had the chance)")
	}
	o.teams.SetClient("alice", "Available", "Available")
	o.boot()
	o.eventually("reconciled: DND cleared", func() bool { return !o.dnd("201") && o.j.len() == 0 })
	if _, ok := o.sim.DB("teams", "201/dnd"); ok {
		t.Fatal("the bridge's mark was left in AstDB")
	}
}

// With asterisk.presence false (the default) the presence writes are
// refused for good, and protection still works.
func TestEngine_ProtectionWithoutPresence(t *testing.T) {
	o := newOffice(t)
	o.noPresence = true
	o.boot()
	o.teams.SetClient("alice", "Busy", "InACall")
	o.eventually("FreePBX DND on for alice", func() bool { return o.dnd("201") })
	o.teams.SetClient("alice", "Available", "Available")
	o.eventually("DND cleared", func() bool { return !o.dnd("201") })
	for _, a := range o.sim.Actions() {
		if a.Name == "Setvar" && strings.HasPrefix(a.Fields["variable"], "PRESENCE_STATE") {
			t.Fatalf("presence written with asterisk.presence false: %+v", a)
		}
	}
}
