// Package store owns presencebridge's one database file: the settings, the
// profiles and users, the last-known presence of both sides, the holds (what
// the bridge imposed and the value it replaced, written ahead of the change),
// the Graph subscriptions and the bounded audit log. It is the only package
// that imports bbolt; schema.go draws the whole bucket tree.
//
// A DB is safe for concurrent use. No method makes a network call or runs a
// caller's code inside a transaction, and every value handed out is a copy
// made inside the transaction, never a slice of bbolt's memory map.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Errors callers can test for with errors.Is.
var (
	// ErrInUse: another process holds the database (bbolt's file lock).
	ErrInUse = errors.New("the database is in use by another process")
	// ErrDamaged: the file is not a presencebridge database or is damaged.
	// Open leaves such a file exactly as it found it.
	ErrDamaged = errors.New("is not a presencebridge database or is damaged")
	// ErrNewerSchema: the database was written by a newer presencebridge.
	ErrNewerSchema = errors.New("was written by a newer presencebridge")
	// ErrRecordVersion: a record carries a version this build cannot read.
	ErrRecordVersion = errors.New("unknown record version")
	// ErrCorruptRecord: a stored record does not decode.
	ErrCorruptRecord = errors.New("damaged record")
	// ErrNotFound: the named profile or user does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a profile or user of that name is already there.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a configuration to import does not validate; the
	// message says what and where.
	ErrInvalid = errors.New("invalid configuration")
	// ErrNotDemo: the database holds a configuration the demo did not
	// create, so the demo must not overwrite it.
	ErrNotDemo = errors.New("holds a configuration the demo did not create")
)

const (
	defaultTimeout    = 2 * time.Second
	defaultAuditLimit = 10_000

	// batchDelay replaces bbolt's 10 ms MaxBatchDelay. A batch waits this
	// long for company before it commits, so it is the floor of every
	// PutHold's latency, and PutHold stands between a decision and the
	// change on the other side. Writers that block on a commit re-submit
	// within microseconds, so a short window still gathers all of them
	// into the next transaction; the fsync (not the window) bounds
	// throughput.
	batchDelay = time.Millisecond

	// minLockWait keeps a nearly used-up timeout from becoming bbolt's 0,
	// which means "wait for the lock forever".
	minLockWait = 10 * time.Millisecond
)

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Timeout bounds the wait for the file lock; 0 means 2 s.
	Timeout time.Duration
	// Logger receives the store's few log lines (open, migration, backup);
	// nil discards them.
	Logger *slog.Logger
	// AuditLimit is how many audit entries are kept, the oldest dropped
	// first. 0 means the stored setting audit.limit (default 10,000),
	// followed live when it changes.
	AuditLimit int
	// ReadOnly opens with a shared lock and refuses every write; it never
	// creates or migrates a database.
	ReadOnly bool

	// schemaVersion and extraMigrations let tests exercise the migration
	// path with a schema version this build does not have (export_test.go).
	schemaVersion   uint64
	extraMigrations []migration
	// sealer replaces the platform's when sealerSet (tests seal with a
	// fake on every OS, or not at all).
	sealer    sealer
	sealerSet bool
}

// DB is the open database.
type DB struct {
	bolt   *bolt.DB
	path   string
	log    *slog.Logger
	now    func() time.Time
	schema uint64 // the schema version the tree has while open

	// auditLimit is read by every AppendAudit; it follows the audit.limit
	// setting unless Options.AuditLimit fixed it (auditFixed).
	auditLimit atomic.Int64
	auditFixed bool
	// holdWriters counts PutHold calls in progress.
	holdWriters atomic.Int32
	// sealer seals secrets in the file (seal.go); nil where the OS offers
	// none.
	sealer sealer
}

// Open opens the database at path, creating it (and its parent directories,
// mode 0700) when it does not exist, and migrating it, after a backup, when
// it has an older schema. An existing file that is not a presencebridge
// database, is damaged or is from a newer build is refused and left
// byte-for-byte untouched.
func Open(path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("store: no database path given")
	}
	switch {
	case opts.Timeout < 0:
		return nil, fmt.Errorf("store: negative lock timeout %s", opts.Timeout)
	case opts.Timeout == 0:
		opts.Timeout = defaultTimeout
	}
	if opts.AuditLimit < 0 {
		return nil, fmt.Errorf("store: negative audit limit %d", opts.AuditLimit)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "store")
	sl := platformSealer()
	if opts.sealerSet {
		sl = opts.sealer
	}
	if err := secureDir(filepath.Dir(path), !opts.ReadOnly, log); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	target, steps := schemaVersion, migrations()
	if opts.schemaVersion != 0 {
		target = opts.schemaVersion
	}
	steps = append(steps, opts.extraMigrations...)
	deadline := time.Now().Add(opts.Timeout)
	wait := func() time.Duration { return max(time.Until(deadline), minLockWait) }

	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if opts.ReadOnly {
			return nil, fmt.Errorf("store: %s does not exist (read-only open creates nothing): %w", path, err)
		}
		if err := create(path, steps, target, wait(), log); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := tightenMode(path, log); err != nil {
		if !opts.ReadOnly {
			return nil, fmt.Errorf("store: %w", err)
		}
		log.Warn("the database is readable by others", "err", err)
	}

	// Look at an existing file before anything may write to it: bbolt
	// would initialise an empty file, and a read-write open may write the
	// freelist or (on Windows) grow the file to its map size.
	if err := checkBoltHeader(path); err != nil {
		return nil, damaged(path, err)
	}
	ro, err := openBolt(path, true, wait())
	if err != nil {
		return nil, err
	}
	// The shared lock now keeps writers out, so the pages hold still.
	if err := checkBoltPages(path); err != nil {
		ro.Close()
		return nil, damaged(path, err)
	}
	version, err := inspect(ro, path, target)
	if err != nil {
		ro.Close()
		return nil, err
	}

	bdb := ro
	if !opts.ReadOnly {
		ro.Close()
		if bdb, err = openBolt(path, false, wait()); err != nil {
			return nil, err
		}
		// Another process may have had the file between the two opens.
		if err := bdb.View(func(tx *bolt.Tx) (err error) {
			version, err = readSchemaVersion(tx)
			return err
		}); err != nil {
			bdb.Close()
			return nil, damaged(path, err)
		}
		if version > target {
			bdb.Close()
			return nil, newer(path, version, target)
		}
		if version < target {
			if err := upgrade(bdb, path, steps, version, target, log); err != nil {
				bdb.Close()
				return nil, err
			}
		}
		pruneBackups(path, log)
		if sl != nil {
			if bdb, err = sealStored(bdb, path, sl, wait(), log); err != nil {
				return nil, err
			}
		}
	} else if version < target {
		bdb.Close()
		return nil, fmt.Errorf("store: %s has schema version %d and needs a migration to %d; open it read-write once (the service does at start)", path, version, target)
	}
	if err := bdb.View(checkTree); err != nil {
		bdb.Close()
		return nil, damaged(path, err)
	}
	bdb.MaxBatchDelay = batchDelay

	db := &DB{bolt: bdb, path: path, log: log, now: time.Now, schema: target, sealer: sl}
	if opts.AuditLimit > 0 {
		db.auditLimit.Store(int64(opts.AuditLimit))
		db.auditFixed = true
	} else {
		db.auditLimit.Store(defaultAuditLimit)
		if all, err := db.Settings(); err != nil {
			log.Warn("settings unreadable; audit limit stays at its default", "err", err)
		} else {
			db.followSettings(all)
		}
	}
	log.Debug("opened", "path", path, "schema", target, "read_only", opts.ReadOnly)
	return db, nil
}

// Close closes the database and releases the file lock.
func (db *DB) Close() error { return db.bolt.Close() }

// Path returns the file the database lives in.
func (db *DB) Path() string { return db.path }

// Check runs bbolt's consistency check over the whole file and verifies the
// bucket tree and schema version. It reads only.
func (db *DB) Check() error {
	var problems []error
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			if len(problems) < 10 {
				problems = append(problems, err)
			}
		}
		if v, err := readSchemaVersion(tx); err != nil {
			problems = append(problems, err)
		} else if v != db.schema {
			problems = append(problems, fmt.Errorf("schema version %d, opened as %d", v, db.schema))
		}
		if err := checkTree(tx); err != nil {
			problems = append(problems, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: check %s: %w", db.path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: %s failed the consistency check: %w", db.path, errors.Join(problems...))
	}
	return nil
}

// DefaultPath returns where the database lives when no path is given: a
// system directory for the service (root, or an elevated process on
// Windows), else the user's configuration directory.
func DefaultPath() (string, error) {
	if p, ok := systemPath(); ok {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("store: no default database path: %w", err)
	}
	return filepath.Join(dir, "presencebridge", "state.db"), nil
}

// followSettings applies the stored settings the store itself obeys.
func (db *DB) followSettings(all map[string]string) {
	if db.auditFixed {
		return
	}
	s, err := psync.ParseSettings(all)
	if err != nil {
		db.log.Warn("stored settings do not validate; audit limit unchanged", "err", err)
		return
	}
	db.auditLimit.Store(int64(s.AuditLimit))
}

// invalidError is an error of a configuration that does not validate: it
// reads as its own message and matches ErrInvalid.
type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }

func invalidf(format string, a ...any) error { return invalidError{fmt.Errorf(format, a...)} }

func damaged(path string, why error) error {
	return fmt.Errorf("store: %s %w: %v", path, ErrDamaged, why)
}

func newer(path string, have, know uint64) error {
	return fmt.Errorf("store: %s %w: its schema version is %d, this build knows up to %d; run a newer presencebridge",
		path, ErrNewerSchema, have, know)
}

// guard runs fn, turning a bbolt panic, and a memory fault on the map of a
// damaged file, into an error. SetPanicOnFault is per goroutine, so it only
// covers what fn does on this one.
func guard(what string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: bbolt failed: %v", what, r)
		}
	}()
	return fn()
}

// openBolt opens path with bbolt, waiting at most timeout for the lock.
func openBolt(path string, readOnly bool, timeout time.Duration) (*bolt.DB, error) {
	var bdb *bolt.DB
	err := guard("open", func() (err error) {
		bdb, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly})
		return err
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("store: %s: %w (e.g. the running presencebridge service; gave up after %s)",
			path, ErrInUse, timeout.Round(time.Millisecond))
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("store: %w", err)
	case err != nil:
		return nil, damaged(path, err)
	}
	return bdb, nil
}

// inspect reads the schema version of a database opened read-only and runs
// the consistency check, so that a damaged file is refused at Open rather
// than met by the engine.
func inspect(bdb *bolt.DB, path string, target uint64) (uint64, error) {
	var version uint64
	var problems []string
	err := guard("inspect", func() error {
		return bdb.View(func(tx *bolt.Tx) (err error) {
			if version, err = readSchemaVersion(tx); err != nil {
				return err
			}
			if version > target {
				return nil
			}
			for err := range tx.Check() {
				if len(problems) < 5 {
					problems = append(problems, err.Error())
				}
			}
			return nil
		})
	})
	switch {
	case err != nil:
		return 0, damaged(path, err)
	case version > target:
		return 0, newer(path, version, target)
	case len(problems) > 0:
		return 0, damaged(path, fmt.Errorf("the consistency check failed: %s", strings.Join(problems, "; ")))
	}
	return version, nil
}

// create makes a new database at path. It builds it under a temporary name
// and links it into place only when complete, so a crash halfway never
// leaves a bolt file without our tree at path (which Open would refuse), and
// of two processes creating at once the second opens the first one's file.
func create(path string, steps []migration, target uint64, timeout time.Duration, log *slog.Logger) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)

	bdb, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error { return migrate(tx, steps, 0, target) })
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	adoptDirOwner(tmp, log)
	switch err := os.Link(tmp, path); {
	case err == nil:
		log.Info("created database", "path", path, "schema", target)
	case errors.Is(err, fs.ErrExist):
		log.Info("database was created meanwhile by another process", "path", path)
	default:
		// File systems without hard links: rename is atomic too, it
		// only cannot refuse to replace a file created meanwhile.
		if _, serr := os.Stat(path); serr == nil {
			return nil
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("store: create %s: %w", path, err)
		}
		log.Info("created database", "path", path, "schema", target)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a new directory entry durable where the OS allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // not supported everywhere (Windows); best effort
		d.Close()
	}
}

// upgrade backs the database up and migrates it in one write transaction.
func upgrade(bdb *bolt.DB, path string, steps []migration, from, to uint64, log *slog.Logger) error {
	bak, err := backup(bdb, path, from, log)
	if err != nil {
		return fmt.Errorf("store: backup of %s before migrating it: %w", path, err)
	}
	log.Info("migrating database", "path", path, "from", from, "to", to, "backup", bak)
	err = guard("migrate", func() error {
		return bdb.Update(func(tx *bolt.Tx) error { return migrate(tx, steps, from, to) })
	})
	if err != nil {
		return fmt.Errorf("store: migrating %s from schema version %d to %d failed; nothing was changed (backup in %s): %w",
			path, from, to, bak, err)
	}
	return nil
}

// backup writes a consistent copy of the database next to it, named
// <path>.bak-v<version>-<UTC time>, and returns its name.
func backup(bdb *bolt.DB, path string, version uint64, log *slog.Logger) (string, error) {
	base := path + ".bak-v" + strconv.FormatUint(version, 10) + "-" + time.Now().UTC().Format("20060102T150405Z")
	name := base
	var f *os.File
	for i := 2; ; i++ {
		var err error
		f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", err
		}
		name = base + "-" + strconv.Itoa(i)
	}
	adoptDirOwner(name, log)
	err := bdb.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	syncDir(filepath.Dir(name))
	return name, nil
}
