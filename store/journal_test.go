package store_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	gosync "sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

var t0 = time.Date(2025, 11, 25, 15, 0, 0, 0, time.UTC)

func TestDB_Holds(t *testing.T) {
	db := openTemp(t, store.Options{})
	holds := []psync.Hold{
		{User: "200", Kind: psync.HoldPhonePresence, Set: "busy", Replaced: "available", Reason: "Teams call", Rule: "1.call", Flag: "apply_teams_to_phone", Profile: "default", Since: t0, Lease: t0.Add(10 * time.Minute)},
		{User: "100", Kind: psync.HoldTeamsSession, Set: "InACall", Reason: "phone call", Rule: "2.call", Since: t0, Lease: t0.Add(10 * time.Minute)},
		{User: "100", Kind: psync.HoldDeviceProtection, Device: "desk", Set: "on", Replaced: "off", Reason: "Teams call", Since: t0},
		{User: "100", Kind: psync.HoldDeviceProtection, Device: "soft", Set: "on", Replaced: "off", Since: t0},
	}
	for _, h := range holds {
		if err := db.PutHold(h); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Holds()
	if err != nil {
		t.Fatal(err)
	}
	want := []psync.Hold{holds[1], holds[2], holds[3], holds[0]} // by user, kind, device
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Holds() =\n%+v\nwant\n%+v", got, want)
	}

	// Replacing keeps one per key; deleting is idempotent.
	h := holds[0]
	h.Set = "dnd"
	if err := db.PutHold(h); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := db.DeleteHold(holds[2].Key()); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = db.Holds()
	if len(got) != 3 || got[2].Set != "dnd" {
		t.Errorf("after replace and delete: %+v", got)
	}

	bad := []psync.Hold{
		{Kind: psync.HoldTeamsSession},
		{User: "  ", Kind: psync.HoldTeamsSession},
		{User: "a\x00b", Kind: psync.HoldTeamsSession},
		{User: "1", Kind: 0},
		{User: "1", Kind: 99},
		{User: "1", Kind: psync.HoldDeviceProtection},
	}
	for _, h := range bad {
		if err := db.PutHold(h); err == nil {
			t.Errorf("PutHold(%+v) succeeded", h)
		}
		if err := db.DeleteHold(h.Key()); err == nil {
			t.Errorf("DeleteHold(%+v) succeeded", h.Key())
		}
	}
	if got, _ := db.Holds(); len(got) != 3 {
		t.Errorf("bad holds changed the store: %d holds", len(got))
	}
}

func TestDB_PutHold_Concurrent(t *testing.T) {
	db := openTemp(t, store.Options{})
	const writers, each = 32, 25
	var wg gosync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				h := psync.Hold{User: psync.UserID(fmt.Sprintf("u%02d", w)), Kind: psync.HoldDeviceProtection,
					Device: fmt.Sprintf("d%02d", i), Set: "on", Replaced: "off", Since: t0}
				if err := db.PutHold(h); err != nil {
					errs <- err
				}
				if i%5 == 0 {
					if err := db.DeleteHold(h.Key()); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := db.Holds()
	if err != nil {
		t.Fatal(err)
	}
	if want := writers * (each - each/5); len(got) != want {
		t.Errorf("%d holds, want %d", len(got), want)
	}
}

func TestDB_LastKnown(t *testing.T) {
	db := openTemp(t, store.Options{})
	now := t0
	store.SetNow(db, func() time.Time { return now })
	teams := &psync.TeamsPresence{Availability: "Busy", Activity: "InACall", Sequence: "0001", Observed: t0}
	phone := &psync.PhoneState{Presence: psync.PhoneBusy, Devices: []psync.Device{{ID: "desk", DND: true}},
		Calls: []psync.Call{{ID: "c1", Device: "desk", State: psync.CallConnected}}}
	if err := db.SaveLastKnown([]psync.LastKnown{{User: "100", Teams: teams, Phone: phone}, {User: "200", Teams: teams}}); err != nil {
		t.Fatal(err)
	}
	// Nil sides stay; a later save of one side moves Saved.
	now = t0.Add(time.Minute)
	teams2 := &psync.TeamsPresence{Availability: "Available", Activity: "Available", Observed: now}
	if err := db.SaveLastKnown([]psync.LastKnown{{User: "100", Teams: teams2}, {User: "300"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveLastKnown(nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.LastKnown()
	if err != nil {
		t.Fatal(err)
	}
	want := map[psync.UserID]store.LastKnownRecord{
		"100": {Teams: teams2, Phone: phone, Saved: t0.Add(time.Minute)},
		"200": {Teams: teams, Saved: t0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LastKnown() =\n%#v\nwant\n%#v", got, want)
	}
	if err := db.SaveLastKnown([]psync.LastKnown{{User: "", Teams: teams}}); err == nil {
		t.Error("SaveLastKnown with an empty user succeeded")
	}

	// Deleting a user takes its last-known state along.
	if err := db.PutUser(psync.User{ID: "200"}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUser("200"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.LastKnown(); len(got) != 1 {
		t.Errorf("after DeleteUser: %v", got)
	}
}

func TestDB_AppendAudit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.Open(path, store.Options{AuditLimit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var all []psync.Decision
	for i := range 120 {
		d := psync.Decision{At: t0.Add(time.Duration(i) * time.Second), User: psync.UserID(fmt.Sprintf("u%d", i%3)),
			Side: psync.SidePhone, What: "presence", Old: "available", New: "busy", Reason: "Teams call",
			Rule: "1.call", Flag: "apply_teams_to_phone", Profile: "default", Outcome: psync.OutcomeApplied}
		all = append(all, d)
	}
	for i := 0; i < len(all); i += 7 {
		if err := db.AppendAudit(all[i:min(i+7, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Audit(0, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, all[70:]) {
		t.Errorf("Audit(0) kept %d entries from %v, want the newest 50", len(got), got[0].At)
	}
	got, _ = db.Audit(5, "u1")
	if len(got) != 5 || got[4] != all[118] || got[0] != all[106] {
		t.Errorf("Audit(5, u1) = %v", got)
	}
	if got, _ := db.Audit(3, "nobody"); len(got) != 0 {
		t.Errorf("Audit of an unknown user: %v", got)
	}
	closeChecked(t, db)

	// The audit.limit setting governs when Options leave it open, and
	// follows a change at once.
	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeChecked(t, db)
	if err := db.SetSetting("audit.limit", "100"); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendAudit(all[:60]); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Audit(0, ""); len(got) != 100 || got[99] != all[59] {
		t.Errorf("with audit.limit 100: %d entries", len(got))
	}
}

func TestDB_RecordVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser(psync.User{ID: "100"}); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)

	cases := []struct {
		name, value string
		want        error
		say         string
	}{
		{"future version", `{"v":99,"d":{"id":"100"}}`, store.ErrRecordVersion, "record version 99"},
		{"no version", `{"d":{"id":"100"}}`, store.ErrCorruptRecord, "no record version"},
		{"not json", `garbage`, store.ErrCorruptRecord, "not a valid record"},
		{"wrong shape", `{"v":1,"d":[1,2]}`, store.ErrCorruptRecord, "does not decode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			boltFile(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("users")).Put([]byte("100"), []byte(tc.value))
			})
			db, err := store.Open(path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer closeChecked(t, db)
			_, err = db.Users()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) || !strings.Contains(err.Error(), `"100"`) {
				t.Errorf("Users() error %v, want %v saying %q about record \"100\"", err, tc.want, tc.say)
			}
			// The damaged record blocks nothing else and is not lost.
			if _, err := db.Profiles(); err != nil {
				t.Error(err)
			}
			if err := db.PutUser(psync.User{ID: "200"}); err != nil {
				t.Error(err)
			}
		})
	}
}
