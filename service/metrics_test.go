package service_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/presencebridge/presencebridge/service"
	psync "github.com/presencebridge/presencebridge/sync"
)

// scrape fetches /metrics over HTTP and parses the text format.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// value finds the sample of a family with the given labels; counters,
// gauges and histogram sample counts alike.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestMetrics_ScrapeAfterTraffic(t *testing.T) {
	b := startBridge(t, bridgeOpts{metrics: "127.0.0.1:0"})
	if b.run.Metrics == nil {
		t.Fatal("no metrics address")
	}
	addr := b.run.Metrics.String()

	// The phone system throttles once, then takes the change.
	b.office.Phone.Gate.FailNext(1, &psync.RetryAfterError{Wait: 20 * time.Millisecond, Err: fmt.Errorf("429: %w", psync.ErrUnavailable)})
	b.office.Teams.SetClient("201", "Busy", "InACall")
	b.office.Phone.Call("202", "desk", "c1", psync.CallConnected)
	waitFor(t, "both holds applied", func() bool {
		ov, err := b.run.Local.Overview(ctx(t))
		return err == nil && ov.Engine.Holds == 2 && ov.Engine.InFlight == 0 &&
			b.office.Phone.State("201").Presence == psync.PhoneBusy
	})

	fams := scrape(t, addr)
	want := []struct {
		name   string
		labels []string
		min    float64
		max    float64
	}{
		{"presencebridge_engine_up", nil, 1, 1},
		{"presencebridge_events_total", []string{"side", "teams"}, 5, 1e9},
		{"presencebridge_events_total", []string{"side", "phone"}, 5, 1e9},
		{"presencebridge_decisions_total", []string{"side", "phone", "outcome", "applied"}, 1, 1e9},
		{"presencebridge_decisions_total", []string{"side", "teams", "outcome", "applied"}, 1, 1e9},
		{"presencebridge_decisions_total", []string{"side", "phone", "outcome", "failed"}, 1, 1e9},
		{"presencebridge_side_calls_total", []string{"side", "phone", "op", "setPresence", "result", "throttled"}, 1, 1},
		{"presencebridge_side_calls_total", []string{"side", "phone", "op", "setPresence", "result", "ok"}, 1, 1e9},
		{"presencebridge_side_calls_total", []string{"side", "teams", "op", "setPresence", "result", "ok"}, 1, 1e9},
		{"presencebridge_side_call_duration_seconds", []string{"side", "phone", "op", "setPresence"}, 2, 1e9},
		{"presencebridge_side_throttled_total", []string{"side", "phone"}, 1, 1},
		{"presencebridge_side_throttled_total", []string{"side", "teams"}, 0, 0},
		{"presencebridge_side_throttled", []string{"side", "phone"}, 1, 1},
		{"presencebridge_subscriptions", []string{"side", "teams"}, 3, 3},
		{"presencebridge_subscriptions_earliest_expiry_timestamp_seconds", []string{"side", "teams"}, 2e9, 2e9},
		{"presencebridge_holds", nil, 2, 2},
		{"presencebridge_side_up", []string{"side", "phone"}, 1, 1},
	}
	for _, w := range want {
		v, ok := value(fams, w.name, w.labels...)
		if !ok || v < w.min || v > w.max {
			t.Errorf("%s%v = %v (present %v), want %v..%v", w.name, w.labels, v, ok, w.min, w.max)
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}

	// The call ends: the hold goes, and the next scrape says so.
	b.office.Teams.SetClient("201", "Available", "Available")
	b.office.Phone.Call("202", "desk", "c1", psync.CallEnded)
	waitFor(t, "holds released", func() bool {
		v, _ := value(scrape(t, addr), "presencebridge_holds")
		return v == 0
	})
	if v, _ := value(scrape(t, addr), "presencebridge_decisions_total", "side", "phone", "outcome", "released"); v < 1 {
		t.Errorf("released decisions: %v", v)
	}
}

func TestCheckMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		err    string
	}{
		{"127.0.0.1:9464", false, ""},
		{"[::1]:9464", false, ""},
		{"localhost:9464", false, ""},
		{"0.0.0.0:9464", false, "every interface"},
		{":9464", false, "every interface"},
		{"192.0.2.10:9464", false, "--metrics-allow-remote"},
		{"metrics.example:9464", false, "--metrics-allow-remote"},
		{"192.0.2.10:9464", true, ""},
		{"9464", false, "want host:port"},
		{"127.0.0.1:", false, "want host:port"},
	} {
		err := service.CheckMetricsAddr(tc.addr, tc.remote)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q remote=%v: %v, want %q", tc.addr, tc.remote, err, tc.err)
		}
	}
}
