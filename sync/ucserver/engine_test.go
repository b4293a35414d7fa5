package ucserver_test

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
	"github.com/presencebridge/presencebridge/sync/ucserver"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// memJournal is the engine's Journal in memory (the store has its own
// tests).
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

func (j *memJournal) keys() []psync.HoldKey {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Collect(maps.Keys(j.holds))
}

// office is the real engine with the real connector against ucsim, and
// simoffice's Teams tenant, all on one manual clock (the connector's own
// timers run on real time: they only pace the network). The engine can be
// killed (stopped without releasing, as kill -9 does) and started again on
// the same journal.
type office struct {
	t      *testing.T
	clock  *psync.ManualClock
	sim    *ucsim.Server
	teams  *simoffice.Teams
	j      *memJournal
	e      *psync.Engine
	conn   *ucserver.Conn
	cancel context.CancelFunc
	done   chan error

	mu        sync.Mutex
	decisions []psync.Decision
}

func newOffice(t *testing.T) *office {
	o := &office{t: t, clock: psync.NewManualClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))}
	// The simulator's keep-alive expiry runs on the manual clock; jumps of
	// minutes would expire the session, so it is off here (keep-alive has
	// its own test).
	o.sim = startSim(t, ucsim.Options{Now: o.clock.Now, KeepAliveTimeout: -1, RequireMonitorForDND: true})
	o.teams = simoffice.NewTeams(o.clock)
	o.j = &memJournal{holds: map[psync.HoldKey]psync.Hold{}}
	o.boot()
	t.Cleanup(o.kill)
	return o
}

// boot starts a bridge process: a new connector and engine on the journal.
func (o *office) boot() {
	t := o.t
	conn, err := ucserver.New(testConfig(o.sim, &logBuf{}))
	if err != nil {
		t.Fatal(err)
	}
	users := []psync.User{
		{ID: aliceID, UPN: "alice@example.com", DisplayName: "Alice", Profile: "protected"},
		{ID: bobID, UPN: "bob@example.com", DisplayName: "Bob"},
	}
	o.conn = conn
	o.e, err = psync.NewEngine(psync.EngineConfig{
		Profiles: simoffice.Profiles(), Users: users, Teams: o.teams, Phone: conn, Journal: o.j, Clock: o.clock,
		Observe: func(d psync.Decision) { o.mu.Lock(); o.decisions = append(o.decisions, d); o.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel, o.done = cancel, make(chan error, 1)
	go func() { o.done <- o.e.Run(ctx) }()
	o.eventually("both sides synced", func() bool {
		st, err := o.e.Status(ctx)
		return err == nil && st.Phone.Synced && st.Teams.Synced
	})
}

// kill ends the bridge process without a graceful stop: nothing is
// released, the journal keeps what it holds.
func (o *office) kill() {
	if o.cancel == nil {
		return
	}
	o.cancel()
	<-o.done
	_ = o.conn.Close()
	o.cancel = nil
}

// eventually polls cond (the engine has no change feed for tests); every
// round also moves the manual clock by step so engine retries come due.
func (o *office) eventuallyAdvancing(what string, step time.Duration, cond func() bool) {
	o.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			o.t.Fatalf("never: %s", what)
		}
		if step > 0 {
			o.clock.Advance(step)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (o *office) eventually(what string, cond func() bool) {
	o.t.Helper()
	o.eventuallyAdvancing(what, 0, cond)
}

func (o *office) user(id psync.UserID) psync.UserStatus {
	o.t.Helper()
	u, err := o.e.User(context.Background(), id)
	if err != nil {
		o.t.Fatal(err)
	}
	return u
}

func (o *office) absent(id string) ucsim.AbsentState { return userState(o.t, o.sim, id).Absent }

func (o *office) protected(id string, lines ...string) bool {
	for _, l := range lines {
		if !lineDND(o.t, o.sim, id, l) {
			return false
		}
	}
	return true
}

func (o *office) unprotected(id string, lines ...string) bool {
	for _, l := range lines {
		if lineDND(o.t, o.sim, id, l) {
			return false
		}
	}
	return true
}

func (o *office) yielded(what string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.ContainsFunc(o.decisions, func(d psync.Decision) bool {
		return d.User == aliceID && d.What == what && d.Outcome == psync.OutcomeYielded
	})
}

// A Teams call puts the absent state (DND, per alice's profile) with a lease
// and line DND on every line; both are refreshed/held while it lasts and
// restored when it ends.
func TestConn_Engine_TeamsCall(t *testing.T) {
	o := newOffice(t)
	start := o.clock.Now()
	o.teams.SetClient(aliceID, "Busy", "InACall")
	o.eventually("absent state DND and DND on every line", func() bool {
		a := o.absent(aliceID)
		return a.State == ucsim.AbsentDoNotDisturb && o.protected(aliceID, aliceDesk, aliceSoft)
	})
	if to := o.absent(aliceID).To; !to.Equal(start.Add(10 * time.Minute)) {
		t.Fatalf("stTimeTo %s, want now + phone.lease (%s)", to, start.Add(10*time.Minute))
	}
	o.eventually("the engine sees its own changes", func() bool {
		u := o.user(aliceID)
		return u.Phone.Presence == psync.PhoneDND && len(u.Holds) == 3 && !slices.ContainsFunc(u.Holds, func(h psync.HoldStatus) bool { return !h.Confirmed })
	})
	for _, h := range o.user(aliceID).Holds {
		if h.Kind == psync.HoldDeviceProtection && !h.HeldByBridge {
			t.Errorf("line DND hold %s should be held by the bridge (no expiry)", h.Key())
		}
	}

	// While the call lasts the lease is refreshed (phone.keepalive 5m).
	o.clock.Advance(5*time.Minute + time.Second)
	o.eventually("lease refreshed", func() bool { return o.absent(aliceID).To.After(start.Add(10 * time.Minute)) })

	o.teams.SetClient(aliceID, "Available", "Available")
	o.eventually("restored", func() bool {
		return o.absent(aliceID).State == ucsim.AbsentNotSet && o.unprotected(aliceID, aliceDesk, aliceSoft) && len(o.j.keys()) == 0
	})
	// Bob (default profile) was never touched.
	if a := o.absent(bobID); a.State != ucsim.AbsentNotSet || !lineDND(t, o.sim, bobID, bobDesk) {
		t.Fatalf("bob changed: %+v", a)
	}
}

// What the person changes by hand during the Teams call is left alone.
func TestConn_Engine_ManualChangeWins(t *testing.T) {
	o := newOffice(t)
	o.teams.SetClient(aliceID, "Busy", "InACall")
	o.eventually("imposed", func() bool {
		return o.absent(aliceID).State == ucsim.AbsentDoNotDisturb && o.protected(aliceID, aliceDesk, aliceSoft)
	})
	o.eventually("confirmed", func() bool { u := o.user(aliceID); return u.Phone.Presence == psync.PhoneDND && len(u.Holds) == 3 })

	// Alice sets "out of office" and switches the softphone's DND off.
	_ = o.sim.SetAbsentState(aliceID, ucsim.AbsentState{State: ucsim.AbsentOutOfOffice})
	_ = o.sim.SetLineDND(aliceSoft, false)
	o.eventually("the engine sees alice's changes", func() bool {
		u := o.user(aliceID)
		return u.Phone.Presence == psync.PhoneAway && slices.Contains(u.Phone.Devices, psync.Device{ID: aliceSoft, Name: "Softphone"})
	})
	if lineDND(t, o.sim, aliceID, aliceSoft) || o.absent(aliceID).State != ucsim.AbsentOutOfOffice {
		t.Fatal("the bridge re-imposed what alice changed during the call")
	}

	o.teams.SetClient(aliceID, "Available", "Available")
	o.eventually("desk restored, the rest left as alice set it", func() bool {
		return o.unprotected(aliceID, aliceDesk) && len(o.j.keys()) == 0
	})
	if a := o.absent(aliceID); a.State != ucsim.AbsentOutOfOffice {
		t.Fatalf("alice's own absent state was overwritten: %+v", a)
	}
	// The engine let go of both, at once or at the restore's compare.
	if !o.yielded("presence") || !o.yielded("device "+aliceSoft) {
		t.Fatalf("no yield decisions: %+v", o.decisions)
	}
}

// The socket drops mid-call and the Teams call ends while the UCServer is
// out of reach: after the reconnect the state is re-synced, nothing stays
// protected, and a phone call that started in the gap reaches Teams.
func TestConn_Engine_DropMidCall(t *testing.T) {
	o := newOffice(t)
	o.teams.SetClient(aliceID, "Busy", "InACall")
	o.eventually("imposed", func() bool {
		return o.absent(aliceID).State == ucsim.AbsentDoNotDisturb && o.protected(aliceID, aliceDesk, aliceSoft)
	})
	o.eventually("confirmed", func() bool { return len(o.user(aliceID).Holds) == 3 })

	o.sim.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{Status: http.StatusServiceUnavailable})
	o.sim.DropSockets()
	o.eventually("the engine sees the phone side down", func() bool {
		st, _ := o.e.Status(context.Background())
		return !st.Phone.Healthy
	})
	o.teams.SetClient(aliceID, "Available", "Available")
	call, _ := o.sim.Ring(bobDesk, "+4930555")
	_ = o.sim.PickUp(call)
	o.eventually("restores failing while down", func() bool {
		st, _ := o.e.Status(context.Background())
		return st.Stats.Failures > 0
	})

	o.sim.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{})
	o.eventuallyAdvancing("no stuck DND, presence restored", time.Second, func() bool {
		return o.absent(aliceID).State == ucsim.AbsentNotSet && o.unprotected(aliceID, aliceDesk, aliceSoft)
	})
	o.eventually("bob's call from the gap reached Teams", func() bool {
		act, _ := o.teams.BridgeSession(bobID)
		return act == psync.ActivityInACall
	})
	o.eventually("only bob's Teams session is held", func() bool {
		keys := o.j.keys()
		return len(keys) == 1 && keys[0].User == bobID && keys[0].Kind == psync.HoldTeamsSession
	})
}
