package store_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// holdEnv makes the test binary a child that holds a database open until its
// stdin closes (TestOpen_InUseByAnotherProcess).
const holdEnv = "PRESENCEBRIDGE_STORE_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(holdOpen(path))
	}
	os.Exit(m.Run())
}

func holdOpen(path string) int {
	db, err := store.Open(path, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// openTemp opens a new database in a fresh directory and checks it on close.
func openTemp(t testing.TB, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "state.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeChecked(t, db) })
	return db
}

// closeChecked runs the consistency check, then closes; closing twice is
// fine for tests that close early.
func closeChecked(t testing.TB, db *store.DB) {
	t.Helper()
	if err := db.Check(); err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
		t.Errorf("check before close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestOpen_CreatesTreeAndDefaultProfile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "state.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeChecked(t, db)
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("parent directory mode %v, want 0700", st.Mode().Perm())
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Errorf("file mode %v, want 0600", st.Mode().Perm())
		}
	}
	ps, err := db.Profiles()
	if err != nil {
		t.Fatal(err)
	}
	if want := psync.NewProfile(psync.DefaultProfileName); len(ps) != 1 || ps[0] != want {
		t.Errorf("profiles of a new database = %+v, want [%+v]", ps, want)
	}
	// Nothing but the database is left in the directory.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only state.db", len(entries))
	}
}

func TestOpen_ReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser(psync.User{ID: "100", DisplayName: "Ann"}); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)
	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeChecked(t, db)
	us, err := db.Users()
	if err != nil || len(us) != 1 || us[0].DisplayName != "Ann" {
		t.Errorf("after reopen: users %+v, %v", us, err)
	}
}

func TestOpen_InUseByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("child: %v", err)
			}
		}
	}
	defer release()
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("child said %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child did not open the database")
	}

	for _, ro := range []bool{false, true} {
		start := time.Now()
		db, err := store.Open(path, store.Options{Timeout: 200 * time.Millisecond, ReadOnly: ro})
		took := time.Since(start)
		if err == nil {
			db.Close()
			t.Fatalf("read-only %v: Open succeeded while another process holds the database", ro)
		}
		if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), path) {
			t.Errorf("read-only %v: error %q, want the in-use error naming the path", ro, err)
		}
		if took > time.Second {
			t.Errorf("read-only %v: Open took %s with a 200ms timeout", ro, took)
		}
		t.Logf("read-only %v: refused after %s: %v", ro, took.Round(time.Millisecond), err)
	}

	release()
	db, err := store.Open(path, store.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("after the other process let go: %v", err)
	}
	closeChecked(t, db)
}

// validDB returns the bytes of a database with some data in every bucket.
func validDB(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "valid.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var users strings.Builder
	users.WriteString("users:\n")
	var audit []psync.Decision
	for i := range 300 {
		id := fmt.Sprintf("user-%03d", i)
		fmt.Fprintf(&users, "  - {id: %s, name: %s}\n", id, strings.Repeat("n", 50))
		audit = append(audit, psync.Decision{User: psync.UserID(id), What: "presence", Old: "available", New: "busy"})
	}
	if _, err := db.ImportYAML(strings.NewReader(users.String()), store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendAudit(audit); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveLastKnown([]psync.LastKnown{{User: "user-001", Teams: &psync.TeamsPresence{Availability: "Busy"}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutHold(psync.Hold{User: "user-001", Kind: psync.HoldTeamsSession, Set: "InACall"}); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// boltFile writes a bolt database made by fn.
func boltFile(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_RefusesBadFilesUntouched(t *testing.T) {
	valid := validDB(t)
	pageSize := int(binary.NativeEndian.Uint32(valid[16+8:]))
	cases := []struct {
		name  string
		make  func(t *testing.T, path string)
		want  error
		about string // a word the error must contain
	}{
		{"empty file", func(t *testing.T, p string) { write(t, p, nil) }, store.ErrDamaged, "empty"},
		{"a few bytes", func(t *testing.T, p string) { write(t, p, []byte("hello\n")) }, store.ErrDamaged, "too short"},
		{"garbage", func(t *testing.T, p string) { write(t, p, []byte(strings.Repeat("not a database. ", 4096))) }, store.ErrDamaged, "meta page"},
		{"text config", func(t *testing.T, p string) {
			write(t, p, []byte(strings.Repeat("settings:\n  teams.lease: 10m\n", 10)))
		}, store.ErrDamaged, "meta page"},
		{"cut inside meta page 1", func(t *testing.T, p string) { write(t, p, valid[:pageSize+100]) }, store.ErrDamaged, "truncated"},
		{"cut to half", func(t *testing.T, p string) { write(t, p, valid[:len(valid)/2]) }, store.ErrDamaged, "truncated"},
		{"cut one page short", func(t *testing.T, p string) { write(t, p, valid[:usedBytes(valid)-pageSize]) }, store.ErrDamaged, "truncated"},
		{"meta pages zeroed", func(t *testing.T, p string) {
			b := append([]byte(nil), valid...)
			clear(b[:2*pageSize])
			write(t, p, b)
		}, store.ErrDamaged, "meta page"},
		{"data pages scrambled", func(t *testing.T, p string) {
			b := append([]byte(nil), valid...)
			for i := 2 * pageSize; i < usedBytes(valid); i++ {
				b[i] ^= 0x5a
			}
			write(t, p, b)
		}, store.ErrDamaged, ""},
		{"another program's bolt file", func(t *testing.T, p string) {
			boltFile(t, p, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("widgets"))
				if err != nil {
					return err
				}
				return b.Put([]byte("k"), []byte("v"))
			})
		}, store.ErrDamaged, `no "meta" bucket`},
		{"empty bolt file", func(t *testing.T, p string) { boltFile(t, p, func(*bolt.Tx) error { return nil }) }, store.ErrDamaged, `no "meta" bucket`},
		{"newer schema", func(t *testing.T, p string) {
			write(t, p, valid)
			boltFile(t, p, func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("version"), binary.BigEndian.AppendUint64(nil, store.SchemaVersion+1))
			})
		}, store.ErrNewerSchema, "newer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			tc.make(t, path)
			before := fileSum(t, path)
			for _, ro := range []bool{false, true} {
				db, err := store.Open(path, store.Options{ReadOnly: ro, Timeout: time.Second})
				if err == nil {
					db.Close()
					t.Fatalf("read-only %v: Open succeeded", ro)
				}
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.about) {
					t.Errorf("read-only %v: error %q, want %v naming the path and %q", ro, err, tc.want, tc.about)
				}
				if tc.want == store.ErrDamaged && !strings.Contains(err.Error(), "is not a presencebridge database or is damaged") {
					t.Errorf("error %q does not say the file is not ours or damaged", err)
				}
				if fileSum(t, path) != before {
					t.Fatalf("read-only %v: Open changed the file", ro)
				}
			}
			t.Logf("%v", func() error { _, err := store.Open(path, store.Options{}); return err }())
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("Open left %d files in the directory, want 1", len(entries))
			}
		})
	}
}

// TestOpen_SurvivesRandomDamage scribbles over the data pages of a valid
// database: every damaged copy is refused untouched with ErrDamaged or opens
// and then answers every call with data or an error, never a crash (bbolt
// follows page offsets unchecked, also on goroutines no recover reaches).
func TestOpen_SurvivesRandomDamage(t *testing.T) {
	valid := validDB(t)
	used := usedBytes(valid)
	pageSize := int(binary.NativeEndian.Uint32(valid[16+8:]))
	path := filepath.Join(t.TempDir(), "state.db")
	r := rand.New(rand.NewPCG(20251125, 1))
	refused := 0
	const rounds = 200
	for range rounds {
		b := append([]byte(nil), valid...)
		for range 1 + r.IntN(32) {
			b[2*pageSize+r.IntN(used-2*pageSize)] = byte(r.IntN(256))
		}
		write(t, path, b)
		db, err := store.Open(path, store.Options{})
		if err != nil {
			refused++
			if !errors.Is(err, store.ErrDamaged) {
				t.Fatalf("damaged file refused with %v, want ErrDamaged", err)
			}
			if got, _ := os.ReadFile(path); string(got) != string(b) {
				t.Fatal("refusing a damaged file changed it")
			}
			continue
		}
		_, _ = db.Users()
		_, _ = db.Audit(0, "")
		_, _ = db.Holds()
		_, _ = db.LastKnown()
		_ = db.PutUser(psync.User{ID: "new"})
		_ = db.AppendAudit([]psync.Decision{{User: "new"}})
		_ = db.DeleteUser("user-002")
		_ = db.Check()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d of %d damaged copies refused at Open", refused, rounds)
}

// usedBytes is the part of a bolt file below the high water mark of its
// newer meta page.
func usedBytes(b []byte) int {
	ps := int(binary.NativeEndian.Uint32(b[16+8:]))
	meta := func(off int) (pgid, txid uint64) {
		return binary.NativeEndian.Uint64(b[off+16+40:]), binary.NativeEndian.Uint64(b[off+16+48:])
	}
	p0, t0 := meta(0)
	p1, t1 := meta(ps)
	if t1 > t0 {
		p0 = p1
	}
	return int(p0) * ps
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_ReadOnly(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := store.Open(missing, store.Options{ReadOnly: true}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open of a missing file: %v, want not-exist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Error("read-only open created the file")
	}

	path := filepath.Join(dir, "state.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser(psync.User{ID: "7"}); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)
	before := fileSum(t, path)

	a, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("a second read-only open beside the first: %v", err)
	}
	if us, err := b.Users(); err != nil || len(us) != 1 {
		t.Errorf("read-only users: %v, %v", us, err)
	}
	if err := a.PutUser(psync.User{ID: "8"}); err == nil {
		t.Error("PutUser on a read-only database succeeded")
	}
	if err := a.PutHold(psync.Hold{User: "7", Kind: psync.HoldTeamsSession}); err == nil {
		t.Error("PutHold on a read-only database succeeded")
	}
	closeChecked(t, a)
	closeChecked(t, b)
	if fileSum(t, path) != before {
		t.Error("read-only use changed the file")
	}
}

func TestOpen_MigratesWithBackup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser(psync.User{ID: "100", DisplayName: "before"}); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)
	before := fileSum(t, path)

	// The test step renames every user, through the raw tree as a real
	// migration would.
	ran := 0
	opts := store.WithTestMigration(store.Options{}, store.SchemaVersion+1, func(tx *bolt.Tx) error {
		ran++
		return tx.Bucket([]byte("users")).Put([]byte("100"), []byte(`{"v":1,"d":{"id":"100","name":"after"}}`))
	})
	db, err = store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if us, err := db.Users(); err != nil || len(us) != 1 || us[0].DisplayName != "after" {
		t.Errorf("after migration: %+v, %v", us, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if ran != 1 {
		t.Errorf("the migration ran %d times, want 1", ran)
	}

	baks, _ := filepath.Glob(path + fmt.Sprintf(".bak-v%d-*", store.SchemaVersion))
	if len(baks) != 1 {
		t.Fatalf("backups %v, want one %s.bak-v%d-<time>", baks, path, store.SchemaVersion)
	}
	if fileSum(t, baks[0]) == before {
		t.Log("backup is byte-identical to the original")
	}
	bak, err := store.Open(baks[0], store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	if us, err := bak.Users(); err != nil || len(us) != 1 || us[0].DisplayName != "before" {
		t.Errorf("backup users: %+v, %v", us, err)
	}
	closeChecked(t, bak)

	// This build does not know the migrated version: refused, untouched.
	migrated := fileSum(t, path)
	if _, err := store.Open(path, store.Options{}); !errors.Is(err, store.ErrNewerSchema) {
		t.Errorf("open of a newer schema: %v, want ErrNewerSchema", err)
	}
	if fileSum(t, path) != migrated {
		t.Error("refusing a newer schema changed the file")
	}
	// Opening it again under the migrated version runs nothing.
	db, err = store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if ran != 1 {
		t.Errorf("the migration ran again on an up-to-date database")
	}
}

func TestOpen_FailedMigrationChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser(psync.User{ID: "100"}); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)

	opts := store.WithTestMigration(store.Options{}, store.SchemaVersion+1, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("users")); err != nil {
			return err
		}
		return errors.New("step failed on purpose")
	})
	if _, err := store.Open(path, opts); err == nil || !strings.Contains(err.Error(), "step failed on purpose") || !strings.Contains(err.Error(), ".bak-v") {
		t.Fatalf("failing migration: %v, want its error and the backup's name", err)
	}
	if ro, err := store.Open(path, store.Options{ReadOnly: true}); err != nil {
		t.Fatalf("after a failed migration the database no longer opens: %v", err)
	} else {
		closeChecked(t, ro)
	}
	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeChecked(t, db)
	if us, err := db.Users(); err != nil || len(us) != 1 {
		t.Errorf("after a failed migration: users %v, %v", us, err)
	}
}

func TestOpen_ReadOnlyRefusesToMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)
	before := fileSum(t, path)
	opts := store.WithTestMigration(store.Options{ReadOnly: true}, store.SchemaVersion+1, func(*bolt.Tx) error { return nil })
	if _, err := store.Open(path, opts); err == nil || !strings.Contains(err.Error(), "needs a migration") {
		t.Errorf("read-only open of an older schema: %v", err)
	}
	if fileSum(t, path) != before {
		t.Error("the file changed")
	}
}

func TestOpen_BadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []store.Options{{Timeout: -time.Second}, {AuditLimit: -1}} {
		if _, err := store.Open(filepath.Join(dir, "x.db"), o); err == nil {
			t.Errorf("Open with %+v succeeded", o)
		}
	}
	if _, err := store.Open("", store.Options{}); err == nil {
		t.Error("Open with no path succeeded")
	}
	if _, err := store.Open(dir, store.Options{}); !errors.Is(err, store.ErrDamaged) {
		t.Errorf("Open of a directory: %v", err)
	}
}

func TestDefaultPath(t *testing.T) {
	p, err := store.DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != "state.db" || filepath.Base(filepath.Dir(p)) != "presencebridge" {
		t.Errorf("DefaultPath() = %q", p)
	}
	if runtime.GOOS != "windows" && os.Geteuid() == 0 && p != "/var/lib/presencebridge/state.db" {
		t.Errorf("as root DefaultPath() = %q", p)
	}
	t.Log(p)
}

func TestDB_ClosedReturnsErrors(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	checks := map[string]error{
		"PutHold":       db.PutHold(psync.Hold{User: "1", Kind: psync.HoldTeamsSession}),
		"SaveLastKnown": db.SaveLastKnown([]psync.LastKnown{{User: "1", Teams: &psync.TeamsPresence{}}}),
		"AppendAudit":   db.AppendAudit([]psync.Decision{{User: "1"}}),
		"SetSetting":    db.SetSetting("teams.lease", "20m"),
		"PutUser":       db.PutUser(psync.User{ID: "1"}),
		"Check":         db.Check(),
	}
	_, checks["Holds"] = db.Holds()
	_, checks["Users"] = db.Users()
	for name, err := range checks {
		if err == nil {
			t.Errorf("%s on a closed database succeeded", name)
		}
	}
}
