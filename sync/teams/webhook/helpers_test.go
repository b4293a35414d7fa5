package webhook_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/webhook"
)

const (
	tenantID   = "5e1c0b7a-0a9b-4c1e-9d7e-2f3a4b5c6d7e"
	clientID   = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	aliceID    = "0a0a0a0a-0000-4000-8000-00000000000a"
	bobID      = "0b0b0b0b-0000-4000-8000-00000000000b"
	subID      = "7f0c3a52-1111-4222-8333-444455556666"
	otherSubID = "7f0c3a52-9999-4222-8333-444455556666"
	goodState  = "s3cret-client-state-1"
	waitFor    = 10 * time.Second
)

// Key material is generated once per test binary: RSA key generation under -race is slow.
type testKeys struct {
	enc      *webhook.EncryptionCert // the bridge's encryption certificate
	otherEnc *webhook.EncryptionCert // a certificate the receiver does not hold
	sign1    *rsa.PrivateKey         // authority signing keys
	sign2    *rsa.PrivateKey
	rogue    *rsa.PrivateKey // nobody publishes this one
	server   *webhook.ServerCert
}

var keys = sync.OnceValue(func() testKeys {
	var k testKeys
	var err error
	if k.enc, err = webhook.NewEncryptionCert("bridge-enc-1"); err != nil {
		panic(err)
	}
	if k.otherEnc, err = webhook.NewEncryptionCert("someone-else"); err != nil {
		panic(err)
	}
	for _, p := range []**rsa.PrivateKey{&k.sign1, &k.sign2, &k.rogue} {
		if *p, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	if k.server, err = webhook.NewServerCert(); err != nil {
		panic(err)
	}
	return k
})

// clock is a settable Now for the receiver.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// subs is the adapter's subscription table as the receiver sees it.
type subs struct {
	mu sync.RWMutex
	m  map[string]string
}

func newSubs() *subs { return &subs{m: map[string]string{}} }

func (s *subs) set(id, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = state
}

func (s *subs) lookup(id string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.m[id]
	return st, ok
}

// authority is a stand-in for Entra's OpenID metadata and JWKS, whose keys a test controls.
type authority struct {
	ts        *httptest.Server
	mu        sync.Mutex
	published map[string]*rsa.PublicKey
	jwksGets  atomic.Int64
}

func newAuthority(t testing.TB) *authority {
	a := &authority{published: map[string]*rsa.PublicKey{}}
	a.ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/" + tenantID + "/.well-known/openid-configuration":
			writeJSON(w, map[string]any{"issuer": "https://sts.windows.net/" + tenantID + "/", "jwks_uri": a.ts.URL + "/" + tenantID + "/discovery/keys"})
		case "/" + tenantID + "/discovery/keys":
			a.jwksGets.Add(1)
			a.mu.Lock()
			var ks []any
			for kid, pub := range a.published {
				ks = append(ks, map[string]any{"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
					"n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes())})
			}
			a.mu.Unlock()
			writeJSON(w, map[string]any{"keys": ks})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.ts.Close)
	return a
}

func (a *authority) publish(kid string, k *rsa.PrivateKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.published[kid] = &k.PublicKey
}

func (a *authority) metadataURL() string {
	return a.ts.URL + "/" + tenantID + "/.well-known/openid-configuration"
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// harness is a receiver served over HTTPS on loopback with a controllable authority.
type harness struct {
	t      testing.TB
	rcv    *webhook.Receiver
	ep     *webhook.Endpoint
	auth   *authority
	clock  *clock
	subs   *subs
	client *http.Client
	cancel context.CancelFunc
}

func newHarness(t testing.TB, run bool, tweak ...func(*webhook.Config)) *harness {
	t.Helper()
	k := keys()
	h := &harness{t: t, auth: newAuthority(t), clock: newClock(), subs: newSubs()}
	h.auth.publish("kid-1", k.sign1)
	h.subs.set(subID, goodState)
	cfg := webhook.Config{
		Lookup:        h.subs.lookup,
		EncryptionKey: webhook.CertSet(k.enc),
		ClientID:      clientID,
		TenantID:      tenantID,
		MetadataURL:   h.auth.metadataURL(),
		HTTPClient:    h.auth.ts.Client(),
		Now:           h.clock.Now,
		Logger:        testLogger(t),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	rcv, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.rcv = rcv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.ep = rcv.ServeTLS(ln, k.server.TLS)
	t.Cleanup(func() { _ = h.ep.Close() })
	h.client = k.server.Client()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	t.Cleanup(cancel)
	if run {
		h.run(ctx)
	}
	return h
}

func (h *harness) run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.rcv.Run(ctx); err != nil {
			h.t.Error(err)
		}
	}()
	h.t.Cleanup(func() {
		h.cancel()
		<-done
	})
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// token mints a validation token that passes every check, then applies mutate.
func (h *harness) token(mutate func(claims map[string]any)) string {
	return h.tokenWith(keys().sign1, "kid-1", "", mutate)
}

func (h *harness) tokenWith(key *rsa.PrivateKey, kid, alg string, mutate func(map[string]any)) string {
	now := h.clock.Now()
	c := map[string]any{
		"aud": clientID, "iss": "https://sts.windows.net/" + tenantID + "/",
		"iat": now.Add(-5 * time.Minute).Unix(), "nbf": now.Add(-5 * time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"appid": webhook.NotificationPublisherAppID, "azp": webhook.NotificationPublisherAppID,
		"appidacr": "2", "tid": tenantID, "ver": "1.0",
	}
	if mutate != nil {
		mutate(c)
	}
	return webhook.MintTokenForTest(key, kid, alg, c)
}

// basic is a basic presence notification as Graph sends it.
func basic(sub, state, user string) map[string]any {
	return map[string]any{
		"subscriptionId": sub, "clientState": state, "changeType": "updated", "tenantId": tenantID,
		"resource":                       "communications/presences/" + user,
		"subscriptionExpirationDateTime": "2030-01-02T03:04:05.0000000Z",
		"resourceData":                   map[string]any{"@odata.id": "users/" + user + "/presence", "@odata.type": "#microsoft.graph.presence", "id": user},
		"organizationId":                 tenantID,
	}
}

// rich is a rich notification of user's presence encrypted for the bridge's certificate.
func rich(sub, state, user, availability, activity string) map[string]any {
	n := basic(sub, state, user)
	plain, _ := json.Marshal(map[string]any{"@odata.type": "#Microsoft.Graph.presence", "@odata.id": "users/" + user + "/presence",
		"id": user, "availability": availability, "activity": activity})
	n["encryptedContent"] = webhook.SealForTest(keys().enc.Cert, keys().enc.ID, plain)
	return n
}

func lifecycle(sub, state, event string) map[string]any {
	return map[string]any{"subscriptionId": sub, "clientState": state, "tenantId": tenantID, "lifecycleEvent": event,
		"subscriptionExpirationDateTime": "2030-01-02T03:04:05.0000000Z", "organizationId": tenantID}
}

func body(tokens []string, items ...map[string]any) []byte {
	p := map[string]any{"value": items}
	if tokens != nil {
		p["validationTokens"] = tokens
	}
	b, _ := json.Marshal(p)
	return b
}

// post sends a notification body to path and returns the status.
func (h *harness) post(path string, b []byte) int {
	h.t.Helper()
	resp, err := h.client.Post(h.ep.URL()+path, "application/json; charset=utf-8", bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (h *harness) next() webhook.Event {
	h.t.Helper()
	return nextEvent(h.t, h.rcv)
}

func nextEvent(t testing.TB, rcv *webhook.Receiver) webhook.Event {
	t.Helper()
	select {
	case ev, ok := <-rcv.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-time.After(waitFor):
		t.Fatal("no event arrived")
		return webhook.Event{}
	}
}

// ignored returns the counter for reason.
func (h *harness) ignored(r webhook.Reason) uint64 { return h.rcv.Stats().Ignored[r] }
