package sync_test

import (
	"context"
	"errors"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Removing a user releases what the bridge holds for them first, then the
// engine forgets them.
func TestEngine_RemoveUserReleasesFirst(t *testing.T) {
	h := newHarness(t, nil)
	h.teams.SetClient("202", "Busy", "InACall")
	h.settle()
	if h.presence("202") != psync.PhoneDND || !h.dnd("202")["desk"] {
		t.Fatal("nothing imposed on 202")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.e.RemoveUser(ctx, "202"); err != nil {
		t.Fatal(err)
	}
	if h.presence("202") != psync.PhoneNotSet || h.dnd("202")["desk"] || h.dnd("202")["softphone"] {
		t.Fatalf("not released before the removal: %s %v", h.presence("202"), h.dnd("202"))
	}
	h.settle()
	if n := h.j.count(); n != 0 {
		t.Fatalf("%d holds left", n)
	}
	if _, err := h.e.User(ctx, "202"); !errors.Is(err, psync.ErrNotFound) {
		t.Fatalf("removed user still there: %v", err)
	}
	if err := h.e.RemoveUser(ctx, "202"); !errors.Is(err, psync.ErrNotFound) {
		t.Fatalf("second removal: %v", err)
	}
	// Events for the removed user are ignored.
	h.teams.SetClient("202", "Available", "Available")
	h.settle()
}

// With the phone side down the removal cannot release: it gives up when
// its context ends, says so, and the user stays as they were.
func TestEngine_RemoveUserWithSideDown(t *testing.T) {
	h := newHarness(t, nil)
	h.teams.SetClient("202", "Busy", "InACall")
	h.settle()
	h.phone.Gate.SetDown(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := h.e.RemoveUser(ctx, "202")
	if !errors.Is(err, psync.ErrHoldsKept) {
		t.Fatalf("RemoveUser with the phone down: %v, want ErrHoldsKept", err)
	}
	h.phone.Gate.SetDown(false)
	h.clock.Advance(time.Minute)
	h.settle()
	u := h.user("202")
	if u.Phone.Presence != psync.PhoneDND || len(u.Holds) == 0 {
		t.Fatalf("the user should stay protected during the Teams call: %+v", u.Holds)
	}
}

// Users and profiles change live: a new user is kept in step once the
// sides report them; a profile rename moves its users; a profile in use
// cannot go; settings apply to the next write.
func TestEngine_AdminChangesApplyLive(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	if err := h.e.PutUser(ctx, psync.User{ID: "203", DisplayName: "Clara", Profile: "nosuch"}); !errors.Is(err, psync.ErrNotFound) {
		t.Fatalf("user on an unknown profile: %v", err)
	}
	if err := h.e.PutUser(ctx, psync.User{ID: "203", DisplayName: "Clara", Profile: "protected"}); err != nil {
		t.Fatal(err)
	}
	if u := h.user("203"); u.Profile != "protected" || u.User.DisplayName != "Clara" {
		t.Fatalf("new user %+v", u)
	}
	if err := h.e.DeleteProfile(ctx, "protected"); !errors.Is(err, psync.ErrConflict) {
		t.Fatalf("delete a profile in use: %v", err)
	}
	if err := h.e.RenameProfile(ctx, "protected", "shielded"); err != nil {
		t.Fatal(err)
	}
	if u := h.user("202"); u.Profile != "shielded" || u.User.Profile != "shielded" {
		t.Fatalf("user of the renamed profile: %+v", u)
	}
	if err := h.e.RenameProfile(ctx, "default", "x"); !errors.Is(err, psync.ErrConflict) {
		t.Fatalf("rename of the default profile: %v", err)
	}
	if err := h.e.DeleteProfile(ctx, "meetings"); err != nil {
		t.Fatal(err)
	}

	// A new Teams lease applies to the next setPresence.
	s := psync.DefaultSettings()
	s.TeamsLease, s.TeamsKeepAlive = 30*time.Minute, 2*time.Minute
	if err := h.e.SetSettings(ctx, psync.Settings{}); !errors.Is(err, psync.ErrInvalid) {
		t.Fatalf("empty settings: %v", err)
	}
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	h.settle()
	if err := h.e.SetSettings(ctx, s); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Minute) // the keep-alive, brought forward to the new interval
	h.settle()
	if _, exp := h.teams.BridgeSession("201"); !exp.Equal(h.clock.Now().Add(30 * time.Minute)) {
		t.Fatalf("session expires %s, want now + the new lease (%s)", exp, h.clock.Now().Add(30*time.Minute))
	}
}
