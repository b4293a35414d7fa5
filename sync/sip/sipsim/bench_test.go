package sipsim

import (
	"testing"
	"time"
)

// BenchmarkCallNotify measures one call's lifecycle (ring, answer, end:
// four NOTIFYs in the Kamailio shape) to one UDP subscriber on loopback.
func BenchmarkCallNotify(b *testing.B) {
	sim := New(Options{Extensions: []string{"201"}})
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	w := newWatcher(b)
	if res := w.do(w.subscribeReq(sim, "201", "dialog", 3600)); res.StatusCode != 200 {
		b.Fatal(res.StatusCode)
	}
	w.next(2 * time.Second)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := sim.StartCall("201")
		_ = sim.Answer(id)
		_ = sim.EndCall(id)
		for range 4 {
			select {
			case <-w.notifies:
			case <-time.After(5 * time.Second):
				b.Fatal("NOTIFY lost")
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*4)/b.Elapsed().Seconds(), "notifies/s")
}
