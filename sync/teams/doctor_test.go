package teams_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/sync/teams"
)

func checks(cs []teams.Check) string {
	var b strings.Builder
	for _, c := range cs {
		state := "ok"
		if !c.OK {
			state = "FAILED"
		}
		b.WriteString(state + " " + c.Name + ": " + c.Detail + " | " + c.Fix + "\n")
	}
	return b.String()
}

func TestDoctor_AllOK(t *testing.T) {
	s := newSim(t, simOpts{users: 2})
	cs := teams.Doctor(context.Background(), config(s), users(2))
	if len(cs) != 5 {
		t.Fatalf("checks:\n%s", checks(cs))
	}
	for _, c := range cs {
		if !c.OK {
			t.Fatalf("checks:\n%s", checks(cs))
		}
	}
}

func TestDoctor_MissingRoleGivesConsentURL(t *testing.T) {
	s := newSim(t, simOpts{users: 1, roles: []string{"Presence.ReadWrite.All"}})
	cs := teams.Doctor(context.Background(), config(s), users(1))
	var perm *teams.Check
	for i := range cs {
		if cs[i].Name == "permissions" {
			perm = &cs[i]
		}
	}
	if perm == nil || perm.OK || !strings.Contains(perm.Detail, "User.Read.All") ||
		!strings.Contains(perm.Fix, s.URL()+"/"+tenantID+"/adminconsent?client_id="+appID) {
		t.Fatalf("checks:\n%s", checks(cs))
	}
}

func TestDoctor_WrongSecret(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	cfg := config(s)
	cfg.ClientSecret = "not-the-secret"
	cs := teams.Doctor(context.Background(), cfg, users(1))
	last := cs[len(cs)-1]
	if last.OK || last.Name != "app sign-in" || !strings.Contains(last.Fix, "teams.client_secret") || strings.Contains(checks(cs), "not-the-secret") {
		t.Fatalf("checks:\n%s", checks(cs))
	}
}

func TestDoctor_MissingSettings(t *testing.T) {
	cs := teams.Doctor(context.Background(), teams.Config{}, nil)
	if len(cs) != 1 || cs[0].OK || !strings.Contains(cs[0].Detail, "teams.tenant_id") {
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
	byName := func(cs []teams.Check) map[string]teams.Check {
		m := map[string]teams.Check{}
		for _, c := range cs {
			m[c.Name] = c
		}
		return m
	}
	cs := byName(teams.Doctor(context.Background(), dcfg, users(2)))
	acct := cs["service account "+serviceUPN]
	if acct.OK || !strings.Contains(acct.Fix, "presencebridge signin "+serviceUPN) || !cs["webhook"].OK {
		t.Fatalf("before the sign-in:\n%+v", cs)
	}
	signIn(t, s, c)
	waitFor(t, "signed in", func() bool { b, _ := p.TokenCache(serviceUPN); return len(b) > 0 })
	cs = byName(teams.Doctor(context.Background(), dcfg, users(2)))
	if !cs["service account "+serviceUPN].OK {
		t.Fatalf("after the sign-in:\n%+v", cs)
	}
	dcfg.WebhookURL = "https://127.0.0.1:1"
	cs = byName(teams.Doctor(context.Background(), dcfg, users(2)))
	if cs["webhook"].OK || !strings.Contains(cs["webhook"].Fix, "reachable") {
		t.Fatalf("dead webhook:\n%+v", cs["webhook"])
	}
}
