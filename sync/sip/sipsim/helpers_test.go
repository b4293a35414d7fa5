package sipsim

import (
	"context"
	"encoding/xml"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// watcher is a SIP subscriber on its own loopback port, built from sipgo the
// way the connector builds its own: a server for the NOTIFYs and a client
// sending from the same socket.
type watcher struct {
	t        testing.TB
	addr     string
	ua       *sipgo.UserAgent
	client   *sipgo.Client
	notifies chan *sip.Request
	answer   atomic.Int32 // status for NOTIFYs; 0 means 200
	cancel   context.CancelFunc
}

func newWatcher(t testing.TB) *watcher {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("watcher"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(addr.Port),
		sipgo.WithClientConnectionAddr(addr.String()))
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{t: t, addr: addr.String(), ua: ua, client: client, notifies: make(chan *sip.Request, 64)}
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		code := int(w.answer.Load())
		if code == 0 {
			code = 200
		}
		// Queue before answering: the simulator sends the next NOTIFY only
		// after this answer, so the queue keeps the order they were sent in.
		if code == 200 {
			select {
			case w.notifies <- req:
			default:
				t.Errorf("watcher: NOTIFY queue full")
			}
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, "Whatever", nil))
	})
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeUDP(conn)
	}()
	if err := waitListening(ua, addr.String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = conn.Close()
		_ = ua.Close()
		<-done
	})
	_ = ctx
	return w
}

func (w *watcher) port() int {
	_, p, _ := net.SplitHostPort(w.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// subscribeReq builds an initial SUBSCRIBE for ext at sim.
func (w *watcher) subscribeReq(sim *Server, ext, event string, expires int) *sip.Request {
	host, port, _ := sip.ParseAddr(sim.Addr())
	req := sip.NewRequest(sip.SUBSCRIBE, sip.Uri{Scheme: "sip", User: ext, Host: host, Port: port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "bridge", Host: "127.0.0.1"}}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: ext, Host: host}})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bridge", Host: "127.0.0.1", Port: w.port()}})
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Accept", "application/dialog-info+xml"))
	if expires >= 0 {
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	}
	return req
}

func (w *watcher) do(req *sip.Request) *sip.Response {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := w.client.Do(ctx, req)
	if err != nil {
		w.t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

// doAuth sends req and, when challenged, once more with credentials.
func (w *watcher) doAuth(req *sip.Request, user, pass string) *sip.Response {
	w.t.Helper()
	res := w.do(req)
	if res.StatusCode != 401 && res.StatusCode != 407 {
		return res
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := w.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: pass})
	if err != nil {
		w.t.Fatalf("%s with digest: %v", req.Method, err)
	}
	return res
}

// inDialog turns the initial request into its next in-dialog request.
func inDialog(req *sip.Request, res *sip.Response, expires int) *sip.Request {
	r := req.Clone()
	r.RemoveHeader("Via")
	r.RemoveHeader("Proxy-Authorization")
	r.RemoveHeader("Authorization")
	if tag, ok := res.To().Params.Get("tag"); ok {
		r.To().Params.Add("tag", tag)
	}
	r.CSeq().SeqNo += 10
	r.ReplaceHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	return r
}

func (w *watcher) next(timeout time.Duration) *sip.Request {
	w.t.Helper()
	select {
	case n := <-w.notifies:
		return n
	case <-time.After(timeout):
		w.t.Fatalf("no NOTIFY within %v", timeout)
		return nil
	}
}

type xDialogInfo struct {
	Version int       `xml:"version,attr"`
	State   string    `xml:"state,attr"`
	Entity  string    `xml:"entity,attr"`
	Dialogs []xDialog `xml:"dialog"`
}

type xDialog struct {
	ID     string `xml:"id,attr"`
	CallID string `xml:"call-id,attr"`
	State  string `xml:"state"`
	Local  struct {
		Target struct {
			URI    string `xml:"uri,attr"`
			Params []struct {
				Name  string `xml:"pname,attr"`
				Value string `xml:"pvalue,attr"`
			} `xml:"param"`
		} `xml:"target"`
	} `xml:"local"`
}

func (d xDialog) param(name string) string {
	for _, p := range d.Local.Target.Params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

func parseDialogInfo(t *testing.T, n *sip.Request) xDialogInfo {
	t.Helper()
	var di xDialogInfo
	if err := xml.Unmarshal(n.Body(), &di); err != nil {
		t.Fatalf("dialog-info body: %v\n%s", err, n.Body())
	}
	return di
}

func header(m interface{ GetHeader(string) sip.Header }, name string) string {
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func startSim(t *testing.T, opts Options) *Server {
	t.Helper()
	s := New(opts)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func states(di xDialogInfo) string {
	var out []string
	for _, d := range di.Dialogs {
		out = append(out, d.State)
	}
	return strings.Join(out, ",")
}
