package store

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the schema version this build writes.
const SchemaVersion = schemaVersion

// WithTestMigration returns opts under which Open treats schema version to
// as current and knows one more migration, to-1 → to. The product has no
// such step; this exercises the migration path (backup, one transaction).
func WithTestMigration(opts Options, to uint64, apply func(tx *bolt.Tx) error) Options {
	opts.schemaVersion = to
	opts.extraMigrations = append(opts.extraMigrations, migration{from: to - 1, name: "test step", apply: apply})
	return opts
}

// SetNow replaces the clock that stamps last-known records.
func SetNow(db *DB, now func() time.Time) { db.now = now }

// WithSchemaVersion returns opts under which Open writes an older schema
// version, to make a database as an older build did.
func WithSchemaVersion(opts Options, v uint64) Options {
	opts.schemaVersion = v
	return opts
}

// WithSealer returns opts under which Open seals secrets with s (nil: not
// at all) instead of the platform's way.
func WithSealer(opts Options, s Sealer) Options {
	opts.sealerSet = true
	if s != nil {
		opts.sealer = s
	}
	return opts
}

// Sealer is the store's sealer, for fakes in tests.
type Sealer = sealer

// FakeSealer seals by reversing and masking the bytes: not secret, but
// never the clear text, so tests can look for the clear text in the file.
type FakeSealer struct{ Name string }

func (f FakeSealer) name() string { return f.Name }

func (FakeSealer) seal(p []byte) ([]byte, error) {
	out := make([]byte, len(p))
	for i, c := range p {
		out[len(p)-1-i] = c ^ 0x5a
	}
	return out, nil
}

func (f FakeSealer) unseal(b []byte) ([]byte, error) { return f.seal(b) }
