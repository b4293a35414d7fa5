package sip

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/sipsim"
)

// BenchmarkNotifyToEvent measures a NOTIFY on the wire (loopback UDP) to
// the PhoneCallChanged it causes: parse, merge, map, and the Run loop.
// Each iteration alternates a confirmed call and an idle document, so
// every NOTIFY is one change.
func BenchmarkNotifyToEvent(b *testing.B) {
	sim := sipsim.New(sipsim.Options{Extensions: []string{"202"}})
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	c, err := New(testConfig(sim))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan psync.PhoneEvent, 16)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, []psync.User{ben}, events) }()
	defer func() { cancel(); <-done }()
	for ev := range events {
		if ev.Kind == psync.PhoneSynced {
			break
		}
	}
	sub := sim.Subscriptions("202")[0]
	n := newNotifier(b)
	contact := contactOf(b, sub)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := confirmedDoc(10000+i, "bench")
		if i%2 == 1 {
			body = `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="` + strconv.Itoa(10000+i) + `" state="full"/>`
		}
		start := time.Now()
		go n.send(contact, sub.CallID, sub.FromTag, sub.ToTag, "active", body)
		select {
		case ev := <-events:
			lat = append(lat, time.Since(start))
			if ev.Kind != psync.PhoneCallChanged {
				b.Fatalf("event %+v", ev)
			}
		case <-time.After(5 * time.Second):
			b.Fatalf("no event for NOTIFY %d", i)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
