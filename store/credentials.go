package store

import (
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Credentials the Teams adapter keeps between runs: the MSAL token cache of
// each service account (so a restart needs no new sign-in) and the
// certificate Graph encrypts rich notifications with. They are secrets: the
// YAML export never includes them.

// errNoCredentials: only a database of schema 1 (opened by a test as an
// older build would) lacks the bucket; Open upgrades every other one.
var errNoCredentials = errors.New("the database has no credentials bucket (schema 1)")

type credential struct {
	Data []byte `json:"data"`
	// Sealed names the sealer of Data (seal.go); "" = in clear.
	Sealed string `json:"sealed,omitempty"`
}

// sealCredential returns the record to store for data.
func sealCredential(sl sealer, data []byte) (credential, error) {
	if sl == nil || len(data) == 0 {
		return credential{Data: data}, nil
	}
	blob, err := sl.seal(data)
	if err != nil {
		return credential{}, fmt.Errorf("sealing: %w", err)
	}
	return credential{Data: blob, Sealed: sl.name()}, nil
}

// unsealCredential returns a stored credential's data in clear.
func unsealCredential(sl sealer, c credential) ([]byte, error) {
	if c.Sealed == "" {
		return c.Data, nil
	}
	if sl == nil || sl.name() != c.Sealed {
		return nil, fmt.Errorf("sealed with %s: %w", c.Sealed, errSealedElsewhere)
	}
	plain, err := sl.unseal(c.Data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s: %v)", errSealedElsewhere, c.Sealed, err)
	}
	return plain, nil
}

// TokenCache returns the stored token cache of a service account, or nil
// when there is none.
func (db *DB) TokenCache(account string) ([]byte, error) {
	if strings.TrimSpace(account) == "" {
		return nil, errors.New("store: token cache: the account is empty")
	}
	return db.getCredential([]byte(prefixTokenCache + strings.ToLower(account)))
}

// PutTokenCache stores the token cache of a service account.
func (db *DB) PutTokenCache(account string, data []byte) error {
	if strings.TrimSpace(account) == "" {
		return errors.New("store: token cache: the account is empty")
	}
	return db.putCredential([]byte(prefixTokenCache+strings.ToLower(account)), data)
}

// EncryptionCert returns the stored PEM of the bridge's notification
// encryption certificate, or nil when there is none.
func (db *DB) EncryptionCert() ([]byte, error) { return db.getCredential(keyEncryptionCert) }

// PutEncryptionCert stores the PEM of the notification encryption certificate.
func (db *DB) PutEncryptionCert(pem []byte) error { return db.putCredential(keyEncryptionCert, pem) }

func (db *DB) getCredential(key []byte) ([]byte, error) {
	var (
		out        []byte
		unreadable error
	)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCredentials)
		if b == nil {
			return errNoCredentials
		}
		v := b.Get(key)
		if v == nil {
			return nil
		}
		var c credential
		if err := decodeRecord(recCredential, string(key), v, &c); err != nil {
			return err
		}
		out, unreadable = unsealCredential(db.sealer, c) // decoded: not memory of the transaction
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: credential %s: %w", key, err)
	}
	if unreadable != nil {
		// A token cache is made again by a sign-in, the certificate by the
		// Teams adapter: as if none were stored.
		db.log.Warn("a stored credential cannot be read on this machine; it counts as absent", "key", string(key), "err", unreadable)
		return nil, nil
	}
	return out, nil
}

func (db *DB) putCredential(key, data []byte) error {
	c, err := sealCredential(db.sealer, data)
	if err != nil {
		return fmt.Errorf("store: credential %s: %w", key, err)
	}
	v, err := encodeRecord(recCredential, c)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCredentials)
		if b == nil {
			return errNoCredentials
		}
		if data == nil {
			return b.Delete(key)
		}
		return b.Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("store: put credential %s: %w", key, err)
	}
	return nil
}
