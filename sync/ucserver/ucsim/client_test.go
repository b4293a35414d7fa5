package ucsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// waitTimeout bounds every wait for an event; tests never sleep to wait.
const waitTimeout = 5 * time.Second

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	svcID   = "sip:svc@example.com"
	aliceID = "sip:alice@example.com"
	bobID   = "sip:bob@example.com"
	carolID = "sip:carol@example.com"

	aliceDesk = "tel:+4989100-10"
	aliceSoft = "tel:+4989100-11"
	bobDesk   = "tel:+4989100-20"
	carolDesk = "tel:+4989100-30"
)

func testUsers() []ucsim.User {
	return []ucsim.User{
		{ContactID: svcID, DisplayName: "Presence Bridge", LoginName: "svc", Password: "secret", Token: "tok-svc"},
		{
			ContactID: aliceID, DisplayName: "Alice Example", Email: "alice@example.com",
			LoginName: "alice", Password: "pw-alice",
			Lines: []ucsim.Line{
				{URI: aliceDesk, Number: "+4989100-10", Descriptor: "Desk phone"},
				{URI: aliceSoft, Number: "+4989100-11", Descriptor: "Softphone", BusyOnBusy: true},
			},
		},
		{ContactID: bobID, DisplayName: "Bob Example", Email: "bob@example.com",
			Lines: []ucsim.Line{{URI: bobDesk, Number: "+4989100-20"}}},
		{ContactID: carolID, DisplayName: "Carol Example",
			Lines: []ucsim.Line{{URI: carolDesk, NoDND: true}}},
	}
}

func startSim(t testing.TB, opts ucsim.Options) *ucsim.Server {
	t.Helper()
	if opts.Users == nil {
		opts.Users = testUsers()
	}
	s := ucsim.New(opts)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %q is not loopback", s.URL())
	}
	return s
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

type httpReply struct {
	status int
	header http.Header
	body   []byte
}

func doHTTP(t testing.TB, req *http.Request) httpReply {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return httpReply{status: resp.StatusCode, header: resp.Header, body: body}
}

// createSession logs in with Basic auth the way the node sample does.
func createSession(t testing.TB, s *ucsim.Server, user, pass string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/ws/client/createsession?clientappid=15", nil)
	req.Header.Set("X-Ucsid", "local")
	req.SetBasicAuth(user, pass)
	r := doHTTP(t, req)
	if r.status != http.StatusOK {
		t.Fatalf("createsession: %d %s", r.status, r.body)
	}
	var body struct {
		SessionID string `json:"sessionid"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.SessionID == "" {
		t.Fatalf("createsession body %s: %v", r.body, err)
	}
	return body.SessionID
}

// msg is one decoded ROSE message from the server.
type msg struct {
	Invoke *struct {
		InvokeID      int             `json:"invokeID"`
		OperationID   int             `json:"operationID"`
		OperationName string          `json:"operationName"`
		Argument      json.RawMessage `json:"argument"`
	} `json:"invoke"`
	Result *struct {
		InvokeID int `json:"invokeID"`
		Result   struct {
			ResultValue *int            `json:"resultValue"`
			Result      json.RawMessage `json:"result"`
		} `json:"result"`
	} `json:"result"`
	Error *struct {
		InvokedID  *int            `json:"invokedID"`
		ErrorValue int             `json:"error_value"`
		Error      json.RawMessage `json:"error"`
	} `json:"error"`
	Reject *struct {
		InvokedID json.RawMessage `json:"invokedID"`
		Reject    map[string]int  `json:"reject"`
		Details   string          `json:"details"`
	} `json:"reject"`
	raw []byte
}

func (m msg) String() string { return string(m.raw) }

// client is a minimal raw ROSE client: coder/websocket + encoding/json.
type client struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan []byte
	done   chan struct{}
	err    error // read error, valid after done
	plain  bool  // expect bare objects instead of one-element arrays
}

func dialSession(t testing.TB, s *ucsim.Server, sessionID string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, s.WebSocketURL(sessionID), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	conn.SetReadLimit(64 << 20)
	c := &client{t: t, conn: conn, frames: make(chan []byte, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				c.err = err
				return
			}
			c.frames <- data
		}
	}()
	t.Cleanup(func() { _ = conn.CloseNow(); <-c.done })
	return c
}

func login(t testing.TB, s *ucsim.Server, user, pass string) *client {
	t.Helper()
	return dialSession(t, s, createSession(t, s, user, pass))
}

func (c *client) sendRaw(data string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(data)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) invoke(id, op int, arg any) {
	c.t.Helper()
	inv := map[string]any{"invokeID": id, "operationID": op, "operationName": ucsim.OperationName(op)}
	if arg != nil {
		inv["argument"] = arg
	}
	b, _ := json.Marshal(map[string]any{"invoke": inv})
	c.sendRaw(string(b))
}

func (c *client) keepAlive() {
	c.t.Helper()
	c.sendRaw(`{"invoke":{"invokeID":99999,"operationID":1706,"operationName":"asnTransportKeepAlive","argument":{"dummy":null}}}`)
}

// next returns the next message, checking the one-element array wrapper.
func (c *client) next() msg {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return c.decode(f)
	case <-c.done:
		select {
		case f := <-c.frames:
			return c.decode(f)
		default:
		}
		c.t.Fatalf("socket closed while waiting: %v", c.err)
	case <-time.After(waitTimeout):
		c.t.Fatalf("no message within %v", waitTimeout)
	}
	return msg{}
}

func (c *client) decode(f []byte) msg {
	c.t.Helper()
	var m msg
	m.raw = f
	if c.plain {
		if err := json.Unmarshal(f, &m); err != nil {
			c.t.Fatalf("frame %s: %v", f, err)
		}
		return m
	}
	var list []json.RawMessage
	if err := json.Unmarshal(f, &list); err != nil || len(list) != 1 {
		c.t.Fatalf("frame is not a one-element array: %s", f)
	}
	if err := json.Unmarshal(list[0], &m); err != nil {
		c.t.Fatalf("frame %s: %v", f, err)
	}
	m.raw = list[0]
	return m
}

// result waits for the result of invokeID id (failing on anything else
// addressed to it) and decodes result.result.result into out.
func (c *client) result(id int, out any) {
	c.t.Helper()
	m := c.answer(id)
	if m.Result == nil {
		c.t.Fatalf("invoke %d: want result, got %s", id, m)
	}
	if m.Result.Result.ResultValue == nil || *m.Result.Result.ResultValue != 0 {
		c.t.Fatalf("invoke %d: resultValue missing or non-zero: %s", id, m)
	}
	if out != nil {
		if err := json.Unmarshal(m.Result.Result.Result, out); err != nil {
			c.t.Fatalf("invoke %d: decode %s: %v", id, m.Result.Result.Result, err)
		}
	}
}

// answer skips events until the answer to invokeID id arrives.
func (c *client) answer(id int) msg {
	c.t.Helper()
	for {
		m := c.next()
		switch {
		case m.Result != nil && m.Result.InvokeID == id:
			return m
		case m.Error != nil && m.Error.InvokedID != nil && *m.Error.InvokedID == id:
			return m
		case m.Reject != nil && string(m.Reject.InvokedID) == fmt.Sprintf(`{"invokedID":%d}`, id):
			return m
		case m.Invoke != nil:
			continue
		default:
			c.t.Fatalf("waiting for answer to %d, got %s", id, m)
		}
	}
}

// event skips other messages until an event of op arrives whose argument
// satisfies match (nil matches all); the argument is decoded into out.
func (c *client) event(op int, match func(json.RawMessage) bool, out any) json.RawMessage {
	c.t.Helper()
	for {
		m := c.next()
		if m.Invoke == nil || m.Invoke.OperationID != op {
			continue
		}
		if m.Invoke.InvokeID != ucsim.EventInvokeID {
			c.t.Fatalf("event with invokeID %d", m.Invoke.InvokeID)
		}
		if m.Invoke.OperationName != ucsim.OperationName(op) {
			c.t.Fatalf("event operationName %q", m.Invoke.OperationName)
		}
		if match != nil && !match(m.Invoke.Argument) {
			continue
		}
		if out != nil {
			if err := json.Unmarshal(m.Invoke.Argument, out); err != nil {
				c.t.Fatalf("decode %s: %v", m.Invoke.Argument, err)
			}
		}
		return m.Invoke.Argument
	}
}

// expectQuiet asserts that the next message is the answer to a fresh
// asnCheckConnection, i.e. nothing was queued before it.
func (c *client) expectQuiet(id int) {
	c.t.Helper()
	c.invoke(id, ucsim.OpCheckConnection, map[string]any{})
	m := c.next()
	if m.Result == nil || m.Result.InvokeID != id {
		c.t.Fatalf("expected nothing before the check-connection result, got %s", m)
	}
}

// waitClosed waits for the server to end the socket and returns the error.
func (c *client) waitClosed() error {
	c.t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(waitTimeout):
		c.t.Fatalf("socket not closed within %v", waitTimeout)
	}
	return nil
}

func waitStats(t testing.TB, s *ucsim.Server, what string, cond func(ucsim.Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.WaitStats(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v (stats %+v)", what, err, s.Stats())
	}
}

func newRequest(t testing.TB, method, u string, body string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func mustJSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return m
}

func isCloseStatus(err error, code websocket.StatusCode) bool {
	var ce websocket.CloseError
	return errors.As(err, &ce) && ce.Code == code
}

func query(v ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(v); i += 2 {
		q.Set(v[i], v[i+1])
	}
	return q.Encode()
}
