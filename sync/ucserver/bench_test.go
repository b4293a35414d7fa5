package ucserver_test

import (
	"context"
	"slices"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// runBench starts a Conn for users and returns its event channel once the
// first PhoneSynced has gone by.
func runBench(b *testing.B, sim *ucsim.Server, users []psync.User) <-chan psync.PhoneEvent {
	b.Helper()
	cfg := testConfig(sim, &logBuf{})
	cfg.InvokeTimeout = 20 * time.Second
	conn, err := ucserver.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	events := make(chan psync.PhoneEvent, 4096)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = conn.Run(ctx, users, events) }()
	b.Cleanup(func() { cancel(); <-done })
	waitKind(b, events, psync.PhoneSynced)
	return events
}

func waitKind(b *testing.B, events <-chan psync.PhoneEvent, k psync.PhoneEventKind) psync.PhoneEvent {
	b.Helper()
	t := time.NewTimer(waitTimeout)
	defer t.Stop()
	for {
		select {
		case ev := <-events:
			if ev.Kind == k {
				return ev
			}
		case <-t.C:
			b.Fatalf("no event of kind %d", k)
		}
	}
}

func percentile(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := min(int(float64(len(s))*p), len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// BenchmarkConn_EventToEngine measures a UCServer event (a call ringing, then
// ending, on a monitored line) until the engine-bound PhoneEvent is on the
// channel, over loopback. Target: p99 ≤ 5 ms.
func BenchmarkConn_EventToEngine(b *testing.B) {
	sim := startSim(b, ucsim.Options{})
	events := runBench(b, sim, bridgeUsers())
	lat := make([]time.Duration, 0, 2*b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		c, err := sim.Ring(aliceDesk, "+4930777")
		if err != nil {
			b.Fatal(err)
		}
		waitKind(b, events, psync.PhoneCallChanged)
		lat = append(lat, time.Since(t0))
		t0 = time.Now()
		if err := sim.HangUp(c); err != nil {
			b.Fatal(err)
		}
		if ev := waitKind(b, events, psync.PhoneCallChanged); ev.Call.State != psync.CallEnded {
			b.Fatalf("got %s", evString(ev))
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(percentile(lat, 0.50), "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
}

// BenchmarkConn_Resubscribe1000 measures a dropped socket until PhoneSynced
// of the new session: detect, new session, subscribe 1,000 users, monitor
// 2,000 lines, 1,000 snapshots. Target: ≤ 3 s.
func BenchmarkConn_Resubscribe1000(b *testing.B) {
	sim, users := scaleSim(b, 1000)
	events := runBench(b, sim, users)
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if sim.DropSockets() != 1 {
			b.Fatal("no socket to drop")
		}
		waitKind(b, events, psync.PhoneSynced)
		took = append(took, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(percentile(took, 0.50), "p50-ms")
	b.ReportMetric(percentile(took, 0.99), "p99-ms")
}
