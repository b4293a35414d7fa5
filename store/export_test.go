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
