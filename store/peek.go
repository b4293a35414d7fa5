package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PeekSettings reads the stored settings of the database at path without
// opening it as a DB: read-only, whatever its schema version, migrating
// nothing. Install uses it to shape the service around a database an older
// build wrote (which Open with ReadOnly refuses until it is migrated). The
// file is checked as Open checks it; a database in use is ErrInUse.
func PeekSettings(path string, timeout time.Duration) (map[string]string, error) {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	if err := checkBoltHeader(path); err != nil {
		return nil, damaged(path, err)
	}
	bdb, err := openBolt(path, true, timeout)
	if err != nil {
		return nil, err
	}
	defer bdb.Close()
	if err := checkBoltPages(path); err != nil {
		return nil, damaged(path, err)
	}
	var out map[string]string
	err = guard("read settings", func() error {
		return bdb.View(func(tx *bolt.Tx) (err error) {
			if _, err := readSchemaVersion(tx); err != nil {
				return err
			}
			if tx.Bucket(bucketSettings) == nil {
				return errors.New("it has no settings bucket")
			}
			out, err = readSettings(tx, platformSealer())
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: settings of %s: %w", path, err)
	}
	return out, nil
}
