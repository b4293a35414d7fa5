package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The whole database, drawn once. Every bucket and key below has a named
// variable in this file; no other file spells a bucket name.
//
//	meta/
//	    version                  -> uint64 big-endian: schema version
//	    demo                     -> record "demo" v1: {claimed}; present when
//	                                `presencebridge demo` created the database
//	                                (the demo runs on no other)
//	settings/
//	    <setting key>            -> record "setting" v1: canonical value string
//	                                (only keys an admin set; the rest take
//	                                the default of psync's registry)
//	profiles/
//	    <profile name>           -> record "profile" v1: psync.Profile
//	users/
//	    <user id>                -> record "user" v1: psync.User
//	lastknown/
//	    teams/
//	        <user id>            -> record "lastknown.teams" v1: {presence, saved}
//	    phone/
//	        <user id>            -> record "lastknown.phone" v1: {state, saved}
//	holds/
//	    <user id> 0x00 <kind byte> <device>
//	                             -> record "hold" v1: psync.Hold (what the
//	                                bridge imposed, the value it replaced, the
//	                                lease)
//	subscriptions/
//	    <subscription id>        -> record "subscription" v1: Subscription
//	audit/                          (bucket sequence = last sequence number used)
//	    <uint64 big-endian seq>  -> record "audit" v1: psync.Decision
//	credentials/                    (schema 2)
//	    tokencache/<account>     -> record "credential" v1: an MSAL token cache
//	                                of a Teams service account (subscribe mode)
//	    encryption-cert          -> record "credential" v1: the PEM of the
//	                                bridge's certificate for rich notifications
//
// A record is JSON in an envelope {"v":<record version>,"d":<data>} (see
// record.go). meta/version is the one value outside an envelope: it is what
// every build must be able to read before it knows any record format.
var (
	bucketMeta           = []byte("meta")
	keySchemaVersion     = []byte("version")
	keyDemo              = []byte("demo")
	bucketSettings       = []byte("settings")
	bucketProfiles       = []byte("profiles")
	bucketUsers          = []byte("users")
	bucketLastKnown      = []byte("lastknown")
	bucketLastKnownTeams = []byte("teams")
	bucketLastKnownPhone = []byte("phone")
	bucketHolds          = []byte("holds")
	bucketSubscriptions  = []byte("subscriptions")
	bucketAudit          = []byte("audit")
	bucketCredentials    = []byte("credentials")
	prefixTokenCache     = "tokencache/"
	keyEncryptionCert    = []byte("encryption-cert")
)

// topBuckets are the buckets at the root of the tree, in the order above.
func topBuckets() [][]byte {
	return [][]byte{bucketMeta, bucketSettings, bucketProfiles, bucketUsers,
		bucketLastKnown, bucketHolds, bucketSubscriptions, bucketAudit, bucketCredentials}
}

// v1Buckets are the top buckets of schema version 1, as createV1 made them.
func v1Buckets() [][]byte {
	return [][]byte{bucketMeta, bucketSettings, bucketProfiles, bucketUsers,
		bucketLastKnown, bucketHolds, bucketSubscriptions, bucketAudit}
}

// schemaVersion is the version of the tree above that this build writes.
// Bump it together with a new entry in migrations.
const schemaVersion uint64 = 2

// migration turns a database of schema version from into from+1. It runs in
// the one write transaction of Open, after a backup of the file was taken.
type migration struct {
	from  uint64
	name  string
	apply func(tx *bolt.Tx) error
}

// migrations is the ordered history of the schema. A new database is created
// by running it from version 0 (an empty bolt file), so the step to version 1
// is the schema's creation and every later step is exercised on the same path
// as an upgrade. Add a step here when schemaVersion goes up; never edit a
// released step.
func migrations() []migration {
	return []migration{
		{from: 0, name: "create the version 1 tree and the default profile", apply: createV1},
		{from: 1, name: "add the credentials bucket", apply: func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketCredentials)
			return err
		}},
	}
}

// createV1 creates the tree of version 1 and the default profile every
// installation has.
func createV1(tx *bolt.Tx) error {
	for _, name := range v1Buckets() {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	lk := tx.Bucket(bucketLastKnown)
	for _, name := range [][]byte{bucketLastKnownTeams, bucketLastKnownPhone} {
		if _, err := lk.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s/%s: %w", bucketLastKnown, name, err)
		}
	}
	p := psync.NewProfile(psync.DefaultProfileName)
	v, err := encodeRecord(recProfile, p)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketProfiles).Put([]byte(p.Name), v)
}

// readSchemaVersion returns the schema version of an open database, or says
// why the tree is not ours.
func readSchemaVersion(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, fmt.Errorf("it has no %q bucket (a bolt database of another program?)", bucketMeta)
	}
	v := meta.Get(keySchemaVersion)
	if len(v) != 8 {
		return 0, fmt.Errorf("its schema version is %d bytes long instead of 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// checkTree reports a bucket of the current tree that is missing, so that
// the accessors can rely on every bucket being there.
func checkTree(tx *bolt.Tx) error {
	want := topBuckets()
	if v, err := readSchemaVersion(tx); err == nil && v < 2 {
		want = v1Buckets() // opened by a test as an older build
	}
	for _, name := range want {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("bucket %q is missing", name)
		}
	}
	for _, name := range [][]byte{bucketLastKnownTeams, bucketLastKnownPhone} {
		if tx.Bucket(bucketLastKnown).Bucket(name) == nil {
			return fmt.Errorf("bucket %q/%q is missing", bucketLastKnown, name)
		}
	}
	return nil
}

func writeSchemaVersion(tx *bolt.Tx, v uint64) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	return meta.Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, v))
}

// migrate runs every step from version from to version to in tx, recording
// the version after each step so a failure names where it stopped.
func migrate(tx *bolt.Tx, steps []migration, from, to uint64) error {
	for v := from; v < to; v++ {
		var step *migration
		for i := range steps {
			if steps[i].from == v {
				step = &steps[i]
				break
			}
		}
		if step == nil {
			return fmt.Errorf("no migration from schema version %d to %d in this build", v, v+1)
		}
		if err := step.apply(tx); err != nil {
			return fmt.Errorf("migration %d→%d (%s): %w", v, v+1, step.name, err)
		}
		if err := writeSchemaVersion(tx, v+1); err != nil {
			return fmt.Errorf("migration %d→%d: record version: %w", v, v+1, err)
		}
	}
	return nil
}
