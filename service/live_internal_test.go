package service

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

// fakePhone records its runs and writes.
type fakePhone struct {
	name   string
	mu     sync.Mutex
	runs   [][]psync.UserID
	active int
	writes int
}

func (f *fakePhone) Run(ctx context.Context, users []psync.User, events chan<- psync.PhoneEvent) error {
	var ids []psync.UserID
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	f.mu.Lock()
	f.runs = append(f.runs, ids)
	f.active++
	f.mu.Unlock()
	events <- psync.PhoneEvent{Kind: psync.PhoneSynced, Detail: f.name}
	<-ctx.Done()
	f.mu.Lock()
	f.active--
	f.mu.Unlock()
	return nil
}

func (f *fakePhone) state() (runs [][]psync.UserID, active, writes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.runs), f.active, f.writes
}

func (f *fakePhone) SetPresence(context.Context, psync.User, psync.PresenceMark, []psync.PresenceMark) error {
	f.mu.Lock()
	f.writes++
	f.mu.Unlock()
	return nil
}
func (f *fakePhone) RestorePresence(context.Context, psync.User, []psync.PresenceMark, psync.PresenceMark) error {
	return nil
}
func (f *fakePhone) SetDeviceProtection(context.Context, psync.User, string, bool) error { return nil }
func (f *fakePhone) RestoreDeviceProtection(context.Context, psync.User, string, bool, bool) error {
	return nil
}

// A replaced adapter stops before the new one starts on the same events,
// with the same users; a new user list restarts the current one; writes
// always go to the current adapter.
func TestLivePhone_SwapAndWatch(t *testing.T) {
	a, b := &fakePhone{name: "a"}, &fakePhone{name: "b"}
	l := newLivePhone(a)
	events := make(chan psync.PhoneEvent, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, []psync.User{{ID: "1"}}, events) }()
	if ev := <-events; ev.Detail != "a" {
		t.Fatalf("first run %q", ev.Detail)
	}
	_ = l.SetPresence(ctx, psync.User{ID: "1"}, psync.PresenceMark{}, nil)

	if old := l.Swap(b, 5*time.Second); old != psync.PhoneSystem(a) {
		t.Fatal("Swap returned the wrong adapter")
	}
	if _, active, _ := a.state(); active != 0 {
		t.Fatal("the old adapter still runs after Swap returned")
	}
	if ev := <-events; ev.Kind != psync.PhoneHealth || ev.Healthy {
		t.Fatalf("after the swap, first %+v: want the phone side being read again", ev)
	}
	if ev := <-events; ev.Detail != "b" {
		t.Fatalf("after the swap %q", ev.Detail)
	}
	_ = l.SetPresence(ctx, psync.User{ID: "1"}, psync.PresenceMark{}, nil)
	if _, _, w := a.state(); w != 1 {
		t.Fatalf("old adapter writes %d", w)
	}
	if _, _, w := b.state(); w != 1 {
		t.Fatalf("new adapter writes %d", w)
	}

	l.Watch([]psync.User{{ID: "1"}, {ID: "2"}}, 5*time.Second)
	<-events
	runs, active, _ := b.state()
	if active != 1 || len(runs) != 2 || !slices.Equal(runs[0], []psync.UserID{"1"}) || !slices.Equal(runs[1], []psync.UserID{"1", "2"}) {
		t.Fatalf("runs of b %v, active %d", runs, active)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, active, _ := b.state(); active != 0 {
		t.Fatal("still running after ctx ended")
	}
}

// A new connector counts its versions from 1 again; after a swap its
// events must still be newer than the old one's, or the engine drops the
// snapshots that follow a settings change (it then never saw the phone
// again and waited for it forever).
func TestLivePhone_NewConnectorEventsAreNewer(t *testing.T) {
	clock := psync.NewManualClock(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	a, b := simoffice.NewPhone(clock), simoffice.NewPhone(clock)
	for _, p := range []*simoffice.Phone{a, b} {
		p.AddUser("201", "desk")
	}
	a.SetPresenceByHand("201", psync.PhoneBusy) // a's count is ahead
	a.SetPresenceByHand("201", psync.PhoneDND)
	l := newLivePhone(a)
	events := make(chan psync.PhoneEvent, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, []psync.User{{ID: "201"}}, events) }()
	defer func() { cancel(); <-done }()
	snapshot := func() uint64 {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Kind == psync.PhoneSnapshot {
					return ev.Version
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no snapshot")
			}
		}
	}
	first := snapshot()
	l.Swap(b, 5*time.Second)
	if second := snapshot(); second <= first {
		t.Fatalf("the new connector's snapshot has version %d, not newer than the old one's %d", second, first)
	}
}

// A swapped-in connector knows nothing the old one held in memory (a SIP
// proxy's busy entries it refreshed): before its first event the engine is
// told the phone side is being read again, so it writes its protections
// once more once the new connector has reported. A Watch (same connector,
// new users) says nothing.
func TestLivePhone_SwapSaysThePhoneIsReadAgain(t *testing.T) {
	clock := psync.NewManualClock(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	a, b := simoffice.NewPhone(clock), simoffice.NewPhone(clock)
	for _, p := range []*simoffice.Phone{a, b} {
		p.AddUser("201", "desk")
	}
	l := newLivePhone(a)
	events := make(chan psync.PhoneEvent, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, []psync.User{{ID: "201"}}, events) }()
	defer func() { cancel(); <-done }()
	next := func() psync.PhoneEvent {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		return psync.PhoneEvent{}
	}
	untilSynced := func() (lost bool) {
		t.Helper()
		for {
			ev := next()
			if ev.Kind == psync.PhoneHealth && !ev.Healthy {
				lost = true
			}
			if ev.Kind == psync.PhoneSynced {
				return lost
			}
		}
	}
	if untilSynced() {
		t.Fatal("the first run said the phone side was lost")
	}
	l.Watch([]psync.User{{ID: "201"}}, 5*time.Second)
	if untilSynced() {
		t.Fatal("a new user list said the phone side was lost")
	}
	l.Swap(b, 5*time.Second)
	if ev := next(); ev.Kind != psync.PhoneHealth || ev.Healthy {
		t.Fatalf("the first event after a swap is %+v, want the phone side being read again", ev)
	}
	untilSynced()
}
