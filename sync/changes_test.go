package sync_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	psync "github.com/presencebridge/presencebridge/sync"
)

func changedIDs(ch psync.UserChanges) []psync.UserID {
	var ids []psync.UserID
	for _, u := range ch.Users {
		ids = append(ids, u.User.ID)
	}
	return ids
}

// TestEngine_UsersSinceReturnsOnlyWhatChanged: everyone first, then only
// the user a phone call changed, nothing when nothing changed, a removed
// user as removed, an added one as changed, and everyone again for a
// version this engine never gave.
func TestEngine_UsersSinceReturnsOnlyWhatChanged(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c := psync.NewChanges()
	h.settle()

	all, err := h.e.UsersSince(ctx, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !all.Full || all.Total != 2 || !slices.Equal(changedIDs(all), []psync.UserID{"201", "202"}) {
		t.Fatalf("since 0: full %v, total %d, users %v; want everyone", all.Full, all.Total, changedIDs(all))
	}
	quiet, err := h.e.UsersSince(ctx, c, all.Version)
	if err != nil {
		t.Fatal(err)
	}
	if quiet.Full || len(quiet.Users) != 0 || quiet.Version != all.Version || quiet.Total != 2 {
		t.Fatalf("nothing happened: %+v, want no users and the same version", quiet)
	}

	// A phone call of 202's: only 202 comes back, with the call.
	h.phone.Call("202", "desk", "c1", psync.CallConnected)
	h.settle()
	call, err := h.e.UsersSince(ctx, c, all.Version)
	if err != nil {
		t.Fatal(err)
	}
	if call.Full || !slices.Equal(changedIDs(call), []psync.UserID{"202"}) || call.Version <= all.Version {
		t.Fatalf("after 202's call: full %v, users %v, version %d (was %d); want 202 alone and a newer version", call.Full, changedIDs(call), call.Version, all.Version)
	}
	if len(call.Users[0].Phone.Calls) != 1 || len(call.Users[0].Holds) == 0 {
		t.Fatalf("202 as returned: calls %v, holds %v; want the call and the bridge's hold", call.Users[0].Phone.Calls, call.Users[0].Holds)
	}
	// A second caller further behind gets the same, a caller up to date nothing.
	if again, _ := h.e.UsersSince(ctx, c, call.Version); len(again.Users) != 0 {
		t.Fatalf("up to date: %v", changedIDs(again))
	}
	if behind, _ := h.e.UsersSince(ctx, c, all.Version); !slices.Equal(changedIDs(behind), []psync.UserID{"202"}) {
		t.Fatalf("a second caller at the older version: %v, want 202", changedIDs(behind))
	}

	// A Teams change of 201's: 201 alone.
	h.teams.SetPreferred("201", "DoNotDisturb", "DoNotDisturb")
	h.settle()
	dnd, _ := h.e.UsersSince(ctx, c, call.Version)
	if !slices.Equal(changedIDs(dnd), []psync.UserID{"201"}) {
		t.Fatalf("after 201's Teams change: %v, want 201", changedIDs(dnd))
	}

	// Removed and added users.
	if err := h.e.RemoveUser(ctx, "201"); err != nil {
		t.Fatal(err)
	}
	if err := h.e.PutUser(ctx, psync.User{ID: "203", DisplayName: "Clara"}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	moved, _ := h.e.UsersSince(ctx, c, dnd.Version)
	if moved.Full || !slices.Contains(changedIDs(moved), "203") || slices.Contains(changedIDs(moved), "201") ||
		!slices.Equal(moved.Removed, []psync.UserID{"201"}) || moved.Total != 2 {
		t.Fatalf("after removing 201 and adding 203: users %v, removed %v, total %d", changedIDs(moved), moved.Removed, moved.Total)
	}

	// Versions of another Changes (a restarted service) or from the
	// future: everyone, marked full.
	for _, v := range []uint64{1, moved.Version + 1000} {
		got, _ := h.e.UsersSince(ctx, c, v)
		if !got.Full || len(got.Users) != 2 || len(got.Removed) != 0 {
			t.Errorf("since %d (never given): full %v, users %v, removed %v; want everyone, full", v, got.Full, changedIDs(got), got.Removed)
		}
	}
	restarted, _ := h.e.UsersSince(ctx, psync.NewChanges(), moved.Version)
	if !restarted.Full || len(restarted.Users) != 2 {
		t.Errorf("since a version of an earlier Changes: full %v, users %v", restarted.Full, changedIDs(restarted))
	}
}

// BenchmarkEngine_UsersSince10k is the console's refresh at 10,000 users
// when nothing changed: a scan of everyone and an empty answer, against
// BenchmarkEngine_Users10k, the full list it replaces.
func BenchmarkEngine_UsersSince10k(b *testing.B) {
	e := bench10k(b)
	c := psync.NewChanges()
	v, err := e.UsersSince(context.Background(), c, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		ch, err := e.UsersSince(context.Background(), c, v.Version)
		if err != nil || len(ch.Users) != 0 {
			b.Fatalf("%d users, %v", len(ch.Users), err)
		}
	}
}

func BenchmarkEngine_Users10k(b *testing.B) {
	e := bench10k(b)
	b.ResetTimer()
	for range b.N {
		if _, err := e.Users(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func bench10k(b *testing.B) *psync.Engine {
	const n = 10_000
	users := make([]psync.User, n)
	for i := range users {
		users[i] = psync.User{ID: psync.UserID(fmt.Sprintf("%05d", i)), UPN: fmt.Sprintf("u%05d@contoso.example", i), DisplayName: fmt.Sprintf("User %d", i), TeamsID: fmt.Sprintf("t-%05d", i)}
	}
	side := &benchSide{in: make([]atomic.Int64, n), idx: map[psync.UserID]int{}}
	e, err := psync.NewEngine(psync.EngineConfig{Profiles: benchProfiles(), Users: users, Teams: side, Phone: benchPhone{side}, Journal: newMemJournal()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	for i, u := range users {
		_ = e.PostPhone(ctx, psync.PhoneEvent{Kind: psync.PhoneSnapshot, User: u.ID, Version: 1, State: psync.PhoneState{Presence: psync.PhoneAvailable, Devices: []psync.Device{{ID: "desk"}, {ID: "softphone"}}}})
		_ = e.PostTeams(ctx, psync.TeamsEvent{Kind: psync.TeamsPresenceChanged, User: u.ID, Presence: psync.TeamsPresence{Availability: "Available", Activity: "Available", Sequence: fmt.Sprintf("%016x", i+1)}})
	}
	if err := e.Settle(ctx); err != nil {
		b.Fatal(err)
	}
	return e
}
