package store_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// BenchmarkDB_SaveLastKnownBatch measures sustained, persisted (fsync'd)
// presence updates per second when many engine workers save at once, each
// call carrying one user's update, and DB.Batch folds concurrent calls into
// shared transactions.
func BenchmarkDB_SaveLastKnownBatch(b *testing.B) {
	for _, par := range []int{16, 64} {
		b.Run(fmt.Sprintf("writers=%dxGOMAXPROCS", par), func(b *testing.B) {
			db := openTemp(b, store.Options{})
			var next atomic.Int64
			b.SetParallelism(par)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := next.Add(1)
					tp := psync.TeamsPresence{Availability: "Busy", Activity: "InACall",
						Sequence: fmt.Sprintf("%016d", n), Observed: time.Now()}
					lk := []psync.LastKnown{{User: psync.UserID(fmt.Sprintf("user-%04d", n%2000)), Teams: &tp}}
					if err := db.SaveLastKnown(lk); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

// BenchmarkDB_PutHold measures the write-ahead latency the engine waits for
// before it changes a side: one PutHold at a time, each durable on return.
func BenchmarkDB_PutHold(b *testing.B) {
	db := openTemp(b, store.Options{})
	lat := make([]time.Duration, 0, b.N)
	h := psync.Hold{Kind: psync.HoldPhonePresence, Set: "busy", Replaced: "available",
		Reason: "Teams call", Rule: "1.call", Since: time.Now(), Lease: time.Now().Add(10 * time.Minute)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		h.User = psync.UserID(fmt.Sprintf("user-%04d", i%2000))
		start := time.Now()
		if err := db.PutHold(h); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
