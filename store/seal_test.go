package store_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/store"
)

const (
	clearSecret = "s3cret-value-4711"
	clearCache  = "token-cache-of-ann-0815"
)

// fileHolds reports whether the file holds s in clear, or as the base64
// that a []byte of a JSON record becomes.
func fileHolds(t *testing.T, path string, s string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s)) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString([]byte(s))))
}

// Where the OS can seal (Windows), secrets are sealed in the file and
// handed out in clear: here a fake sealer stands in for DPAPI.
func TestSeal_SecretsAreSealedInTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	opts := store.WithSealer(store.Options{}, store.FakeSealer{Name: "fake"})
	db := openAt(t, path, opts)
	if err := db.SetSetting("teams.client_secret", clearSecret); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateSettings(map[string]string{"ucserver.password": clearSecret + "-uc", "ucserver.user": "bridge"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTokenCache("ann@contoso.example", []byte(clearCache)); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)
	for _, s := range []string{clearSecret, clearCache} {
		if fileHolds(t, path, s) {
			t.Errorf("the file holds %q in clear", s)
		}
	}
	if !fileHolds(t, path, "bridge") {
		t.Error("a setting that is no secret was sealed")
	}

	db = openAt(t, path, opts)
	defer closeChecked(t, db)
	s, err := db.Settings()
	if err != nil || s["teams.client_secret"] != clearSecret || s["ucserver.password"] != clearSecret+"-uc" || s["ucserver.user"] != "bridge" {
		t.Fatalf("settings %v, %v", s, err)
	}
	if c, err := db.TokenCache("ann@contoso.example"); err != nil || string(c) != clearCache {
		t.Fatalf("token cache %q, %v", c, err)
	}
	var out bytes.Buffer
	if err := db.ExportYAML(&out, true); err != nil || !strings.Contains(out.String(), clearSecret) {
		t.Fatalf("export: %v\n%s", err, out.String())
	}
	// An import that keeps the masked secret keeps it sealed.
	if _, err := db.ImportYAML(strings.NewReader("settings:\n  teams.client_secret: '********'\n  ucserver.password: '********'\n  ucserver.user: bridge\n"), store.ImportOptions{Merge: true}); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Settings(); s["teams.client_secret"] != clearSecret {
		t.Fatalf("after the import: %v", s)
	}
}

// A database written in clear (an earlier build) is sealed at the first
// read-write open, and rewritten so that no old copy stays in its free
// pages.
func TestSeal_SealsWhatWasStoredInClear(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	plain := store.WithSealer(store.Options{}, nil)
	db := openAt(t, path, plain)
	if err := db.SetSetting("teams.client_secret", clearSecret); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTokenCache("ann@contoso.example", []byte(clearCache)); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)
	if !fileHolds(t, path, clearSecret) || !fileHolds(t, path, clearCache) {
		t.Fatal("the clear database does not hold its secrets in clear")
	}

	var logs bytes.Buffer
	opts := store.WithSealer(store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, store.FakeSealer{Name: "fake"})
	db = openAt(t, path, opts)
	if s, err := db.Settings(); err != nil || s["teams.client_secret"] != clearSecret {
		t.Fatalf("settings %v, %v", s, err)
	}
	if c, err := db.TokenCache("ann@contoso.example"); err != nil || string(c) != clearCache {
		t.Fatalf("token cache %q, %v", c, err)
	}
	closeChecked(t, db)
	for _, s := range []string{clearSecret, clearCache} {
		if fileHolds(t, path, s) {
			t.Errorf("after sealing, the file still holds %q", s)
		}
	}
	if !strings.Contains(logs.String(), "sealed the secrets stored in clear") || !strings.Contains(logs.String(), "count=2") {
		t.Errorf("log:\n%s", logs.String())
	}
	// Once sealed, an open changes nothing more.
	logs.Reset()
	closeChecked(t, openAt(t, path, opts))
	if strings.Contains(logs.String(), "sealed") {
		t.Errorf("second open:\n%s", logs.String())
	}
}

// A database sealed elsewhere (copied from a Windows machine) opens; the
// secrets it cannot unseal count as not set, say so in the log, and can be
// set again.
func TestSeal_SealedElsewhereCountsAsNotSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db := openAt(t, path, store.WithSealer(store.Options{}, store.FakeSealer{Name: "dpapi"}))
	if err := db.SetSetting("teams.client_secret", clearSecret); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSetting("ucserver.user", "bridge"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTokenCache("ann@contoso.example", []byte(clearCache)); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)

	var logs bytes.Buffer
	db = openAt(t, path, store.WithSealer(store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil))
	defer closeChecked(t, db)
	s, err := db.Settings()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s["teams.client_secret"]; ok || s["ucserver.user"] != "bridge" {
		t.Fatalf("settings %v", s)
	}
	if !strings.Contains(logs.String(), "key=teams.client_secret") || !strings.Contains(logs.String(), "set it again") {
		t.Fatalf("log:\n%s", logs.String())
	}
	if c, err := db.TokenCache("ann@contoso.example"); err != nil || c != nil {
		t.Fatalf("token cache %q, %v", c, err)
	}
	if err := db.SetSetting("teams.client_secret", "new"); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Settings(); s["teams.client_secret"] != "new" {
		t.Fatalf("after setting it again: %v", s)
	}
}
