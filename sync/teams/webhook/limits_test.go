package webhook_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/webhook"
)

// countingReader counts what the handler read of a body.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// items joins notifications into a value array's elements.
func items(ns ...map[string]any) string {
	var parts []string
	for _, n := range ns {
		b, _ := json.Marshal(n)
		parts = append(parts, string(b))
	}
	return strings.Join(parts, ",")
}

// TestReceiver_ForgedNotificationEndsTheRequest: the first notification Graph cannot have
// sent ends the reading of the body; nothing of that body reaches the consumer, and the body
// behind it (here far over the size limit) is never read.
func TestReceiver_ForgedNotificationEndsTheRequest(t *testing.T) {
	h := newHarness(t, true)
	good := basic(subID, goodState, aliceID)
	tail := strings.Repeat(","+items(basic(subID, goodState, bobID)), 8000) // ≈ 5 MB
	cases := []struct {
		name   string
		head   string
		reason webhook.Reason
		count  uint64
	}{
		{"empty object first", `{}`, webhook.ReasonBadPayload, 1},
		{"wrong client state first", items(basic(subID, "guess", aliceID)), webhook.ReasonWrongClientState, 1},
		{"missing client state", items(map[string]any{"subscriptionId": subID}), webhook.ReasonWrongClientState, 1},
		{"good then forged", items(good, basic(subID, "guess", aliceID)), webhook.ReasonWrongClientState, 2},
		{"good then no subscription id", items(good, basic("", goodState, aliceID)), webhook.ReasonBadPayload, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			before := h.rcv.Stats()
			body := &countingReader{r: strings.NewReader(`{"value":[` + tc.head + tail + `]}`)}
			w := httptest.NewRecorder()
			h.rcv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, webhook.NotifyPath, body))
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d, want 202", w.Code)
			}
			if n := body.n.Load(); n > 256<<10 {
				t.Fatalf("read %d bytes of the body after a forged notification", n)
			}
			after := h.rcv.Stats()
			if got := after.Ignored[tc.reason] - before.Ignored[tc.reason]; got != tc.count {
				t.Fatalf("Ignored[%v] grew by %d, want %d", tc.reason, got, tc.count)
			}
			if st := h.post(webhook.NotifyPath, body2(basic(subID, goodState, bobID))); st != 202 {
				t.Fatalf("marker %d", st)
			}
			if ev := h.next(); ev.UserID != bobID {
				t.Fatalf("the forged body produced %+v", ev)
			}
		})
	}

	// A subscription we do not know is skipped, not forged: Graph batches every
	// subscription of the URL, and one just created or replaced is not known yet or still.
	h.t = t
	before := h.rcv.Stats()
	if st := h.post(webhook.NotifyPath, body(nil, basic(otherSubID, goodState, bobID), good)); st != 202 {
		t.Fatalf("status %d", st)
	}
	if ev := h.next(); ev.UserID != aliceID {
		t.Fatalf("after an unknown subscription: %+v", ev)
	}
	if got := h.rcv.Stats().Ignored[webhook.ReasonUnknownSubscription] - before.Ignored[webhook.ReasonUnknownSubscription]; got != 1 {
		t.Fatalf("unknown_subscription grew by %d", got)
	}
}

func body2(items ...map[string]any) []byte { return body(nil, items...) }

func TestReceiver_NotificationCap(t *testing.T) {
	h := newHarness(t, true, func(c *webhook.Config) { c.MaxNotifications = 3 })
	n := basic(subID, goodState, aliceID)
	if st := h.post(webhook.NotifyPath, body(nil, n, n, n)); st != http.StatusAccepted {
		t.Fatalf("3 notifications: %d", st)
	}
	for range 3 {
		h.next()
	}
	if st := h.post(webhook.NotifyPath, body(nil, n, n, n, n)); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("4 notifications: %d, want 413", st)
	}
	if got := h.ignored(webhook.ReasonTooLarge); got != 1 {
		t.Fatalf("too_large = %d", got)
	}
	h.post(webhook.NotifyPath, body(nil, basic(subID, goodState, bobID)))
	if ev := h.next(); ev.UserID != bobID {
		t.Fatalf("the refused body produced %+v", ev)
	}
	// One notification of more than 64 KiB is not Graph's either.
	big := basic(subID, goodState, aliceID)
	big["pad"] = strings.Repeat("x", 70<<10)
	if st := h.post(webhook.NotifyPath, body(nil, big)); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("70 KiB notification: %d, want 413", st)
	}
}

// TestReceiver_BusyAnswers503: past MaxInFlight bodies being read, a POST gets 503 with
// Retry-After at once; validation handshakes are still answered, and once the place frees
// the next POST is served.
func TestReceiver_BusyAnswers503(t *testing.T) {
	h := newHarness(t, true, func(c *webhook.Config) { c.MaxInFlight = 1 })
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		resp, err := h.client.Post(h.ep.NotificationURL(), "application/json", pr)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	if _, err := io.WriteString(pw, `{"value":[`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitFor)
	for h.rcv.Stats().Requests != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first POST never got in")
		}
		time.Sleep(5 * time.Millisecond)
	}

	resp, err := h.client.Post(h.ep.NotificationURL(), "application/json", bytes.NewReader(body2(basic(subID, goodState, bobID))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("while busy: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st := h.rcv.Stats(); st.Busy != 1 || st.Requests != 1 {
		t.Fatalf("stats %+v", st)
	}
	resp, err = h.client.Get(h.ep.NotificationURL() + "?validationToken=still-here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("validation while busy: %d", resp.StatusCode)
	}

	if _, err := io.WriteString(pw, items(basic(subID, goodState, aliceID))+`]}`); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if st := <-first; st != http.StatusAccepted {
		t.Fatalf("first POST: %d", st)
	}
	if ev := h.next(); ev.UserID != aliceID {
		t.Fatalf("%+v", ev)
	}
	if st := h.post(webhook.NotifyPath, body2(basic(subID, goodState, bobID))); st != http.StatusAccepted {
		t.Fatalf("after the place freed: %d", st)
	}
	if ev := h.next(); ev.UserID != bobID {
		t.Fatalf("%+v", ev)
	}
}

// TestEndpoint_ConnectionLimit: with the limit reached, a valid notification is served once
// a slot frees: at once when idle keep-alive connections hold the slots (they are closed to
// make room), and when one of the connections holding them ends otherwise.
func TestEndpoint_ConnectionLimit(t *testing.T) {
	const limit = 16 // the floor of the limit
	h := newHarness(t, true, func(c *webhook.Config) { c.MaxConnections = limit })
	pool := keys().server.Pool
	waitConns := func(n int) {
		t.Helper()
		deadline := time.Now().Add(waitFor)
		for h.ep.Conns() != n {
			if time.Now().After(deadline) {
				t.Fatalf("endpoint holds %d connections, want %d", h.ep.Conns(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	newClient := func() *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP1(true)
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: waitFor}
	}
	notify := func(c *http.Client, user string) {
		t.Helper()
		resp, err := c.Post(h.ep.NotificationURL(), "application/json", bytes.NewReader(body2(basic(subID, goodState, user))))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if ev := h.next(); ev.UserID != user {
			t.Fatalf("%+v", ev)
		}
	}

	// Idle keep-alive connections fill every slot.
	for range limit {
		c := newClient()
		resp, err := c.Get(h.ep.NotificationURL() + "?validationToken=idle")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waitConns(limit)
	notify(newClient(), aliceID)

	// Connections that finished the TLS handshake and send nothing: not idle, so they keep
	// their slots until they end.
	var fillers []*tls.Conn
	for i := range limit {
		c, err := tls.Dial("tcp", strings.TrimPrefix(h.ep.URL(), "https://"), &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatalf("filler %d: %v", i, err)
		}
		fillers = append(fillers, c)
		defer c.Close()
	}
	waitConns(limit)
	done := make(chan struct{})
	go func() {
		defer close(done)
		notify(newClient(), bobID)
	}()
	fillers[0].Close()
	<-done
	if n := h.ep.Conns(); n > limit {
		t.Fatalf("endpoint holds %d connections, limit %d", n, limit)
	}
}
