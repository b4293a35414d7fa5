package service

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
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
