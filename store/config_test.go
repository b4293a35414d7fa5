package store_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

func TestDB_Settings(t *testing.T) {
	db := openTemp(t, store.Options{})
	if s, err := db.Settings(); err != nil || len(s) != 0 {
		t.Fatalf("settings of a new database: %v, %v", s, err)
	}
	ok := []struct{ key, value, canon string }{
		{"teams.lease", " 1h ", "1h0m0s"},
		{"teams.keepalive", "90s", "1m30s"},
		{"teams.graph_url", "https://graph.microsoft.us/v1.0/", "https://graph.microsoft.us/v1.0"},
		{"teams.client_secret", "s3cret", "s3cret"},
		{"phone.system", "UCServer", "ucserver"},
		{"audit.limit", "5000", "5000"},
	}
	for _, c := range ok {
		if err := db.SetSetting(c.key, c.value); err != nil {
			t.Fatalf("SetSetting(%s, %q): %v", c.key, c.value, err)
		}
	}
	want := map[string]string{}
	for _, c := range ok {
		want[c.key] = c.canon
	}
	got, err := db.Settings()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Settings() = %v, %v; want %v", got, err, want)
	}

	bad := []struct{ key, value, say string }{
		{"no.such", "1", "unknown setting"},
		{"teams.lease", "forever", "not a duration"},
		{"teams.lease", "1m", "out of range"},
		{"teams.lease", "1m30s", "out of range"},
		{"teams.keepalive", "2h", "shorter than teams.lease"}, // 2h >= lease 1h
		{"retry.min", "50s", ""},                              // fine alone ...
		{"retry.max", "10s", "must not exceed"},               // ... but not with this
		{"teams.client_secret", psync.Mask, "mask"},
		{"teams.tenant_id", "a\nb", "line break"},
		{"default_profile", "missing", `profile "missing" does not exist`},
		{"default_profile", "has space", "only letters"},
		{"audit.limit", "ten", "whole number"},
	}
	for _, c := range bad {
		before, _ := db.Settings()
		err := db.SetSetting(c.key, c.value)
		if c.say == "" {
			if err != nil {
				t.Fatalf("SetSetting(%s, %q): %v", c.key, c.value, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.say) {
			t.Errorf("SetSetting(%s, %q) = %v, want an error saying %q", c.key, c.value, err, c.say)
		}
		if after, _ := db.Settings(); !reflect.DeepEqual(before, after) {
			t.Errorf("refused SetSetting(%s) changed the settings", c.key)
		}
	}

	// Unsetting brings back the default, unless that breaks a rule.
	if err := db.SetSetting("teams.keepalive", "20m"); err != nil {
		t.Fatal(err)
	}
	if err := db.UnsetSetting("teams.lease"); err == nil || !strings.Contains(err.Error(), "teams.keepalive") {
		t.Errorf("unsetting teams.lease below keepalive 20m: %v", err)
	}
	for _, k := range []string{"teams.keepalive", "teams.lease", "teams.lease"} {
		if err := db.UnsetSetting(k); err != nil {
			t.Errorf("UnsetSetting(%s): %v", k, err)
		}
	}
	if err := db.UnsetSetting("no.such"); err == nil {
		t.Error("unsetting an unknown key succeeded")
	}
	got, _ = db.Settings()
	if _, set := got["teams.lease"]; set {
		t.Error("teams.lease still set")
	}
	if _, err := psync.ParseSettings(got); err != nil {
		t.Errorf("stored settings do not parse: %v", err)
	}

	// default_profile may name a profile that exists, and then protects it.
	if err := db.PutProfile(psync.NewProfile("office")); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSetting("default_profile", "office"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteProfile("office"); err == nil || !strings.Contains(err.Error(), "default profile") {
		t.Errorf("deleting the configured default profile: %v", err)
	}
	if err := db.DeleteProfile(psync.DefaultProfileName); err != nil {
		t.Errorf("deleting %q once it is no longer the default: %v", psync.DefaultProfileName, err)
	}
	if err := db.UnsetSetting("default_profile"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("unsetting default_profile whose default profile is gone: %v", err)
	}
}

func TestDB_Profiles(t *testing.T) {
	db := openTemp(t, store.Options{})
	quiet := psync.Profile{Name: "quiet", CrossDeviceBusyOnBusy: true, CalendarMeetingsAsCalls: true}
	for _, p := range []psync.Profile{quiet, psync.NewProfile("Alpha_1"), psync.NewProfile("zeta-2")} {
		if err := db.PutProfile(p); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := db.Profiles()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if want := []string{"Alpha_1", "default", "quiet", "zeta-2"}; !reflect.DeepEqual(names, want) {
		t.Errorf("profile names %v, want %v", names, want)
	}
	if p, err := db.Profile("quiet"); err != nil || p != quiet {
		t.Errorf("Profile(quiet) = %+v, %v", p, err)
	}
	if _, err := db.Profile("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Profile(nope): %v", err)
	}
	for _, name := range []string{"", "a b", "a.b", strings.Repeat("x", 65)} {
		if err := db.PutProfile(psync.Profile{Name: name}); err == nil {
			t.Errorf("PutProfile(%q) succeeded", name)
		}
	}
	for _, u := range []psync.User{{ID: "1", Profile: "quiet"}, {ID: "2", Profile: "quiet"}, {ID: "3"}} {
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	err = db.DeleteProfile("quiet")
	if err == nil || !strings.Contains(err.Error(), "1, 2") {
		t.Errorf("deleting a profile in use: %v, want the users named", err)
	}
	if err := db.DeleteProfile("default"); err == nil || !strings.Contains(err.Error(), "default profile") {
		t.Errorf("deleting the default profile: %v", err)
	}
	if err := db.DeleteProfile("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting a missing profile: %v", err)
	}
	if err := db.DeleteProfile("zeta-2"); err != nil {
		t.Error(err)
	}
	if ps, _ := db.Profiles(); len(ps) != 3 {
		t.Errorf("%d profiles left, want 3", len(ps))
	}
}

func TestDB_Users(t *testing.T) {
	db := openTemp(t, store.Options{})
	users := []psync.User{
		{ID: "200", Extension: "200", TeamsID: "b1e4", UPN: "bob@example.com", DisplayName: "Bob", Profile: "default"},
		{ID: "100", DisplayName: "Ann"},
	}
	for _, u := range users {
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Users()
	if err != nil || !reflect.DeepEqual(got, []psync.User{users[1], users[0]}) {
		t.Errorf("Users() = %+v, %v", got, err)
	}
	bad := []struct {
		u   psync.User
		say string
	}{
		{psync.User{}, "id is empty"},
		{psync.User{ID: " "}, "id is empty"},
		{psync.User{ID: "1", UPN: "nope"}, "e-mail"},
		{psync.User{ID: "1", Profile: "ghost"}, `profile "ghost" does not exist`},
	}
	for _, b := range bad {
		if err := db.PutUser(b.u); err == nil || !strings.Contains(err.Error(), b.say) {
			t.Errorf("PutUser(%+v) = %v, want %q", b.u, err, b.say)
		}
	}
	if err := db.DeleteUser("100"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUser("100"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting a missing user: %v", err)
	}
	if got, _ := db.Users(); len(got) != 1 || got[0].ID != "200" {
		t.Errorf("after delete: %+v", got)
	}
}

func TestDB_Subscriptions(t *testing.T) {
	db := openTemp(t, store.Options{})
	subs := []store.Subscription{
		{ID: "b-sub", Resource: "/communications/presences?$filter=id in ('x')", Account: "tenant", ClientState: "cs",
			UserIDs: []string{"100", "200"}, Expires: t0.Add(time.Hour), Created: t0},
		{ID: "a-sub", Resource: "/communications/presences", Expires: t0.Add(time.Hour), Created: t0},
	}
	for _, s := range subs {
		if err := db.PutSubscription(s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Subscriptions()
	if err != nil || !reflect.DeepEqual(got, []store.Subscription{subs[1], subs[0]}) {
		t.Errorf("Subscriptions() = %+v, %v", got, err)
	}
	if err := db.PutSubscription(store.Subscription{}); err == nil {
		t.Error("PutSubscription without id succeeded")
	}
	for range 2 {
		if err := db.DeleteSubscription("a-sub"); err != nil {
			t.Error(err)
		}
	}
	if got, _ := db.Subscriptions(); len(got) != 1 || got[0].ID != "b-sub" {
		t.Errorf("after delete: %+v", got)
	}
}
