package asterisk_test

import (
	"context"
	"slices"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/asterisk"
)

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkDeviceEventToPhoneEvent: a device state change in the
// simulator, its DeviceStateChange over loopback, out as a PhoneEvent.
func BenchmarkDeviceEventToPhoneEvent(b *testing.B) {
	sim := startSim(b)
	c, err := asterisk.New(testConfig(sim))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ch := make(chan psync.PhoneEvent, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, []psync.User{anna}, ch)
	for ev := range ch {
		if ev.Kind == psync.PhoneSynced {
			break
		}
	}
	lat := make([]time.Duration, 0, b.N)
	states := []string{"INUSE", "NOT_INUSE"}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		sim.SetDeviceState("PJSIP/201", states[i%2])
		for ev := range ch {
			if ev.Kind == psync.PhoneCallChanged {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}

// BenchmarkDNDWrite: SetDeviceProtection until DND/<ext> is in the
// simulator's AstDB (with FreePBX's device states and the bridge's mark),
// then the give-back, which is not timed.
func BenchmarkDNDWrite(b *testing.B) {
	sim := startSim(b)
	c, err := asterisk.New(testConfig(sim))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ch := make(chan psync.PhoneEvent, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, []psync.User{anna}, ch)
	go func() {
		for range ch {
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for c.SetDeviceProtection(ctx, anna, "PJSIP/201", false) != nil {
		if time.Now().After(deadline) {
			b.Fatal("no connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := c.SetDeviceProtection(ctx, anna, "PJSIP/201", true); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		if v, _ := sim.DB("DND", "201"); v != "YES" {
			b.Fatal("DND not written")
		}
		if err := c.RestoreDeviceProtection(ctx, anna, "PJSIP/201", true, false); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportPercentiles(b, lat)
}
