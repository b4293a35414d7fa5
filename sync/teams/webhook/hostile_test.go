package webhook_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/presencebridge/presencebridge/sync/teams/webhook"
)

// heapBudget is what the whole test process may grow by under a hostile load: the receiver
// faces the internet, so what anyone can make it hold must be small and fixed.
const heapBudget = 64 << 20

// hostileBody is {"value":[{},{},…]} of exactly n bytes: the cheapest body that makes a
// naive decoder allocate one notification struct per three bytes.
func hostileBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"value":[{}`)
	for b.Len()+len(`,{}`)+len(`]}`) <= n {
		b.WriteString(`,{}`)
	}
	b.WriteString(strings.Repeat(" ", n-b.Len()-len(`]}`)))
	b.WriteString(`]}`)
	return b.Bytes()
}

// growth is what a load made the process grow by at its peak, over the settled state before
// it: the heap in use, and all the memory the runtime holds from the OS and has not given
// back (heap, stacks, the runtime's own), which is what the process's resident size follows.
type growth struct{ heap, mapped uint64 }

func (g growth) String() string {
	return fmt.Sprintf("heap grew by %.1f MB, the process's memory by %.1f MB", float64(g.heap)/1e6, float64(g.mapped)/1e6)
}

// unknownSubscriptionBody is about n bytes of well-formed notifications, each padded to
// fill the body within the notification cap, of a subscription id nobody created.
func unknownSubscriptionBody(n int) []byte {
	per := n/webhook.DefaultMaxNotifications + 1
	var parts []string
	for size := len(`{"value":[]}`); size+per < n; size += per + 1 {
		item := basic(otherSubID, "guess", bobID)
		b, _ := json.Marshal(item)
		item["pad"] = strings.Repeat("x", max(0, per-len(b)-len(`,"pad":""`)))
		b, _ = json.Marshal(item)
		parts = append(parts, string(b))
	}
	return []byte(`{"value":[` + strings.Join(parts, ",") + `]}`)
}

// heapPeak runs load while sampling the runtime's memory and returns the peak growth.
func heapPeak(t *testing.T, load func()) growth {
	t.Helper()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	baseHeap, baseMapped := ms.HeapInuse, ms.Sys-ms.HeapReleased
	var peakHeap, peakMapped atomic.Uint64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peakHeap.Store(max(peakHeap.Load(), m.HeapInuse))
			peakMapped.Store(max(peakMapped.Load(), m.Sys-m.HeapReleased))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	load()
	close(stop)
	<-stopped
	over := func(peak, base uint64) uint64 {
		if peak > base {
			return peak - base
		}
		return 0
	}
	return growth{over(peakHeap.Load(), baseHeap), over(peakMapped.Load(), baseMapped)}
}

// TestEndpoint_HostileLoadStaysBounded sends what once cost gigabytes: 30 concurrent 1 MiB
// {"value":[{},{},…]} bodies on 30 connections, then 20 of them as concurrent streams on one
// HTTP/2 connection. The heap and the process's memory may grow by at most heapBudget, nothing of it may reach the
// consumer, and a valid notification is served afterwards.
func TestEndpoint_HostileLoadStaysBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("heap figures are meaningless under the race detector")
	}
	h := newHarness(t, true)
	hostile := hostileBody(webhook.DefaultMaxBodyBytes)
	if len(hostile) != webhook.DefaultMaxBodyBytes {
		t.Fatalf("hostile body %d bytes", len(hostile))
	}
	pool := keys().server.Pool

	var statuses sync.Map // status or error text → count
	count := func(k string) {
		n, _ := statuses.LoadOrStore(k, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	fire := func(c *http.Client, n int, hostile []byte) {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Post(h.ep.NotificationURL(), "application/json", bytes.NewReader(hostile))
				if err != nil {
					// The server may stop reading a hostile body and close before the
					// client has written it all: that is the point.
					count("error")
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				count(http.StatusText(resp.StatusCode))
			}()
		}
		wg.Wait()
	}

	// 30 connections, HTTP/1.1.
	h1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxConnsPerHost: 0}
	h1.Protocols = new(http.Protocols)
	h1.Protocols.SetHTTP1(true)
	t.Cleanup(h1.CloseIdleConnections)
	grew := heapPeak(t, func() { fire(&http.Client{Transport: h1, Timeout: time.Minute}, 30, hostile) })
	t.Logf("30 concurrent 1 MiB hostile bodies: %v", grew)
	if grew.heap > heapBudget || grew.mapped > heapBudget {
		t.Errorf("30 hostile bodies: %v, budget %d MB", grew, heapBudget>>20)
	}

	// The body read furthest: well-formed notifications of a subscription the receiver does
	// not know are skipped, not taken for forged, so reading goes on to the notification cap.
	unknown := unknownSubscriptionBody(webhook.DefaultMaxBodyBytes)
	grew = heapPeak(t, func() { fire(&http.Client{Transport: h1, Timeout: time.Minute}, 30, unknown) })
	t.Logf("30 concurrent 1 MiB bodies of unknown subscriptions: %v", grew)
	if grew.heap > heapBudget || grew.mapped > heapBudget {
		t.Errorf("30 bodies of unknown subscriptions: %v, budget %d MB", grew, heapBudget>>20)
	}

	// 20 streams at once on one HTTP/2 connection, from a client that ignores the server's
	// stream limit as a hostile one would.
	var h2answers map[string]int
	grew = heapPeak(t, func() { h2answers = h2Flood(t, strings.TrimPrefix(h.ep.URL(), "https://"), pool, 20, hostile) })
	t.Logf("20 hostile streams on one HTTP/2 connection: %v; streams ended %v", grew, h2answers)
	if grew.heap > heapBudget || grew.mapped > heapBudget {
		t.Errorf("20 hostile streams: %v, budget %d MB", grew, heapBudget>>20)
	}
	if served := 20 - h2answers["refused"]; served > webhook.DefaultMaxStreamsPerConn {
		t.Errorf("%d streams of one connection were served at once, limit %d", served, webhook.DefaultMaxStreamsPerConn)
	}

	var got []string
	statuses.Range(func(k, v any) bool {
		got = append(got, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("answers to the hostile bodies: %v", got)
	if st := h.rcv.Stats(); st.Accepted != 0 {
		t.Fatalf("hostile bodies produced %d accepted notifications", st.Accepted)
	}

	// The endpoint still serves Graph.
	if st := h.post(webhook.NotifyPath, body(nil, basic(subID, goodState, aliceID))); st != http.StatusAccepted {
		t.Fatalf("valid notification after the load: %d", st)
	}
	if ev := h.next(); ev.UserID != aliceID {
		t.Fatalf("%+v", ev)
	}
}

// h2Flood opens one TLS connection, speaks HTTP/2 with a raw framer, opens n streams before
// sending any data (a client that ignores MAX_CONCURRENT_STREAMS), then POSTs body on each
// within the flow-control windows. It returns how the streams ended: "refused" (RST_STREAM
// before any answer), the status of an answer, or "closed" (connection gone first).
func h2Flood(t *testing.T, addr string, pool *x509.CertPool, n int, body []byte) map[string]int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var wmu sync.Mutex // the framer's writes
	write := func(f func() error) error {
		wmu.Lock()
		defer wmu.Unlock()
		return f()
	}

	type stream struct {
		win  int64
		sent int
		done bool
	}
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		connWin  = int64(65535)
		initWin  = int64(65535)
		streams  = map[uint32]*stream{}
		ended    = map[string]int{}
		connGone bool
	)
	end := func(id uint32, how string) { // mu held
		if s := streams[id]; s != nil && !s.done {
			s.done = true
			ended[how]++
		}
	}
	_ = write(func() error { return fr.WriteSettings() })
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := range n {
		id := uint32(2*i + 1)
		hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", addr}, {":path", webhook.NotifyPath},
			{"content-type", "application/json"}, {"content-length", fmt.Sprint(len(body))}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		mu.Lock()
		streams[id] = &stream{win: initWin}
		mu.Unlock()
		if err := write(func() error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true})
		}); err != nil {
			t.Fatal(err)
		}
	}

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			f, err := fr.ReadFrame()
			mu.Lock()
			if err != nil {
				connGone = true
				for id := range streams {
					end(id, "closed")
				}
				cond.Broadcast()
				mu.Unlock()
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
						for _, s := range streams {
							s.win += int64(v) - initWin
						}
						initWin = int64(v)
					}
					go func() { _ = write(func() error { return fr.WriteSettingsAck() }) }()
				}
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					connWin += int64(f.Increment)
				} else if s := streams[f.StreamID]; s != nil {
					s.win += int64(f.Increment)
				}
			case *http2.MetaHeadersFrame:
				end(f.StreamID, f.PseudoValue("status"))
			case *http2.RSTStreamFrame:
				end(f.StreamID, "refused")
			case *http2.GoAwayFrame:
				for id := range streams {
					if id > f.LastStreamID {
						end(id, "refused")
					}
				}
			}
			cond.Broadcast()
			mu.Unlock()
		}
	}()

	// Send the bodies, a frame at a time, on whichever stream has window.
	for {
		mu.Lock()
		var id uint32
		var chunk int
		for {
			open := 0
			for sid, s := range streams {
				if s.done || s.sent == len(body) {
					continue
				}
				open++
				if c := min(int64(16<<10), s.win, connWin, int64(len(body)-s.sent)); c > 0 {
					id, chunk = sid, int(c)
					break
				}
			}
			if id != 0 || open == 0 || connGone {
				break
			}
			cond.Wait()
		}
		if id == 0 {
			mu.Unlock()
			break
		}
		s := streams[id]
		from := s.sent
		s.sent += chunk
		s.win -= int64(chunk)
		connWin -= int64(chunk)
		last := s.sent == len(body)
		mu.Unlock()
		if err := write(func() error { return fr.WriteData(id, last, body[from:from+chunk]) }); err != nil {
			break
		}
	}
	// Wait for every stream's end.
	mu.Lock()
	for {
		all := true
		for _, s := range streams {
			all = all && s.done
		}
		if all || connGone {
			break
		}
		cond.Wait()
	}
	out := maps.Clone(ended)
	mu.Unlock()
	conn.Close()
	<-readerDone
	return out
}
