package store_test

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

func export(t *testing.T, db *store.DB, secrets bool) string {
	t.Helper()
	var buf bytes.Buffer
	if err := db.ExportYAML(&buf, secrets); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// fillConfig sets a setting of each kind, profiles and users.
func fillConfig(t *testing.T, db *store.DB) {
	t.Helper()
	for k, v := range map[string]string{
		"teams.lease": "20m", "teams.client_secret": "s3cret", "ucserver.password": "pw",
		"teams.tenant_id": "contoso.onmicrosoft.com", "audit.limit": "20000", "phone.system": "ucserver",
	} {
		if err := db.SetSetting(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutProfile(psync.Profile{Name: "quiet", CrossDeviceBusyOnBusy: true}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []psync.User{
		{ID: "100", Extension: "100", TeamsID: "9f3c", UPN: "ann@example.com", DisplayName: "Ann", Profile: "quiet"},
		{ID: "0042"},
	} {
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDB_ExportImportYAML(t *testing.T) {
	src := openTemp(t, store.Options{})
	fillConfig(t, src)
	masked := export(t, src, false)
	t.Logf("export:\n%s", masked)
	for _, want := range []string{"teams.client_secret: '" + psync.Mask + "'", "set_presence_in_teams: true", `id: "0042"`, "audit.limit: \"20000\""} {
		if !strings.Contains(masked, want) {
			t.Errorf("export lacks %q", want)
		}
	}
	for _, secret := range []string{"s3cret", "pw\n"} {
		if strings.Contains(masked, secret) {
			t.Errorf("masked export shows the secret %q", secret)
		}
	}
	if clear := export(t, src, true); !strings.Contains(clear, "teams.client_secret: s3cret") {
		t.Errorf("export with secrets lacks them:\n%s", clear)
	}

	// Into a fresh database: everything but the masked secrets arrives.
	dst := openTemp(t, store.Options{})
	if err := dst.ImportYAML(strings.NewReader(masked)); err != nil {
		t.Fatal(err)
	}
	wantSettings, _ := src.Settings()
	delete(wantSettings, "teams.client_secret")
	delete(wantSettings, "ucserver.password")
	equalConfig(t, src, dst, wantSettings)

	// Back into the source: the masked secrets keep their stored values.
	if err := src.ImportYAML(strings.NewReader(masked)); err != nil {
		t.Fatal(err)
	}
	if s, _ := src.Settings(); s["teams.client_secret"] != "s3cret" || s["ucserver.password"] != "pw" {
		t.Errorf("re-import lost the secrets: %v", s)
	}
	// With secrets shown, a round trip is exact.
	dst2 := openTemp(t, store.Options{})
	if err := dst2.ImportYAML(strings.NewReader(export(t, src, true))); err != nil {
		t.Fatal(err)
	}
	all, _ := src.Settings()
	equalConfig(t, src, dst2, all)
	if export(t, dst2, true) != export(t, src, true) {
		t.Error("export → import → export is not stable")
	}
}

func equalConfig(t *testing.T, a, b *store.DB, wantSettings map[string]string) {
	t.Helper()
	if s, _ := b.Settings(); !reflect.DeepEqual(s, wantSettings) {
		t.Errorf("settings %v, want %v", s, wantSettings)
	}
	pa, _ := a.Profiles()
	pb, _ := b.Profiles()
	if !reflect.DeepEqual(pa, pb) {
		t.Errorf("profiles %+v, want %+v", pb, pa)
	}
	ua, _ := a.Users()
	ub, _ := b.Users()
	if !reflect.DeepEqual(ua, ub) {
		t.Errorf("users %+v, want %+v", ub, ua)
	}
}

// TestDB_YAMLCarriesEveryField guards against psync growing a field that the
// YAML form would silently drop.
func TestDB_YAMLCarriesEveryField(t *testing.T) {
	src := openTemp(t, store.Options{})
	nb := reflect.TypeFor[psync.Profile]().NumField() - 1 // all but Name
	for i := range nb {
		var p psync.Profile
		p.Name = fmt.Sprintf("only-%d", i)
		reflect.ValueOf(&p).Elem().Field(i + 1).SetBool(true)
		if err := src.PutProfile(p); err != nil {
			t.Fatal(err)
		}
	}
	var u psync.User
	uv := reflect.ValueOf(&u).Elem()
	for i := range uv.NumField() {
		uv.Field(i).SetString(fmt.Sprintf("v%d@x", i))
	}
	u.Profile = "only-0"
	if err := src.PutUser(u); err != nil {
		t.Fatal(err)
	}
	dst := openTemp(t, store.Options{})
	if err := dst.ImportYAML(strings.NewReader(export(t, src, true))); err != nil {
		t.Fatal(err)
	}
	equalConfig(t, src, dst, map[string]string{})
}

func TestDB_ImportYAML_RefusesBadInput(t *testing.T) {
	cases := []struct {
		name, doc string
		say       []string
	}{
		{"unknown top-level field", "settings: {}\nprofile: []\n", []string{"line 2", "profile"}},
		{"unknown user field", "users:\n  - id: \"1\"\n    mail: a@b\n", []string{"line 3", "mail"}},
		{"unknown profile field", "profiles:\n  - name: p\n    set_presence: true\n", []string{"line 3", "set_presence"}},
		{"profile flag not a bool", "profiles:\n  - name: p\n    apply_teams_to_phone: sometimes\n", []string{"line 3", "true or false"}},
		{"profile field twice", "profiles:\n  - name: p\n    name: q\n", []string{"twice"}},
		{"profile twice", "profiles:\n  - name: p\n  - name: p\n", []string{`"p" is given twice`}},
		{"bad profile name", "profiles:\n  - name: a.b\n", []string{"a.b"}},
		{"profile without name", "profiles:\n  - apply_teams_to_phone: true\n", []string{"profile name is empty"}},
		{"profile not a mapping", "profiles:\n  - p\n", []string{"mapping"}},
		{"unknown setting", "settings:\n  teams.leese: 10m\n", []string{"teams.leese"}},
		{"bad setting value", "settings:\n  teams.lease: soon\n", []string{"teams.lease", "not a duration"}},
		{"setting not a scalar", "settings:\n  teams.lease: [1]\n", []string{"line 2"}},
		{"cross-key rule", "settings:\n  teams.keepalive: 1h\n", []string{"teams.keepalive", "shorter"}},
		{"default profile missing", "settings:\n  default_profile: ghost\n", []string{"default_profile", "ghost"}},
		{"user on a missing profile", "users:\n  - id: \"1\"\n    profile: ghost\n", []string{"user 1", "ghost"}},
		{"user without id", "users:\n  - name: Ann\n", []string{"id is empty"}},
		{"user twice", "users:\n  - id: \"1\"\n  - id: \"1\"\n", []string{"twice"}},
		{"duplicate key", "settings:\n  teams.lease: 10m\n  teams.lease: 20m\n", []string{"already defined"}},
		{"not yaml", "settings: [\n", []string{"yaml"}},
		{"a list", "- a\n- b\n", []string{"cannot unmarshal"}},
		{"two documents", "settings: {}\n---\nsettings: {}\n", []string{"more than one"}},
		// The valid parts of a bad file must not be applied either.
		{"good then bad", "settings:\n  teams.lease: 30m\nprofiles:\n  - name: fine\nusers:\n  - id: \"9\"\n    profile: ghost\n", []string{"ghost"}},
	}
	db := openTemp(t, store.Options{})
	fillConfig(t, db)
	before := export(t, db, true)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := db.ImportYAML(strings.NewReader(tc.doc))
			if err == nil {
				t.Fatal("import succeeded")
			}
			for _, s := range tc.say {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if after := export(t, db, true); after != before {
				t.Errorf("a refused import changed the store:\n%s", after)
			}
		})
	}

	// An empty file and a partial profile are fine; missing flags take
	// psync's defaults.
	if err := db.ImportYAML(strings.NewReader("")); err != nil {
		t.Error(err)
	}
	if err := db.ImportYAML(strings.NewReader("profiles:\n  - name: partial\n    cross_device_busy_on_busy: true\n")); err != nil {
		t.Fatal(err)
	}
	want := psync.NewProfile("partial")
	want.CrossDeviceBusyOnBusy = true
	if p, err := db.Profile("partial"); err != nil || p != want {
		t.Errorf("partial profile %+v, %v; want %+v", p, err, want)
	}
}
