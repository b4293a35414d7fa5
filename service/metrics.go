package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Metrics is the bridge's Prometheus instrumentation on a registry of its
// own (nothing registers globally). It is the psync.Meter the adapters
// report their calls to, it counts the engine's decisions, and at scrape
// time it reads the engine's counters and the adapters' reports.
type Metrics struct {
	reg       *prometheus.Registry
	calls     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	throttled *prometheus.CounterVec
	decisions *prometheus.CounterVec
	subs      *prometheus.GaugeVec
	subsUntil *prometheus.GaugeVec
}

var _ psync.Meter = (*Metrics)(nil)

// callResults are the results psync.Meter documents; anything else is
// counted as "other" so an adapter bug cannot grow the label set.
var callResults = map[string]bool{"ok": true, "throttled": true, "rejected": true, "unavailable": true, "error": true}

var outcomes = []psync.Outcome{psync.OutcomeApplied, psync.OutcomeReleased, psync.OutcomeYielded, psync.OutcomeFailed, psync.OutcomeObserved}

// NewMetrics returns the metrics with the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presencebridge_side_calls_total",
			Help: "Requests to Microsoft Graph (side teams) and the phone system (side phone) by operation and result.",
		}, []string{"side", "op", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "presencebridge_side_call_duration_seconds",
			Help:    "Latency of requests to each side by operation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"side", "op"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presencebridge_side_throttled_total",
			Help: "Requests a side answered with throttling (HTTP 429 / Retry-After).",
		}, []string{"side"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presencebridge_decisions_total",
			Help: "Decisions of the engine by side and outcome.",
		}, []string{"side", "outcome"}),
		subs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "presencebridge_subscriptions",
			Help: "Change-notification subscriptions a side holds.",
		}, []string{"side"}),
		subsUntil: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "presencebridge_subscriptions_earliest_expiry_timestamp_seconds",
			Help: "Unix time the first of a side's subscriptions expires (0: none).",
		}, []string{"side"}),
	}
	m.reg.MustRegister(m.calls, m.latency, m.throttled, m.decisions, m.subs, m.subsUntil,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, s := range []psync.Side{psync.SideTeams, psync.SidePhone} {
		m.throttled.WithLabelValues(s.String())
		for _, o := range outcomes {
			m.decisions.WithLabelValues(s.String(), string(o))
		}
	}
	return m
}

// Registry is the private registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Call implements psync.Meter.
func (m *Metrics) Call(side psync.Side, op, result string, took time.Duration) {
	if !callResults[result] {
		result = "other"
	}
	m.calls.WithLabelValues(side.String(), op, result).Inc()
	m.latency.WithLabelValues(side.String(), op).Observe(took.Seconds())
	if result == "throttled" {
		m.throttled.WithLabelValues(side.String()).Inc()
	}
}

// Subscriptions implements psync.Meter.
func (m *Metrics) Subscriptions(side psync.Side, n int, earliest time.Time) {
	m.subs.WithLabelValues(side.String()).Set(float64(n))
	ts := 0.0
	if !earliest.IsZero() {
		ts = float64(earliest.UnixNano()) / 1e9
	}
	m.subsUntil.WithLabelValues(side.String()).Set(ts)
}

// Decision counts one decision; it is called from the engine's Observe and
// does not block.
func (m *Metrics) Decision(d psync.Decision) {
	o := string(d.Outcome)
	switch d.Outcome {
	case psync.OutcomeApplied, psync.OutcomeReleased, psync.OutcomeYielded, psync.OutcomeFailed, psync.OutcomeObserved:
	default:
		o = "other"
	}
	side := d.Side.String()
	if d.Side == 0 {
		side = "none" // profile edits and other decisions about no side
	}
	m.decisions.WithLabelValues(side, o).Inc()
}

// Watch adds the engine's counters, the event streams' drops and the
// adapters' throttling to every scrape.
func (m *Metrics) Watch(e *psync.Engine, hub *Hub, reporters []psync.Reporter) error {
	return m.reg.Register(&engineCollector{engine: e, hub: hub, reporters: reporters})
}

var (
	descEngineUp   = prometheus.NewDesc("presencebridge_engine_up", "1 while the engine answers.", nil, nil)
	descEvents     = prometheus.NewDesc("presencebridge_events_total", "Events received from each side.", []string{"side"}, nil)
	descStale      = prometheus.NewDesc("presencebridge_stale_events_total", "Events dropped because a newer one had been seen.", nil, nil)
	descCommands   = prometheus.NewDesc("presencebridge_commands_total", "Commands the engine sent to the sides.", nil, nil)
	descFailures   = prometheus.NewDesc("presencebridge_command_failures_total", "Commands that failed (and are retried).", nil, nil)
	descYields     = prometheus.NewDesc("presencebridge_yields_total", "Holds given up because the user changed the value.", nil, nil)
	descHolds      = prometheus.NewDesc("presencebridge_holds", "Things the bridge currently imposes on either side.", nil, nil)
	descOrphans    = prometheus.NewDesc("presencebridge_orphaned_holds", "Holds of users no longer configured.", nil, nil)
	descInFlight   = prometheus.NewDesc("presencebridge_commands_in_flight", "Commands sent and not answered yet.", nil, nil)
	descQueued     = prometheus.NewDesc("presencebridge_queued", "Events and results waiting for the engine.", nil, nil)
	descSideUp     = prometheus.NewDesc("presencebridge_side_up", "1 while a side reports itself healthy.", []string{"side"}, nil)
	descThrottling = prometheus.NewDesc("presencebridge_side_throttled", "1 while a side is throttled (Retry-After not yet over).", []string{"side"}, nil)
	descDropped    = prometheus.NewDesc("presencebridge_event_stream_dropped_total", "Decisions live event streams missed because they were too slow.", nil, nil)
	descStreams    = prometheus.NewDesc("presencebridge_event_streams", "Open live event streams.", nil, nil)
)

type engineCollector struct {
	engine    *psync.Engine
	hub       *Hub
	reporters []psync.Reporter
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEngineUp, descEvents, descStale, descCommands, descFailures, descYields,
		descHolds, descOrphans, descInFlight, descQueued, descSideUp, descThrottling, descDropped, descStreams} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	if c.hub != nil {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(c.hub.Dropped()))
		ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(c.hub.Subscribers()))
	}
	now := time.Now()
	throttled := map[psync.Side]bool{}
	for _, r := range c.reporters {
		rep := r.Report()
		throttled[rep.Side] = throttled[rep.Side] || rep.Throttled.After(now)
	}
	for _, s := range []psync.Side{psync.SideTeams, psync.SidePhone} {
		ch <- prometheus.MustNewConstMetric(descThrottling, prometheus.GaugeValue, b2f(throttled[s]), s.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.engine.Status(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descEngineUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descEngineUp, prometheus.GaugeValue, 1)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(descEvents, st.Stats.TeamsEvents, "teams")
	counter(descEvents, st.Stats.PhoneEvents, "phone")
	counter(descStale, st.Stats.Stale)
	counter(descCommands, st.Stats.Commands)
	counter(descFailures, st.Stats.Failures)
	counter(descYields, st.Stats.Yields)
	gauge(descHolds, float64(st.Holds))
	gauge(descOrphans, float64(len(st.Orphans)))
	gauge(descInFlight, float64(st.InFlight))
	gauge(descQueued, float64(st.Queued))
	gauge(descSideUp, b2f(st.Teams.Healthy), "teams")
	gauge(descSideUp, b2f(st.Phone.Healthy), "phone")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// CheckMetricsAddr checks a metrics address. The endpoint has no
// authentication, so an address that is not loopback is refused unless
// allowRemote says the admin means it.
func CheckMetricsAddr(addr string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("metrics address %q: want host:port, e.g. 127.0.0.1:9464", addr)
	}
	ip := net.ParseIP(host)
	if host == "localhost" || ip != nil && ip.IsLoopback() || allowRemote {
		return nil
	}
	what := "host " + host
	if host == "" || ip != nil && ip.IsUnspecified() {
		what = "every interface"
	}
	return fmt.Errorf("metrics address %q listens on %s; the metrics endpoint has no authentication, so only loopback (127.0.0.1, [::1], localhost) is allowed unless you also pass --metrics-allow-remote", addr, what)
}

// ListenMetrics checks addr (CheckMetricsAddr) and listens on it.
func ListenMetrics(addr string, allowRemote bool) (net.Listener, error) {
	if err := CheckMetricsAddr(addr, allowRemote); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return l, nil
}

// ServeMetrics serves /metrics on l until ctx ends.
func ServeMetrics(ctx context.Context, l net.Listener, m *Metrics) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	err := srv.Serve(l)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
