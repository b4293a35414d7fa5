package sip

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/sipsim"
)

var errFake = errors.New("rpc down")

// fakeBusy is the Kamailio htable as the connector sees it: entries with
// a TTL, and a log of the calls.
type fakeBusy struct {
	mu    sync.Mutex
	until map[string]time.Time
	sets  map[string]int
	fail  error
}

func newFakeBusy() *fakeBusy {
	return &fakeBusy{until: map[string]time.Time{}, sets: map[string]int{}}
}

func (f *fakeBusy) SetBusy(_ context.Context, ext string, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.until[ext] = time.Now().Add(ttl)
	f.sets[ext]++
	return nil
}

func (f *fakeBusy) ClearBusy(_ context.Context, ext string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	delete(f.until, ext)
	return nil
}

func (f *fakeBusy) Busy(_ context.Context, ext string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return false, f.fail
	}
	u, ok := f.until[ext]
	return ok && time.Now().Before(u), nil
}

func (f *fakeBusy) state(ext string) (on bool, sets int, left time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.until[ext]
	return ok && time.Now().Before(u), f.sets[ext], time.Until(u)
}

func TestConn_DeviceProtectionKamailio(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"201", "221", "202"}})
	cfg := testConfig(sim)
	cfg.Writer, cfg.Lease = WriterKamailio, 3*time.Second
	fb := newFakeBusy()
	cfg.busy = fb
	fb.until["202"] = time.Now().Add(time.Hour) // set by someone else before the start
	r := runConn(t, cfg, []psync.User{anna, ben})
	snap := r.waitFor(10*time.Second, "ben's snapshot", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneSnapshot && ev.User == "ben" })
	if !snap.State.Devices[0].DND {
		t.Fatalf("an existing entry is not DND in the snapshot: %+v", snap.State)
	}
	if got := r.conn.Abilities(); got != psync.AbilityPresence|psync.AbilityProtection {
		t.Fatalf("abilities %b", got)
	}
	ctx := context.Background()
	if err := r.conn.SetDeviceProtection(ctx, anna, "221", true); err != nil {
		t.Fatal(err)
	}
	r.waitFor(5*time.Second, "device changed", func(ev psync.PhoneEvent) bool {
		return ev.Kind == psync.PhoneDeviceChanged && ev.User == "anna" && ev.Device.ID == "221" && ev.Device.DND
	})
	if on, _, left := fb.state("221"); !on || left > 3*time.Second {
		t.Fatalf("entry on=%v ttl left %s, want on with TTL phone.lease", on, left)
	}
	// Refreshed every lease/3 while on: it outlives its first TTL.
	eventually(t, 5*time.Second, "two refreshes", func() bool { _, n, _ := fb.state("221"); return n >= 3 })
	if on, _, _ := fb.state("221"); !on {
		t.Fatal("entry expired while on")
	}
	if err := r.conn.SetDeviceProtection(ctx, anna, "221", false); err != nil {
		t.Fatal(err)
	}
	_, setsAtOff, _ := fb.state("221")
	if on, _, _ := fb.state("221"); on {
		t.Fatal("entry still there after off")
	}
	// Restores: a device that already shows the value to restore needs
	// nothing; one that shows neither expect nor restore was changed by
	// someone else and is left alone.
	fb.mu.Lock()
	fb.until["221"] = time.Now().Add(time.Hour)
	fb.mu.Unlock()
	if err := r.conn.RestoreDeviceProtection(ctx, anna, "221", false, true); err != nil {
		t.Fatalf("already as restore: %v", err)
	}
	if err := r.conn.RestoreDeviceProtection(ctx, anna, "201", true, false); err != nil {
		t.Fatalf("already off: %v", err)
	}
	fb.mu.Lock()
	delete(fb.until, "221")
	fb.mu.Unlock()
	if err := r.conn.RestoreDeviceProtection(ctx, anna, "221", true, true); !errors.Is(err, psync.ErrChangedByUser) {
		// expect on, now off, restore on: not the bridge's value any more.
		t.Fatalf("changed by user: %v", err)
	}
	// The usual restore: the bridge's entry still there, cleared.
	if err := r.conn.SetDeviceProtection(ctx, anna, "221", true); err != nil {
		t.Fatal(err)
	}
	if err := r.conn.RestoreDeviceProtection(ctx, anna, "221", true, false); err != nil {
		t.Fatal(err)
	}
	if on, _, _ := fb.state("221"); on {
		t.Fatal("restore left the entry")
	}
	_, setsAtOff, _ = fb.state("221")
	if err := r.conn.SetDeviceProtection(ctx, anna, "202", true); !errors.Is(err, psync.ErrRejected) {
		t.Fatalf("ben's extension for anna: %v", err)
	}
	// No refresh after off: while 201 (on) is refreshed twice by the
	// same ticker, 221's count stays.
	if err := r.conn.SetDeviceProtection(ctx, anna, "201", true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "201 refreshed twice", func() bool { _, n, _ := fb.state("201"); return n >= 3 })
	if _, n, _ := fb.state("221"); n != setsAtOff {
		t.Fatalf("entry refreshed after off: %d sets, %d at off", n, setsAtOff)
	}
}

func TestConn_WriterNoneRejectsWritesNotGiveBacks(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}})
	r := runConn(t, testConfig(sim), []psync.User{ben})
	r.waitSynced()
	ctx := context.Background()
	if r.conn.Abilities() != 0 {
		t.Fatal("read-only connector claims abilities")
	}
	for name, err := range map[string]error{
		"set presence": r.conn.SetPresence(ctx, ben, psync.PresenceMark{Presence: psync.PhoneBusy}, nil),
		"protection":   r.conn.SetDeviceProtection(ctx, ben, "202", true),
	} {
		if !errors.Is(err, psync.ErrRejected) || !strings.Contains(err.Error(), "sip.writer") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A give-back of what an earlier writer left (the admin switched to
	// none meanwhile) succeeds: a refusal would keep it failing for good,
	// and the earlier writer's entry and publication end at their own
	// lifetime.
	for name, err := range map[string]error{
		"restore presence": r.conn.RestorePresence(ctx, ben, []psync.PresenceMark{{Presence: psync.PhoneBusy}}, psync.PresenceMark{Presence: psync.PhoneNotSet}),
		"restore":          r.conn.RestoreDeviceProtection(ctx, ben, "202", true, false),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Writer kamailio end to end: the real jsonrpcs client against the
// simulator's htable; the proxy answers 486 while the entry is on.
func TestConn_DeviceProtectionOverRPC(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}})
	cfg := testConfig(sim)
	cfg.Writer, cfg.RPCURL, cfg.Lease = WriterKamailio, sim.RPCURL(), time.Minute
	r := runConn(t, cfg, []psync.User{ben})
	r.waitSynced()
	ctx := context.Background()
	if code := sim.Invite("202"); code == 486 {
		t.Fatal("busy before anything was set")
	}
	if err := r.conn.SetDeviceProtection(ctx, ben, "202", true); err != nil {
		t.Fatal(err)
	}
	if code := sim.Invite("202"); code != 486 {
		t.Fatalf("INVITE while protected: %d, want 486", code)
	}
	if _, left, ok := sim.HTableEntry("teamsbusy", "202"); !ok || left > time.Minute || left < 50*time.Second {
		t.Fatalf("entry ok=%v ttl %s, want phone.lease", ok, left)
	}
	if err := r.conn.RestoreDeviceProtection(ctx, ben, "202", true, false); err != nil {
		t.Fatal(err)
	}
	if code := sim.Invite("202"); code == 486 {
		t.Fatal("still busy after the restore")
	}
	got := runDoctor(t, cfg, []psync.User{ben})
	if c := got["rpc"]; !c.OK {
		t.Fatalf("doctor rpc: %+v", c)
	}
	cfg.HTable = "nosuchtable"
	got = runDoctor(t, cfg, []psync.User{ben})
	if c := got["rpc"]; c.OK || !strings.Contains(c.Detail+c.Fix, "sip.htable") {
		t.Fatalf("doctor with a wrong table: %+v", c)
	}
}
