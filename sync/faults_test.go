package sync_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The engine under the faults a soak of the real binary found; each test
// fails on the engine before its fix. Every step is followed by settle, so
// nothing here waits on time.

// A conference on hold is still a conference: no flip to InACall and back.
func TestEngine_HeldConferenceStaysConference(t *testing.T) {
	h := newHarness(t, nil)
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	h.settle()
	h.phone.Call("201", "desk", "c1", psync.CallConference)
	h.settle()
	for range 3 {
		h.phone.Call("201", "desk", "c1", psync.CallHeld)
		h.settle()
		if got := h.session("201"); got != psync.ActivityInAConferenceCall {
			t.Fatalf("held conference shows %q in Teams", got)
		}
		h.phone.Call("201", "desk", "c1", psync.CallConference)
		h.settle()
	}
	if sets, _ := h.teams.Writes("201"); sets != 2 {
		t.Fatalf("%d setPresence for call, conference and three holds; want 2\n%s", sets, h.decisions())
	}
}

// A write that waited before the wire (a request budget, a Retry-After)
// while its reason went away is not sent, and nothing needs clearing after
// it. The same for a clear that waited while a new call began.
func TestEngine_StaleCommandsAreNotSent(t *testing.T) {
	h := newHarness(t, nil)
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	var armed atomic.Bool // holds the next Teams call before the wire, once
	h.teams.Gate.SetHook(func() error {
		if armed.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-gate
		}
		return nil
	})

	armed.Store(true)
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	<-entered // the set waits before the wire
	h.phone.Call("201", "desk", "c1", psync.CallEnded)
	h.eventually("the end of the call seen", func() bool { return len(h.user("201").Phone.Calls) == 0 })
	gate <- struct{}{}
	h.settle()
	if sets, clears := h.teams.Writes("201"); sets != 0 || clears != 0 {
		t.Fatalf("a call that ended while its set waited: %d sets, %d clears; want none\n%s", sets, clears, h.decisions())
	}
	if n := h.j.count(); n != 0 {
		t.Fatalf("%d holds left", n)
	}

	// Now a session is set; the call ends and the clear waits; a new call
	// begins before it goes: the clear is not sent, the session stays.
	h.phone.Call("201", "desk", "c2", psync.CallConnected)
	h.settle()
	if h.session("201") != psync.ActivityInACall {
		t.Fatal("no session")
	}
	armed.Store(true)
	h.phone.Call("201", "desk", "c2", psync.CallEnded)
	<-entered
	h.phone.Call("201", "desk", "c3", psync.CallConnected)
	h.eventually("the new call seen", func() bool { return len(h.user("201").Phone.Calls) == 1 })
	gate <- struct{}{}
	h.settle()
	if sets, clears := h.teams.Writes("201"); sets != 1 || clears != 0 {
		t.Fatalf("a clear that waited while a new call began: %d sets, %d clears; want 1 and 0\n%s", sets, clears, h.decisions())
	}
	if h.session("201") != psync.ActivityInACall {
		t.Fatal("the session of the new call is gone")
	}
	if st, _ := h.e.Status(context.Background()); st.Stats.Superseded != 2 {
		t.Fatalf("superseded %d, want 2", st.Stats.Superseded)
	}
}

// The bridge holds DND (presenting); Teams goes to a call, so the bridge
// wants Busy; the write fails with no known outcome. When the call ends the
// DND is still the bridge's and is restored (the engine-level twin of the
// connector test against ucsim).
func TestEngine_FailedChangeOfHeldValue(t *testing.T) {
	h := newHarness(t, nil)
	h.teams.SetClient("201", "DoNotDisturb", "Presenting")
	h.settle()
	if h.presence("201") != psync.PhoneDND {
		t.Fatal("no DND while presenting")
	}
	h.phone.Gate.FailNext(1, errors.New("timeout: no answer"))
	h.teams.SetClient("201", "Busy", "InACall")
	h.settle()
	if h.presence("201") != psync.PhoneDND {
		t.Fatalf("the failed Busy write changed the phone: %s", h.presence("201"))
	}
	h.teams.SetClient("201", "Available", "Available")
	h.clock.Advance(2 * time.Second) // the retry
	h.settle()
	if p := h.presence("201"); p != psync.PhoneNotSet {
		t.Fatalf("phone presence %s after the reasons ended; want not set\n%s", p, h.decisions())
	}
	if n := h.j.count(); n != 0 {
		t.Fatalf("%d holds left", n)
	}
}

// After a restart, the value the previous run wrote is only "maybe" the
// bridge's. Writes that fail on the way keep it so: a write never sent
// (the phone system down) adds nothing, and writes with no known outcome
// (timeouts) never push out a value the side may still show. The soak saw
// the value of the previous run pushed out after four failed refreshes,
// then taken for the person's and left for its whole lease.
func TestEngine_OwnValueOutlivesFailedWritesAfterARestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(h *harness)
	}{
		{"side down", func(h *harness) { h.phone.Gate.SetDown(true) }},
		{"timeouts", func(h *harness) { h.phone.Gate.FailNext(8, errors.New("timeout: no answer")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.teams.SetClient("201", "DoNotDisturb", "Presenting")
			h.settle()
			if h.presence("201") != psync.PhoneDND {
				t.Fatal("no DND while presenting")
			}
			h.stop()
			h.clock.Advance(time.Minute)
			tc.fail(h)
			h.start()
			for range 8 { // every retry with a new end time, none lands
				h.clock.Advance(20 * time.Second)
				h.settle()
			}
			if h.presence("201") != psync.PhoneDND {
				t.Fatalf("phone presence %s during the failures", h.presence("201"))
			}
			h.phone.Gate.SetDown(false)
			h.phone.Gate.FailNext(0, nil)
			h.teams.SetClient("201", "Available", "Available")
			for range 4 {
				h.clock.Advance(20 * time.Second)
				h.settle()
			}
			if p := h.presence("201"); p != psync.PhoneNotSet {
				t.Fatalf("phone presence %s after presenting ended; want not set\n%s", p, h.decisions())
			}
			if n := h.j.count(); n != 0 {
				t.Fatalf("%d holds left", n)
			}
		})
	}
}

// A report read before the bridge's write and delivered after its answer
// shows the bridge's previous value: it is not the person taking over.
func TestEngine_LateReportOfTheBridgesOwnValue(t *testing.T) {
	h := newHarness(t, nil)
	h.teams.SetClient("201", "Busy", "InACall") // Busy on the phone
	h.settle()
	before := h.phone.State("201")
	if before.Presence != psync.PhoneBusy {
		t.Fatalf("phone presence %s in a Teams call", before.Presence)
	}
	h.teams.SetClient("201", "DoNotDisturb", "Presenting") // now DND
	h.settle()
	if h.presence("201") != psync.PhoneDND {
		t.Fatal("no DND while presenting")
	}
	h.phone.ReportLate("201", before.Presence, before.PresenceUntil)
	h.settle()
	h.teams.SetClient("201", "Available", "Available")
	h.settle()
	if p := h.presence("201"); p != psync.PhoneNotSet {
		t.Fatalf("phone presence %s after presenting ended; want not set\n%s", p, h.decisions())
	}
	if n := h.j.count(); n != 0 {
		t.Fatalf("%d holds left", n)
	}
}

// While the phone system's connection is down, its calls may change unseen:
// a Teams session that waited to go out (Graph throttling) is not started
// on the picture from before the loss, and none is cleared or changed on
// it either; one already shown is kept alive. Once the phone system is back
// and synced, its state decides. The soak saw sets go out during UCServer
// outages for calls that had ended meanwhile, and clears follow them.
func TestEngine_NoNewSessionWhileThePhoneSideIsLost(t *testing.T) {
	h := newHarness(t, nil)
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	var armed atomic.Bool
	h.teams.Gate.SetHook(func() error {
		if armed.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-gate
		}
		return nil
	})
	phoneDown := func() bool { st, _ := h.e.Status(context.Background()); return !st.Phone.Healthy }

	armed.Store(true)
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	<-entered // the set waits before the wire
	h.phone.Lose(true)
	h.eventually("the phone side seen lost", phoneDown)
	h.phone.Call("201", "desk", "c1", psync.CallEnded) // unseen
	gate <- struct{}{}
	h.settle()
	if sets, clears := h.teams.Writes("201"); sets != 0 || clears != 0 {
		t.Fatalf("while the phone side was lost: %d sets, %d clears; want none\n%s", sets, clears, h.decisions())
	}
	h.phone.Lose(false)
	h.settle()
	if sets, clears := h.teams.Writes("201"); sets != 0 || clears != 0 {
		t.Fatalf("a call that ended while the phone side was lost: %d sets, %d clears; want none\n%s", sets, clears, h.decisions())
	}

	// A session already shown runs on its lease through a loss (no
	// keep-alive, no change, no clear on the old picture); a call that
	// went on meanwhile is kept alive again once the side is back.
	h.phone.Call("202", "desk", "c2", psync.CallConnected)
	h.settle()
	if h.session("202") != psync.ActivityInACall {
		t.Fatal("no session for 202's call")
	}
	h.phone.Lose(true)
	h.eventually("the phone side seen lost", phoneDown)
	h.phone.Call("202", "desk", "c2", psync.CallConference) // unseen
	for range 2 {
		h.clock.Advance(3 * time.Minute) // past a keep-alive
		h.settle()
	}
	if sets, clears := h.teams.Writes("202"); sets != 1 || clears != 0 {
		t.Fatalf("202 while the phone side was lost: %d sets, %d clears; want only the first set\n%s", sets, clears, h.decisions())
	}
	if h.session("202") != psync.ActivityInACall {
		t.Fatalf("202's session ended within its lease\n%s", h.decisions())
	}
	h.phone.Lose(false)
	h.settle()
	if got := h.session("202"); got != psync.ActivityInAConferenceCall {
		t.Fatalf("202 shows %q once the phone side is back; want the conference", got)
	}
	if _, clears := h.teams.Writes("202"); clears != 0 {
		t.Fatalf("202: %d clears during a call", clears)
	}
	h.phone.Call("201", "desk", "c3", psync.CallConnected)
	h.settle()
	if h.session("201") != psync.ActivityInACall {
		t.Fatalf("no session for a call after the phone side came back\n%s", h.decisions())
	}
}

// The phone side is lost when a Teams call makes the bridge protect a
// person's lines; its writes are not sent. Meanwhile the person switches
// DND on a line on by hand. Once the side is back it shows the person's
// DND: nothing of the bridge's reached it, so there is nothing to restore
// after the call, and the person's DND stays. The soak saw it switched off.
func TestEngine_OwnLineDNDMadeWhileThePhoneSideWasLost(t *testing.T) {
	h := newHarness(t, nil)
	h.phone.Lose(true)
	h.eventually("the phone side seen lost", func() bool { st, _ := h.e.Status(context.Background()); return !st.Phone.Healthy })
	h.teams.SetClient("202", "Busy", "InACall")
	h.settle()
	h.phone.SetDNDByHand("202", "desk", true) // unseen
	h.phone.Lose(false)
	h.settle()
	h.teams.SetClient("202", "Available", "Available")
	for range 3 {
		h.clock.Advance(10 * time.Second)
		h.settle()
	}
	if !h.dnd("202")["desk"] {
		t.Fatalf("the person's own line DND was switched off\n%s", h.decisions())
	}
	if h.dnd("202")["softphone"] {
		t.Fatal("the softphone's protection was not released")
	}
	if n := h.j.count(); n != 0 {
		t.Fatalf("%d holds left", n)
	}
}
