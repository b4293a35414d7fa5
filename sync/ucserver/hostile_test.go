package ucserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver"
)

// hostile is a fake UCServer that answers the subscription correctly and
// then, on request, sends every kind of bad frame.
type hostile struct {
	srv     *httptest.Server
	garbage chan struct{}
	extra   chan string  // frames the test sends (after the socket is up)
	sockets atomic.Int32 // sockets whose handler and helpers still run
	mu      sync.Mutex
	got     []string // client frames
}

// waitSockets waits until n sockets are open: after a reconnect, until the
// old socket's goroutines are gone and cannot take a frame meant for the new
// one.
func (h *hostile) waitSockets(t *testing.T, n int32) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for h.sockets.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets open, want %d", h.sockets.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *hostile) frames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

func newHostile(t *testing.T) *hostile {
	h := &hostile{garbage: make(chan struct{}), extra: make(chan string)}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/client/createsession", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"sessionID":"HOSTILE0123456789"}`)) // the PlantUML spelling
	})
	mux.HandleFunc("/ws/client/websocket", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		h.sockets.Add(1)
		ctx, cancel := context.WithCancel(r.Context())
		var helpers sync.WaitGroup
		defer func() {
			cancel()
			helpers.Wait()
			h.sockets.Add(-1)
		}()
		send := func(s string) { _ = c.Write(ctx, websocket.MessageText, []byte(s)) }
		helpers.Go(func() {
			for {
				select {
				case f := <-h.extra:
					send(f)
				case <-ctx.Done():
					return
				}
			}
		})
		helpers.Go(func() {
			select {
			case <-h.garbage:
			case <-ctx.Done():
				return
			}
			for _, g := range []string{
				`not json`, `[]`, `[1,2]`, `{"foo":1}`, `{"invoke":{"invokeID":"x"}}`,
				`{"invoke":{"invokeID":99999,"operationID":4504,"argument":"str"}}`,
				`{"invoke":{"invokeID":99999,"operationID":4504}}`,
				`{"invoke":{"invokeID":99999,"operationID":4504,"argument":{"presence":{"u8sContactId":"sip:nobody@x","asnAbsentState":{"u8sContactId":"sip:nobody@x","eAbsentState":3}},"iChangedFlags":16}}}`,
				`{"invoke":{"invokeID":99999,"operationID":7777,"operationName":"asnSomethingNew","argument":{}}}`,
				`{"result":{"invokeID":4242,"result":{"resultValue":0,"result":{}}}}`,
				`{"error":{"invokedID":4243,"error_value":1}}`,
				`{"reject":{"invokedID":{"invokednull":0},"reject":{"invokeProblem":2},"details":"x"}}`,
				`{"invoke":{"invokeID":17,"operationID":5000,"argument":{}}}`,
				`{"invoke":{"invokeID":99999,"operationID":1283,"argument":{"u8sLinePhoneNumber":"tel:1","callinformation":{"iCallState":32}}}}`,
				`{"invoke":{"invokeID":99999,"operationID":1283,"argument":{"u8sLinePhoneNumber":"tel:1","callinformation":{"u8sConnectionID":"c1","iCallState":12345}}}}`,
				`{"invoke":{"invokeID":99999,"operationID":1281,"argument":{"u8sLinePhoneNumber":"tel:1","iDoNotDisturb":{"deep":[[[[]]]]}}}}`,
				`{"invoke":{"invokeID":99999,"operationID":1294,"argument":{"u8sMonitorCrossRefID":"unknown"}}}`,
				`{"invoke":{"invokeID":1e400,"operationID":1}}`,
			} {
				send(g)
			}
			_ = c.Write(ctx, websocket.MessageBinary, []byte{0xA1, 0x00})
			// Then a good event, with numbers as strings (the C++ runtime
			// accepts both) and the array wrapper.
			send(`[{"invoke":{"invokeID":"99999","operationID":"1281","operationName":"asnCtiNotifyLineDoNotDisturbChanged","argument":{"u8sMonitorCrossRefID":"M1","u8sLinePhoneNumber":"tel:1","iDoNotDisturb":"1"}}}]`)
		})
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			h.mu.Lock()
			h.got = append(h.got, string(data))
			h.mu.Unlock()
			var m struct {
				Invoke *struct {
					InvokeID    int64 `json:"invokeID"`
					OperationID int   `json:"operationID"`
				} `json:"invoke"`
			}
			if json.Unmarshal(data, &m) != nil || m.Invoke == nil || m.Invoke.InvokeID == 99999 {
				continue
			}
			var res string
			switch m.Invoke.OperationID {
			case 4505:
				res = `{"seqSubscribedPresence":[{"u8sContactId":"sip:alice@example.com","asnAbsentState":{"u8sContactId":"sip:alice@example.com","eAbsentState":"4"},"seqPhoneLines":[{"u8sLinePhoneNumber":"tel:1","u8sLineNumber":"1","iState":1,"iDoNotDisturb":0}]}]}`
			case 1262:
				res = `{"u8sMonitorCrossRefID":"M1","lineInfo":{"u8sLinePhoneNumber":"tel:1","iLineOpenStatus":2},"seqCalls":[],"iDoNotDisturb":0,"optionalParams":[{"key":"BusyOnBusy","value":{"integerdata":1}}]}`
			case 1129:
				res = `{"absentstate":{"u8sContactId":"sip:alice@example.com","eAbsentState":3}}`
			default:
				res = `{}`
			}
			send(fmt.Sprintf(`[{"result":{"invokeID":%d,"result":{"resultValue":0,"result":%s}}}]`, m.Invoke.InvokeID, res))
		}
	})
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

// Frames that do not parse, unknown operations, results for nothing,
// events for unknown users or lines: logged and dropped, never a panic, and
// the next good event still arrives.
func TestConn_Run_HostileServer(t *testing.T) {
	hs := newHostile(t)
	logs := &logBuf{}
	conn, err := ucserver.New(ucserver.Config{URL: hs.srv.URL, User: svcUser, Password: svcPass,
		Logger: testConfig(nilSim{hs.srv.URL}, logs).Logger})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan psync.PhoneEvent, 64)
	rec := newRecorder(events)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- conn.Run(ctx, []psync.User{{ID: "sip:alice@example.com"}}, events) }()
	defer func() { cancel(); <-done }()

	snap := rec.next(t, "snapshot", isKind(psync.PhoneSnapshot))
	if snap.State.Presence != psync.PhoneNotSet || !slices.Equal(snap.State.Devices, []psync.Device{{ID: "tel:1"}}) {
		t.Fatalf("snapshot %+v", snap.State)
	}
	rec.next(t, "synced", isKind(psync.PhoneSynced))
	close(hs.garbage)
	ev := rec.next(t, "the good event after the garbage", func(ev psync.PhoneEvent) bool { return ev.Kind != psync.PhoneHealth })
	if ev.Kind != psync.PhoneDeviceChanged || ev.Device != (psync.Device{ID: "tel:1", DND: true}) {
		t.Fatalf("got %s; nothing from the garbage may reach the engine", evString(ev))
	}
	for _, e := range rec.all() {
		if e.Kind == psync.PhoneHealth && !e.Healthy {
			t.Fatalf("the garbage cost the session: %s", evString(e))
		}
	}
	// The reject is written off the reader goroutine; give it its time.
	deadline := time.Now().Add(waitTimeout)
	for !slices.ContainsFunc(hs.frames(), func(f string) bool {
		return strings.Contains(f, `"reject"`) && strings.Contains(f, `"invokedID":17`)
	}) {
		if time.Now().After(deadline) {
			t.Fatalf("the server's invoke 17 was not rejected: %q", hs.frames())
		}
		time.Sleep(5 * time.Millisecond)
	}
	rep := conn.Report()
	if !slices.ContainsFunc(rep.Facts, func(f psync.Fact) bool { return f.Label == "frames dropped" && f.Warn }) {
		t.Errorf("facts %+v", rep.Facts)
	}
	if l := logs.String(); !strings.Contains(l, "frame dropped") || !strings.Contains(l, "event dropped") {
		t.Errorf("drops not logged with context:\n%s", l)
	}
}

// push sends one frame to the connector (blocks until the socket is up).
func (h *hostile) push(t *testing.T, frame string) {
	t.Helper()
	select {
	case h.extra <- frame:
	case <-time.After(waitTimeout):
		t.Fatal("hostile server: no socket to send on")
	}
}

// startHostile runs a Conn against hs for alice and waits for its sync.
func startHostile(t *testing.T, hs *hostile, edit func(*ucserver.Config), hook func(*ucserver.Conn)) (*ucserver.Conn, *recorder, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	cfg := ucserver.Config{URL: hs.srv.URL, User: svcUser, Password: svcPass,
		Logger: testConfig(nilSim{hs.srv.URL}, logs).Logger}
	if edit != nil {
		edit(&cfg)
	}
	conn, err := ucserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(conn)
	}
	events := make(chan psync.PhoneEvent, 64)
	rec := newRecorder(events)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- conn.Run(ctx, []psync.User{{ID: "sip:alice@example.com"}}, events) }()
	t.Cleanup(func() { cancel(); <-done })
	rec.next(t, "synced", isKind(psync.PhoneSynced))
	return conn, rec, logs
}

// dndMarker is a good event after which everything sent before it has been
// handled (the reader goroutine works in wire order).
func dndMarker(on bool) string {
	v := 0
	if on {
		v = 1
	}
	return fmt.Sprintf(`{"invoke":{"invokeID":99999,"operationID":1281,"argument":{"u8sMonitorCrossRefID":"M1","u8sLinePhoneNumber":"tel:1","iDoNotDisturb":%d}}}`, v)
}

func isDND(on bool) func(psync.PhoneEvent) bool {
	return func(ev psync.PhoneEvent) bool {
		return ev.Kind == psync.PhoneDeviceChanged && ev.Device == psync.Device{ID: "tel:1", DND: on}
	}
}

// nilSim lets testConfig build a logger for a server that is not ucsim.
type nilSim struct{ url string }

func (n nilSim) URL() string { return n.url }
