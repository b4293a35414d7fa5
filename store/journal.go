package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	psync "github.com/presencebridge/presencebridge/sync"
)

// DB is the engine's Journal.
var _ psync.Journal = (*DB)(nil)

// The Journal's writes come from many engine workers at once, so they go
// through bolt's Batch: concurrent calls share one transaction and one
// fsync. Records are encoded before Batch so the shared write transaction
// does nothing but Put; Batch may run a function twice, and these only
// write what they were given.

// PutHold records (or replaces) a hold. It is the write-ahead of
// sync/RULES.md §4.1: the hold is on disk when PutHold returns.
func (db *DB) PutHold(h psync.Hold) error {
	key, err := holdKey(h.Key())
	if err != nil {
		return err
	}
	v, err := encodeRecord(recHold, h)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	put := func(tx *bolt.Tx) error { return tx.Bucket(bucketHolds).Put(key, v) }
	// A lone write-ahead commits at once: the change it guards waits for
	// it (issue 3 budgets 5 ms from phone event to Graph). Concurrent ones
	// share a batch and one fsync.
	if db.holdWriters.Add(1) == 1 {
		err = db.bolt.Update(put)
	} else {
		err = db.bolt.Batch(put)
	}
	db.holdWriters.Add(-1)
	if err != nil {
		return fmt.Errorf("store: put hold %s: %w", h.Key(), err)
	}
	return nil
}

// DeleteHold forgets a hold; forgetting one that is not there is not an
// error (a release may be retried after a crash).
func (db *DB) DeleteHold(k psync.HoldKey) error {
	key, err := holdKey(k)
	if err != nil {
		return err
	}
	err = db.bolt.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHolds).Delete(key)
	})
	if err != nil {
		return fmt.Errorf("store: delete hold %s: %w", k, err)
	}
	return nil
}

// Holds returns every hold, ordered by user, kind and device.
func (db *DB) Holds() ([]psync.Hold, error) {
	var out []psync.Hold
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHolds).ForEach(func(k, v []byte) error {
			var h psync.Hold
			if err := decodeRecord(recHold, printableKey(k), v, &h); err != nil {
				return err
			}
			if want, err := holdKey(h.Key()); err != nil || string(want) != string(k) {
				return fmt.Errorf("hold record %q holds %s, which belongs under another key: %w",
					printableKey(k), h.Key(), ErrCorruptRecord)
			}
			out = append(out, h)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: holds: %w", err)
	}
	return out, nil
}

// holdKey is <user> 0x00 <kind> <device>: the NUL ends the user id (which
// therefore may not contain one), so keys sort by user first.
func holdKey(k psync.HoldKey) ([]byte, error) {
	switch {
	case strings.TrimSpace(string(k.User)) == "":
		return nil, fmt.Errorf("store: hold %s: the user id is empty", k)
	case strings.ContainsRune(string(k.User), 0):
		return nil, fmt.Errorf("store: hold %q: the user id contains a NUL byte", k.String())
	case k.Kind < psync.HoldTeamsSession || k.Kind > psync.HoldDeviceProtection:
		return nil, fmt.Errorf("store: hold %s: unknown hold kind %d", k, k.Kind)
	case k.Kind == psync.HoldDeviceProtection && k.Device == "":
		return nil, fmt.Errorf("store: hold %s: a device protection hold needs a device", k)
	}
	key := make([]byte, 0, len(k.User)+2+len(k.Device))
	key = append(key, k.User...)
	key = append(key, 0, byte(k.Kind))
	return append(key, k.Device...), nil
}

// printableKey renders a key for an error message.
func printableKey(k []byte) string {
	return strings.ToValidUTF8(strings.ReplaceAll(string(k), "\x00", `\0`), "?")
}

// LastKnownRecord is the saved last-known state of one user. A side never
// saved is nil; Saved is when the later of the two was saved.
type LastKnownRecord struct {
	Teams *psync.TeamsPresence
	Phone *psync.PhoneState
	Saved time.Time
}

// The stored forms of the two halves of a last-known record. The halves
// live in separate buckets so that saving one side never has to read the
// other: the write transaction only puts.
type (
	lastTeams struct {
		Presence psync.TeamsPresence `json:"presence"`
		Saved    time.Time           `json:"saved"`
	}
	lastPhone struct {
		State psync.PhoneState `json:"state"`
		Saved time.Time        `json:"saved"`
	}
)

// SaveLastKnown saves the last-known state of some users in one
// transaction; a nil side is left as it is.
func (db *DB) SaveLastKnown(batch []psync.LastKnown) error {
	type put struct {
		bucket []byte
		key    []byte
		value  []byte
	}
	now := db.now().UTC()
	puts := make([]put, 0, len(batch))
	for _, lk := range batch {
		if strings.TrimSpace(string(lk.User)) == "" {
			return fmt.Errorf("store: save last-known: a user id is empty")
		}
		if lk.Teams != nil {
			v, err := encodeRecord(recLastTeams, lastTeams{Presence: *lk.Teams, Saved: now})
			if err != nil {
				return fmt.Errorf("store: save last-known of %s: %w", lk.User, err)
			}
			puts = append(puts, put{bucketLastKnownTeams, []byte(lk.User), v})
		}
		if lk.Phone != nil {
			v, err := encodeRecord(recLastPhone, lastPhone{State: *lk.Phone, Saved: now})
			if err != nil {
				return fmt.Errorf("store: save last-known of %s: %w", lk.User, err)
			}
			puts = append(puts, put{bucketLastKnownPhone, []byte(lk.User), v})
		}
	}
	if len(puts) == 0 {
		return nil
	}
	err := db.bolt.Batch(func(tx *bolt.Tx) error {
		lk := tx.Bucket(bucketLastKnown)
		for _, p := range puts {
			if err := lk.Bucket(p.bucket).Put(p.key, p.value); err != nil {
				return fmt.Errorf("user %s: %w", p.key, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save last-known: %w", err)
	}
	return nil
}

// LastKnown returns the saved last-known state of every user.
func (db *DB) LastKnown() (map[psync.UserID]LastKnownRecord, error) {
	out := make(map[psync.UserID]LastKnownRecord)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		lk := tx.Bucket(bucketLastKnown)
		err := lk.Bucket(bucketLastKnownTeams).ForEach(func(k, v []byte) error {
			var t lastTeams
			if err := decodeRecord(recLastTeams, string(k), v, &t); err != nil {
				return err
			}
			r := out[psync.UserID(k)]
			r.Teams = &t.Presence
			r.Saved = later(r.Saved, t.Saved)
			out[psync.UserID(k)] = r
			return nil
		})
		if err != nil {
			return err
		}
		return lk.Bucket(bucketLastKnownPhone).ForEach(func(k, v []byte) error {
			var p lastPhone
			if err := decodeRecord(recLastPhone, string(k), v, &p); err != nil {
				return err
			}
			r := out[psync.UserID(k)]
			r.Phone = &p.State
			r.Saved = later(r.Saved, p.Saved)
			out[psync.UserID(k)] = r
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: last-known: %w", err)
	}
	return out, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// AppendAudit appends decisions to the audit log and drops the oldest
// entries beyond the limit, in one transaction.
func (db *DB) AppendAudit(batch []psync.Decision) error {
	if len(batch) == 0 {
		return nil
	}
	values := make([][]byte, len(batch))
	for i, d := range batch {
		v, err := encodeRecord(recAudit, d)
		if err != nil {
			return fmt.Errorf("store: append audit: %w", err)
		}
		values[i] = v
	}
	limit := uint64(db.auditLimit.Load())
	err := db.bolt.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		for _, v := range values {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(auditKey(seq), v); err != nil {
				return err
			}
		}
		return trimAudit(b, limit)
	})
	if err != nil {
		return fmt.Errorf("store: append audit: %w", err)
	}
	return nil
}

// auditKey is the fixed-width big-endian sequence number, so that byte
// order is append order and the oldest entry is the first key.
func auditKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// trimAudit deletes the oldest entries until at most limit remain. Entries
// are only ever removed from the front, so the keys are consecutive and the
// count is last-first+1 without walking the bucket.
func trimAudit(b *bolt.Bucket, limit uint64) error {
	c := b.Cursor()
	first, _ := c.First()
	last, _ := c.Last()
	if len(first) != 8 || len(last) != 8 {
		return nil
	}
	n := binary.BigEndian.Uint64(last) - binary.BigEndian.Uint64(first) + 1
	for ; n > limit; n-- {
		if k, _ := c.First(); k == nil {
			break
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Audit returns up to limit audit entries (all when limit <= 0), of one
// user or of everyone (user ""), oldest first and newest last.
func (db *DB) Audit(limit int, user psync.UserID) ([]psync.Decision, error) {
	var out []psync.Decision
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var d psync.Decision
			if err := decodeRecord(recAudit, fmt.Sprintf("#%d", binary.BigEndian.Uint64(pad8(k))), v, &d); err != nil {
				return err
			}
			if user == "" || d.User == user {
				out = append(out, d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: audit: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

// pad8 keeps a damaged short key from panicking the error path.
func pad8(k []byte) []byte {
	if len(k) >= 8 {
		return k[:8]
	}
	return append(make([]byte, 8-len(k)), k...)
}
