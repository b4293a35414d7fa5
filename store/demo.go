package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	psync "github.com/presencebridge/presencebridge/sync"
)

// demoMark is the value of meta/demo: when the demo claimed the database.
type demoMark struct {
	Claimed time.Time `json:"claimed"`
}

// ClaimForDemo marks the database as the demo's, or refuses with ErrNotDemo
// when it holds a configuration the demo did not create: settings, users,
// or profiles other than the untouched default one. The demo then cannot
// overwrite a real tenant, client secret or UCServer address with its
// simulators'. A database the demo claimed before is claimed again.
func (db *DB) ClaimForDemo() error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyDemo); v != nil {
			var m demoMark
			return decodeRecord(recDemo, string(keyDemo), v, &m)
		}
		var holds []string
		if n := tx.Bucket(bucketSettings).Stats().KeyN; n > 0 {
			holds = append(holds, fmt.Sprintf("%d settings", n))
		}
		if n := tx.Bucket(bucketUsers).Stats().KeyN; n > 0 {
			holds = append(holds, fmt.Sprintf("%d users", n))
		}
		pristine := true
		err := tx.Bucket(bucketProfiles).ForEach(func(k, v []byte) error {
			var p psync.Profile
			if err := decodeRecord(recProfile, string(k), v, &p); err != nil {
				return err
			}
			if p != psync.NewProfile(psync.DefaultProfileName) {
				pristine = false
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !pristine {
			holds = append(holds, "profiles")
		}
		if len(holds) > 0 {
			return fmt.Errorf("%w (it has %s)", ErrNotDemo, nameList(holds))
		}
		v, err := encodeRecord(recDemo, demoMark{Claimed: db.now().UTC()})
		if err != nil {
			return err
		}
		return meta.Put(keyDemo, v)
	})
	if err != nil {
		return fmt.Errorf("store: %s %w", db.path, err)
	}
	return nil
}

// IsDemo reports whether the demo claimed the database.
func (db *DB) IsDemo() (bool, error) {
	var demo bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		demo = tx.Bucket(bucketMeta).Get(keyDemo) != nil
		return nil
	})
	return demo, err
}
