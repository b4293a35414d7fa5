package teams_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams"
)

func checks(cs []psync.Check) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %s: %s | %s (%s)\n", c.State(), c.Name, c.Detail, c.Fix, c.Took.Round(time.Millisecond))
	}
	return b.String()
}

// doctor runs teams.Doctor to its end and collects its checks, which must
// all be the Teams side's.
func doctor(t *testing.T, cfg teams.Config, us []psync.User) []psync.Check {
	t.Helper()
	var cs []psync.Check
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	teams.Doctor(ctx, cfg, us, func(c psync.Check) { cs = append(cs, c) })
	for _, c := range cs {
		if c.Side != psync.SideTeams {
			t.Errorf("check %q is on side %s", c.Name, c.Side)
		}
	}
	t.Logf("checks:\n%s", checks(cs))
	return cs
}

func byName(cs []psync.Check) map[string]psync.Check {
	m := map[string]psync.Check{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

func TestDoctor_AllOK(t *testing.T) {
	s := newSim(t, simOpts{users: 2})
	cs := doctor(t, config(s), users(2))
	want := "settings,app sign-in,permissions,user lookup,presence read,users in Entra"
	var got []string
	for _, c := range cs {
		got = append(got, c.Name)
		if !c.OK || c.Warn {
			t.Fatalf("checks:\n%s", checks(cs))
		}
	}
	if strings.Join(got, ",") != want {
		t.Fatalf("checks %v, want %s", got, want)
	}
	if d := byName(cs)["users in Entra"].Detail; d != "all 2 users are known in Entra" {
		t.Fatalf("users in Entra: %s", d)
	}
}

func TestDoctor_MissingRoleGivesConsentURL(t *testing.T) {
	s := newSim(t, simOpts{users: 1, roles: []string{"Presence.ReadWrite.All"}})
	perm := byName(doctor(t, config(s), users(1)))["permissions"]
	if perm.OK || !strings.Contains(perm.Detail, "User.Read.All") ||
		!strings.Contains(perm.Fix, s.URL()+"/"+tenantID+"/adminconsent?client_id="+appID) {
		t.Fatalf("permissions: %+v", perm)
	}
}

func TestDoctor_WrongSecret(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	cfg := config(s)
	cfg.ClientSecret = "not-the-secret"
	cs := doctor(t, cfg, users(1))
	last := cs[len(cs)-1]
	if last.OK || last.Name != "app sign-in" || !strings.Contains(last.Fix, "teams.client_secret") || strings.Contains(checks(cs), "not-the-secret") {
		t.Fatalf("checks:\n%s", checks(cs))
	}
}

func TestDoctor_MissingSettings(t *testing.T) {
	cs := doctor(t, teams.Config{}, nil)
	if len(cs) != 1 || cs[0].OK || !strings.Contains(cs[0].Detail, "teams.tenant_id") {
		t.Fatalf("checks:\n%s", checks(cs))
	}
}

func TestDoctor_UsersUnknownInEntra(t *testing.T) {
	s := newSim(t, simOpts{users: 2})
	us := append(users(2), psync.User{ID: "301", UPN: "nobody@contoso.example"}, psync.User{ID: "302", UPN: "leaver@contoso.example"})
	cs := doctor(t, config(s), us)
	u := byName(cs)["users in Entra"]
	if !u.Failed() || !strings.Contains(u.Detail, "2 of 4 users cannot be followed in Teams: nobody@contoso.example (unknown in Entra), leaver@contoso.example (unknown in Entra)") ||
		strings.Contains(u.Detail, upn(0)) || !strings.Contains(u.Fix, "UPN") {
		t.Fatalf("users in Entra:\n%s", checks(cs))
	}
	// The first user was found: the earlier checks pass.
	if !byName(cs)["user lookup"].OK || !byName(cs)["presence read"].OK {
		t.Fatalf("checks:\n%s", checks(cs))
	}
}

func TestDoctor_SubscribeMode(t *testing.T) {
	s := subSim(t, 2, nil)
	p := newMemPersistence()
	cfg := subConfig(t, s, p)
	addr := cfg.WebhookListener.Addr().String()
	c := newClient(t, cfg)
	defer c.Close()
	r := run(t, c, users(2)) // the running bridge serves the webhook
	r.synced()

	// The doctor is another process: it knows the public URL, not the listener.
	pool := s.CertPool()
	pool.AddCert(serverCert().TLS.Leaf)
	dcfg := config(s)
	dcfg.Mode, dcfg.ServiceAccounts, dcfg.Store, dcfg.WebhookURL = "subscribe", []string{serviceUPN}, p, "https://"+addr
	dcfg.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	cs := byName(doctor(t, dcfg, users(2)))
	acct := cs["service account "+serviceUPN]
	if acct.OK || !strings.Contains(acct.Fix, "presencebridge signin "+serviceUPN) || !cs["webhook"].OK {
		t.Fatalf("before the sign-in:\n%+v", cs)
	}
	signIn(t, s, c)
	waitFor(t, "signed in", func() bool { b, _ := p.TokenCache(serviceUPN); return len(b) > 0 })
	cs = byName(doctor(t, dcfg, users(2)))
	if !cs["service account "+serviceUPN].OK {
		t.Fatalf("after the sign-in:\n%+v", cs)
	}
	dcfg.WebhookURL = "https://127.0.0.1:1"
	cs = byName(doctor(t, dcfg, users(2)))
	if hook := cs["webhook"]; hook.OK || !strings.Contains(hook.Fix, "reachable") || !strings.Contains(hook.Fix, "127.0.0.1:1 refused the connection") || !strings.Contains(hook.Fix, "teams.webhook_url") {
		t.Fatalf("dead webhook:\n%+v", hook)
	}
}

// The sign-in against an authority that cannot be reached fails with the
// fix for the connection problem, naming the host and teams.authority_url.
func TestDoctor_NetworkFixes(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	hanging := hangingServer(t)
	for _, tc := range []struct {
		name string
		edit func(*teams.Config)
		want []string
	}{
		{"refused", func(c *teams.Config) { c.AuthorityURL = "https://" + closed }, []string{closed + " refused the connection", "teams.authority_url"}},
		{"dns", func(c *teams.Config) { c.AuthorityURL = "https://login.presencebridge-test.invalid" }, []string{`"login.presencebridge-test.invalid" does not resolve`, "teams.authority_url"}},
		{"unknown CA", func(c *teams.Config) {
			c.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
		}, []string{"does not trust", "SSL_CERT_FILE", "teams.authority_url"}},
		{"hanging", func(c *teams.Config) { c.AuthorityURL, c.CheckTimeout = "https://"+hanging, 300*time.Millisecond }, []string{hanging + " does not answer", "teams.authority_url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(s)
			tc.edit(&cfg)
			start := time.Now()
			cs := doctor(t, cfg, users(1))
			last := cs[len(cs)-1]
			if last.Name != "app sign-in" || !last.Failed() {
				t.Fatalf("checks:\n%s", checks(cs))
			}
			for _, w := range tc.want {
				if !strings.Contains(last.Fix, w) {
					t.Errorf("fix %q lacks %q", last.Fix, w)
				}
			}
			if tc.name == "hanging" {
				if !strings.HasPrefix(last.Detail, "no answer within 300ms") || last.Took < 300*time.Millisecond || time.Since(start) > 2*time.Second {
					t.Fatalf("hanging authority: %+v after %s", last, time.Since(start))
				}
			}
		})
	}
}

// hangingServer accepts TCP connections and never says a word; accepted
// counts them.
func hangingServer(t *testing.T) string {
	addr, _ := hangingServerCount(t)
	return addr
}

func hangingServerCount(t *testing.T) (string, func() int) {
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
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return len(conns) }
}

// clientGoroutines counts the goroutines of the adapter and of HTTP client
// connections.
func clientGoroutines() (int, string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var b strings.Builder
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "net/http.(*persistConn)") || strings.Contains(g, "net/http.(*Transport).dial") ||
			(strings.Contains(g, "presencebridge/sync/teams.") && !strings.Contains(g, "graphsim") && !strings.Contains(g, "_test.")) {
			n++
			b.WriteString(g + "\n\n")
		}
	}
	return n, b.String()
}

// Ctrl-C during a check that waits for a silent server: the doctor ends at
// once, reports that check as cancelled (not as failed with "context
// canceled"), and leaves no goroutine behind. The settings check arrived
// while the sign-in still waited.
func TestDoctor_Cancel(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	addr, accepted := hangingServerCount(t)
	cfg := config(s)
	cfg.AuthorityURL, cfg.CheckTimeout = "https://"+addr, time.Minute
	base, _ := clientGoroutines()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan psync.Check, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		teams.Doctor(ctx, cfg, users(1), func(c psync.Check) { got <- c })
	}()
	select {
	case c := <-got:
		if c.Name != "settings" || !c.OK {
			t.Fatalf("first check: %+v", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no check while the sign-in waits")
	}
	waitFor(t, "the sign-in reaches the silent server", func() bool { return accepted() > 0 })
	if n, _ := clientGoroutines(); n <= base {
		_, st := clientGoroutines()
		t.Fatalf("the leak check sees none of the doctor's goroutines (%d, %d before):\n%s", n, base, st)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the doctor did not end within 5 s of the cancel")
	}
	close(got)
	var rest []psync.Check
	for c := range got {
		rest = append(rest, c)
	}
	if len(rest) != 1 || rest[0].Name != "app sign-in" || !rest[0].Cancelled() || strings.Contains(rest[0].Detail, "context canceled") {
		t.Fatalf("after the cancel:\n%s", checks(rest))
	}
	// Well below net/http's 10 s TLS handshake timeout, which would end a
	// dial the cancelled request left running.
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, stacks := clientGoroutines()
		if n <= base {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d client goroutines, %d before:\n%s", n, base, stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
