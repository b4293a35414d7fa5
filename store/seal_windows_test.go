//go:build windows

package store_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/store"
)

// On Windows the platform seals with DPAPI: nothing in the file is clear,
// and a reopen reads it back.
func TestSeal_DPAPI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db := openAt(t, path, store.Options{})
	if err := db.SetSetting("teams.client_secret", clearSecret); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTokenCache("ann@contoso.example", []byte(clearCache)); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)
	if fileHolds(t, path, clearSecret) || fileHolds(t, path, clearCache) {
		t.Fatal("the file holds a secret in clear")
	}
	if !fileHolds(t, path, "\\u0000dpapi:") {
		t.Fatal("no DPAPI-sealed value in the file")
	}
	db = openAt(t, path, store.Options{})
	defer closeChecked(t, db)
	if s, err := db.Settings(); err != nil || s["teams.client_secret"] != clearSecret {
		t.Fatalf("settings %v, %v", s, err)
	}
	if c, err := db.TokenCache("ann@contoso.example"); err != nil || string(c) != clearCache {
		t.Fatalf("token cache %q, %v", c, err)
	}
}

// A value sealed with DPAPI on another machine (here: a blob that is not
// DPAPI's) counts as not set.
func TestSeal_DPAPIForeignBlob(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db := openAt(t, path, store.WithSealer(store.Options{}, store.FakeSealer{Name: "dpapi"}))
	if err := db.SetSetting("teams.client_secret", clearSecret); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)
	db = openAt(t, path, store.Options{})
	defer closeChecked(t, db)
	if s, err := db.Settings(); err != nil || strings.Contains(s["teams.client_secret"], clearSecret) || s["teams.client_secret"] != "" {
		t.Fatalf("settings %v, %v", s, err)
	}
}
