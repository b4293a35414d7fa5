package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

// offlineAdmin is the admin rules over a database no bridge runs on, as
// the CLI uses them when the service is not running.
func offlineAdmin(t *testing.T) (*service.Admin, *store.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	seedDB(t, path, simoffice.Users(4)) // 201 default, 202 protected, 203 default, 204 meetings
	db := openStore(t, path)
	a, err := service.NewAdmin(service.AdminConfig{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	return a, db
}

func wantErr(t *testing.T, what string, err, kind error, msg ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: %v, want a %v error", what, err, kind)
		return
	}
	for _, m := range msg {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s: %q does not say %q", what, err, m)
		}
	}
}

// The typo of the issue: a flag of a profile that does not exist used to
// create the profile silently; now it is refused with the list of profiles
// and the command that creates one.
func TestAdmin_FlagOfUnknownProfileIsRefused(t *testing.T) {
	a, db := offlineAdmin(t)
	ctx := context.Background()
	err := a.Set(ctx, "profile.defualt.set_presence_in_teams", "false")
	wantErr(t, "set on a typo", err, service.ErrNotFound, `no profile "defualt"`, "profiles: default, meetings, protected", "presencebridge profiles add defualt")
	if _, err := db.Profile("defualt"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the typo created a profile: %v", err)
	}
	_, err = a.Get(ctx, "profile.defualt.set_presence_in_teams")
	wantErr(t, "get on a typo", err, service.ErrNotFound, "presencebridge profiles add defualt")

	if err := a.Set(ctx, "profile.meetings.set_presence_in_teams", "off"); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Get(ctx, "profile.meetings.set_presence_in_teams"); err != nil || v != "false" {
		t.Fatalf("get: %q %v", v, err)
	}
	if err := a.Unset(ctx, "profile.meetings.set_presence_in_teams"); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Get(ctx, "profile.meetings.set_presence_in_teams"); v != "true" {
		t.Fatalf("unset did not restore the new-profile default: %q", v)
	}
	wantErr(t, "unknown flag", a.Set(ctx, "profile.meetings.make_coffee", "on"), service.ErrNotFound, "unknown profile setting", "cross_device_busy_on_busy")
	wantErr(t, "not on/off", a.Set(ctx, "profile.meetings.set_presence_in_teams", "perhaps"), service.ErrInvalid, "not on or off")
}

func TestAdmin_ProfilesAddRenameDelete(t *testing.T) {
	a, db := offlineAdmin(t)
	ctx := context.Background()
	if err := a.AddProfile(ctx, psync.NewProfile("sales")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "add twice", a.AddProfile(ctx, psync.NewProfile("sales")), service.ErrConflict, "already exists")
	wantErr(t, "bad name", a.AddProfile(ctx, psync.NewProfile("sa\x1bles")), service.ErrInvalid)
	wantErr(t, "rename onto existing", a.RenameProfile(ctx, "sales", "meetings"), service.ErrConflict)
	wantErr(t, "rename unknown", a.RenameProfile(ctx, "ghost", "x"), service.ErrNotFound, "profiles add ghost")
	if err := a.RenameProfile(ctx, "protected", "guarded"); err != nil {
		t.Fatal(err)
	}
	if u, _ := db.User("202"); u.Profile != "guarded" {
		t.Fatalf("202 did not move with the rename: %q", u.Profile)
	}
	wantErr(t, "delete in use", a.DeleteProfile(ctx, "guarded"), service.ErrConflict, "202", "config set user.ID.profile")
	wantErr(t, "delete default", a.DeleteProfile(ctx, "default"), service.ErrConflict, "default_profile")
	wantErr(t, "delete unknown", a.DeleteProfile(ctx, "ghost"), service.ErrNotFound)
	if err := a.DeleteProfile(ctx, "sales"); err != nil {
		t.Fatal(err)
	}
	// Renaming the default profile carries default_profile along; users
	// that name no profile stay on it.
	if err := a.RenameProfile(ctx, "default", "standard"); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Get(ctx, "default_profile"); v != "standard" {
		t.Fatalf("default_profile %q", v)
	}
	wantErr(t, "default_profile to nothing", a.Set(ctx, "default_profile", "ghost"), service.ErrInvalid, `profile "ghost" does not exist`, "profiles add ghost")
}

func TestAdmin_Users(t *testing.T) {
	a, db := offlineAdmin(t)
	ctx := context.Background()
	dora := psync.User{ID: "sip:dora@contoso.example", DisplayName: "Dora", UPN: "dora@contoso.example", Profile: "meetings"}
	if err := a.AddUser(ctx, dora); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "add twice", a.AddUser(ctx, dora), service.ErrConflict, "already exists", "users set")
	bad := dora
	bad.ID = "205"
	bad.DisplayName = "Dora\x1b[2J"
	wantErr(t, "escape in a name", a.AddUser(ctx, bad), service.ErrInvalid, "control character")
	bad.DisplayName, bad.Profile = "Dora", "ghost"
	wantErr(t, "unknown profile", a.AddUser(ctx, bad), service.ErrNotFound, `no profile "ghost"`)
	if _, err := db.User("205"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a refused user was stored")
	}

	// user.ID.FIELD keys, with an id holding dots.
	if err := a.Set(ctx, "user.sip:dora@contoso.example.name", "Dora B."); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Get(ctx, "user.sip:dora@contoso.example.name"); err != nil || v != "Dora B." {
		t.Fatalf("get name: %q %v", v, err)
	}
	wantErr(t, "line break in a name", a.Set(ctx, "user.201.name", "An\nna"), service.ErrInvalid, "control character")
	wantErr(t, "unknown field", a.Set(ctx, "user.201.mail", "x"), service.ErrNotFound, "unknown user field", "upn")
	wantErr(t, "unknown user", a.Set(ctx, "user.999.name", "x"), service.ErrNotFound, `no user "999"`)
	if err := a.AssignProfile(ctx, "201", "meetings"); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.ConfiguredUser(ctx, "201"); u.Profile != "meetings" {
		t.Fatalf("assign: %+v", u)
	}

	// Without a running bridge, a user the journal holds something for
	// cannot go: only the bridge can give it back.
	if err := db.PutHold(psync.Hold{User: "202", Kind: psync.HoldTeamsSession, Set: "InACall"}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "remove held", a.RemoveUser(ctx, "202"), service.ErrHoldsKept, "202/teams-session", "start it")
	if _, err := db.User("202"); err != nil {
		t.Fatal("the held user was removed")
	}
	if err := a.RemoveUser(ctx, "203"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "remove twice", a.RemoveUser(ctx, "203"), service.ErrNotFound)
	_, err := a.Import(ctx, strings.NewReader("users:\n  - id: \"201\"\n"), store.ImportOptions{DryRun: true})
	wantErr(t, "import dropping a held user", err, service.ErrHoldsKept, "202")
}

func TestAdmin_SettingsValidatedWhereEntered(t *testing.T) {
	a, _ := offlineAdmin(t)
	ctx := context.Background()
	for _, c := range []struct{ key, value, msg string }{
		{"teams.client_id", "not-a-guid", "not a GUID"},
		{"teams.tenant_id", "contoso", "neither a GUID nor a domain"},
		{"teams.webhook_url", "http://bridge.contoso.example", "https"},
		{"ucserver.user", "bridge\x1b", "control character"},
		{"teams.client_secret", psync.Mask, "the mask"},
		{"teams.keepalive", "20m", "must be shorter"},
	} {
		wantErr(t, c.key, a.Set(ctx, c.key, c.value), service.ErrInvalid, c.msg)
	}
	wantErr(t, "unknown", a.Set(ctx, "teams.leese", "10m"), service.ErrNotFound, "unknown setting")
	if err := a.Set(ctx, "teams.client_id", "11111111-2222-4333-8444-555555555555"); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ctx, "teams.tenant_id", "contoso.onmicrosoft.com"); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ctx, "teams.client_secret", "hunter2"); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Get(ctx, "teams.client_secret"); v != psync.Mask {
		t.Fatalf("secret shown: %q", v)
	}
}

func TestAdmin_ImportReportsAndRefusesMaskedSecrets(t *testing.T) {
	a, db := offlineAdmin(t)
	ctx := context.Background()
	doc := "settings:\n  teams.client_secret: '********'\n  teams.lease: 15m\n"
	_, err := a.Import(ctx, strings.NewReader(doc), store.ImportOptions{})
	wantErr(t, "masked secret, none stored", err, service.ErrInvalid, "teams.client_secret is masked")
	if err := a.Set(ctx, "teams.client_secret", "kept"); err != nil {
		t.Fatal(err)
	}
	ch, err := a.Import(ctx, strings.NewReader(doc), store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Settings) != 1 || ch.Settings[0].Name != "teams.lease" || ch.Settings[0].Op != store.OpAdded {
		t.Fatalf("changes %+v", ch)
	}
	if s, _ := db.Settings(); s["teams.client_secret"] != "kept" {
		t.Fatal("the masked secret lost its value")
	}
	_, err = a.Import(ctx, strings.NewReader("settingz: {}\n"), store.ImportOptions{})
	wantErr(t, "unknown section", err, service.ErrInvalid, "settingz")
}
