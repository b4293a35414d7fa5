package graphsim_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

const graphTime = "2006-01-02T15:04:05.0000000Z"

func (e *env) subscribe(tok string, ids []string, mutate func(map[string]any)) (*http.Response, map[string]any) {
	e.t.Helper()
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = "'" + id + "'"
	}
	body := map[string]any{
		"changeType":               "updated",
		"notificationUrl":          e.rcv.ts.URL + "/notify",
		"lifecycleNotificationUrl": e.rcv.ts.URL + "/lifecycle",
		"resource":                 "/communications/presences?$filter=id in (" + strings.Join(quoted, ",") + ")",
		"expirationDateTime":       e.clock.Now().Add(time.Hour).Format(graphTime),
		"clientState":              "state-42",
	}
	if mutate != nil {
		mutate(body)
	}
	return e.graph(http.MethodPost, "/subscriptions", tok, body, gzipped())
}

func (e *env) drainValidations(n int) []string {
	e.t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		select {
		case v := <-e.rcv.validations:
			out = append(out, v)
		case <-time.After(waitTimeout):
			e.t.Fatalf("only %d validation requests", i)
		}
	}
	return out
}

// notifications collects n notifications, however Graph batched them.
func (e *env) notifications(n int) (values []map[string]any, bodies []map[string]any) {
	e.t.Helper()
	for len(values) < n {
		b := e.rcv.next(e.t)
		bodies = append(bodies, b)
		for _, v := range b["value"].([]any) {
			values = append(values, v.(map[string]any))
		}
	}
	if len(values) != n {
		e.t.Fatalf("got %d notifications, want %d", len(values), n)
	}
	return values, bodies
}

func TestServer_SubscriptionLifecycle(t *testing.T) {
	e := newEnv(t)
	tok := e.serviceToken()
	resp, sub := e.subscribe(tok, []string{aliceID, serviceID}, nil)
	e.expect(resp, sub, 201)
	tokens := e.drainValidations(2) // notificationUrl and lifecycleNotificationUrl
	if !strings.HasPrefix(tokens[0], "Validation: Testing client application reachability") {
		t.Fatalf("validation token %q", tokens[0])
	}
	id := sub["id"].(string)
	if sub["clientState"] != "state-42" || sub["applicationId"] != bridgeApp || sub["creatorId"] != serviceID || sub["changeType"] != "updated" {
		t.Fatalf("%v", sub)
	}

	if err := e.sim.StartTeamsCall(aliceID); err != nil {
		t.Fatal(err)
	}
	vals, bodies := e.notifications(1)
	n := vals[0]
	rd := n["resourceData"].(map[string]any)
	if n["subscriptionId"] != id || n["clientState"] != "state-42" || n["changeType"] != "updated" || n["tenantId"] != tenantID ||
		n["resource"] != "communications/presences/"+aliceID || rd["id"] != aliceID || rd["@odata.type"] != "#microsoft.graph.presence" {
		t.Fatalf("notification %v", n)
	}
	if _, ok := n["encryptedContent"]; ok {
		t.Fatal("basic notification with content")
	}
	if _, ok := bodies[0]["validationTokens"]; ok {
		t.Fatal("basic notification with validation tokens")
	}

	// List, renew.
	_, list := e.graph(http.MethodGet, "/subscriptions", tok, nil)
	if len(list["value"].([]any)) != 1 {
		t.Fatalf("list %v", list)
	}
	newExp := e.clock.Now().Add(50 * time.Minute)
	e.clock.Advance(30 * time.Minute)
	tok = e.serviceToken()
	resp, upd := e.graph(http.MethodPatch, "/subscriptions/"+id, tok, map[string]any{"expirationDateTime": e.clock.Now().Add(50 * time.Minute).Format(graphTime)})
	e.expect(resp, upd, 200)
	if upd["expirationDateTime"] == newExp.Format(graphTime) {
		t.Fatal("renewal did not move the expiry")
	}
	resp, body := e.graph(http.MethodPatch, "/subscriptions/"+id, tok, map[string]any{"expirationDateTime": e.clock.Now().Add(61 * time.Minute).Format(graphTime)})
	if resp.StatusCode != 400 || errCode(body) != "ExtensionError" {
		t.Fatalf("renew past 60 minutes: %d %v", resp.StatusCode, body)
	}

	// reauthorizationRequired goes to the lifecycle URL.
	if err := e.sim.RequireReauthorization(id); err != nil {
		t.Fatal(err)
	}
	path, lc := e.rcv.nextAt(t)
	ev := lc["value"].([]any)[0].(map[string]any)
	if path != "/lifecycle" || ev["lifecycleEvent"] != "reauthorizationRequired" || ev["subscriptionId"] != id || ev["clientState"] != "state-42" {
		t.Fatalf("lifecycle %s %v", path, lc)
	}
	if !e.sim.Subscriptions()[0].ReauthorizationPending {
		t.Fatal("reauthorization not pending")
	}
	resp, body = e.graph(http.MethodPost, "/subscriptions/"+id+"/reauthorize", tok, nil)
	e.expect(resp, body, 200)

	// Not renewed: it expires and is gone.
	e.clock.Advance(51 * time.Minute)
	e.sim.Tick()
	if len(e.sim.Subscriptions()) != 0 {
		t.Fatal("subscription outlived its expiry")
	}
	tok = e.serviceToken()
	if resp, body := e.graph(http.MethodPatch, "/subscriptions/"+id, tok, map[string]any{"expirationDateTime": e.clock.Now().Add(30 * time.Minute).Format(graphTime)}); resp.StatusCode != 404 {
		t.Fatalf("renew expired: %d %v", resp.StatusCode, body)
	}
	// A new one may be made, and only it is notified (same URL, so FIFO).
	resp, sub2 := e.subscribe(tok, []string{aliceID}, nil)
	e.expect(resp, sub2, 201)
	e.drainValidations(2)
	_ = e.sim.EndCall(aliceID)
	vals, _ = e.notifications(1)
	if vals[0]["subscriptionId"] != sub2["id"] {
		t.Fatalf("notified %v, want the new subscription", vals[0]["subscriptionId"])
	}
	resp, body = e.graph(http.MethodDelete, "/subscriptions/"+sub2["id"].(string), tok, nil)
	e.expect(resp, body, 204)
	if resp, _ := e.graph(http.MethodDelete, "/subscriptions/"+sub2["id"].(string), tok, nil); resp.StatusCode != 404 {
		t.Fatal("second delete")
	}
}

func TestServer_SubscriptionRules(t *testing.T) {
	e := newEnv(t)
	svc := e.serviceToken()
	app := e.appToken(daemonApp, daemonSec)
	userReadOnly := e.userToken(aliceID, "https://graph.microsoft.com/User.Read")["access_token"].(string)

	resp, body := e.subscribe(app, []string{aliceID}, nil)
	if resp.StatusCode != 403 || errCode(body) != "ExtensionError" || !strings.Contains(errMessage(body), "Status Code: Forbidden") {
		t.Fatalf("app-only: %d %v", resp.StatusCode, body)
	}
	if resp, body := e.subscribe(userReadOnly, []string{aliceID}, nil); resp.StatusCode != 403 {
		t.Fatalf("without Presence.Read.All: %d %v", resp.StatusCode, body)
	}
	resp, body = e.subscribe(svc, []string{aliceID}, func(b map[string]any) {
		b["expirationDateTime"] = e.clock.Now().Add(61 * time.Minute).Format(graphTime)
	})
	if resp.StatusCode != 400 || !strings.Contains(errMessage(body), "60 minutes") {
		t.Fatalf("61 minutes: %d %v", resp.StatusCode, body)
	}
	many := make([]string, 651)
	for i := range many {
		many[i] = fmt.Sprintf("%08x-2222-4000-8000-000000000000", i)
	}
	if resp, body := e.subscribe(svc, many, nil); resp.StatusCode != 400 || !strings.Contains(errMessage(body), "650") {
		t.Fatalf("651 users: %d %v", resp.StatusCode, body)
	}
	for name, mutate := range map[string]func(map[string]any){
		"http url":        func(b map[string]any) { b["notificationUrl"] = strings.Replace(e.rcv.ts.URL, "https", "http", 1) },
		"changeType":      func(b map[string]any) { b["changeType"] = "created" },
		"rich, no cert":   func(b map[string]any) { b["includeResourceData"] = true },
		"other resource":  func(b map[string]any) { b["resource"] = "/users" },
		"clientState":     func(b map[string]any) { b["clientState"] = strings.Repeat("x", 129) },
		"past expiration": func(b map[string]any) { b["expirationDateTime"] = e.clock.Now().Add(-time.Minute).Format(graphTime) },
	} {
		if resp, body := e.subscribe(svc, []string{aliceID}, mutate); resp.StatusCode != 400 {
			t.Errorf("%s: %d %v", name, resp.StatusCode, body)
		}
	}
	// 650 is fine; a second one for the same app and user is not.
	resp, body = e.subscribe(svc, many[:650], func(b map[string]any) { delete(b, "lifecycleNotificationUrl") })
	e.expect(resp, body, 201)
	e.drainValidations(1)
	resp, body = e.subscribe(svc, []string{aliceID}, func(b map[string]any) { b["resource"] = "communications/presences/" + aliceID })
	if resp.StatusCode != 409 || errMessage(body) != "Operation: Create; Exception: [Status Code: Conflict; Reason: A subscripton already exists. It must be deleted before a another can be made.]" {
		t.Fatalf("second subscription: %d %v", resp.StatusCode, body)
	}
	// Another delegated user of the same app may have its own.
	alice := e.userToken(aliceID, "https://graph.microsoft.com/Presence.Read.All")["access_token"].(string)
	resp, body = e.subscribe(alice, []string{serviceID}, func(b map[string]any) { b["resource"] = "communications/presences/" + serviceID })
	e.expect(resp, body, 201)
	e.drainValidations(2)
	// Each user sees only their own subscription.
	_, list := e.graph(http.MethodGet, "/subscriptions", alice, nil)
	if v := list["value"].([]any); len(v) != 1 || v[0].(map[string]any)["resource"] != "communications/presences/"+serviceID {
		t.Fatalf("list %v", list)
	}
}

func TestServer_SubscriptionValidationHandshake(t *testing.T) {
	e := newEnv(t, func(o *graphsim.Options) { o.ValidationTimeout = 300 * time.Millisecond })
	tok := e.serviceToken()
	for _, tc := range []struct{ mode, msg string }{
		{"status500", "must respond with 200 OK"},
		{"encoded", "must exactly match validationToken"},
		{"wrongtype", "text/plain"},
		{"hang", "timed out"},
	} {
		e.rcv.setMode(tc.mode)
		resp, body := e.subscribe(tok, []string{aliceID}, nil)
		if resp.StatusCode != 400 || errCode(body) != "ValidationError" || !strings.Contains(errMessage(body), tc.msg) {
			t.Errorf("%s: %d %v", tc.mode, resp.StatusCode, body)
		}
		e.drainValidations(1)
	}
	if len(e.sim.Subscriptions()) != 0 {
		t.Fatal("a subscription survived a failed handshake")
	}
	e.rcv.setMode("echo")
	resp, body := e.subscribe(tok, []string{aliceID}, nil)
	e.expect(resp, body, 201)
}

// decrypt undoes Graph's rich notification encryption with the subscriber's private key.
func decrypt(t *testing.T, key *rsa.PrivateKey, ec map[string]any) []byte {
	t.Helper()
	wrapped, _ := base64.StdEncoding.DecodeString(ec["dataKey"].(string))
	sym, err := rsa.DecryptOAEP(sha1.New(), rand.Reader, key, wrapped, nil)
	if err != nil {
		t.Fatalf("dataKey: %v", err)
	}
	data, _ := base64.StdEncoding.DecodeString(ec["data"].(string))
	mac := hmac.New(sha256.New, sym)
	mac.Write(data)
	if base64.StdEncoding.EncodeToString(mac.Sum(nil)) != ec["dataSignature"] {
		t.Fatal("dataSignature does not match")
	}
	block, _ := aes.NewCipher(sym)
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, sym[:16]).CryptBlocks(plain, data)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > 16 {
		t.Fatalf("bad padding %d", pad)
	}
	return plain[:len(plain)-pad]
}

func TestServer_RichNotifications(t *testing.T) {
	e := newEnv(t)
	k := keys()
	tok := e.serviceToken()
	app := e.appToken(daemonApp, daemonSec)
	resp, body := e.subscribe(tok, []string{aliceID}, func(b map[string]any) {
		b["includeResourceData"] = true
		b["encryptionCertificate"] = base64.StdEncoding.EncodeToString(k.encCert.Raw)
		b["encryptionCertificateId"] = "webhook-cert-1"
	})
	e.expect(resp, body, 201)
	e.drainValidations(2)

	// The bridge's own session fades and expires while the clock jumps: every intermediate
	// state is notified, in order.
	resp, body = set(e, app, aliceID, "Available", "Available", "PT30M")
	e.expect(resp, body, 200)
	e.clock.Advance(31 * time.Minute)
	e.sim.Tick()
	vals, bodies := e.notifications(4)
	var states []string
	for _, v := range vals {
		ec := v["encryptedContent"].(map[string]any)
		if ec["encryptionCertificateId"] != "webhook-cert-1" {
			t.Fatalf("%v", ec)
		}
		th := sha1.Sum(k.encCert.Raw)
		if ec["encryptionCertificateThumbprint"] != strings.ToUpper(hex.EncodeToString(th[:])) {
			t.Fatalf("thumbprint %v", ec["encryptionCertificateThumbprint"])
		}
		var res map[string]any
		if err := json.Unmarshal(decrypt(t, k.encKey, ec), &res); err != nil {
			t.Fatal(err)
		}
		if res["id"] != aliceID || res["@odata.type"] != "#Microsoft.Graph.presence" {
			t.Fatalf("resource %v", res)
		}
		states = append(states, fmt.Sprint(res["availability"], "/", res["activity"]))
	}
	if fmt.Sprint(states) != "[Available/Available Available/AvailableInactive Away/Away Offline/Offline]" {
		t.Fatalf("states %v", states)
	}
	for _, b := range bodies {
		vts := b["validationTokens"].([]any)
		if len(vts) != 1 {
			t.Fatalf("validationTokens %v", vts)
		}
		c := e.verifyWithJWKS(vts[0].(string), "/common/discovery/keys")
		exp := time.Unix(int64(c["exp"].(float64)), 0)
		if c["aud"] != bridgeApp || c["iss"] != "https://sts.windows.net/"+tenantID+"/" ||
			c["appid"] != "0bf30f3b-4a52-48df-9a82-234910c4a086" || !exp.After(e.clock.Now()) {
			t.Fatalf("validation token claims %v", c)
		}
	}
}

func TestServer_DroppedNotifications(t *testing.T) {
	e := newEnv(t)
	tok := e.serviceToken()
	resp, body := e.subscribe(tok, []string{aliceID}, nil)
	e.expect(resp, body, 201)
	e.drainValidations(2)
	e.sim.DropNotifications(1)
	_ = e.sim.SignIn(aliceID)         // dropped
	_ = e.sim.StartTeamsCall(aliceID) // delivered
	vals, _ := e.notifications(1)
	if vals[0]["resourceData"].(map[string]any)["id"] != aliceID {
		t.Fatalf("%v", vals)
	}
	// The drop is decided before the next batch to the same URL is posted, so it is on
	// record by the time the second notification arrived.
	dropped := 0
	for _, d := range e.sim.Deliveries() {
		if d.Kind == "notification" && d.Dropped {
			dropped++
		}
	}
	if dropped != 1 {
		t.Fatalf("dropped %d: %+v", dropped, e.sim.Deliveries())
	}
}

func TestServer_NotificationBatchingAndRetry(t *testing.T) {
	e := newEnv(t, func(o *graphsim.Options) {
		o.DeliveryRetries = 1
		o.DeliveryRetryDelay = 10 * time.Millisecond
	})
	tok := e.serviceToken()
	resp, body := e.subscribe(tok, []string{aliceID}, nil)
	e.expect(resp, body, 201)
	e.drainValidations(2)

	// While a POST to the URL is in flight, further notifications queue up and then go out
	// together in one batch.
	gate, arrived := make(chan struct{}), make(chan struct{}, 10)
	e.rcv.mu.Lock()
	e.rcv.gate, e.rcv.arrived = gate, arrived
	e.rcv.mu.Unlock()
	_ = e.sim.SignIn(aliceID)
	<-arrived
	_ = e.sim.StartTeamsCall(aliceID)
	_ = e.sim.StartPresenting(aliceID)
	_ = e.sim.EndCall(aliceID)
	e.rcv.mu.Lock()
	e.rcv.gate = nil
	e.rcv.mu.Unlock()
	close(gate)
	if first := e.rcv.next(t); len(first["value"].([]any)) != 1 {
		t.Fatalf("first batch %v", first)
	}
	if second := e.rcv.next(t); len(second["value"].([]any)) != 3 {
		t.Fatalf("second batch has %d notifications", len(second["value"].([]any)))
	}

	// A failed POST is retried (DeliveryRetries), and both attempts are on record.
	e.rcv.mu.Lock()
	e.rcv.failNext = 1
	e.rcv.mu.Unlock()
	_ = e.sim.SetDND(aliceID)
	e.notifications(1)
	var attempts []int
	for _, d := range e.sim.Deliveries() {
		if d.Kind == "notification" && d.Status == 500 {
			attempts = append(attempts, d.Attempt)
		}
	}
	if fmt.Sprint(attempts) != "[0]" {
		t.Fatalf("failed attempts %v", attempts)
	}
}

func TestServer_TickerAppliesTime(t *testing.T) {
	// With the background ticker on, moving the clock is enough: no request, no Tick call.
	e := newEnv(t, func(o *graphsim.Options) { o.TickInterval = 10 * time.Millisecond })
	tok := e.serviceToken()
	app := e.appToken(daemonApp, daemonSec)
	resp, body := e.subscribe(tok, []string{aliceID}, nil)
	e.expect(resp, body, 201)
	e.drainValidations(2)
	resp, body = set(e, app, aliceID, "Busy", "InACall", "PT5M")
	e.expect(resp, body, 200)
	e.notifications(1)
	e.clock.Advance(5 * time.Minute)
	e.notifications(1) // the session expired: Offline
	if p := presence(t, e, aliceID); p.Availability != "Offline" {
		t.Fatalf("%+v", p)
	}
}
