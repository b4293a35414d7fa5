package store_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/presencebridge/presencebridge/store"
)

func TestOpen_TightensAnOpenMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no mode bits; the data directory's ACL protects the file")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	closeChecked(t, openAt(t, path, store.Options{}))
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	db := openAt(t, path, store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	closeChecked(t, db)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after open: %v, %v; want 0600", fi.Mode(), err)
	}
	if s := logs.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "made it 0600") || !strings.Contains(s, "was=0644") {
		t.Fatalf("log:\n%s", s)
	}
	// A file already 0600 is not mentioned.
	logs.Reset()
	closeChecked(t, openAt(t, path, store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
	if strings.Contains(logs.String(), "0600") {
		t.Fatalf("log of a 0600 database:\n%s", logs.String())
	}
}

func TestOpen_KeepsOnlyTheNewestBackup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	closeChecked(t, openAt(t, path, store.Options{}))
	// Backups of earlier migrations, oldest first, and files that only
	// look like them.
	old := []string{"state.db.bak-v1-20250101T000000Z", "state.db.bak-v2-20250301T000000Z", "state.db.bak-v2-20250301T000000Z-2"}
	others := []string{"state.db.bak-v1-notes.txt", "other.db.bak-v1-20250101T000000Z", "state.db.bak-v1-20250101T000000Z.bak-v1-20250102T000000Z"}
	for i, name := range append(slices.Clone(old), others...) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("copy"), 0o644); err != nil {
			t.Fatal(err)
		}
		mod := time.Now().Add(-time.Duration(100-i) * time.Hour)
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	opts := store.WithTestMigration(store.Options{}, store.SchemaVersion+1, func(*bolt.Tx) error { return nil })
	closeChecked(t, openAt(t, path, opts))

	baks, _ := filepath.Glob(filepath.Join(dir, "state.db.bak-v*"))
	var fresh []string
	for _, b := range baks {
		name := filepath.Base(b)
		if slices.Contains(old, name) {
			t.Errorf("old backup %s was kept", name)
		}
		if !slices.Contains(others, name) {
			fresh = append(fresh, b)
		}
	}
	if len(fresh) != 1 || !strings.Contains(fresh[0], ".bak-v"+strconv.FormatUint(store.SchemaVersion, 10)+"-") {
		t.Fatalf("backups after the migration: %v", baks)
	}
	if fi, err := os.Stat(fresh[0]); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("backup %v, %v; want 0600", fi.Mode(), err)
	}
	for _, name := range others {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s, not a backup of this database, is gone: %v", name, err)
		}
	}

	// Without a migration, an open still leaves only the newest backup,
	// and makes it 0600.
	newest := filepath.Join(dir, "state.db.bak-v9-20990101T000000Z")
	if err := os.WriteFile(newest, []byte("copy"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(newest, later, later); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, openAt(t, path, opts))
	if _, err := os.Stat(fresh[0]); !os.IsNotExist(err) {
		t.Errorf("the older backup is still there: %v", err)
	}
	if fi, err := os.Stat(newest); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("newest backup %v, %v; want 0600", fi, err)
	}
}

func openAt(t *testing.T, path string, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return db
}
