package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

func changeNames(cs []store.Change) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Op+" "+c.Name)
	}
	return strings.Join(s, ", ")
}

// Replace is the default: each section the file has replaces the stored
// one; sections it leaves out stay; merge removes nothing; a dry run
// reports and writes nothing.
func TestDB_ImportReplaceMergeDryRun(t *testing.T) {
	db := openTemp(t, store.Options{})
	fillConfig(t, db) // users 100 (quiet) and 0042, profiles default and quiet

	doc := `users:
  - id: "0042"
    name: Forty-Two
  - id: "300"
    upn: cara@example.com
`
	before := export(t, db, true)
	ch, err := db.ImportYAML(strings.NewReader(doc), store.ImportOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := changeNames(ch.Users); got != "changed 0042, removed 100, added 300" {
		t.Errorf("dry run users: %s", got)
	}
	if len(ch.Settings) != 0 || len(ch.Profiles) != 0 {
		t.Errorf("sections not in the file changed: %+v", ch)
	}
	if ch.Users[0].Detail != `name "" -> "Forty-Two"` {
		t.Errorf("detail %q", ch.Users[0].Detail)
	}
	if export(t, db, true) != before {
		t.Fatal("the dry run wrote")
	}

	// Merge: 100 stays.
	ch, err = db.ImportYAML(strings.NewReader(doc), store.ImportOptions{Merge: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := changeNames(ch.Users); got != "changed 0042, added 300" {
		t.Errorf("merge users: %s", got)
	}
	if users, _ := db.Users(); len(users) != 3 {
		t.Fatalf("after merge: %v", users)
	}
	// Replace: 100 goes, its last-known state with it.
	ch, err = db.ImportYAML(strings.NewReader(doc), store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := changeNames(ch.Users); got != "removed 100" {
		t.Errorf("replace users: %s", got)
	}
	users, _ := db.Users()
	if len(users) != 2 || users[0].ID != "0042" || users[1].ID != "300" {
		t.Fatalf("after replace: %v", users)
	}
	if s, _ := db.Settings(); s["teams.lease"] != "20m0s" {
		t.Fatalf("settings not in the file changed: %v", s)
	}

	// Settings: replaced as a whole, secrets never shown in the changes.
	ch, err = db.ImportYAML(strings.NewReader("settings:\n  teams.lease: 30m\n  teams.client_secret: new-secret\n  ucserver.password: '********'\n"), store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := changeNames(ch.Settings); got != "removed audit.limit, removed phone.system, changed teams.client_secret, changed teams.lease, removed teams.tenant_id" {
		t.Errorf("settings changes: %s", got)
	}
	for _, c := range ch.Settings {
		if strings.Contains(c.Detail, "secret") && c.Name != "teams.client_secret" || strings.Contains(c.Detail, "new-secret") || strings.Contains(c.Detail, "s3cret") {
			t.Errorf("change shows a secret: %+v", c)
		}
	}
	if s, _ := db.Settings(); s["ucserver.password"] != "pw" || s["teams.client_secret"] != "new-secret" || s["phone.system"] != "" || len(s) != 3 {
		t.Fatalf("settings after replace: %d keys", len(s))
	}

	// Profiles: the default must stay, a profile in use too.
	_, err = db.ImportYAML(strings.NewReader("profiles:\n  - name: other\n"), store.ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), `default_profile: profile "default" does not exist after the import (profiles: other)`) {
		t.Fatalf("replacing away the default profile: %v", err)
	}
	ch, err = db.ImportYAML(strings.NewReader("profiles:\n  - name: default\n    set_presence_in_teams: false\n  - name: other\n"), store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := changeNames(ch.Profiles); got != "changed default, added other, removed quiet" {
		t.Errorf("profile changes: %s", got)
	}
	if ch.Profiles[0].Detail != "set_presence_in_teams true -> false" {
		t.Errorf("profile detail %q", ch.Profiles[0].Detail)
	}
}

func TestDB_RenameProfile(t *testing.T) {
	db := openTemp(t, store.Options{})
	fillConfig(t, db)
	if err := db.RenameProfile("quiet", "silent"); err != nil {
		t.Fatal(err)
	}
	if u, err := db.User("100"); err != nil || u.Profile != "silent" {
		t.Fatalf("user 100: %+v %v", u, err)
	}
	if p, err := db.Profile("silent"); err != nil || !p.CrossDeviceBusyOnBusy || p.Name != "silent" {
		t.Fatalf("renamed profile: %+v %v", p, err)
	}
	if _, err := db.Profile("quiet"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old name: %v", err)
	}
	// The default profile: default_profile follows.
	if err := db.RenameProfile("default", "standard"); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Settings(); s["default_profile"] != "standard" {
		t.Fatalf("default_profile: %q", s["default_profile"])
	}
	if err := db.RenameProfile("standard", "silent"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("onto an existing name: %v", err)
	}
	if err := db.RenameProfile("ghost", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if err := db.RenameProfile("silent", "a.b"); err == nil {
		t.Fatal("bad name accepted")
	}
	if _, err := db.User("nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestDB_UpdateSettingsChecksTheResult(t *testing.T) {
	db := openTemp(t, store.Options{})
	// One at a time, a longer keep-alive is refused before the lease grows.
	if err := db.SetSetting("teams.keepalive", "30m"); err == nil {
		t.Fatal("keep-alive longer than the lease accepted")
	}
	if err := db.UpdateSettings(map[string]string{"teams.keepalive": "30m", "teams.lease": "1h"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateSettings(nil, []string{"teams.lease"}); err == nil || !strings.Contains(err.Error(), "must be shorter") {
		t.Fatalf("unsetting the lease under a long keep-alive: %v", err)
	}
	if err := db.UpdateSettings(map[string]string{"teams.client_secret": psync.Mask}, nil); err == nil {
		t.Fatal("the mask stored as a secret")
	}
	if s, _ := db.Settings(); s["teams.lease"] != "1h0m0s" || s["teams.keepalive"] != "30m0s" {
		t.Fatalf("settings %v", s)
	}
}

func TestDB_ClaimForDemo(t *testing.T) {
	db := openTemp(t, store.Options{})
	if err := db.ClaimForDemo(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.IsDemo(); !ok {
		t.Fatal("not marked")
	}
	// The demo's own settings and users do not stop it next time.
	if err := db.SetSetting("teams.tenant_id", "contoso.onmicrosoft.com"); err != nil {
		t.Fatal(err)
	}
	if err := db.ClaimForDemo(); err != nil {
		t.Fatalf("reclaiming the demo's database: %v", err)
	}

	for _, fill := range []func(*store.DB) error{
		func(db *store.DB) error {
			return db.SetSetting("teams.client_id", "11111111-2222-4333-8444-555555555555")
		},
		func(db *store.DB) error { return db.PutUser(psync.User{ID: "201"}) },
		func(db *store.DB) error { return db.PutProfile(psync.NewProfile("sales")) },
		func(db *store.DB) error {
			p := psync.NewProfile(psync.DefaultProfileName)
			p.SetTeamsPresence = false
			return db.PutProfile(p)
		},
	} {
		real := openTemp(t, store.Options{})
		if err := fill(real); err != nil {
			t.Fatal(err)
		}
		err := real.ClaimForDemo()
		if !errors.Is(err, store.ErrNotDemo) || !strings.Contains(err.Error(), real.Path()) {
			t.Fatalf("a real configuration claimed: %v", err)
		}
		if ok, _ := real.IsDemo(); ok {
			t.Fatal("marked although refused")
		}
	}
}
