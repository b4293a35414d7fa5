package ucserver_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// checkLog collects the checks of one doctor run as they arrive.
type checkLog struct {
	mu     sync.Mutex
	checks []psync.Check
	at     []time.Time
	ch     chan psync.Check
}

func newCheckLog() *checkLog { return &checkLog{ch: make(chan psync.Check, 64)} }

func (l *checkLog) report(c psync.Check) {
	l.mu.Lock()
	l.checks = append(l.checks, c)
	l.at = append(l.at, time.Now())
	l.mu.Unlock()
	l.ch <- c
}

func (l *checkLog) all() []psync.Check {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]psync.Check(nil), l.checks...)
}

// next waits for the next check to be reported.
func (l *checkLog) next(t *testing.T) psync.Check {
	t.Helper()
	select {
	case c := <-l.ch:
		return c
	case <-time.After(waitTimeout):
		t.Fatalf("no check within %s; so far:\n%s", waitTimeout, dumpChecks(l.all()))
		return psync.Check{}
	}
}

func dumpChecks(cs []psync.Check) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "  %-9s %s: %s (%s)\n", c.State(), c.Name, c.Detail, c.Took.Round(time.Millisecond))
		if c.Fix != "" {
			fmt.Fprintf(&b, "            fix: %s\n", c.Fix)
		}
	}
	return b.String()
}

// doctor runs ucserver.Doctor to its end and returns its checks; no
// check may carry a credential, and every check is the phone side's.
func doctor(t *testing.T, cfg ucserver.Config, users []psync.User) []psync.Check {
	t.Helper()
	l := newCheckLog()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ucserver.Doctor(ctx, cfg, users, l.report)
	cs := l.all()
	noSecrets(t, cs, cfg.Password)
	t.Logf("checks:\n%s", dumpChecks(cs))
	return cs
}

func noSecrets(t *testing.T, cs []psync.Check, extra ...string) {
	t.Helper()
	for _, c := range cs {
		if c.Side != psync.SidePhone {
			t.Errorf("check %q is on side %s", c.Name, c.Side)
		}
		for _, s := range append([]string{svcPass, svcTok}, extra...) {
			if s != "" && (strings.Contains(c.Detail, s) || strings.Contains(c.Fix, s)) {
				t.Errorf("check %q shows a credential: %+v", c.Name, c)
			}
		}
	}
}

func names(cs []psync.Check) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func find(t *testing.T, cs []psync.Check, name string) psync.Check {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in:\n%s", name, dumpChecks(cs))
	return psync.Check{}
}

func doctorConfig(sim interface{ URL() string }) ucserver.Config {
	cfg := testConfig(sim, &logBuf{})
	cfg.CheckTimeout = 5 * time.Second
	return cfg
}

// allSessionsGone waits until the simulator has no session left but the
// ones in keep.
func sessionsLeft(t *testing.T, sim *ucsim.Server, want int) {
	t.Helper()
	waitSim(t, sim, fmt.Sprintf("%d sessions", want), func() bool { return sim.Stats().ActiveSessions == want })
}

var allChecks = []string{"settings", "reach", "tls", "login", "websocket", "rights", "users on the UCServer", "presence subscription", "line enumeration", "line monitor"}

func TestDoctor_AllOK(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	cs := doctor(t, doctorConfig(sim), bridgeUsers())
	if got := strings.Join(names(cs), ","); got != strings.Join(allChecks, ",") {
		t.Fatalf("checks %s, want %s", got, strings.Join(allChecks, ","))
	}
	for _, c := range cs {
		if !c.OK || c.Skipped || (c.Warn && c.Name != "tls") {
			t.Fatalf("check %q: %+v", c.Name, c)
		}
	}
	tls := find(t, cs, "tls")
	if !tls.Warn || !strings.Contains(tls.Detail, "unencrypted") || !strings.Contains(tls.Fix, "https://") {
		t.Fatalf("plain http gives no warning: %+v", tls)
	}
	if d := find(t, cs, "users on the UCServer").Detail; !strings.Contains(d, "all 2 users") || !strings.Contains(d, "3 phone lines") {
		t.Fatalf("users: %s", d)
	}
	if d := find(t, cs, "line enumeration").Detail; !strings.Contains(d, "3 of the users' 3 lines (Alice 2, Bob 1)") {
		t.Fatalf("line enumeration: %s", d)
	}
	if d := find(t, cs, "line monitor").Detail; !strings.Contains(d, aliceDesk) || !strings.Contains(d, "started and stopped") || !strings.Contains(d, "open") {
		t.Fatalf("line monitor: %s", d)
	}
	// The doctor leaves nothing behind on the server.
	sessionsLeft(t, sim, 0)
	st := sim.Stats()
	if st.Monitors != 0 || st.Subscriptions != 0 || st.Invokes[ucsim.OpLogoff] != 1 || st.Invokes[ucsim.OpCtiLineMonitorStop] != 1 || st.Invokes[ucsim.OpUnsubscribePresence] != 1 {
		t.Fatalf("left behind: %+v", st)
	}
}

// A second session of the service account (the doctor's) leaves the
// bridge's session as it was: ucsim keeps sessions of one account apart
// (own subscriptions, monitors and keep-alive timer), and the bridge keeps
// receiving events during and after the doctor.
func TestDoctor_WhileTheBridgeRuns(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	h := start(t, sim, bridgeUsers(), nil)
	h.rec.next(t, "synced", isKind(psync.PhoneSynced))
	before := sim.Sessions()
	if len(before) != 1 {
		t.Fatalf("bridge sessions: %+v", before)
	}
	cs := doctor(t, doctorConfig(sim), bridgeUsers())
	for _, c := range cs {
		if !c.OK {
			t.Fatalf("check %q failed while the bridge runs: %+v", c.Name, c)
		}
	}
	sessionsLeft(t, sim, 1)
	after := sim.Sessions()
	if after[0].ID != before[0].ID || after[0].Monitors != before[0].Monitors || after[0].Subscriptions != before[0].Subscriptions || !after[0].Connected {
		t.Fatalf("the bridge's session changed: before %+v, after %+v", before[0], after[0])
	}
	id, err := sim.Ring(aliceDesk, "+4930555")
	if err != nil {
		t.Fatal(err)
	}
	h.rec.next(t, "a call after the doctor", isCall(aliceID, aliceDesk, psync.CallRinging))
	_ = sim.HangUp(id)
	if n := sim.Stats().SessionsCreated; n != 2 {
		t.Fatalf("sessions created: %d, want the bridge's and the doctor's", n)
	}
}

func TestDoctor_Refused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := doctorConfig(urlOnly("http://" + addr))
	cs := doctor(t, cfg, bridgeUsers())
	last := cs[len(cs)-1]
	if last.Name != "reach" || !last.Failed() || !strings.Contains(last.Fix, addr+" refused the connection") || !strings.Contains(last.Fix, "ucserver.url") {
		t.Fatalf("refused:\n%s", dumpChecks(cs))
	}
}

func TestDoctor_DNS(t *testing.T) {
	cfg := doctorConfig(urlOnly("https://ucserver.presencebridge-test.invalid:7225"))
	cs := doctor(t, cfg, bridgeUsers())
	last := cs[len(cs)-1]
	if last.Name != "reach" || !last.Failed() || !strings.Contains(last.Detail, "DNS") ||
		!strings.Contains(last.Fix, `"ucserver.presencebridge-test.invalid"`) || !strings.Contains(last.Fix, "ucserver.url") {
		t.Fatalf("DNS failure:\n%s", dumpChecks(cs))
	}
}

type urlOnly string

func (u urlOnly) URL() string { return string(u) }

// hangingServer accepts TCP connections and never says a word.
func hangingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func TestDoctor_HangingServer(t *testing.T) {
	addr := hangingServer(t)
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		scheme, hangs string
	}{{"http", "login"}, {"https", "tls"}} {
		t.Run(tc.scheme, func(t *testing.T) {
			cfg := doctorConfig(urlOnly(tc.scheme + "://" + addr))
			cfg.CheckTimeout = timeout
			start := time.Now()
			cs := doctor(t, cfg, bridgeUsers())
			took := time.Since(start)
			last := cs[len(cs)-1]
			if last.Name != tc.hangs || !last.Failed() || !strings.HasPrefix(last.Detail, "no answer within 300ms") ||
				!strings.Contains(last.Fix, addr+" does not answer") || last.Took < timeout {
				t.Fatalf("hanging server:\n%s", dumpChecks(cs))
			}
			// The hanging check ended by its own timeout (a server that
			// never answers would otherwise hold the doctor until the
			// test's deadline); how long that took on a loaded machine is
			// not the test's to judge.
			t.Logf("the doctor took %s for %d checks of %s", took, len(cs), timeout)
		})
	}
}

// tlsSim serves the simulator over TLS with httptest's self-signed
// certificate.
func tlsSim(t *testing.T) (*ucsim.Server, *httptest.Server) {
	t.Helper()
	sim := ucsim.New(ucsim.Options{Users: simUsers()})
	ts := httptest.NewUnstartedServer(sim)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are the point
	ts.StartTLS()
	t.Cleanup(func() {
		ts.Close()
		_ = sim.Close()
	})
	return sim, ts
}

func TestDoctor_TLS(t *testing.T) {
	sim, ts := tlsSim(t)
	t.Run("unknown CA", func(t *testing.T) {
		cfg := doctorConfig(urlOnly(ts.URL))
		cfg.RootCAs = x509.NewCertPool() // not the system pool: it must not matter what this machine trusts
		cs := doctor(t, cfg, bridgeUsers())
		last := cs[len(cs)-1]
		host := strings.TrimPrefix(ts.URL, "https://")
		if last.Name != "tls" || !last.Failed() || !strings.Contains(last.Detail, "unknown authority") ||
			!strings.Contains(last.Fix, host) || !strings.Contains(last.Fix, "SSL_CERT_FILE") || !strings.Contains(last.Fix, "trust store") {
			t.Fatalf("unknown CA:\n%s", dumpChecks(cs))
		}
		if sim.Stats().CreateSessionRequests != 0 {
			t.Fatal("the doctor logged in over an untrusted connection")
		}
	})
	t.Run("trusted", func(t *testing.T) {
		cfg := doctorConfig(urlOnly(ts.URL))
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AddCert(ts.Certificate())
		cs := doctor(t, cfg, bridgeUsers())
		for _, c := range cs {
			if !c.OK || c.Warn {
				t.Fatalf("check %q over https: %+v", c.Name, c)
			}
		}
		if d := find(t, cs, "tls").Detail; !strings.Contains(d, "TLS 1.3") || !strings.Contains(d, "127.0.0.1") || !strings.Contains(d, "valid until") {
			t.Fatalf("tls: %s", d)
		}
		sessionsLeft(t, sim, 0)
	})
}

func TestDoctor_WrongPassword(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	cfg := doctorConfig(sim)
	cfg.Password = "not-the-Passw0rd"
	cs := doctor(t, cfg, bridgeUsers())
	last := cs[len(cs)-1]
	if last.Name != "login" || !last.Failed() || !strings.Contains(last.Detail, "detail 101") || last.Fix != "check ucserver.user / ucserver.password" {
		t.Fatalf("wrong password:\n%s", dumpChecks(cs))
	}
	if sim.Stats().ActiveSessions != 0 {
		t.Fatal("a session is left")
	}

	cfg = doctorConfig(sim)
	cfg.User, cfg.Password, cfg.LoginToken = "", "", "tok-not-the-token"
	cs = doctor(t, cfg, bridgeUsers())
	if last := cs[len(cs)-1]; last.Name != "login" || !last.Failed() || strings.Contains(dumpChecks(cs), "tok-not-the-token") {
		t.Fatalf("wrong login token:\n%s", dumpChecks(cs))
	}
	cfg.LoginToken = svcTok // doctor() checks that it appears nowhere
	if last := doctor(t, cfg, bridgeUsers()); last[len(last)-1].Name != "line monitor" || !strings.Contains(find(t, last, "login").Detail, "login token logged in") {
		t.Fatalf("login token:\n%s", dumpChecks(last))
	}
}

func TestDoctor_UCConnect(t *testing.T) {
	sim := startSim(t, ucsim.Options{UCSID: "ucs-4711"})
	t.Run("unknown ucsid", func(t *testing.T) {
		cfg := doctorConfig(sim)
		cfg.UCSID = "ucs-0815"
		cs := doctor(t, cfg, bridgeUsers())
		last := cs[len(cs)-1]
		if last.Name != "ucconnect" || !last.Failed() || !strings.Contains(last.Detail, "knows no UCServer with ucsid ucs-0815") || !strings.Contains(last.Fix, "check ucserver.ucsid") {
			t.Fatalf("unknown ucsid:\n%s", dumpChecks(cs))
		}
	})
	t.Run("known ucsid", func(t *testing.T) {
		cfg := doctorConfig(sim)
		cfg.UCSID = "ucs-4711"
		cs := doctor(t, cfg, bridgeUsers())
		if c := find(t, cs, "tls"); !c.Warn || !strings.Contains(c.Detail, "UCConnect lookup") {
			t.Fatalf("tls: %+v", c)
		}
		// The simulator redirects to itself over http: the password goes in clear.
		if c := find(t, cs, "ucconnect"); !c.OK || !c.Warn || !strings.Contains(c.Detail, "served by "+sim.URL()) || !strings.Contains(c.Detail, "unencrypted") {
			t.Fatalf("ucconnect: %+v", c)
		}
		if c := cs[len(cs)-1]; c.Name != "line monitor" || !c.OK {
			t.Fatalf("through UCConnect:\n%s", dumpChecks(cs))
		}
	})
}

func TestDoctor_UnknownUser(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	users := append(bridgeUsers(), psync.User{ID: "sip:nobody@example.com"}, psync.User{ID: "sip:carl@example.com"})
	cs := doctor(t, doctorConfig(sim), users)
	u := find(t, cs, "users on the UCServer")
	if !u.Failed() || !strings.Contains(u.Detail, "2 of 4 users are not known") || !strings.Contains(u.Detail, "sip:nobody@example.com, sip:carl@example.com") ||
		strings.Contains(u.Detail, aliceID) || !strings.Contains(u.Fix, "contact ids") {
		t.Fatalf("unknown users:\n%s", dumpChecks(cs))
	}
	// The known users are still checked.
	if c := find(t, cs, "presence subscription"); !c.OK || !strings.Contains(c.Detail, "2 users subscribed") {
		t.Fatalf("subscription of the known users: %+v", c)
	}
	if c := cs[len(cs)-1]; c.Name != "line monitor" || !c.OK {
		t.Fatalf("checks:\n%s", dumpChecks(cs))
	}
}

func TestDoctor_Rights(t *testing.T) {
	users := simUsers()
	users[0].Rights = &ucsim.Rights{StaticRights: 4, ContactFeatureSet: 4095} // web services only
	users[2].Rights = &ucsim.Rights{StaticRights: 2124, ContactFeatureSet: 1} // bob: dial only
	sim := startSim(t, ucsim.Options{Users: users})
	sim.SetOperationFault(ucsim.OpCtiEnumPhoneLines, ucsim.OperationFault{Error: &ucsim.RequestError{Detail: 2, Text: "access denied"}})
	sim.SetOperationFault(ucsim.OpCtiLineMonitorStart, ucsim.OperationFault{Error: &ucsim.RequestError{Detail: 2, Text: "access denied"}})
	cs := doctor(t, doctorConfig(sim), bridgeUsers())

	r := find(t, cs, "rights")
	if !r.OK || !r.Warn || !strings.Contains(r.Detail, "lacks the rights CTI lines, CTI/presence user") || strings.Contains(r.Detail, "web services,") ||
		!strings.Contains(r.Fix, "UCServer administration") {
		t.Fatalf("rights: %+v", r)
	}
	s := find(t, cs, "presence subscription")
	if !s.OK || !s.Warn || !strings.Contains(s.Detail, "may not set the absent state of 1: "+bobID) {
		t.Fatalf("subscription: %+v", s)
	}
	e := find(t, cs, "line enumeration")
	if !e.OK || !e.Warn || !strings.Contains(e.Detail, "refused") || !strings.Contains(e.Fix, "CTI rights") {
		t.Fatalf("enumeration: %+v", e)
	}
	m := find(t, cs, "line monitor")
	if !m.Failed() || !strings.Contains(m.Detail, "access denied") || !strings.Contains(m.Fix, "CTI rights") {
		t.Fatalf("monitor: %+v", m)
	}
	sessionsLeft(t, sim, 0)
}

func TestDoctor_LineNotOpen(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	if err := sim.SetLineOpenStatus(aliceDesk, ucsim.LineClosed); err != nil {
		t.Fatal(err)
	}
	cs := doctor(t, doctorConfig(sim), bridgeUsers())
	m := find(t, cs, "line monitor")
	if !m.OK || !m.Warn || !strings.Contains(m.Detail, "not open (status 1: closed)") || !strings.Contains(m.Fix, "PBX") {
		t.Fatalf("monitor of a closed line: %+v", m)
	}
}

func TestDoctor_NoUsers(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	cs := doctor(t, doctorConfig(sim), nil)
	if last := cs[len(cs)-1]; last.Name != "users on the UCServer" || !last.Skipped || last.Cancelled() {
		t.Fatalf("no users:\n%s", dumpChecks(cs))
	}
	sessionsLeft(t, sim, 0)
}

func TestDoctor_MissingSettings(t *testing.T) {
	cs := doctor(t, ucserver.Config{URL: "https://ucserver.example:7225", User: "svc"}, nil)
	if len(cs) != 1 || !cs[0].Failed() || !strings.Contains(cs[0].Detail, "ucserver.password") || !strings.Contains(cs[0].Fix, "config set") {
		t.Fatalf("missing password:\n%s", dumpChecks(cs))
	}
}

// Each check is reported when it is done: "reach" and "tls" arrive while
// the login is still held by the server.
func TestDoctor_Streams(t *testing.T) {
	sim := startSim(t, ucsim.Options{})
	const hold = 1500 * time.Millisecond
	sim.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{Delay: hold, Times: 1})
	l := newCheckLog()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ucserver.Doctor(context.Background(), doctorConfig(sim), bridgeUsers(), l.report)
	}()
	for _, want := range []string{"settings", "reach", "tls"} {
		if c := l.next(t); c.Name != want {
			t.Fatalf("got %q, want %q", c.Name, want)
		}
	}
	tlsAt := time.Now()
	waitSim(t, sim, "the login reached the server", func() bool { return sim.Stats().CreateSessionRequests == 1 })
	select {
	case <-done:
		t.Fatal("the doctor ended while the login was held")
	default:
	}
	if sim.Stats().SessionsCreated != 0 {
		t.Fatal("the login was not held")
	}
	login := l.next(t)
	if login.Name != "login" || !login.OK || time.Since(tlsAt) < hold-100*time.Millisecond || login.Took < hold {
		t.Fatalf("login %+v arrived %s after tls", login, time.Since(tlsAt))
	}
	<-done
}

// clientGoroutines counts the goroutines of the connector's side: its own
// code, HTTP client connections and WebSockets it dialled. The simulator's
// handlers are left out: a handler held by a fault delay only learns of the
// client's cancel when the server reads on.
func clientGoroutines() (int, string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var b strings.Builder
	for _, g := range strings.Split(string(buf), "\n\n") {
		client := strings.Contains(g, "net/http.(*persistConn)") ||
			(strings.Contains(g, "presencebridge/sync/ucserver.") && !strings.Contains(g, "ucserver/ucsim") && !strings.Contains(g, "_test.")) ||
			(strings.Contains(g, "coder/websocket") && !strings.Contains(g, "ucserver/ucsim"))
		if client {
			n++
			b.WriteString(g + "\n\n")
		}
	}
	return n, b.String()
}

// clientGoroutinesBackTo waits until the connector's goroutines are back
// at n.
func clientGoroutinesBackTo(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, stacks := clientGoroutines()
		if got <= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d client goroutines, %d before the doctor:\n%s", got, n, stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDoctor_Cancel(t *testing.T) {
	for _, tc := range []struct {
		during string
		hold   func(*ucsim.Server)
		ready  func(ucsim.Stats) bool
	}{
		{"login", func(s *ucsim.Server) {
			s.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{Delay: time.Minute})
		}, func(st ucsim.Stats) bool { return st.CreateSessionRequests == 1 }},
		{"line monitor", func(s *ucsim.Server) {
			s.SetOperationFault(ucsim.OpCtiLineMonitorStart, ucsim.OperationFault{Silent: true})
		}, func(st ucsim.Stats) bool { return st.Invokes[ucsim.OpCtiLineMonitorStart] == 1 }},
	} {
		t.Run(tc.during, func(t *testing.T) {
			sim := startSim(t, ucsim.Options{})
			tc.hold(sim)
			base, _ := clientGoroutines()
			l := newCheckLog()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := doctorConfig(sim)
			cfg.CheckTimeout, cfg.InvokeTimeout = time.Minute, time.Minute
			done := make(chan struct{})
			go func() {
				defer close(done)
				ucserver.Doctor(ctx, cfg, bridgeUsers(), l.report)
			}()
			waitSim(t, sim, tc.during+" held", func() bool { return tc.ready(sim.Stats()) })
			if n, _ := clientGoroutines(); n <= base {
				t.Fatalf("the leak check sees none of the doctor's goroutines (%d, %d before)", n, base)
			}
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the doctor did not end within 5 s of the cancel")
			}
			cs := l.all()
			last := cs[len(cs)-1]
			if last.Name != tc.during || !last.Cancelled() || last.Failed() || last.State() != "cancelled" {
				t.Fatalf("after the cancel:\n%s", dumpChecks(cs))
			}
			for _, c := range cs {
				if strings.Contains(c.Detail, "context canceled") {
					t.Fatalf("a check shows the cancel as an error:\n%s", dumpChecks(cs))
				}
			}
			// The doctor's session is ended (logoff) even after the cancel.
			sessionsLeft(t, sim, 0)
			sim.ClearFaults()
			clientGoroutinesBackTo(t, base)
		})
	}
}
