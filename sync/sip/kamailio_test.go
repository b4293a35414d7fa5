package sip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// fakeKamailio answers htable RPC the way Kamailio 5.6.3 does (shapes and
// status codes captured from the real one, see kamailio.go).
type fakeKamailio struct {
	mu      sync.Mutex
	tables  map[string]map[string]int64 // table -> key -> expire (unix s)
	noSetxi bool
	reqs    []rpcReq
}

type rpcReq struct {
	JSONRPC string            `json:"jsonrpc"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
	ID      json.RawMessage   `json:"id"`
}

func newFake(tables ...string) *fakeKamailio {
	f := &fakeKamailio{tables: map[string]map[string]int64{}}
	for _, t := range tables {
		f.tables[t] = map[string]int64{}
	}
	return f
}

func (f *fakeKamailio) requests() []rpcReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rpcReq(nil), f.reqs...)
}

func (f *fakeKamailio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req rpcReq
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.JSONRPC != "2.0" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		m := map[string]any{"jsonrpc": "2.0", "id": req.ID}
		if status/100 == 2 {
			if v != nil {
				m["result"] = v
			}
		} else {
			m["error"] = map[string]any{"code": status, "message": v}
		}
		json.NewEncoder(w).Encode(m)
	}
	str := func(i int) string {
		var s string
		if i >= len(req.Params) || json.Unmarshal(req.Params[i], &s) != nil {
			return "\x00not a string"
		}
		return s
	}
	num := func(i int) int64 {
		var n int64
		if i < len(req.Params) {
			json.Unmarshal(req.Params[i], &n)
		}
		return n
	}
	if req.Method == "htable.listTables" {
		var out []map[string]any
		for name := range f.tables {
			out = append(out, map[string]any{"name": name, "dbtable": "", "expire": 3600})
		}
		answer(200, out)
		return
	}
	if !strings.HasPrefix(req.Method, "htable.") || (f.noSetxi && req.Method == "htable.setxi") {
		answer(500, "Method Not Found")
		return
	}
	t, ok := f.tables[str(0)]
	if !ok && req.Method == "htable.setxi" {
		answer(500, "Failed to set the item")
		return
	}
	if !ok {
		answer(500, "No such htable")
		return
	}
	key := str(1)
	now := time.Now().Unix()
	if exp, ok := t[key]; ok && exp <= now {
		delete(t, key)
	}
	switch req.Method {
	case "htable.setxi":
		t[key] = now + num(3)
		answer(200, "Ok. Key set to new value.")
	case "htable.seti":
		t[key] = now + 3600
		answer(200, "Ok. Key set to new value.")
	case "htable.setex":
		if _, ok := t[key]; ok {
			t[key] = now + num(2)
		}
		answer(200, "Ok")
	case "htable.get":
		exp, ok := t[key]
		if !ok {
			answer(500, "Key name doesn't exist in htable.")
			return
		}
		answer(200, map[string]any{"item": map[string]any{"name": key, "value": 1, "flags": 0,
			"expire": time.Unix(exp, 0).Format(time.DateTime)}})
	case "htable.delete":
		if _, ok := t[key]; !ok {
			answer(404, "Key not found in htable.")
			return
		}
		delete(t, key)
		answer(200, nil)
	default:
		answer(500, "Method Not Found")
	}
}

func newTestRPC(t *testing.T, h http.Handler, table string) *kamailioRPC {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	k, err := newKamailioRPC(srv.URL+"/RPC", table, &http.Client{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func isNotSent(err error) bool {
	var ns *psync.NotSentError
	return errors.As(err, &ns)
}

func TestNewKamailioRPC_Validates(t *testing.T) {
	for _, c := range []struct {
		url, table, want string
	}{
		{"", "teamsbusy", "sip.rpc_url is empty"},
		{"ftp://127.0.0.1:5071/RPC", "teamsbusy", "sip.rpc_url"},
		{"127.0.0.1:5071/RPC", "teamsbusy", "sip.rpc_url"},
		{"http:///RPC", "teamsbusy", "has no host"},
		{"http://127.0.0.1:5071", "teamsbusy", "has no path"},
		{"http://127.0.0.1:5071/", "teamsbusy", "has no path"},
		{"http://127.0.0.1:5071/RPC#x", "teamsbusy", "fragment"},
		{"http://user:secret@127.0.0.1:5071", "teamsbusy", "has no path"},
		{"http://127.0.0.1:5071/RPC", "", "sip.htable is empty"},
		{"http://127.0.0.1:5071/RPC", "teams busy", "sip.htable"},
		{"http://127.0.0.1:5071/RPC", "teams=>x", "sip.htable"},
	} {
		_, err := newKamailioRPC(c.url, c.table, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("newKamailioRPC(%q, %q) = %v, want an error with %q", c.url, c.table, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:5071/RPC", "https://proxy.example:443/RPC", " http://[::1]:5071/jsonrpc "} {
		if _, err := newKamailioRPC(u, "teamsbusy", nil); err != nil {
			t.Errorf("newKamailioRPC(%q) = %v, want nil", u, err)
		}
	}
}

func TestKamailioRPC_SetBusyClearBusy(t *testing.T) {
	f := newFake("teamsbusy")
	k := newTestRPC(t, f, "teamsbusy")
	ctx := context.Background()

	if busy, err := k.Busy(ctx, "201"); err != nil || busy {
		t.Fatalf("Busy before any write = %v, %v; want false, nil", busy, err)
	}
	if err := k.SetBusy(ctx, "201", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	last := reqs[len(reqs)-1]
	// the key must go as a JSON string, the value and lifetime as numbers;
	// 1.5 s rounds up, never down to a lifetime shorter than asked
	if got := fmt.Sprintf("%s %s", last.Method, last.Params); got != `htable.setxi ["teamsbusy" "201" 1 2]` {
		t.Fatalf("SetBusy sent %s, want htable.setxi [\"teamsbusy\" \"201\" 1 2]", got)
	}
	if busy, err := k.Busy(ctx, "201"); err != nil || !busy {
		t.Fatalf("Busy after SetBusy = %v, %v; want true, nil", busy, err)
	}
	if err := k.ClearBusy(ctx, "201"); err != nil {
		t.Fatal(err)
	}
	if busy, err := k.Busy(ctx, "201"); err != nil || busy {
		t.Fatalf("Busy after ClearBusy = %v, %v; want false, nil", busy, err)
	}
	// absent is success: a second clear, and a clear of a key never set
	if err := k.ClearBusy(ctx, "201"); err != nil {
		t.Fatalf("second ClearBusy = %v, want nil", err)
	}
	if err := k.ClearBusy(ctx, "999"); err != nil {
		t.Fatalf("ClearBusy of an absent key = %v, want nil", err)
	}
}

func TestKamailioRPC_SetBusyWithoutSetxi(t *testing.T) {
	f := newFake("teamsbusy")
	f.noSetxi = true
	k := newTestRPC(t, f, "teamsbusy")
	ctx := context.Background()
	for range 2 {
		if err := k.SetBusy(ctx, "202", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	var methods []string
	for _, r := range f.requests() {
		methods = append(methods, r.Method)
	}
	// setxi is tried once; after that the two-step form is used directly
	if got := strings.Join(methods, " "); got != "htable.setxi htable.seti htable.setex htable.seti htable.setex" {
		t.Fatalf("methods = %s", got)
	}
	f.mu.Lock()
	exp := f.tables["teamsbusy"]["202"]
	f.mu.Unlock()
	if d := exp - time.Now().Unix(); d < 55 || d > 61 {
		t.Fatalf("lifetime after seti+setex = %d s, want about 60", d)
	}
}

func TestKamailioRPC_BadInputSendsNothing(t *testing.T) {
	f := newFake("teamsbusy")
	k := newTestRPC(t, f, "teamsbusy")
	ctx := context.Background()
	for _, err := range []error{
		k.SetBusy(ctx, "", time.Minute),
		k.SetBusy(ctx, "20 1", time.Minute),
		k.SetBusy(ctx, "201\n", time.Minute),
		k.SetBusy(ctx, strings.Repeat("1", 129), time.Minute),
		k.SetBusy(ctx, "201", 0),
		k.SetBusy(ctx, "201", -time.Second),
		k.ClearBusy(ctx, ""),
		func() error { _, err := k.Busy(ctx, ""); return err }(),
	} {
		if !errors.Is(err, psync.ErrRejected) || !isNotSent(err) {
			t.Errorf("err = %v, want NotSent(ErrRejected)", err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests sent for bad input", n)
	}
}

func TestKamailioRPC_WrongTable(t *testing.T) {
	f := newFake("other", "teamsbusy2")
	k := newTestRPC(t, f, "teamsbusy")
	ctx := context.Background()
	_, busyErr := k.Busy(ctx, "201")
	for name, err := range map[string]error{
		"SetBusy":   k.SetBusy(ctx, "201", time.Minute),
		"ClearBusy": k.ClearBusy(ctx, "201"),
		"Busy":      busyErr,
		"Check":     k.Check(ctx),
	} {
		if !errors.Is(err, psync.ErrRejected) || errors.Is(err, psync.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrRejected only", name, err)
			continue
		}
		for _, want := range []string{`"teamsbusy"`, "sip.htable", `modparam("htable", "htable", "teamsbusy=>`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v\nwant it to name %s", name, err, want)
			}
		}
	}
	if err := k.Check(ctx); !strings.Contains(err.Error(), "other") || !strings.Contains(err.Error(), "teamsbusy2") {
		t.Errorf("Check does not list the tables Kamailio has: %v", err)
	}
	k.table = "other"
	if err := k.Check(ctx); err != nil {
		t.Errorf("Check with a table that exists = %v", err)
	}
}

func TestKamailioRPC_NoHTableModule(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		fmt.Fprint(w, `{"jsonrpc":"2.0","error":{"code":500,"message":"Method Not Found"},"id":1}`)
	})
	k := newTestRPC(t, h, "teamsbusy")
	for name, err := range map[string]error{
		"Check":   k.Check(context.Background()),
		"SetBusy": k.SetBusy(context.Background(), "201", time.Minute),
	} {
		if !errors.Is(err, psync.ErrRejected) || !strings.Contains(err.Error(), `loadmodule "htable.so"`) {
			t.Errorf("%s: %v, want ErrRejected naming loadmodule htable.so", name, err)
		}
	}
}

func TestKamailioRPC_Unreachable(t *testing.T) {
	// a port that was free a moment ago: connection refused
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	k, err := newKamailioRPC("http://"+addr+"/RPC", "teamsbusy", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, busyErr := k.Busy(ctx, "201")
	for name, err := range map[string]error{
		"SetBusy":   k.SetBusy(ctx, "201", time.Minute),
		"ClearBusy": k.ClearBusy(ctx, "201"),
		"Busy":      busyErr,
		"Check":     k.Check(ctx),
	} {
		if !errors.Is(err, psync.ErrUnavailable) || !isNotSent(err) {
			t.Errorf("%s: %v, want NotSent(ErrUnavailable)", name, err)
		} else if !strings.Contains(err.Error(), "sip.rpc_url") || !strings.Contains(err.Error(), "cannot connect") {
			t.Errorf("%s: %v, want it to name sip.rpc_url and say it cannot connect", name, err)
		}
	}

	// a name that does not resolve: the dial fails in DNS
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "kamailio.invalid", IsNotFound: true}}
	}}}
	k, err = newKamailioRPC("http://kamailio.invalid:5071/RPC", "teamsbusy", hc)
	if err != nil {
		t.Fatal(err)
	}
	err = k.SetBusy(ctx, "201", time.Minute)
	if !errors.Is(err, psync.ErrUnavailable) || !isNotSent(err) || !strings.Contains(err.Error(), "cannot resolve") {
		t.Errorf("DNS failure: %v, want NotSent(ErrUnavailable) saying it cannot resolve", err)
	}
}

func TestKamailioRPC_OutcomeUnknown(t *testing.T) {
	release := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(slow)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	k, err := newKamailioRPC(srv.URL+"/RPC", "teamsbusy", &http.Client{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = k.SetBusy(context.Background(), "201", time.Minute)
	if !errors.Is(err, psync.ErrUnavailable) || isNotSent(err) {
		t.Errorf("timeout: %v, want ErrUnavailable that may have been sent", err)
	}
	k.hc = &http.Client{}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = k.ClearBusy(ctx, "201")
	if !errors.Is(err, psync.ErrUnavailable) || isNotSent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context deadline: %v, want ErrUnavailable wrapping the deadline, maybe sent", err)
	}
}

func TestKamailioRPC_HTTPAnswers(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		body   string
		want   error
		text   string
	}{
		{"gateway", 502, "<html>bad gateway</html>", psync.ErrUnavailable, "502"},
		{"unavailable", 503, "", psync.ErrUnavailable, "503"},
		{"internal error answer", 500, `{"jsonrpc":"2.0","error":{"code":500,"message":"Internal error"},"id":1}`, psync.ErrUnavailable, "Internal error"},
		{"wrong path", 404, "the RPC interface is at /RPC\n", psync.ErrRejected, "path"},
		{"wrong port", 403, "no HTTP on this port\n", psync.ErrRejected, "TEAMSBUSY_RPC_PORT"},
		{"not json-rpc", 200, "<html>hello</html>", psync.ErrRejected, "not a JSON-RPC answer"},
		{"bad params", 400, `{"jsonrpc":"2.0","error":{"code":400,"message":"Invalid Parameters"},"id":1}`, psync.ErrRejected, "Invalid Parameters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := newTestRPC(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(c.status)
				fmt.Fprint(w, c.body)
			}), "teamsbusy")
			err := k.SetBusy(context.Background(), "201", time.Minute)
			if !errors.Is(err, c.want) || isNotSent(err) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("%v, want %v (sent) mentioning %q", err, c.want, c.text)
			}
		})
	}
}

func TestKamailioRPC_AnswerIsBounded(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		fmt.Fprint(w, `{"jsonrpc":"2.0","result":"`)
		chunk := strings.Repeat("x", 64<<10)
		for range 64 { // 4 MiB
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return
			}
		}
		fmt.Fprint(w, `","id":1}`)
	})
	k := newTestRPC(t, h, "teamsbusy")
	err := k.Check(context.Background())
	if !errors.Is(err, psync.ErrRejected) || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("%v, want ErrRejected for an answer over 1 MiB", err)
	}
}
