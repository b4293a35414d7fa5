package teams_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

const (
	tenantID = "5e1c0b7a-0a9b-4c1e-9d7e-2f3a4b5c6d7e"
	appID    = "11111111-2222-4333-8444-555555555555"
	secret   = "s3cr3t~value"
)

// signKey is shared by every simulator of the test binary: RSA key
// generation under -race is slow.
var signKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// appCert is a certificate and key the app can sign in with (PEM).
var appCert = sync.OnceValues(func() (*x509.Certificate, []byte) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "presencebridge test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(k)
	p := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	return cert, p
})

// userID is the object id of the i-th simulated user.
func userID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", 201+i) }
func upn(i int) string    { return fmt.Sprintf("user%d@contoso.example", 201+i) }

type simOpts struct {
	users  int
	roles  []string
	mutate func(*graphsim.Options)
}

// newSim starts a simulated tenant with n users and the bridge's app.
func newSim(t testing.TB, o simOpts) *graphsim.Server {
	t.Helper()
	if o.roles == nil {
		o.roles = []string{"Presence.ReadWrite.All", "User.Read.All"}
	}
	cert, _ := appCert()
	opts := graphsim.Options{
		TenantID: tenantID, SigningKey: signKey(), RequestBudget: -1,
		Apps: []graphsim.App{{ClientID: appID, DisplayName: "presencebridge", Secrets: []string{secret},
			Certificates: []*x509.Certificate{cert}, Roles: o.roles}},
	}
	for i := range o.users {
		opts.Users = append(opts.Users, graphsim.User{ID: userID(i), UserPrincipalName: upn(i), DisplayName: fmt.Sprintf("User %d", 201+i)})
	}
	if o.mutate != nil {
		o.mutate(&opts)
	}
	s, err := graphsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i := range o.users {
		if err := s.SignIn(userID(i)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// config points the adapter at the simulator, trusting its CA.
func config(s *graphsim.Server) teams.Config {
	cfg := teams.Config{
		TenantID: tenantID, ClientID: appID, ClientSecret: secret,
		AuthorityURL: s.URL(), GraphURL: s.GraphURL(), HTTPClient: s.Client(),
	}
	if os.Getenv("PB_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

func newClient(t testing.TB, cfg teams.Config) *teams.Client {
	t.Helper()
	c, err := teams.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// users are the bridge's users for the first n simulated ones, by UPN only.
func users(n int) []psync.User {
	var out []psync.User
	for i := range n {
		out = append(out, psync.User{ID: psync.UserID(fmt.Sprint(201 + i)), UPN: upn(i)})
	}
	return out
}

// runClient runs the adapter and collects its events.
type runClient struct {
	t      testing.TB
	events chan psync.TeamsEvent
	cancel context.CancelFunc
	done   chan error
}

func run(t testing.TB, c *teams.Client, us []psync.User) *runClient {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runClient{t: t, events: make(chan psync.TeamsEvent, 100000), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx, us, r.events) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// stop ends the run and waits for it, so a "restart" in a test begins
// after the old client is quiet, as after a real stop.
func (r *runClient) stop() {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		r.t.Fatal("Run did not return")
	}
}

// next waits for an event matching f, skipping others.
func (r *runClient) next(what string, f func(psync.TeamsEvent) bool) psync.TeamsEvent {
	r.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-r.events:
			if f(ev) {
				return ev
			}
		case <-deadline:
			r.t.Fatalf("no event: %s", what)
		}
	}
}

func (r *runClient) synced() {
	r.t.Helper()
	r.next("synced", func(ev psync.TeamsEvent) bool { return ev.Kind == psync.TeamsSynced })
}

func presenceOf(user psync.UserID, avail, act string) func(psync.TeamsEvent) bool {
	return func(ev psync.TeamsEvent) bool {
		return ev.Kind == psync.TeamsPresenceChanged && ev.User == user && ev.Presence.Availability == avail && ev.Presence.Activity == act
	}
}
