package webhook_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
	"github.com/presencebridge/presencebridge/sync/teams/webhook"
)

// End-to-end against graphsim: a confidential app with the delegated Presence.Read.All scope
// signs a service account in with the device code flow (raw HTTP), subscribes over raw HTTP
// with the receiver's URLs, and the receiver must pass Graph's validation handshake and turn
// the simulator's deliveries into events.

const (
	bridgeApp    = "c0ffee00-1111-4222-8333-444455556666"
	bridgeSecret = "bridge~secret"
	svcUPN       = "svc-presence@contoso.onmicrosoft.com"
	svc2UPN      = "svc-presence2@contoso.onmicrosoft.com"
	graphTime    = "2006-01-02T15:04:05.0000000Z"
)

var simSigningKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

type e2e struct {
	t     *testing.T
	sim   *graphsim.Server
	clock *graphsim.ManualClock
	rcv   *webhook.Receiver
	ep    *webhook.Endpoint
	subs  *subs
	http  *http.Client
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	k := keys()
	clock := graphsim.NewManualClock(time.Now().UTC().Truncate(time.Second))
	sim, err := graphsim.New(graphsim.Options{
		TenantID: tenantID,
		Clock:    clock,
		Apps: []graphsim.App{{ClientID: bridgeApp, DisplayName: "presencebridge", Secrets: []string{bridgeSecret},
			DelegatedScopes: []string{"Presence.Read.All", "User.Read"}}},
		Users: []graphsim.User{
			{ID: aliceID, UserPrincipalName: "alice@contoso.onmicrosoft.com", DisplayName: "Alice"},
			{ID: bobID, UserPrincipalName: "bob@contoso.onmicrosoft.com", DisplayName: "Bob"},
			{UserPrincipalName: svcUPN, DisplayName: "Presence service"},
			{UserPrincipalName: svc2UPN, DisplayName: "Presence service 2"},
		},
		SigningKey:         simSigningKey(),
		NotificationClient: k.server.Client(),
		TickInterval:       -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	e := &e2e{t: t, sim: sim, clock: clock, subs: newSubs(), http: sim.Client()}
	e.rcv, err = webhook.New(webhook.Config{
		Lookup:        e.subs.lookup,
		EncryptionKey: webhook.CertSet(k.enc),
		ClientID:      bridgeApp,
		TenantID:      sim.TenantID(),
		MetadataURL:   sim.AuthorityURL() + "/.well-known/openid-configuration",
		HTTPClient:    sim.Client(),
		Now:           clock.Now,
		Logger:        testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.ep = e.rcv.ServeTLS(ln, k.server.TLS)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.rcv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = e.ep.Close()
	})
	return e
}

func (e *e2e) form(path string, v url.Values) (int, map[string]any) {
	e.t.Helper()
	resp, err := e.http.PostForm(e.sim.URL()+path, v)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// deviceCodeToken runs the device code flow as a daemon would on first start: request a
// code, poll (authorization_pending) while the admin signs the service account in, poll again.
func (e *e2e) deviceCodeToken(upn string) string {
	e.t.Helper()
	code, dc := e.form("/"+tenantID+"/oauth2/v2.0/devicecode", url.Values{"client_id": {bridgeApp},
		"scope": {"https://graph.microsoft.com/Presence.Read.All offline_access openid profile"}})
	if code != 200 {
		e.t.Fatalf("devicecode: %d %v", code, dc)
	}
	poll := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {bridgeApp},
		"client_secret": {bridgeSecret}, "device_code": {dc["device_code"].(string)}}
	approved := false
	for i := 0; i < 50; i++ {
		code, tok := e.form("/"+tenantID+"/oauth2/v2.0/token", poll)
		if code == 200 {
			if !approved {
				e.t.Fatal("token before approval")
			}
			return tok["access_token"].(string)
		}
		if tok["error"] != "authorization_pending" {
			e.t.Fatalf("poll: %d %v", code, tok)
		}
		if !approved {
			if err := e.sim.ApproveDeviceCode(dc["user_code"].(string), upn); err != nil {
				e.t.Fatal(err)
			}
			approved = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("device code never redeemed")
	return ""
}

// subscribe creates a presence subscription by raw HTTP and registers its clientState with
// the receiver's lookup, as the adapter will.
func (e *e2e) subscribe(token string, richData bool, users ...string) (id, state string) {
	e.t.Helper()
	quoted := make([]string, len(users))
	for i, u := range users {
		quoted[i] = "'" + u + "'"
	}
	sb := make([]byte, 24)
	_, _ = rand.Read(sb)
	state = hex.EncodeToString(sb)
	req := map[string]any{
		"changeType":               "updated",
		"notificationUrl":          e.ep.NotificationURL(),
		"lifecycleNotificationUrl": e.ep.LifecycleURL(),
		"resource":                 "/communications/presences?$filter=id in (" + strings.Join(quoted, ",") + ")",
		"expirationDateTime":       e.clock.Now().Add(59 * time.Minute).Format(graphTime),
		"clientState":              state,
	}
	if richData {
		c := keys().enc
		req["includeResourceData"] = true
		req["encryptionCertificate"] = c.Base64()
		req["encryptionCertificateId"] = c.ID
	}
	b, _ := json.Marshal(req)
	hr, _ := http.NewRequest(http.MethodPost, e.sim.GraphURL()+"/subscriptions", bytes.NewReader(b))
	hr.Header.Set("Authorization", "Bearer "+token)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	rb, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(rb, &out)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("create subscription: %d %s", resp.StatusCode, rb)
	}
	id = out["id"].(string)
	e.subs.set(id, state)
	return id, state
}

func (e *e2e) assertClean() {
	e.t.Helper()
	st := e.rcv.Stats()
	for r, n := range st.Ignored {
		if n != 0 {
			e.t.Fatalf("ignored %v: %d (%+v)", r, n, st)
		}
	}
	for _, d := range e.sim.Deliveries() {
		if d.Status != http.StatusOK && d.Status != http.StatusAccepted {
			e.t.Fatalf("delivery %s %s: status %d err %q", d.Kind, d.URL, d.Status, d.Err)
		}
	}
}

func TestReceiver_GraphsimRich(t *testing.T) {
	e := newE2E(t)
	tok := e.deviceCodeToken(svcUPN)
	id, _ := e.subscribe(tok, true, aliceID, bobID)
	if got := e.rcv.Stats().Validations; got != 2 {
		t.Fatalf("validations answered: %d, want 2 (notification and lifecycle URL)", got)
	}

	if err := e.sim.StartTeamsCall(aliceID); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, e.rcv)
	if ev.Kind != webhook.Presence || ev.UserID != aliceID || ev.Availability != "Busy" || ev.Activity != "InACall" ||
		ev.SubscriptionID != id || !ev.Received.Equal(e.clock.Now()) || ev.SubscriptionExpires.IsZero() {
		t.Fatalf("event %+v", ev)
	}
	if err := e.sim.SetDND(bobID); err != nil {
		t.Fatal(err)
	}
	// graphsim's SetDND signs Bob's client in first: Available/Available, then DND, as two
	// notifications in order.
	for _, want := range []string{"Available", "DoNotDisturb"} {
		if ev := nextEvent(t, e.rcv); ev.UserID != bobID || ev.Availability != want || ev.Activity != want {
			t.Fatalf("event %+v, want %s", ev, want)
		}
	}
	if err := e.sim.RequireReauthorization(id); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, e.rcv); ev.Kind != webhook.Lifecycle || ev.Lifecycle != webhook.LifecycleReauthorizationRequired || ev.SubscriptionID != id {
		t.Fatalf("lifecycle event %+v", ev)
	}
	st := e.rcv.Stats()
	if st.Accepted != 4 || st.KeyFetches != 1 {
		t.Fatalf("stats %+v", st)
	}
	e.assertClean()
}

func TestReceiver_GraphsimBasic(t *testing.T) {
	e := newE2E(t)
	tok := e.deviceCodeToken(svc2UPN)
	id, _ := e.subscribe(tok, false, aliceID)
	if err := e.sim.JoinMeeting(aliceID); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, e.rcv)
	if ev.Kind != webhook.Changed || ev.UserID != aliceID || ev.SubscriptionID != id || ev.Availability != "" {
		t.Fatalf("event %+v", ev)
	}
	if st := e.rcv.Stats(); st.KeyFetches != 0 || st.Accepted != 1 {
		t.Fatalf("basic notifications need no keys: %+v", st)
	}
	e.assertClean()
}

// TestReceiver_GraphsimForgedState: a subscription the adapter knows with a different
// clientState than Graph echoes (a stale table after a restart, or a forger) yields nothing.
func TestReceiver_GraphsimForgedState(t *testing.T) {
	e := newE2E(t)
	tok := e.deviceCodeToken(svcUPN)
	id, _ := e.subscribe(tok, true, aliceID)
	e.subs.set(id, "not-what-graph-echoes")
	if err := e.sim.StartTeamsCall(aliceID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitFor)
	for e.rcv.Stats().Ignored[webhook.ReasonWrongClientState] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", e.rcv.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case ev := <-e.rcv.Events():
		t.Fatalf("event from a wrong clientState: %+v", ev)
	case <-time.After(50 * time.Millisecond):
	}
}
