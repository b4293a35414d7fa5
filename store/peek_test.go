package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
)

// Install reads teams.webhook_listen from a database an older build wrote,
// which a read-only Open refuses until the service migrates it.
func TestPeekSettings_OlderSchemaInUseAndDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	old := openAt(t, path, store.WithSchemaVersion(store.Options{}, 1))
	if err := old.SetSetting("teams.webhook_listen", ":443"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PeekSettings(path, 200*time.Millisecond); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("a database in use: %v", err)
	}
	old.Close()
	if _, err := store.Open(path, store.Options{ReadOnly: true}); err == nil {
		t.Fatal("a read-only open of schema 1 succeeded")
	}
	s, err := store.PeekSettings(path, time.Second)
	if err != nil || s["teams.webhook_listen"] != ":443" {
		t.Fatalf("settings %v, %v", s, err)
	}
	// Nothing was migrated.
	db := openAt(t, path, store.WithSchemaVersion(store.Options{}, 1))
	closeChecked(t, db)

	bad := filepath.Join(t.TempDir(), "bad.db")
	writeFile(t, bad, []byte("not a database at all, just text"))
	if _, err := store.PeekSettings(bad, time.Second); !errors.Is(err, store.ErrDamaged) {
		t.Fatalf("damaged: %v", err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
