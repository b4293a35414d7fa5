package store_test

import (
	"bytes"
	"errors"
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
		{ID: "100", Extension: "100", TeamsID: "9f3c0000-0000-4000-8000-000000000100", UPN: "ann@example.com", DisplayName: "Ann", Profile: "quiet"},
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

	// Into a fresh database, masked secrets have nothing to keep: the
	// import fails, names them and changes nothing.
	dst := openTemp(t, store.Options{})
	empty := export(t, dst, true)
	_, err := dst.ImportYAML(strings.NewReader(masked), store.ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "teams.client_secret, ucserver.password are masked") || !strings.Contains(err.Error(), "config set KEY -") {
		t.Fatalf("masked secrets into an empty database: %v", err)
	}
	if export(t, dst, true) != empty {
		t.Fatal("the refused import changed the database")
	}
	// Once the secrets are there, the masked file imports.
	for k, v := range map[string]string{"teams.client_secret": "other", "ucserver.password": "pw2"} {
		if err := dst.SetSetting(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dst.ImportYAML(strings.NewReader(masked), store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	wantSettings, _ := src.Settings()
	wantSettings["teams.client_secret"], wantSettings["ucserver.password"] = "other", "pw2"
	equalConfig(t, src, dst, wantSettings)

	// Back into the source: the masked secrets keep their stored values,
	// and nothing changes.
	ch, err := src.ImportYAML(strings.NewReader(masked), store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Empty() {
		t.Errorf("re-importing the export changed %+v", ch)
	}
	if s, _ := src.Settings(); s["teams.client_secret"] != "s3cret" || s["ucserver.password"] != "pw" {
		t.Errorf("re-import lost the secrets: %v", s)
	}
	// With secrets shown, a round trip is exact.
	dst2 := openTemp(t, store.Options{})
	if _, err := dst2.ImportYAML(strings.NewReader(export(t, src, true)), store.ImportOptions{}); err != nil {
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
	u.TeamsID = "00000000-0000-4000-8000-000000000001"
	if err := src.PutUser(u); err != nil {
		t.Fatal(err)
	}
	dst := openTemp(t, store.Options{})
	if _, err := dst.ImportYAML(strings.NewReader(export(t, src, true)), store.ImportOptions{}); err != nil {
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
		{"control character in a name", "users:\n  - id: \"1\"\n    name: \"Ann\\e[2J\"\n", []string{"user name", "control character"}},
		{"teams id not a GUID", "users:\n  - id: \"1\"\n    teams_id: 9f3c\n", []string{"teams_id", "GUID"}},
		{"client id not a GUID", "settings:\n  teams.client_id: not-a-guid\n", []string{"teams.client_id", "not a GUID"}},
		{"http webhook", "settings:\n  teams.webhook_url: http://bridge.example\n", []string{"https"}},
		{"replace drops a profile in use", "profiles:\n  - name: default\n", []string{"user 100", `"quiet" does not exist after the import`}},
		{"duplicate key", "settings:\n  teams.lease: 10m\n  teams.lease: 20m\n", []string{"already defined"}},
		{"not yaml", "settings: [\n", []string{"yaml"}},
		{"a list", "- a\n- b\n", []string{"cannot unmarshal"}},
		{"two documents", "settings: {}\n---\nsettings: {}\n", []string{"more than one"}},
		// The valid parts of a bad file must not be applied either.
		{"good then bad", "settings:\n  teams.lease: 30m\nprofiles:\n  - name: default\n  - name: fine\nusers:\n  - id: \"9\"\n    profile: ghost\n", []string{"ghost"}},
	}
	db := openTemp(t, store.Options{})
	fillConfig(t, db)
	before := export(t, db, true)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.ImportYAML(strings.NewReader(tc.doc), store.ImportOptions{})
			if err == nil {
				t.Fatal("import succeeded")
			}
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("error %q is not store.ErrInvalid", err)
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
	if ch, err := db.ImportYAML(strings.NewReader(""), store.ImportOptions{}); err != nil || !ch.Empty() {
		t.Error(ch, err)
	}
	if _, err := db.ImportYAML(strings.NewReader("profiles:\n  - name: partial\n    cross_device_busy_on_busy: true\n"), store.ImportOptions{Merge: true}); err != nil {
		t.Fatal(err)
	}
	want := psync.NewProfile("partial")
	want.CrossDeviceBusyOnBusy = true
	if p, err := db.Profile("partial"); err != nil || p != want {
		t.Errorf("partial profile %+v, %v; want %+v", p, err, want)
	}
}
