package webhook_test

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/webhook"
)

// BenchmarkReceiver_RichNotification measures what the adapter waits for: from the start of
// Graph's HTTPS POST of one rich notification (with its validation token) to the decrypted,
// verified event coming out of Events, over a kept-alive loopback TLS connection.
func BenchmarkReceiver_RichNotification(b *testing.B) {
	h := newHarness(b, true)
	payload := body([]string{h.token(nil)}, rich(subID, goodState, aliceID, "Busy", "InACall"))
	// Warm up: TLS handshake and the one JWKS fetch are not per-notification costs.
	h.post(webhook.NotifyPath, payload)
	h.next()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		resp, err := h.client.Post(h.ep.NotificationURL(), "application/json", bytes.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatal(resp.StatusCode)
		}
		if ev := h.next(); ev.Kind != webhook.Presence {
			b.Fatalf("%+v", ev)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	if st := h.rcv.Stats(); st.KeyFetches != 1 {
		b.Fatalf("key fetches %d", st.KeyFetches)
	}
}
