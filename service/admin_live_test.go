package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// Users and profiles added, renamed and removed through the socket reach
// the running engine at once; a removed user's holds are given back first.
func TestClient_UsersAndProfilesLive(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	c := service.NewClient(b.socket)
	defer c.Close()
	ctx := context.Background() // each call has the client's own timeout

	dora := psync.User{ID: "205", DisplayName: "Dora", UPN: "dora@contoso.example", Profile: "meetings"}
	if err := c.AddUser(ctx, dora); err != nil {
		t.Fatal(err)
	}
	if u, err := c.User(ctx, "205"); err != nil || u.User.DisplayName != "Dora" || u.Profile != "meetings" {
		t.Fatalf("the engine does not run Dora: %+v %v", u, err)
	}
	dora.DisplayName = "Dora B."
	if err := c.UpdateUser(ctx, dora); err != nil {
		t.Fatal(err)
	}
	if u, _ := c.User(ctx, "205"); u.User.DisplayName != "Dora B." {
		t.Fatalf("rename did not reach the engine: %q", u.User.DisplayName)
	}

	if err := c.RenameProfile(ctx, "protected", "guarded"); err != nil {
		t.Fatal(err)
	}
	if u, _ := c.User(ctx, "202"); u.Profile != "guarded" {
		t.Fatalf("202 on %q after the rename", u.Profile)
	}
	if err := c.AddProfile(ctx, psync.NewProfile("spare")); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteProfile(ctx, "spare"); err != nil {
		t.Fatal(err)
	}

	// 201 on a call: the bridge holds a Teams session for them. Removing
	// 201 clears it first.
	b.office.Phone.Call("201", "desk", "c1", psync.CallConnected)
	waitFor(t, "the session of 201", func() bool { act, _ := b.office.Teams.BridgeSession("201"); return act != "" })
	if err := c.RemoveUser(ctx, "201"); err != nil {
		t.Fatal(err)
	}
	if act, _ := b.office.Teams.BridgeSession("201"); act != "" {
		t.Fatalf("201 removed with the Teams session %q still set", act)
	}
	if _, err := c.User(ctx, "201"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("201 still runs: %v", err)
	}
	if _, err := c.ConfiguredUser(ctx, "201"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("201 still configured: %v", err)
	}

	// Teams down while 203 is held: the removal cannot give it back, so
	// 203 stays, and the error says so with its kind across the socket.
	b.office.Phone.Call("203", "desk", "c2", psync.CallConnected)
	waitFor(t, "the session of 203", func() bool { act, _ := b.office.Teams.BridgeSession("203"); return act != "" })
	b.office.Teams.Gate.SetDown(true)
	began := time.Now()
	err := c.RemoveUser(ctx, "203")
	b.office.Teams.Gate.SetDown(false)
	if !errors.Is(err, service.ErrHoldsKept) || !errors.Is(err, psync.ErrHoldsKept) || !strings.Contains(err.Error(), "203") {
		t.Fatalf("removal with Teams down: %v (after %s)", err, time.Since(began))
	}
	if _, err := c.ConfiguredUser(ctx, "203"); err != nil {
		t.Fatalf("203 left the configuration although held: %v", err)
	}
	if _, err := c.User(ctx, "203"); err != nil {
		t.Fatalf("203 left the engine although held: %v", err)
	}

	// A setting of the engine applies at once: the next session carries
	// the new lease.
	if err := c.Set(ctx, "teams.lease", "30m"); err != nil {
		t.Fatal(err)
	}
	b.office.Phone.Call("202", "desk", "c3", psync.CallConnected)
	var exp time.Time
	waitFor(t, "the session of 202", func() bool { var act string; act, exp = b.office.Teams.BridgeSession("202"); return act != "" })
	if left := time.Until(exp); left < 25*time.Minute {
		t.Fatalf("the session after teams.lease=30m expires in %s", left)
	}

	// An import applied step by step to the running bridge: 203's session
	// (Teams is back) is given back before 203 goes.
	ch, err := c.Import(ctx, strings.NewReader("users:\n  - id: \"202\"\n    name: Ben\n    profile: guarded\n  - id: \"206\"\n    name: Eve\n"), store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range ch.Users {
		names = append(names, x.Op+" "+x.Name)
	}
	if got := strings.Join(names, ", "); got != "changed 202, removed 203, removed 204, removed 205, added 206" {
		t.Fatalf("import changes: %s", got)
	}
	if act, _ := b.office.Teams.BridgeSession("203"); act != "" {
		t.Fatal("203 removed by the import with its session still set")
	}
	us, err := c.Users(ctx)
	if err != nil || len(us) != 2 || us[0].User.ID != "202" || us[1].User.ID != "206" || us[0].User.DisplayName != "Ben" {
		t.Fatalf("the engine after the import: %v %+v", err, us)
	}

	// With Teams down, an import that removes the held 202 stops there,
	// says how far it got, and keeps 202.
	b.office.Teams.Gate.SetDown(true)
	_, err = c.Import(ctx, strings.NewReader("users:\n  - id: \"206\"\n    name: Eve\n"), store.ImportOptions{})
	b.office.Teams.Gate.SetDown(false)
	if !errors.Is(err, service.ErrHoldsKept) || !strings.Contains(err.Error(), "import stopped at removing user 202 after 0 of 1 changes") {
		t.Fatalf("import with Teams down: %v", err)
	}
	if _, err := c.ConfiguredUser(ctx, "202"); err != nil {
		t.Fatalf("202 left the configuration: %v", err)
	}
}
