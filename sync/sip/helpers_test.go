package sip

import (
	"context"
	"fmt"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/sipsim"
)

// startSim starts a simulator on loopback and stops it with the test.
func startSim(t *testing.T, opts sipsim.Options) *sipsim.Server {
	t.Helper()
	sim := sipsim.New(opts)
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// testConfig is a connector config for sim with short timeouts.
func testConfig(sim *sipsim.Server) Config {
	return Config{Server: sim.Addr(), Domain: sim.Domain(), Listen: "127.0.0.1:0",
		RequestTimeout: 2 * time.Second, RetryMin: 50 * time.Millisecond, RetryMax: 300 * time.Millisecond,
		NotifyTimeout: 2 * time.Second}
}

// running is a Conn in Run with its events collected.
type running struct {
	t      *testing.T
	conn   *Conn
	events chan psync.PhoneEvent
	cancel context.CancelFunc
	done   chan error
	seen   []psync.PhoneEvent
}

func runConn(t *testing.T, cfg Config, users []psync.User) *running {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, conn: c, events: make(chan psync.PhoneEvent, 256), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx, users, r.events) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop ends Run and waits for it (it un-SUBSCRIBEs on the way out).
func (r *running) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(10 * time.Second):
		r.t.Error("Run did not return within 10 s of its context ending")
		return nil
	}
}

// waitFor reads events until one matches, failing after d.
func (r *running) waitFor(d time.Duration, what string, match func(psync.PhoneEvent) bool) psync.PhoneEvent {
	r.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-r.events:
			r.seen = append(r.seen, ev)
			if match(ev) {
				return ev
			}
		case <-deadline:
			r.t.Fatalf("no %s within %s; saw %s", what, d, describe(r.seen))
			return psync.PhoneEvent{}
		}
	}
}

func (r *running) waitSynced() {
	r.t.Helper()
	r.waitFor(10*time.Second, "PhoneSynced", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneSynced })
}

func describe(evs []psync.PhoneEvent) string {
	s := ""
	for _, ev := range evs {
		s += fmt.Sprintf("\n  kind=%d user=%s v=%d call=%+v healthy=%v detail=%q calls=%+v", ev.Kind, ev.User, ev.Version, ev.Call, ev.Healthy, ev.Detail, ev.State.Calls)
	}
	return s
}

func callIs(u psync.UserID, dev string, st psync.CallState) func(psync.PhoneEvent) bool {
	return func(ev psync.PhoneEvent) bool {
		return ev.Kind == psync.PhoneCallChanged && ev.User == u && ev.Call.Device == dev && ev.Call.State == st
	}
}

// waitSim waits for a simulator condition.
func waitSim(t *testing.T, sim *sipsim.Server, what string, cond func(sipsim.Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sim.WaitStats(ctx, cond); err != nil {
		t.Fatalf("simulator: no %s: %v (stats %+v)", what, err, sim.Stats())
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
