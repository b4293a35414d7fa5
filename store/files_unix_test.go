//go:build !windows

package store_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/presencebridge/presencebridge/store"
)

// An admin command run as root while the service (its own user) is
// stopped must not leave it a database or backup it cannot open.
func TestOpen_RootGivesNewFilesToTheDirectoryOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand files to another user")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 65534, 65534 // nobody: any user but root
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.db")
	closeChecked(t, openAt(t, path, store.Options{}))
	opts := store.WithTestMigration(store.Options{}, store.SchemaVersion+1, func(*bolt.Tx) error { return nil })
	closeChecked(t, openAt(t, path, opts))
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 2 {
		t.Fatalf("files %v, want the database and one backup", files)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: owner %d:%d mode %v, want %d:%d 0600", f, st.Uid, st.Gid, fi.Mode(), uid, gid)
		}
	}
}
