package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// Resetting a setting that decides where a secret is sent to its default
// moves the secret's endpoint as much as setting it does (a national
// cloud's Entra authority back to the global one, a UCConnect UCSID back
// to "local"): the secret is cleared the same way.
func TestAdmin_UnsetOfAnEndpointClearsItsSecret(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ key, value, secret, secretValue string }{
		{"teams.authority_url", "https://login.microsoftonline.us", "teams.client_secret", "hunter2"},
		{"teams.graph_url", "https://graph.microsoft.us/v1.0", "teams.client_secret", "hunter2"},
		{"ucserver.ucsid", "b6c7e3a0f1d24c5e", "ucserver.password", "uc-pass"},
	} {
		t.Run(c.key, func(t *testing.T) {
			a, db := offlineAdmin(t)
			if _, err := a.SetSettings(ctx, map[string]string{c.key: c.value, c.secret: c.secretValue, "teams.service_accounts": svcUPN}); err != nil {
				t.Fatal(err)
			}
			signIn(t, db)
			if v, _ := a.Get(ctx, c.secret); v != psync.Mask {
				t.Fatalf("%s not stored: %q", c.secret, v)
			}
			if err := a.UnsetSetting(ctx, c.key); err != nil {
				t.Fatal(err)
			}
			s, err := db.Settings()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := s[c.key]; ok {
				t.Fatalf("%s still stored", c.key)
			}
			if v := s[c.secret]; v != "" {
				t.Fatalf("%s survived resetting %s to its default", c.secret, c.key)
			}
			// The refresh token is sent to the authority as much as the secret.
			if kept := signedIn(t, db); kept != (c.key != "teams.authority_url") {
				t.Fatalf("after resetting %s the service account's sign-in is kept: %v", c.key, kept)
			}
		})
	}

	// A setting that decides nothing about a secret leaves it alone.
	a, db := offlineAdmin(t)
	if _, err := a.SetSettings(ctx, map[string]string{"teams.lease": "20m", "teams.client_secret": "hunter2"}); err != nil {
		t.Fatal(err)
	}
	if err := a.UnsetSetting(ctx, "teams.lease"); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Settings(); s["teams.client_secret"] == "" {
		t.Fatal("resetting teams.lease cleared the client secret")
	}
}

// An import that replaces the settings with a file that leaves the
// authority out (so back to its default) and only masks the secret does
// not carry the secret to the default authority.
func TestAdmin_ImportDroppingAnEndpointClearsItsSecret(t *testing.T) {
	ctx := context.Background()
	a, db := offlineAdmin(t)
	if _, err := a.SetSettings(ctx, map[string]string{"teams.authority_url": "https://login.microsoftonline.us", "teams.client_secret": "hunter2",
		"teams.service_accounts": svcUPN}); err != nil {
		t.Fatal(err)
	}
	signIn(t, db)
	doc := "settings:\n  teams.client_secret: '" + psync.Mask + "'\n  teams.service_accounts: " + svcUPN + "\n"
	ch, err := a.Import(ctx, strings.NewReader(doc), store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.Settings()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s["teams.authority_url"]; ok {
		t.Fatalf("the import kept teams.authority_url: %v", ch.Settings)
	}
	if s["teams.client_secret"] != "" {
		t.Fatalf("the client secret followed the authority back to its default: %v", ch.Settings)
	}
	var said bool
	for _, c := range ch.Settings {
		said = said || c.Name == "teams.client_secret" && c.Op == store.OpRemoved
	}
	if !said {
		t.Fatalf("the import does not report the cleared secret: %+v", ch.Settings)
	}
	if signedIn(t, db) {
		t.Fatal("the service account's sign-in followed the authority back to its default")
	}

	// The same for an import that names another authority.
	if _, err := a.SetSettings(ctx, map[string]string{"teams.client_secret": "hunter2"}); err != nil {
		t.Fatal(err)
	}
	signIn(t, db)
	doc += "  teams.authority_url: https://login.evil.example\n"
	if _, err := a.Import(ctx, strings.NewReader(doc), store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Settings(); s["teams.client_secret"] != "" || s["teams.authority_url"] != "https://login.evil.example" {
		t.Fatalf("after an import of another authority: %q", s["teams.authority_url"])
	}
	if signedIn(t, db) {
		t.Fatal("the service account's sign-in followed an import to another authority")
	}
}

// SetSettings drops the sign-ins when the authority moves, and only then.
func TestAdmin_NewAuthorityDropsTheSignIns(t *testing.T) {
	ctx := context.Background()
	a, db := offlineAdmin(t)
	if _, err := a.SetSettings(ctx, map[string]string{"teams.service_accounts": svcUPN}); err != nil {
		t.Fatal(err)
	}
	signIn(t, db)
	if _, err := a.SetSettings(ctx, map[string]string{"teams.lease": "20m"}); err != nil || !signedIn(t, db) {
		t.Fatalf("another setting dropped the sign-in (%v)", err)
	}
	cleared, err := a.SetSettings(ctx, map[string]string{"teams.authority_url": "https://login.evil.example"})
	if err != nil {
		t.Fatal(err)
	}
	if signedIn(t, db) || !slices.Contains(cleared, "the sign-in of "+svcUPN) {
		t.Fatalf("a new authority kept the sign-in; cleared %q", cleared)
	}
}

const svcUPN = "bridge-svc@contoso.example"

// signIn stores a sign-in (its token cache) of the service account svcUPN.
func signIn(t *testing.T, db *store.DB) {
	t.Helper()
	if err := db.PutTokenCache(svcUPN, []byte(`{"RefreshToken":{"x":{"secret":"rt"}}}`)); err != nil {
		t.Fatal(err)
	}
}

func signedIn(t *testing.T, db *store.DB) bool {
	t.Helper()
	c, err := db.TokenCache(svcUPN)
	if err != nil {
		t.Fatal(err)
	}
	return len(c) > 0
}
