package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

func openStore(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRunDaemon_SecondInstanceFailsAtOnce(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	began := time.Now()
	err := service.RunDaemon(context.Background(), service.DaemonOptions{
		DBPath: b.db, Socket: filepath.Join(shortDir(t), "other.sock"),
		Adapters: func(context.Context, service.AdapterEnv) (service.Adapters, error) {
			t.Error("the second instance got as far as building sides")
			return service.Adapters{}, errors.New("unreachable")
		},
	})
	took := time.Since(began)
	if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), "another presencebridge is already running on "+b.db) {
		t.Fatalf("second instance: %v", err)
	}
	if took > 2*time.Second {
		t.Fatalf("second instance took %s to fail", took)
	}
	// The first one is unharmed.
	if _, err := service.NewClient(b.socket).Overview(ctx(t)); err != nil {
		t.Fatalf("first instance after the second tried: %v", err)
	}
}

// A stop while a side is down releases what it can within its deadline,
// keeps the rest in the journal for the next start, says so, and is a clean
// stop: before, it returned "not everything was released … context
// deadline exceeded" and the process exited with status 1.
func TestRunDaemon_StopWithSideDownKeepsHoldsAndExitsCleanly(t *testing.T) {
	b := startBridge(t, bridgeOpts{users: 4, stopTimeout: 2 * time.Second})
	b.office.Teams.SetClient("202", "Busy", "InACall") // 202 is on "protected"
	waitFor(t, "holds on 202", func() bool {
		u, err := b.run.Local.User(ctx(t), "202")
		return err == nil && len(u.Holds) == 3
	})
	b.office.Phone.Gate.SetDown(true)
	took, err := b.stop(t)
	if err != nil {
		t.Fatalf("stop with the phone side down: %v\n%s", err, b.logs)
	}
	if took > 3*time.Second {
		t.Fatalf("stop took %s", took)
	}
	if !strings.Contains(b.logs.String(), "kept for the next start") {
		t.Fatalf("the log does not say what was kept:\n%s", b.logs)
	}
	holds, err := openStore(t, b.db).Holds()
	if err != nil || len(holds) != 3 {
		t.Fatalf("holds kept for the next start: %d (%v), want 3", len(holds), err)
	}
}

func TestRunDaemon_GracefulStopReleasesHolds(t *testing.T) {
	b := startBridge(t, bridgeOpts{users: 8})
	// Holds on both sides: phone calls (Teams sessions) and Teams calls
	// (phone presence, and line DND on "protected" users).
	for _, id := range []psync.UserID{"201", "203", "205"} {
		b.office.Phone.Call(id, "desk", "c-"+string(id), psync.CallConnected)
	}
	for _, id := range []psync.UserID{"202", "204", "206"} {
		b.office.Teams.SetClient(id, "Busy", "InACall")
	}
	waitFor(t, "holds on both sides", func() bool {
		ov, err := b.run.Local.Overview(ctx(t))
		return err == nil && ov.Engine.Holds >= 6 && ov.Engine.InFlight == 0
	})
	took, err := b.stop(t)
	if err != nil {
		t.Fatalf("stop: %v\n%s", err, b.logs)
	}
	if took > 10*time.Second {
		t.Fatalf("stop took %s", took)
	}
	db := openStore(t, b.db)
	holds, err := db.Holds()
	if err != nil || len(holds) != 0 {
		t.Fatalf("%d holds left after a graceful stop: %v %+v", len(holds), err, holds)
	}
	for _, id := range []psync.UserID{"201", "203", "205"} {
		if act, _ := b.office.Teams.BridgeSession(id); act != "" {
			t.Errorf("Teams session of %s still set", id)
		}
	}
	for _, id := range []psync.UserID{"202", "204", "206"} {
		st := b.office.Phone.State(id)
		if st.Presence != psync.PhoneNotSet {
			t.Errorf("phone presence of %s still %s", id, st.Presence)
		}
		for _, d := range st.Devices {
			if d.DND {
				t.Errorf("line DND of %s/%s still on", id, d.ID)
			}
		}
	}
	audit, _ := db.Audit(0, "")
	released := 0
	for _, d := range audit {
		if d.Outcome == psync.OutcomeReleased {
			released++
		}
	}
	if released < 6 {
		t.Fatalf("audit log has %d releases; the flush lost some", released)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestRunDaemon_RefusesWithoutSides(t *testing.T) {
	dir := shortDir(t)
	err := service.RunDaemon(context.Background(), service.DaemonOptions{DBPath: filepath.Join(dir, "state.db"), Socket: filepath.Join(dir, "c.sock")})
	if err == nil || !strings.Contains(err.Error(), "cannot run, missing") || !strings.Contains(err.Error(), "phone.system") {
		t.Fatalf("without an adapter factory: %v", err)
	}
}

func TestRunDaemon_BadFactoryAndMetricsAddress(t *testing.T) {
	dir := shortDir(t)
	db := filepath.Join(dir, "state.db")
	err := service.RunDaemon(context.Background(), service.DaemonOptions{DBPath: db, Socket: filepath.Join(dir, "c.sock"),
		Adapters: func(context.Context, service.AdapterEnv) (service.Adapters, error) {
			return service.Adapters{}, errors.New("tenant unreachable")
		}})
	if err == nil || !strings.Contains(err.Error(), "setting up the sides: tenant unreachable") {
		t.Fatalf("factory error: %v", err)
	}
	err = service.RunDaemon(context.Background(), service.DaemonOptions{DBPath: db, MetricsAddr: "0.0.0.0:9464"})
	if err == nil || !strings.Contains(err.Error(), "--metrics-allow-remote") {
		t.Fatalf("non-loopback metrics: %v", err)
	}
}
