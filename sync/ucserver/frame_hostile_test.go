package ucserver_test

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver"
)

// frameHeapBudget is what the whole test process (hostile server included)
// may grow by while one hostile frame is handled.
const frameHeapBudget = 64 << 20

// maxLogLine bounds every line the connector logs about a hostile frame.
const maxLogLine = 4 << 10

// ones is the frame [1,1,1,…] of n bytes: every element an error.
func ones(n int) string {
	var b strings.Builder
	b.Grow(n)
	b.WriteString("[1")
	for b.Len()+3 <= n {
		b.WriteString(",1")
	}
	b.WriteString("]")
	return b.String()
}

// heapGrowth runs load while sampling HeapInuse and returns the peak growth
// over the settled heap before it.
func heapGrowth(load func()) uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	load()
	close(stop)
	<-stopped
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

func longestLine(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		n = max(n, len(l))
	}
	return n
}

// TestConn_Run_HostileFrames: a frame [1,1,1,…] just under the frame limit
// is dropped with a bounded error and log line and the session goes on; one
// of 8 MiB, over the limit, ends the session, which is opened again. Neither
// costs more than frameHeapBudget, nor panics.
func TestConn_Run_HostileFrames(t *testing.T) {
	hs := newHostile(t)
	_, rec, logs := startHostile(t, hs, func(c *ucserver.Config) {
		c.ReconnectMin, c.ReconnectMax = 20*time.Millisecond, 200*time.Millisecond
	}, nil)

	under := ones(ucserver.MaxFrameBytes - 1)
	grew := heapGrowth(func() {
		hs.push(t, under)
		hs.push(t, dndMarker(true))
		rec.next(t, "the marker after the frame under the limit", isDND(true))
	})
	t.Logf("%.1f MiB frame [1,1,…] under the limit: heap grew by %.1f MB, longest log line %d bytes",
		float64(len(under))/(1<<20), float64(grew)/1e6, longestLine(logs.String()))
	if !raceEnabled && grew > frameHeapBudget {
		t.Errorf("a frame under the limit grew the heap by %d MB, budget %d MB", grew>>20, frameHeapBudget>>20)
	}
	if !strings.Contains(logs.String(), "frame dropped") {
		t.Errorf("the bad frame was not logged:\n%s", logs.String())
	}
	for _, e := range rec.all() {
		if e.Kind == psync.PhoneHealth && !e.Healthy {
			t.Fatalf("a bad frame under the limit cost the session: %s", evString(e))
		}
	}

	over := ones(8 << 20)
	grew = heapGrowth(func() {
		hs.push(t, over)
		rec.next(t, "the session dropped", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneHealth && !ev.Healthy })
		rec.next(t, "synced again", isKind(psync.PhoneSynced))
	})
	t.Logf("8 MiB frame [1,1,…]: heap grew by %.1f MB, longest log line %d bytes", float64(grew)/1e6, longestLine(logs.String()))
	if !raceEnabled && grew > frameHeapBudget {
		t.Errorf("an 8 MiB frame grew the heap by %d MB, budget %d MB", grew>>20, frameHeapBudget>>20)
	}
	if !strings.Contains(logs.String(), "over the 4 MiB limit") {
		t.Errorf("the drop does not say why:\n%s", logs.String())
	}
	if n := longestLine(logs.String()); n > maxLogLine {
		t.Errorf("a log line of %d bytes", n)
	}
	// The new session works (its snapshot had DND off again). The old socket's
	// goroutines must be gone first, or one of them could take the frame.
	hs.waitSockets(t, 1)
	hs.push(t, dndMarker(true))
	rec.next(t, "an event on the new session", isDND(true))
}
