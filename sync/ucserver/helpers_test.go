package ucserver_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// waitTimeout bounds every wait (only a failing test waits this long);
// tests wait for events, never for time. -race with the whole module's
// tests on two cores makes the 1,000-user sync slow.
const waitTimeout = 60 * time.Second

const (
	svcUser = "svc"
	svcPass = "s3cret-Passw0rd"
	svcTok  = "tok-3f9a71c2"

	svcID   = "sip:svc@example.com"
	aliceID = "sip:alice@example.com"
	bobID   = "sip:bob@example.com"
	carolID = "sip:carol@example.com"

	aliceDesk = "tel:+4989100-10"
	aliceSoft = "tel:+4989100-11"
	bobDesk   = "tel:+4989100-20"
	carolDesk = "tel:+4989100-30"
)

func simUsers() []ucsim.User {
	return []ucsim.User{
		{ContactID: svcID, DisplayName: "Presence Bridge", LoginName: svcUser, Password: svcPass, Token: svcTok},
		{
			ContactID: aliceID, DisplayName: "Alice Example", Email: "alice@example.com",
			Lines: []ucsim.Line{
				{URI: aliceDesk, Number: "+4989100-10", Descriptor: "Desk phone"},
				{URI: aliceSoft, Number: "+4989100-11", Descriptor: "Softphone", BusyOnBusy: true},
			},
		},
		{ContactID: bobID, DisplayName: "Bob Example", Email: "bob@example.com",
			Lines: []ucsim.Line{{URI: bobDesk, Number: "+4989100-20", DND: true}}},
		{ContactID: carolID, DisplayName: "Carol Example", Email: "carol@example.com",
			Lines: []ucsim.Line{{URI: carolDesk, NoDND: true}}},
	}
}

func bridgeUsers() []psync.User {
	return []psync.User{
		{ID: aliceID, UPN: "alice@example.com", DisplayName: "Alice"},
		{ID: bobID, UPN: "bob@example.com", DisplayName: "Bob"},
	}
}

func startSim(t testing.TB, opts ucsim.Options) *ucsim.Server {
	t.Helper()
	if opts.Users == nil {
		opts.Users = simUsers()
	}
	s := ucsim.New(opts)
	if err := s.Start(); err != nil {
		t.Fatalf("ucsim Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// logBuf collects the connector's logs so tests can look for secrets.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// recorder collects the events Run sends.
type recorder struct {
	mu      sync.Mutex
	evs     []psync.PhoneEvent
	changed chan struct{}
	cursor  int
}

func newRecorder(events <-chan psync.PhoneEvent) *recorder {
	r := &recorder{changed: make(chan struct{})}
	go func() {
		for ev := range events {
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) all() []psync.PhoneEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]psync.PhoneEvent(nil), r.evs...)
}

// next consumes events in order until one matches.
func (r *recorder) next(t testing.TB, what string, match func(psync.PhoneEvent) bool) psync.PhoneEvent {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for r.cursor < len(r.evs) {
			ev := r.evs[r.cursor]
			r.cursor++
			if match(ev) {
				r.mu.Unlock()
				return ev
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no event %q within %s; got %s", what, waitTimeout, describe(r.all()))
		}
	}
}

func describe(evs []psync.PhoneEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s", evString(ev))
	}
	return b.String()
}

func evString(ev psync.PhoneEvent) string {
	switch ev.Kind {
	case psync.PhoneSnapshot:
		return fmt.Sprintf("snapshot %s v%d %+v", ev.User, ev.Version, ev.State)
	case psync.PhonePresenceChanged:
		return fmt.Sprintf("presence %s v%d %s", ev.User, ev.Version, ev.Presence)
	case psync.PhoneCallChanged:
		return fmt.Sprintf("call %s v%d %+v", ev.User, ev.Version, ev.Call)
	case psync.PhoneDeviceChanged:
		return fmt.Sprintf("device %s v%d %+v", ev.User, ev.Version, ev.Device)
	case psync.PhoneSynced:
		return "synced"
	case psync.PhoneHealth:
		return fmt.Sprintf("health %v %q", ev.Healthy, ev.Detail)
	}
	return fmt.Sprintf("kind %d", ev.Kind)
}

func isKind(k psync.PhoneEventKind) func(psync.PhoneEvent) bool {
	return func(ev psync.PhoneEvent) bool { return ev.Kind == k }
}

func isCall(user psync.UserID, device string, st psync.CallState) func(psync.PhoneEvent) bool {
	return func(ev psync.PhoneEvent) bool {
		return ev.Kind == psync.PhoneCallChanged && ev.User == user && ev.Call.Device == device && ev.Call.State == st
	}
}

// checkVersions asserts that every user's versions only grow.
func checkVersions(t testing.TB, evs []psync.PhoneEvent) {
	t.Helper()
	last := map[psync.UserID]uint64{}
	for _, ev := range evs {
		if ev.User == "" {
			continue
		}
		if ev.Version <= last[ev.User] {
			t.Fatalf("version of %s went from %d to %d at %s", ev.User, last[ev.User], ev.Version, evString(ev))
		}
		last[ev.User] = ev.Version
	}
}

type harness struct {
	sim    *ucsim.Server
	conn   *ucserver.Conn
	rec    *recorder
	logs   *logBuf
	meter  *countMeter
	cancel context.CancelFunc
	done   chan error
}

func testConfig(sim interface{ URL() string }, logs *logBuf) ucserver.Config {
	return ucserver.Config{
		URL: sim.URL(), User: svcUser, Password: svcPass,
		Logger:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		InvokeTimeout: 2 * time.Second,
		ReconnectMin:  20 * time.Millisecond,
		ReconnectMax:  200 * time.Millisecond,
	}
}

// start runs a Conn against sim for users; edit adjusts the config.
func start(t testing.TB, sim *ucsim.Server, users []psync.User, edit func(*ucserver.Config)) *harness {
	t.Helper()
	h := &harness{sim: sim, logs: &logBuf{}, meter: &countMeter{}, done: make(chan error, 1)}
	cfg := testConfig(sim, h.logs)
	cfg.Meter = h.meter
	if edit != nil {
		edit(&cfg)
	}
	conn, err := ucserver.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.conn = conn
	events := make(chan psync.PhoneEvent, 16)
	h.rec = newRecorder(events)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- conn.Run(ctx, users, events) }()
	t.Cleanup(func() {
		h.stop(t)
		close(events)
		if strings.Contains(h.logs.String(), svcPass) || strings.Contains(h.logs.String(), svcTok) {
			t.Errorf("a credential appears in the logs")
		}
	})
	return h
}

func (h *harness) stop(t testing.TB) {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		h.done <- nil // later stops return at once
	case <-time.After(waitTimeout):
		t.Fatalf("Run did not return after cancel")
	}
}

// waitSim waits until cond holds for the simulator's state.
func waitSim(t testing.TB, sim *ucsim.Server, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := sim.WaitStats(ctx, func(ucsim.Stats) bool { return cond() }); err != nil {
		t.Fatalf("simulator never reached %q", what)
	}
}

func userState(t testing.TB, sim *ucsim.Server, id string) ucsim.UserState {
	t.Helper()
	st, ok := sim.UserState(id)
	if !ok {
		t.Fatalf("no sim user %s", id)
	}
	return st
}

func lineDND(t testing.TB, sim *ucsim.Server, id, uri string) bool {
	t.Helper()
	for _, l := range userState(t, sim, id).Lines {
		if l.URI == uri {
			return l.DND
		}
	}
	t.Fatalf("no line %s of %s", uri, id)
	return false
}

// countMeter records every Call for assertions.
type countMeter struct {
	mu    sync.Mutex
	calls map[string]int // op + " " + result
	subs  int
}

func (m *countMeter) Call(side psync.Side, op, result string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.calls == nil {
		m.calls = map[string]int{}
	}
	m.calls[op+" "+result]++
}

func (m *countMeter) Subscriptions(_ psync.Side, n int, _ time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subs = n
}

func (m *countMeter) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[key]
}
