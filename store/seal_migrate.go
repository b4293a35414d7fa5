package store

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sealStored seals the secrets an earlier build (or another OS) stored in
// clear, in one transaction, then rewrites the file compacted: bbolt leaves
// freed pages as they were, and the old values would stay readable in
// them. It returns the database to go on with (reopened after the rewrite).
// Backups made before keep their values in clear; the log names them.
func sealStored(bdb *bolt.DB, path string, sl sealer, timeout time.Duration, log *slog.Logger) (*bolt.DB, error) {
	n := 0
	err := bdb.Update(func(tx *bolt.Tx) error {
		plain := map[string]string{}
		if err := tx.Bucket(bucketSettings).ForEach(func(k, v []byte) error {
			var s string
			if err := decodeRecord(recSetting, string(k), v, &s); err != nil {
				return err
			}
			if s != "" && !isSealed(s) && isSecretSetting(string(k)) {
				plain[string(k)] = s
			}
			return nil
		}); err != nil {
			return err
		}
		for k, v := range plain {
			if err := putSetting(tx, sl, k, v); err != nil {
				return err
			}
		}
		n += len(plain)
		b := tx.Bucket(bucketCredentials)
		if b == nil {
			return nil
		}
		creds := map[string][]byte{}
		if err := b.ForEach(func(k, v []byte) error {
			var c credential
			if err := decodeRecord(recCredential, string(k), v, &c); err != nil {
				return err
			}
			if c.Sealed == "" && len(c.Data) > 0 {
				creds[string(k)] = c.Data
			}
			return nil
		}); err != nil {
			return err
		}
		for k, data := range creds {
			c, err := sealCredential(sl, data)
			if err != nil {
				return err
			}
			v, err := encodeRecord(recCredential, c)
			if err == nil {
				err = b.Put([]byte(k), v)
			}
			if err != nil {
				return err
			}
		}
		n += len(creds)
		return nil
	})
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("store: sealing the secrets of %s (nothing was changed): %w", path, err)
	}
	if n == 0 {
		return bdb, nil
	}
	log.Info("sealed the secrets stored in clear", "path", path, "count", n, "with", sl.name())
	if err := compactInPlace(bdb, path, timeout, log); err != nil {
		// Sealed all the same; the clear copies stay in free pages until
		// bbolt reuses them.
		log.Warn("could not rewrite the database without the old copies of its secrets; they stay in its free pages until reused",
			"path", path, "err", err)
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if isBackupOf(base, e.Name()) {
				log.Warn("this backup was made before the secrets were sealed and holds them in clear; delete it once the bridge runs well",
					"backup", filepath.Join(dir, e.Name()))
			}
		}
	}
	nbdb, err := openBolt(path, false, timeout)
	if err != nil {
		return nil, err
	}
	return nbdb, nil
}

// compactInPlace closes bdb and replaces its file with a compacted copy.
// bdb is closed when it returns, whatever happened.
func compactInPlace(bdb *bolt.DB, path string, timeout time.Duration, log *slog.Logger) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".compact-*")
	if err != nil {
		bdb.Close()
		return err
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	dst, err := bolt.Open(tmp, dbFileMode, &bolt.Options{Timeout: timeout})
	if err != nil {
		bdb.Close()
		return err
	}
	err = bolt.Compact(dst, bdb, 0)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	bdb.Close()
	if err != nil {
		return err
	}
	adoptDirOwner(tmp, log)
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}
