package ucserver_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// The tests of this file run the real engine with the real connector
// against ucsim through faults and restarts. Each reproduces a defect found
// by a soak of the real binary; each fails on the code before its fix.

// outage makes the UCServer unreachable: the socket drops and new sessions
// are refused until the returned function is called.
func (o *office) outage() (over func()) {
	o.sim.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{Status: http.StatusServiceUnavailable})
	o.sim.DropSockets()
	o.eventually("the engine sees the phone side down", func() bool {
		st, _ := o.e.Status(context.Background())
		return !st.Phone.Healthy
	})
	return func() { o.sim.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{}) }
}

// failures is the engine's failure counter.
func (o *office) failures() uint64 {
	st, _ := o.e.Status(context.Background())
	return st.Stats.Failures
}

// The bridge holds Do not disturb (presenting); Teams goes to a call, so the
// bridge wants Busy, but the UCServer cannot be written. The call ends and
// the UCServer is back: the DND is still the bridge's own (the Busy write
// never landed) and is restored. Before the fix the hold was recorded as
// Busy, the restore found DND, took it for the person's change and left it
// for the rest of its lease.
func TestConn_Engine_FailedChangeOfHeldValueIsStillReleased(t *testing.T) {
	o := newOffice(t)
	o.teams.SetClient(bobID, "DoNotDisturb", "Presenting")
	o.eventually("DND while presenting", func() bool { return o.absent(bobID).State == ucsim.AbsentDoNotDisturb })
	o.eventually("confirmed", func() bool { u := o.user(bobID); return len(u.Holds) == 1 && u.Holds[0].Confirmed })

	over := o.outage()
	before := o.failures()
	o.teams.SetClient(bobID, "Busy", "InACall") // the target becomes Busy
	o.eventually("the Busy write failed", func() bool { return o.failures() > before })
	o.teams.SetClient(bobID, "Available", "Available") // the call ends
	over()
	o.eventuallyAdvancing("DND released, nothing held", time.Second, func() bool {
		return o.absent(bobID).State == ucsim.AbsentNotSet && len(o.j.keys()) == 0
	})
	if o.yieldedBy(bobID, "presence") {
		t.Fatalf("the bridge disowned its own DND:\n%s", o.log())
	}
}

// While the bridge is down, the person sets by hand the same absent state
// the bridge held (Do not disturb right after their meeting, no end time).
// After the restart the bridge must not "restore" it: the end time it wrote
// (kept in the hold record) proves the value is no longer its own. Before
// the fix the end time lived only in the connector's memory.
func TestConn_Engine_OwnResetSurvivesRestart(t *testing.T) {
	o := newOffice(t)
	o.teams.SetClient(bobID, "DoNotDisturb", "Presenting")
	o.eventually("DND while presenting", func() bool { return o.absent(bobID).State == ucsim.AbsentDoNotDisturb })
	o.eventually("confirmed", func() bool { u := o.user(bobID); return len(u.Holds) == 1 && u.Holds[0].Confirmed })

	o.kill()
	o.teams.SetClient(bobID, "Available", "Available") // the meeting ends
	if err := o.sim.SetAbsentState(bobID, ucsim.AbsentState{State: ucsim.AbsentDoNotDisturb}); err != nil {
		t.Fatal(err)
	}
	o.boot()
	o.eventuallyAdvancing("the hold let go", time.Second, func() bool { return len(o.j.keys()) == 0 })
	if a := o.absent(bobID); a.State != ucsim.AbsentDoNotDisturb || !a.To.IsZero() {
		t.Fatalf("bob's own DND was wiped after the restart: %+v\n%s", a, o.log())
	}
}

// "Available" (absent state 0) and "not set" (4) are two values. A person
// who picks "available" by hand while the bridge is down has changed
// something: the bridge must not take it for its lease running out and
// impose DND again. And a restore writes back exactly the value that was
// there.
func TestConn_Engine_AvailableIsNotNotSet(t *testing.T) {
	t.Run("picked while the bridge was down", func(t *testing.T) {
		o := newOffice(t)
		o.teams.SetClient(bobID, "DoNotDisturb", "Presenting")
		o.eventually("DND while presenting", func() bool { return o.absent(bobID).State == ucsim.AbsentDoNotDisturb })
		o.eventually("confirmed", func() bool { u := o.user(bobID); return len(u.Holds) == 1 && u.Holds[0].Confirmed })
		o.kill()
		if err := o.sim.SetAbsentState(bobID, ucsim.AbsentState{State: ucsim.AbsentNotAbsent}); err != nil {
			t.Fatal(err)
		}
		o.boot() // still presenting
		o.eventually("the phone seen", func() bool { return o.user(bobID).Phone.Presence == psync.PhoneAvailable })
		if err := o.e.Settle(context.Background()); err != nil {
			t.Fatal(err)
		}
		if a := o.absent(bobID); a.State != ucsim.AbsentNotAbsent {
			t.Fatalf("bob's own \"available\" was overwritten: %+v\n%s", a, o.log())
		}
		if keys := o.j.keys(); len(keys) != 0 {
			t.Fatalf("the bridge still holds %v", keys)
		}
	})
	t.Run("restored exactly", func(t *testing.T) {
		o := newOffice(t)
		if err := o.sim.SetAbsentState(bobID, ucsim.AbsentState{State: ucsim.AbsentNotAbsent}); err != nil {
			t.Fatal(err)
		}
		o.eventually("seen", func() bool { return o.user(bobID).Phone.Presence == psync.PhoneAvailable })
		o.teams.SetClient(bobID, "DoNotDisturb", "Presenting")
		o.eventually("DND while presenting", func() bool { return o.absent(bobID).State == ucsim.AbsentDoNotDisturb })
		o.teams.SetClient(bobID, "Available", "Available")
		o.eventually("released", func() bool { return len(o.j.keys()) == 0 && o.absent(bobID).State != ucsim.AbsentDoNotDisturb })
		if a := o.absent(bobID); a.State != ucsim.AbsentNotAbsent || !a.To.IsZero() {
			t.Fatalf("restored to %+v, want \"available\" (0) as bob had it", a)
		}
	})
}

// After an outage the restore runs as soon as the UCServer is back and
// synced, not when a backoff grown during the outage runs out. The engine's
// clock does not move here: only the side coming back can trigger it.
func TestConn_Engine_ConvergesWhenTheSideIsBack(t *testing.T) {
	o := newOffice(t)
	o.teams.SetClient(bobID, "DoNotDisturb", "Presenting")
	o.eventually("DND while presenting", func() bool { return o.absent(bobID).State == ucsim.AbsentDoNotDisturb })
	o.eventually("confirmed", func() bool { u := o.user(bobID); return len(u.Holds) == 1 && u.Holds[0].Confirmed })

	over := o.outage()
	o.teams.SetClient(bobID, "Available", "Available")
	// Let the restore fail a few times, so that the next retry is far off
	// (the backoff doubles: 1 s, 2 s, 4 s, 8 s, 16 s …).
	before := o.failures()
	o.eventuallyAdvancing("the restore failed five times", time.Second, func() bool { return o.failures() >= before+5 })
	over()
	deadline := time.Now().Add(10 * time.Second)
	for o.absent(bobID).State != ucsim.AbsentNotSet {
		if time.Now().After(deadline) {
			t.Fatalf("DND still held 10 s after the UCServer was back: %+v\n%s", o.absent(bobID), o.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// yieldedBy reports whether the engine let go of a hold of user's.
func (o *office) yieldedBy(user psync.UserID, what string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range o.decisions {
		if d.User == user && d.What == what && d.Outcome == psync.OutcomeYielded {
			return true
		}
	}
	return false
}

// log is every decision so far, for failure messages.
func (o *office) log() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := ""
	for _, d := range o.decisions {
		s += d.String() + "\n"
	}
	return s
}

// A restore gives the person their own value back with its end time: "Do
// not disturb until 12:00" stays until 12:00 (before, it came back with no
// end and never ended). Once that end time has passed, the restore writes
// what the UCServer itself would show by then: nothing set.
func TestConn_Engine_RestoreKeepsTheEndTime(t *testing.T) {
	o := newOffice(t)
	until := o.clock.Now().Add(20 * time.Minute).Truncate(time.Second)
	if err := o.sim.SetAbsentState(bobID, ucsim.AbsentState{State: ucsim.AbsentDoNotDisturb, To: until}); err != nil {
		t.Fatal(err)
	}
	o.eventually("seen", func() bool { return o.user(bobID).Phone.PresenceUntil.Equal(until) })
	o.teams.SetClient(bobID, "Busy", "InACall") // Busy over bob's DND
	o.eventually("busy during the Teams call", func() bool { return o.absent(bobID).State == ucsim.AbsentBusy })
	o.teams.SetClient(bobID, "Available", "Available")
	o.eventually("restored", func() bool { return o.absent(bobID).State == ucsim.AbsentDoNotDisturb && len(o.j.keys()) == 0 })
	if a := o.absent(bobID); !a.To.Equal(until) {
		t.Fatalf("restored %+v, want bob's DND until %s", a, until)
	}

	// The same, with bob's end time passing during the Teams call.
	until = o.clock.Now().Add(2 * time.Minute).Truncate(time.Second)
	if err := o.sim.SetAbsentState(bobID, ucsim.AbsentState{State: ucsim.AbsentDoNotDisturb, To: until}); err != nil {
		t.Fatal(err)
	}
	o.eventually("seen", func() bool { return o.user(bobID).Phone.PresenceUntil.Equal(until) })
	o.teams.SetClient(bobID, "Busy", "InACall")
	o.eventually("busy during the Teams call", func() bool { return o.absent(bobID).State == ucsim.AbsentBusy })
	o.clock.Advance(3 * time.Minute)
	o.teams.SetClient(bobID, "Available", "Available")
	o.eventually("released", func() bool { return len(o.j.keys()) == 0 })
	if a := o.absent(bobID); a.State != ucsim.AbsentNotSet {
		t.Fatalf("after bob's end time passed the restore wrote %+v, want not set", a)
	}
}

// A conference on hold is still a conference, also for a bridge that
// starts while it is held: the server's conference mark of the call says
// so (before, a restart turned it into a plain call in Teams).
func TestConn_Engine_HeldConferenceAcrossARestart(t *testing.T) {
	o := newOffice(t)
	call, err := o.sim.Ring(bobDesk, "+4930555")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func(string) error{o.sim.PickUp, o.sim.Conference, o.sim.Hold} {
		if err := step(call); err != nil {
			t.Fatal(err)
		}
	}
	session := func() string { a, _ := o.teams.BridgeSession(bobID); return a }
	o.eventually("conference in Teams", func() bool { return session() == psync.ActivityInAConferenceCall })
	if err := o.e.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := session(); got != psync.ActivityInAConferenceCall {
		t.Fatalf("held conference shows %q", got)
	}
	o.kill()
	o.boot()
	if err := o.e.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := session(); got != psync.ActivityInAConferenceCall {
		t.Fatalf("after a restart the held conference shows %q", got)
	}
	sets, _ := o.teams.Writes(bobID)
	if sets > 3 { // call, conference, and the restart's refresh
		t.Fatalf("%d setPresence calls; the conference flipped", sets)
	}
}

// The bridge is killed while it holds Do not disturb and starts again; its
// refreshes reach the UCServer but get no answer, five times in a row (each
// may or may not have landed). The DND on the server is still the value of
// the previous run, and is restored once presenting ends. Before the fix
// every retry wrote a new end time, and after four of them the real one was
// pushed out of the values the bridge counts as its own: the restore took
// it for the person's and left it for its lease.
func TestConn_Engine_OwnValueOutlivesFailedRefreshesAfterARestart(t *testing.T) {
	o := newOffice(t)
	o.teams.SetClient(bobID, "DoNotDisturb", "Presenting")
	o.eventually("DND while presenting", func() bool { return o.absent(bobID).State == ucsim.AbsentDoNotDisturb })
	o.eventually("confirmed", func() bool { u := o.user(bobID); return len(u.Holds) == 1 && u.Holds[0].Confirmed })

	o.kill()
	o.sim.SetOperationFault(ucsim.OpSetUserAbsentState, ucsim.OperationFault{Silent: true, Times: 5})
	o.clock.Advance(time.Minute)
	before := o.failures()
	o.boot()
	for n := range uint64(5) { // each retry after the backoff, with the clock at a walk
		o.eventually("a refresh unanswered", func() bool { return o.failures() >= before+n+1 })
		o.clock.Advance(15 * time.Second)
	}
	o.teams.SetClient(bobID, "Available", "Available") // presenting ends
	o.eventuallyAdvancing("DND released, nothing held", time.Second, func() bool {
		return o.absent(bobID).State == ucsim.AbsentNotSet && len(o.j.keys()) == 0
	})
	if o.yieldedBy(bobID, "presence") {
		t.Fatalf("the bridge disowned its own DND:\n%s", o.log())
	}
}
