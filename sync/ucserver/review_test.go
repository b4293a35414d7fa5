package ucserver_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// lastOf returns the last event of user id.
func lastOf(evs []psync.PhoneEvent, id psync.UserID) (psync.PhoneEvent, bool) {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].User == id {
			return evs[i], true
		}
	}
	return psync.PhoneEvent{}, false
}

func isForgotten(ev psync.PhoneEvent) bool {
	return ev.Kind == psync.PhoneSnapshot && ev.State.Presence == psync.PhoneUnknown &&
		len(ev.State.Devices) == 0 && len(ev.State.Calls) == 0
}

// A user the new session's subscribe result does not list still gets a
// snapshot, one that forgets the call of the old session.
func TestConn_Run_UnknownAfterReconnectGetsSnapshot(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	h := start(t, sim, bridgeUsers(), nil)
	h.rec.next(t, "synced", isKind(psync.PhoneSynced))
	c1, _ := sim.Ring(aliceDesk, "+4930333")
	_ = sim.PickUp(c1)
	h.rec.next(t, "connected", isCall(aliceID, aliceDesk, psync.CallConnected))

	sim.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{Status: http.StatusBadGateway})
	sim.DropSockets()
	h.rec.next(t, "down", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneHealth && !ev.Healthy })
	if err := sim.RemoveUser(aliceID); err != nil { // her call ends with her
		t.Fatal(err)
	}
	sim.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{})
	h.rec.next(t, "up", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneHealth && ev.Healthy })
	snap := h.rec.next(t, "alice's snapshot before synced", func(ev psync.PhoneEvent) bool {
		return ev.Kind == psync.PhoneSynced || (ev.Kind == psync.PhoneSnapshot && ev.User == aliceID)
	})
	if !isForgotten(snap) {
		t.Fatalf("got %s, want a snapshot of alice with unknown presence, no devices, no calls", evString(snap))
	}
	h.rec.next(t, "synced again", isKind(psync.PhoneSynced))
	checkVersions(t, h.rec.all())
	if !slices.ContainsFunc(h.conn.Report().Errors, func(p psync.Problem) bool { return strings.Contains(p.What, "not known") }) {
		t.Errorf("unknown user not reported: %+v", h.conn.Report().Errors)
	}
}

// asnRemovePresence forgets the user's whole state at once.
func TestConn_Run_RemovePresenceForgetsState(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	_ = sim.SetAbsentState(aliceID, ucsim.AbsentState{State: ucsim.AbsentDoNotDisturb})
	h := start(t, sim, bridgeUsers(), nil)
	h.rec.next(t, "synced", isKind(psync.PhoneSynced))
	c1, _ := sim.Ring(aliceDesk, "+4930333")
	_ = sim.PickUp(c1)
	h.rec.next(t, "connected", isCall(aliceID, aliceDesk, psync.CallConnected))

	if err := sim.RemoveUser(aliceID); err != nil {
		t.Fatal(err)
	}
	_ = sim.SetLineDND(bobDesk, false) // a marker after the removal
	h.rec.next(t, "bob's DND off", func(ev psync.PhoneEvent) bool {
		return ev.Kind == psync.PhoneDeviceChanged && ev.User == bobID && !ev.Device.DND
	})
	last, _ := lastOf(h.rec.all(), aliceID)
	if !isForgotten(last) {
		t.Fatalf("alice's last event %s; want a snapshot with unknown presence, no devices, no calls", evString(last))
	}
	checkVersions(t, h.rec.all())
}

// A line monitor that never answers costs that line only, not the session.
func TestConn_Run_SlowLineMonitorDoesNotAbortSync(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	sim.SetOperationFault(ucserver.OpCtiLineMonitorStart, ucsim.OperationFault{Silent: true, Times: 1})
	h := start(t, sim, bridgeUsers(), func(c *ucserver.Config) { c.InvokeTimeout = 300 * time.Millisecond })
	h.rec.next(t, "synced", isKind(psync.PhoneSynced))
	for _, ev := range h.rec.all() {
		if ev.Kind == psync.PhoneHealth && !ev.Healthy {
			t.Fatalf("one silent line monitor cost the session: %s", evString(ev))
		}
	}
	if !slices.ContainsFunc(h.conn.Report().Errors, func(p psync.Problem) bool { return strings.Contains(p.What, "cannot be monitored") }) {
		t.Errorf("failed line not reported: %+v", h.conn.Report().Errors)
	}
	if !slices.ContainsFunc(h.conn.Report().Facts, func(f psync.Fact) bool { return f.Label == "monitored lines" && f.Value == "2 of 3" }) {
		t.Errorf("facts %+v", h.conn.Report().Facts)
	}
}

// The subscribe timeout grows with the chunk: 200 users may take longer
// than one small operation.
func TestConn_Run_SubscribeTimeoutGrowsWithChunk(t *testing.T) {
	sim, users := scaleSim(t, 200)
	sim.SetOperationFault(4505, ucsim.OperationFault{Delay: time.Second, Times: 1})
	h := start(t, sim, users, func(c *ucserver.Config) { c.InvokeTimeout = 500 * time.Millisecond })
	h.rec.next(t, "synced", isKind(psync.PhoneSynced))
	for _, ev := range h.rec.all() {
		if ev.Kind == psync.PhoneHealth && !ev.Healthy {
			t.Fatalf("a slow subscribe of 200 users cost the session: %s", evString(ev))
		}
	}
}

// A restore leaves a Do not disturb alone that the user set again
// themselves while the bridge's was held.
func TestConn_RestorePresence_UserResetSameState(t *testing.T) {
	for _, tc := range []struct {
		name string
		to   time.Duration // the user's own end; 0: none
	}{{"own end time", 3 * time.Hour}, {"no end time", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, ucsim.Options{})
			h := start(t, sim, bridgeUsers(), nil)
			h.rec.next(t, "synced", isKind(psync.PhoneSynced))
			ctx := context.Background()
			alice := psync.User{ID: aliceID}
			until := time.Now().Add(time.Hour).Truncate(time.Second)
			if err := h.conn.SetPresence(ctx, alice, psync.PresenceMark{Presence: psync.PhoneDND, Until: until}, nil); err != nil {
				t.Fatal(err)
			}
			own := ucsim.AbsentState{State: ucsim.AbsentDoNotDisturb}
			if tc.to > 0 {
				own.To = time.Now().Add(tc.to).Truncate(time.Second)
			}
			if err := sim.SetAbsentState(aliceID, own); err != nil {
				t.Fatal(err)
			}
			err := h.conn.RestorePresence(ctx, alice, []psync.PresenceMark{{Presence: psync.PhoneDND, Until: until}}, psync.PhoneNotSet)
			if !errors.Is(err, psync.ErrChangedByUser) {
				t.Fatalf("restore: %v, want ErrChangedByUser", err)
			}
			if got := userState(t, sim, aliceID).Absent; got.State != ucsim.AbsentDoNotDisturb || !got.To.Equal(own.To) {
				t.Fatalf("absent state after restore %+v, want the user's %+v", got, own)
			}
			// What the bridge itself set is still restored.
			if err := h.conn.SetPresence(ctx, alice, psync.PresenceMark{Presence: psync.PhoneBusy, Until: until}, nil); err != nil {
				t.Fatal(err)
			}
			if err := h.conn.RestorePresence(ctx, alice, []psync.PresenceMark{{Presence: psync.PhoneBusy, Until: until}}, psync.PhoneNotSet); err != nil {
				t.Fatalf("restore of the bridge's own state: %v", err)
			}
		})
	}
}

// Redirects are never followed with credentials.
func TestConn_Run_NoCredentialsThroughRedirects(t *testing.T) {
	type seen struct {
		mu   sync.Mutex
		reqs []string
	}
	for _, tc := range []struct {
		name string
		tls  bool
		edit func(c *ucserver.Config, front, sink string)
		// handler of the front server; sink is the other server's URL
		front func(sink string) http.HandlerFunc
	}{
		{
			name: "token, createsession redirected to another host",
			edit: func(c *ucserver.Config, front, sink string) { c.User, c.Password, c.LoginToken = "", "", svcTok },
			front: func(sink string) http.HandlerFunc {
				sink = strings.Replace(sink, "127.0.0.1", "localhost", 1)
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, sink+r.URL.RequestURI(), http.StatusTemporaryRedirect)
				}
			},
		},
		{
			name: "basic, createsession redirected from https to http",
			tls:  true,
			front: func(sink string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, sink+r.URL.RequestURI(), http.StatusTemporaryRedirect)
				}
			},
		},
		{
			name: "basic, https controller names an http UCWeb",
			tls:  true,
			edit: func(c *ucserver.Config, front, sink string) { c.UCSID = "ucs1" },
			front: func(sink string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					_, _ = fmt.Fprintf(w, `{"redirect":%q}`, sink)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got seen
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.mu.Lock()
				got.reqs = append(got.reqs, fmt.Sprintf("%s %s token=%q auth=%q", r.Method, r.URL.Path, r.Header.Get("x-uctoken"), r.Header.Get("Authorization")))
				got.mu.Unlock()
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			t.Cleanup(sink.Close)
			var front *httptest.Server
			if tc.tls {
				front = httptest.NewTLSServer(tc.front(sink.URL))
			} else {
				front = httptest.NewServer(tc.front(sink.URL))
			}
			t.Cleanup(front.Close)
			logs := &logBuf{}
			cfg := testConfig(nilSim{front.URL}, logs)
			cfg.HTTPClient = front.Client()
			if tc.edit != nil {
				tc.edit(&cfg, front.URL, sink.URL)
			}
			conn, err := ucserver.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			events := make(chan psync.PhoneEvent, 16)
			rec := newRecorder(events)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- conn.Run(ctx, bridgeUsers(), events) }()
			defer func() { cancel(); <-done }()
			down := rec.next(t, "down", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneHealth && !ev.Healthy })
			got.mu.Lock()
			defer got.mu.Unlock()
			if len(got.reqs) > 0 {
				t.Fatalf("the redirect target got %q", got.reqs)
			}
			t.Logf("refused: %s", down.Detail)
		})
	}
}

// An engine that does not read cannot make the outbox grow without bound;
// what it reads afterwards is still the current state.
func TestConn_Run_OutboxBounded(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	logs := &logBuf{}
	conn, err := ucserver.New(testConfig(sim, logs))
	if err != nil {
		t.Fatal(err)
	}
	ucserver.SetOutboxMax(conn, 40)
	events := make(chan psync.PhoneEvent) // read only when the test wants
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- conn.Run(ctx, bridgeUsers(), events) }()
	defer func() { cancel(); <-done }()
	recv := func(what string) psync.PhoneEvent {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(waitTimeout):
			t.Fatalf("no event while waiting for %s", what)
		}
		return psync.PhoneEvent{}
	}
	for recv("synced").Kind != psync.PhoneSynced {
	}
	const toggles = 400 // bob's desk DND starts on; it ends on
	for i := range toggles {
		_ = sim.SetLineDND(bobDesk, i%2 == 1)
	}
	// Its answer follows every event of the toggles on the socket: when it
	// returns, the connector has queued them all.
	if err := conn.SetDeviceProtection(ctx, psync.User{ID: bobID}, bobDesk, true); err != nil {
		t.Fatal(err)
	}
	_ = sim.SetAbsentState(aliceID, ucsim.AbsentState{State: ucsim.AbsentDoNotDisturb}) // the marker
	var n int
	var bobDND *bool
	for {
		ev := recv("alice's DND")
		n++
		if ev.User == bobID {
			switch ev.Kind {
			case psync.PhoneDeviceChanged:
				bobDND = &ev.Device.DND
			case psync.PhoneSnapshot:
				bobDND = &ev.State.Devices[0].DND
			}
		}
		if ev.User == aliceID && ((ev.Kind == psync.PhonePresenceChanged && ev.Presence == psync.PhoneDND) ||
			(ev.Kind == psync.PhoneSnapshot && ev.State.Presence == psync.PhoneDND)) {
			break
		}
	}
	if n > 100 {
		t.Fatalf("the engine got %d events for %d changes; the outbox is not bounded", n, toggles)
	}
	if bobDND == nil || !*bobDND {
		t.Fatalf("bob's DND after the overflow: %v, want on", bobDND)
	}
}

// Lines come only from seqPhoneLines, at most a bounded number per user;
// a call on a line never listed makes none.
func TestConn_Run_LinesBounded(t *testing.T) {
	hs := newHostile(t)
	_, rec, _ := startHostile(t, hs, nil, nil)
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf(`{"u8sLinePhoneNumber":"tel:x%d","iDoNotDisturb":0}`, i))
	}
	hs.push(t, `{"invoke":{"invokeID":99999,"operationID":4504,"argument":{"presence":{"u8sContactId":"sip:alice@example.com","seqPhoneLines":[`+strings.Join(lines, ",")+`]},"iChangedFlags":128}}}`)
	hs.push(t, `{"invoke":{"invokeID":99999,"operationID":4504,"argument":{"presence":{"u8sContactId":"sip:alice@example.com","seqCalls":[{"iAction":0,"u8sConnectionID":"c9","u8sLinePhoneNumber":"tel:never","eCallState":32}]},"iChangedFlags":256}}}`)
	hs.push(t, dndMarker(true))
	rec.next(t, "marker", isDND(true))
	for _, ev := range rec.all() {
		if ev.Kind == psync.PhoneSnapshot && len(ev.State.Devices) > 32 {
			t.Fatalf("snapshot with %d devices", len(ev.State.Devices))
		}
		if ev.Kind == psync.PhoneCallChanged {
			t.Fatalf("a call on an unlisted line made a line: %s", evString(ev))
		}
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		n := 0
		for _, f := range hs.frames() {
			if strings.Contains(f, `"operationID":1262`) {
				n++
			}
		}
		if n > 32 { // the first line's and 31 more
			t.Fatalf("%d monitor starts for one user", n)
		}
		if n == 32 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A server that keeps invoking the connector gets a bounded number of
// rejects from a single sender; the rest are counted.
func TestConn_Run_ServerInvokesBounded(t *testing.T) {
	hs := newHostile(t)
	conn, rec, _ := startHostile(t, hs, nil, nil)
	base := runtime.NumGoroutine()
	// 5,000 invokes in frames of 250 (a frame holds at most 256 messages).
	const n, perFrame = 5000, 250
	for f := range n / perFrame {
		var b strings.Builder
		b.WriteString("[")
		for i := range perFrame {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"invoke":{"invokeID":%d,"operationID":5000,"argument":{}}}`, f*perFrame+i+1)
		}
		b.WriteString("]")
		hs.push(t, b.String())
	}
	hs.push(t, dndMarker(true))
	rec.next(t, "marker", isDND(true))
	if g := runtime.NumGoroutine(); g-base > 50 {
		t.Errorf("%d goroutines after %d server invokes (from %d)", g, n, base)
	}
	rep := conn.Report()
	if !slices.ContainsFunc(rep.Facts, func(f psync.Fact) bool {
		return f.Label == "server requests not answered" && f.Value == fmt.Sprint(n-64)
	}) {
		t.Errorf("facts %+v", rep.Facts)
	}
}

// A late answer after an invoke timeout is never read by the caller while
// the reader goroutine applies it (run with -race).
func TestConn_RestorePresence_LateAnswerNoRace(t *testing.T) {
	if !raceEnabled {
		t.Skip("needs -race")
	}
	hs := newHostile(t)
	const timeout = 200 * time.Millisecond
	var first atomic.Bool
	conn, _, _ := startHostile(t, hs, func(c *ucserver.Config) { c.InvokeTimeout = timeout }, func(c *ucserver.Conn) {
		ucserver.SetAfterTake(c, func(op int) {
			if op == ucserver.OpGetUserAbsentState && first.CompareAndSwap(false, true) {
				time.Sleep(timeout * 3 / 2) // the answer is late: the caller has given up
			}
		})
	})
	alice := psync.User{ID: "sip:alice@example.com"}
	if err := conn.RestorePresence(context.Background(), alice, []psync.PresenceMark{{Presence: psync.PhoneDND}}, psync.PhoneNotSet); !errors.Is(err, psync.ErrUnavailable) {
		t.Fatalf("restore with a late answer: %v, want ErrUnavailable", err)
	}
	// The next read is answered after the late one was applied.
	var err error
	for range 5 {
		if err = conn.RestorePresence(context.Background(), alice, []psync.PresenceMark{{Presence: psync.PhoneDND}}, psync.PhoneNotSet); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("second restore: %v", err)
	}
}

// Dropped frames are logged without the session id.
func TestConn_Run_DroppedFramesHideSessionID(t *testing.T) {
	hs := newHostile(t)
	_, rec, logs := startHostile(t, hs, nil, nil)
	const id = "HOSTILE0123456789"
	hs.push(t, `{"sessionID":"`+id+`", broken`)
	hs.push(t, `{"invoke":{"invokeID":99999,"operationID":4504,"argument":{"presence":"`+id+`"}}}`)
	hs.push(t, dndMarker(true))
	rec.next(t, "marker", isDND(true))
	l := logs.String()
	if !strings.Contains(l, "frame dropped") || !strings.Contains(l, "event dropped") {
		t.Fatalf("drops not logged:\n%s", l)
	}
	if strings.Contains(l, id) {
		t.Fatalf("the session id is in the logs:\n%s", l)
	}
}
