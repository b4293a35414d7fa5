package webhook_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/webhook"
)

func TestReceiver_ValidationHandshake(t *testing.T) {
	h := newHarness(t, true)
	// Like Graph's: spaces, a colon, and characters that must be URL-decoded exactly once.
	token := "Validation: Testing client application reachability for subscription Request-Id: 3f1b+9a/c?&=%x"
	n := 0
	for _, path := range []string{webhook.NotifyPath, webhook.LifecyclePath} {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			req, _ := http.NewRequest(method, h.ep.URL()+path+"?"+url.Values{"validationToken": {token}}.Encode(), http.NoBody)
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
			start := time.Now()
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			n++
			if resp.StatusCode != 200 || string(b) != token {
				t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Fatalf("%s %s: Content-Type %q", method, path, ct)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("handshake took %v", d)
			}
		}
	}
	if got := h.rcv.Stats().Validations; got != uint64(n) {
		t.Fatalf("Validations = %d, want %d", got, n)
	}
	// An empty token is not a handshake we can answer, and other paths do not exist.
	resp, err := h.client.Post(h.ep.URL()+webhook.NotifyPath+"?validationToken=", "text/plain", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("empty token: %d", resp.StatusCode)
	}
	resp, err = h.client.Post(h.ep.URL()+"/other?validationToken=x", "text/plain", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("other path: %d", resp.StatusCode)
	}
	resp, err = h.client.Get(h.ep.URL() + webhook.NotifyPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET without token: %d", resp.StatusCode)
	}
	if got := h.rcv.Stats().Validations; got != uint64(n) {
		t.Fatalf("Validations = %d after refusals, want %d", got, n)
	}
}

func TestReceiver_AcceptsBasicRichAndLifecycle(t *testing.T) {
	h := newHarness(t, true)
	tok := h.token(nil)
	b := body([]string{tok},
		basic(subID, goodState, strings.ToUpper(aliceID)),
		rich(subID, goodState, bobID, "Busy", "InACall"),
		lifecycle(subID, goodState, webhook.LifecycleReauthorizationRequired),
	)
	if st := h.post(webhook.NotifyPath, b); st != http.StatusAccepted {
		t.Fatalf("status %d", st)
	}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	want := []webhook.Event{
		{Kind: webhook.Changed, SubscriptionID: subID, UserID: aliceID, SubscriptionExpires: exp, Received: h.clock.Now()},
		{Kind: webhook.Presence, SubscriptionID: subID, UserID: bobID, Availability: "Busy", Activity: "InACall", SubscriptionExpires: exp, Received: h.clock.Now()},
		{Kind: webhook.Lifecycle, SubscriptionID: subID, Lifecycle: "reauthorizationRequired", SubscriptionExpires: exp, Received: h.clock.Now()},
	}
	for i, w := range want {
		got := h.next()
		if !got.SubscriptionExpires.Equal(w.SubscriptionExpires) || !got.Received.Equal(w.Received) {
			t.Fatalf("event %d times: %+v", i, got)
		}
		got.SubscriptionExpires, got.Received, w.SubscriptionExpires, w.Received = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if got != w {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	st := h.rcv.Stats()
	if st.Requests != 1 || st.Received != 3 || st.Accepted != 3 || st.KeyFetches != 1 {
		t.Fatalf("stats %+v", st)
	}
	for r, n := range st.Ignored {
		if n != 0 {
			t.Fatalf("ignored %v = %d", r, n)
		}
	}
	// The resource path alone identifies the user when resourceData is missing, and a
	// sequenceNumber in the plaintext comes through.
	n := basic(subID, goodState, aliceID)
	delete(n, "resourceData")
	r := rich(subID, goodState, bobID, "x", "y")
	plain := `{"id":"` + bobID + `","availability":"Away","activity":"Away","sequenceNumber":"1234"}`
	r["encryptedContent"] = webhook.SealForTest(keys().enc.Cert, keys().enc.ID, []byte(plain))
	h.post(webhook.LifecyclePath, body([]string{tok}, n, r))
	if ev := h.next(); ev.Kind != webhook.Changed || ev.UserID != aliceID {
		t.Fatalf("from resource: %+v", ev)
	}
	if ev := h.next(); ev.Sequence != "1234" || ev.Availability != "Away" {
		t.Fatalf("sequence: %+v", ev)
	}
	if got := h.rcv.Stats().KeyFetches; got != 1 {
		t.Fatalf("keys fetched %d times; the cache should have served the second POST", got)
	}
}

// TestReceiver_Ignores feeds one bad notification per case, checks the status and exactly
// one counter, and then proves nothing of it reached the consumer: the next event is the
// good notification posted after it (the worker keeps order).
func TestReceiver_Ignores(t *testing.T) {
	k := keys()
	h := newHarness(t, true)
	tamper := func(field string, f func([]byte) []byte) map[string]any {
		n := rich(subID, goodState, aliceID, "Busy", "InACall")
		ec := n["encryptedContent"].(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(ec[field].(string))
		ec[field] = base64.StdEncoding.EncodeToString(f(raw))
		return n
	}
	flip := func(b []byte) []byte { b[len(b)/2] ^= 1; return b }
	good := func() []string { return []string{h.token(nil)} }
	claims := func(f func(map[string]any)) []string { return []string{h.token(f)} }
	oversize := make([]byte, webhook.DefaultMaxBodyBytes+1)
	for i := range oversize {
		oversize[i] = ' '
	}
	cases := []struct {
		name   string
		body   func() []byte
		status int
		reason webhook.Reason
		count  uint64
	}{
		{"wrong client state", func() []byte { return body(nil, basic(subID, "guess", aliceID)) }, 202, webhook.ReasonWrongClientState, 1},
		{"missing client state", func() []byte {
			n := basic(subID, "", aliceID)
			n["clientState"] = nil
			return body(nil, n)
		}, 202, webhook.ReasonWrongClientState, 1},
		{"client state prefix", func() []byte { return body(nil, basic(subID, goodState[:5], aliceID)) }, 202, webhook.ReasonWrongClientState, 1},
		{"unknown subscription", func() []byte { return body(nil, basic(otherSubID, goodState, aliceID)) }, 202, webhook.ReasonUnknownSubscription, 1},
		{"no subscription id", func() []byte { return body(nil, basic("", goodState, aliceID)) }, 202, webhook.ReasonBadPayload, 1},
		{"basic without user", func() []byte {
			n := basic(subID, goodState, "not-a-guid")
			return body(nil, n)
		}, 202, webhook.ReasonBadPayload, 1},
		{"lifecycle wrong state", func() []byte { return body(nil, lifecycle(subID, "x", "reauthorizationRequired")) }, 202, webhook.ReasonWrongClientState, 1},
		{"tampered data", func() []byte { return body(good(), tamper("data", flip)) }, 202, webhook.ReasonDecryptFailed, 1},
		{"tampered signature", func() []byte { return body(good(), tamper("dataSignature", flip)) }, 202, webhook.ReasonDecryptFailed, 1},
		{"truncated data", func() []byte {
			return body(good(), tamper("data", func(b []byte) []byte { return b[:len(b)-3] }))
		}, 202, webhook.ReasonDecryptFailed, 1},
		{"tampered data key", func() []byte { return body(good(), tamper("dataKey", flip)) }, 202, webhook.ReasonDecryptFailed, 1},
		{"wrong key id", func() []byte {
			n := rich(subID, goodState, aliceID, "Busy", "InACall")
			n["encryptedContent"].(map[string]any)["encryptionCertificateId"] = "bridge-enc-0"
			return body(good(), n)
		}, 202, webhook.ReasonDecryptFailed, 1},
		{"encrypted for another certificate", func() []byte {
			n := rich(subID, goodState, aliceID, "Busy", "InACall")
			ec := webhook.SealForTest(k.otherEnc.Cert, k.enc.ID, []byte(`{"id":"`+aliceID+`","availability":"Busy","activity":"InACall"}`))
			n["encryptedContent"] = ec
			return body(good(), n)
		}, 202, webhook.ReasonDecryptFailed, 1},
		{"another certificate without thumbprint", func() []byte {
			n := rich(subID, goodState, aliceID, "Busy", "InACall")
			ec := webhook.SealForTest(k.otherEnc.Cert, k.enc.ID, []byte(`{"id":"`+aliceID+`","availability":"Busy","activity":"InACall"}`))
			delete(ec, "encryptionCertificateThumbprint")
			n["encryptedContent"] = ec
			return body(good(), n)
		}, 202, webhook.ReasonDecryptFailed, 1},
		{"dataKey not base64", func() []byte {
			n := rich(subID, goodState, aliceID, "Busy", "InACall")
			n["encryptedContent"].(map[string]any)["dataKey"] = "%%%"
			return body(good(), n)
		}, 202, webhook.ReasonDecryptFailed, 1},
		{"plaintext not JSON", func() []byte {
			n := rich(subID, goodState, aliceID, "", "")
			n["encryptedContent"] = webhook.SealForTest(k.enc.Cert, k.enc.ID, []byte("<presence/>"))
			return body(good(), n)
		}, 202, webhook.ReasonBadPayload, 1},
		{"no validation tokens", func() []byte { return body(nil, rich(subID, goodState, aliceID, "Busy", "InACall")) }, 202, webhook.ReasonTokenInvalid, 1},
		{"expired token", func() []byte {
			return body(claims(func(c map[string]any) { c["exp"] = h.clock.Now().Add(-6 * time.Minute).Unix() }), rich(subID, goodState, aliceID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 1},
		{"token not yet valid", func() []byte {
			return body(claims(func(c map[string]any) { c["nbf"] = h.clock.Now().Add(10 * time.Minute).Unix() }), rich(subID, goodState, aliceID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 1},
		{"token without exp", func() []byte {
			return body(claims(func(c map[string]any) { delete(c, "exp") }), rich(subID, goodState, aliceID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 1},
		{"other audience", func() []byte {
			return body(claims(func(c map[string]any) { c["aud"] = "11111111-2222-4333-8444-555555555555" }), rich(subID, goodState, aliceID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 1},
		{"other appid", func() []byte {
			return body(claims(func(c map[string]any) {
				c["appid"] = "11111111-2222-4333-8444-555555555555"
				c["azp"] = c["appid"]
			}), rich(subID, goodState, aliceID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 1},
		{"v2 issuer", func() []byte {
			return body(claims(func(c map[string]any) { c["iss"] = "https://login.microsoftonline.com/" + tenantID + "/v2.0" }), rich(subID, goodState, aliceID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 1},
		{"other tenant's issuer", func() []byte {
			return body(claims(func(c map[string]any) { c["iss"] = "https://sts.windows.net/" + clientID + "/" }), rich(subID, goodState, aliceID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 1},
		{"bad signature", func() []byte {
			return body([]string{h.tokenWith(k.rogue, "kid-1", "", nil)}, rich(subID, goodState, aliceID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 1},
		{"alg none", func() []byte {
			tok := h.token(nil)
			parts := strings.Split(tok, ".")
			hdr := b64u([]byte(`{"alg":"none","kid":"kid-1"}`))
			return body([]string{hdr + "." + parts[1] + "."}, rich(subID, goodState, aliceID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 1},
		{"alg HS256", func() []byte {
			return body([]string{h.tokenWith(k.sign1, "kid-1", "HS256", nil)}, rich(subID, goodState, aliceID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 1},
		{"one good one bad token", func() []byte {
			bad := h.token(func(c map[string]any) { c["aud"] = "someone" })
			return body([]string{h.token(nil), bad}, rich(subID, goodState, aliceID, "Busy", "InACall"), rich(subID, goodState, bobID, "Busy", "InACall"))
		}, 202, webhook.ReasonTokenInvalid, 2},
		{"token garbage", func() []byte { return body([]string{"a.b.c"}, rich(subID, goodState, aliceID, "Busy", "InACall")) }, 202, webhook.ReasonTokenInvalid, 1},
		{"not JSON", func() []byte { return []byte("value=1") }, 400, webhook.ReasonBadPayload, 1},
		{"JSON without value", func() []byte { return []byte(`{"values":[]}`) }, 400, webhook.ReasonBadPayload, 1},
		{"value not an array", func() []byte { return []byte(`{"value":{"subscriptionId":"x"}}`) }, 400, webhook.ReasonBadPayload, 1},
		{"empty value array", func() []byte { return []byte(`{"value":[]}`) }, 202, webhook.ReasonBadPayload, 1},
		{"oversize body", func() []byte { return oversize }, 413, webhook.ReasonTooLarge, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			before := h.rcv.Stats()
			if st := h.post(webhook.NotifyPath, tc.body()); st != tc.status {
				t.Fatalf("status %d, want %d", st, tc.status)
			}
			// A marker proves the bad notification produced no event before it.
			marker := rich(subID, goodState, bobID, "Available", "Available")
			if st := h.post(webhook.NotifyPath, body(good(), marker)); st != 202 {
				t.Fatalf("marker status %d", st)
			}
			if ev := h.next(); ev.UserID != bobID || ev.Availability != "Available" {
				t.Fatalf("an ignored notification produced %+v", ev)
			}
			after := h.rcv.Stats()
			for _, r := range webhook.Reasons() {
				want := before.Ignored[r]
				if r == tc.reason {
					want += tc.count
				}
				if after.Ignored[r] != want {
					t.Fatalf("Ignored[%v] = %d, want %d", r, after.Ignored[r], want)
				}
			}
			if after.Accepted != before.Accepted+1 {
				t.Fatalf("Accepted %d → %d, want only the marker", before.Accepted, after.Accepted)
			}
		})
	}
}

func TestReceiver_QueueFullNeverBlocksTheHandler(t *testing.T) {
	h := newHarness(t, false, func(c *webhook.Config) { c.QueueSize = 1; c.EventBuffer = 1 })
	if st := h.post(webhook.NotifyPath, body(nil, basic(subID, goodState, aliceID))); st != 202 {
		t.Fatal(st)
	}
	// No worker yet: the queue holds the first POST, the next three notifications are dropped
	// and still answered at once.
	start := time.Now()
	if st := h.post(webhook.NotifyPath, body(nil, basic(subID, goodState, bobID), basic(subID, goodState, aliceID), lifecycle(subID, goodState, "missed"))); st != 202 {
		t.Fatal(st)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("handler blocked %v", d)
	}
	if got := h.ignored(webhook.ReasonQueueFull); got != 3 {
		t.Fatalf("queue_full = %d, want 3", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.run(ctx)
	if ev := h.next(); ev.UserID != aliceID || ev.Kind != webhook.Changed {
		t.Fatalf("first event %+v", ev)
	}
	// Now a consumer that stops reading: the worker waits on Events, the queue fills, and the
	// handler keeps answering 202 quickly while counting what it drops.
	for i := 0; i < 10; i++ {
		start := time.Now()
		if st := h.post(webhook.NotifyPath, body(nil, basic(subID, goodState, aliceID))); st != 202 {
			t.Fatal(st)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("handler blocked %v", d)
		}
	}
	if got := h.ignored(webhook.ReasonQueueFull); got < 3+7 {
		t.Fatalf("queue_full = %d after a stalled consumer", got)
	}
	st := h.rcv.Stats()
	if st.Received != 14 {
		t.Fatalf("Received = %d", st.Received)
	}
}

func TestReceiver_ConcurrentPosts(t *testing.T) {
	h := newHarness(t, true, func(c *webhook.Config) { c.QueueSize = 1024; c.EventBuffer = 1024 })
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				resp, err := h.client.Post(h.ep.URL()+webhook.NotifyPath, "application/json",
					bytes.NewReader(body(nil, basic(subID, goodState, aliceID), basic(otherSubID, goodState, aliceID))))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	for i := 0; i < workers*each; i++ {
		h.next()
	}
	st := h.rcv.Stats()
	if st.Requests != workers*each || st.Received != 2*workers*each || st.Accepted != workers*each ||
		st.Ignored[webhook.ReasonUnknownSubscription] != workers*each {
		t.Fatalf("stats %+v", st)
	}
}

// TestReceiver_SigningKeyRotation: an unknown kid triggers a refetch of the JWKS, but not
// more often than KeyRefetchInterval, and keys older than KeyMaxAge are fetched again.
func TestReceiver_SigningKeyRotation(t *testing.T) {
	k := keys()
	h := newHarness(t, true, func(c *webhook.Config) {
		c.KeyRefetchInterval = time.Minute
		c.KeyMaxAge = time.Hour
	})
	send := func(key string) webhook.Stats {
		t.Helper()
		sk := k.sign1
		if key == "kid-2" {
			sk = k.sign2
		}
		h.post(webhook.NotifyPath, body([]string{h.tokenWith(sk, key, "", nil)}, rich(subID, goodState, aliceID, "Busy", "InACall")))
		// A basic marker tells us the worker is done with the POST.
		h.post(webhook.NotifyPath, body(nil, basic(subID, goodState, bobID)))
		for {
			if ev := h.next(); ev.UserID == bobID {
				return h.rcv.Stats()
			}
		}
	}
	if st := send("kid-1"); st.KeyFetches != 1 || st.Accepted != 2 {
		t.Fatalf("first: %+v", st)
	}
	// Entra rotates: the new key is published, and a token signed with it arrives within the
	// refetch interval of the first fetch, so it is refused without asking the authority.
	h.auth.publish("kid-2", k.sign2)
	if st := send("kid-2"); st.KeyFetches != 1 || st.Ignored[webhook.ReasonTokenInvalid] != 1 {
		t.Fatalf("rate limited: %+v", st)
	}
	h.clock.Advance(time.Minute)
	if st := send("kid-2"); st.KeyFetches != 2 || st.Ignored[webhook.ReasonTokenInvalid] != 1 {
		t.Fatalf("after interval: %+v", st)
	}
	// Forged kids: one refetch per interval at most.
	h.clock.Advance(time.Minute)
	for i := 0; i < 3; i++ {
		send("forged-" + string(rune('a'+i)))
	}
	if st := h.rcv.Stats(); st.KeyFetches != 3 || st.Ignored[webhook.ReasonTokenInvalid] != 4 {
		t.Fatalf("forged kids: %+v", st)
	}
	if got := h.auth.jwksGets.Load(); got != 3 {
		t.Fatalf("authority served %d JWKS, want 3", got)
	}
	// Known keys are reused until KeyMaxAge, then fetched again.
	h.clock.Advance(time.Hour)
	if st := send("kid-1"); st.KeyFetches != 4 {
		t.Fatalf("max age: %+v", st)
	}
}

func TestReceiver_RichWithoutEncryptionKeys(t *testing.T) {
	h := newHarness(t, true, func(c *webhook.Config) { c.EncryptionKey = nil })
	h.post(webhook.NotifyPath, body([]string{h.token(nil)}, rich(subID, goodState, aliceID, "Busy", "InACall"), basic(subID, goodState, bobID)))
	if ev := h.next(); ev.Kind != webhook.Changed || ev.UserID != bobID {
		t.Fatalf("%+v", ev)
	}
	if got := h.ignored(webhook.ReasonDecryptFailed); got != 1 {
		t.Fatalf("decrypt_failed = %d", got)
	}
	if got := h.rcv.Stats().KeyFetches; got != 0 {
		t.Fatalf("fetched keys without rich configuration: %d", got)
	}
}

func TestNew_RejectsIncompleteConfig(t *testing.T) {
	lookup := func(string) (string, bool) { return "", false }
	keysFn := webhook.CertSet(keys().enc)
	for name, cfg := range map[string]webhook.Config{
		"no lookup":      {},
		"no client id":   {Lookup: lookup, EncryptionKey: keysFn, TenantID: tenantID, MetadataURL: "https://x/y"},
		"no tenant":      {Lookup: lookup, EncryptionKey: keysFn, ClientID: clientID, MetadataURL: "https://x/y"},
		"http metadata":  {Lookup: lookup, EncryptionKey: keysFn, ClientID: clientID, TenantID: tenantID, MetadataURL: "http://x/y"},
		"empty metadata": {Lookup: lookup, EncryptionKey: keysFn, ClientID: clientID, TenantID: tenantID},
	} {
		if _, err := webhook.New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := webhook.New(webhook.Config{Lookup: lookup}); err != nil {
		t.Fatalf("basic-only config: %v", err)
	}
}

func TestReceiver_RunTwice(t *testing.T) {
	h := newHarness(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.rcv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, open := <-h.rcv.Events(); open {
		t.Fatal("Events not closed when Run returned")
	}
	if err := h.rcv.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

func TestEncryptionCert_PEMRoundTrip(t *testing.T) {
	k := keys()
	c := k.enc
	if bits := c.Key.N.BitLen(); bits != 2048 {
		t.Fatalf("key bits %d", bits)
	}
	der, err := base64.StdEncoding.DecodeString(c.Base64())
	if err != nil || !bytes.Equal(der, c.Cert.Raw) {
		t.Fatal("Base64 is not the DER certificate")
	}
	pemBytes, err := c.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := webhook.ParseEncryptionCertPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != c.ID || !back.Cert.Equal(c.Cert) || !back.Key.Equal(c.Key) || back.Thumbprint() != c.Thumbprint() {
		t.Fatal("round trip changed the certificate")
	}
	// The restored certificate decrypts what was encrypted for the original.
	h := newHarness(t, true, func(cfg *webhook.Config) { cfg.EncryptionKey = webhook.CertSet(back) })
	h.post(webhook.NotifyPath, body([]string{h.token(nil)}, rich(subID, goodState, aliceID, "Away", "Away")))
	if ev := h.next(); ev.Availability != "Away" {
		t.Fatalf("%+v", ev)
	}

	otherPEM, _ := k.otherEnc.MarshalPEM()
	certOnly := pemBytes[:bytes.Index(pemBytes, []byte("-----BEGIN PRIVATE KEY"))]
	keyOnly := pemBytes[len(certOnly):]
	otherKey := otherPEM[bytes.Index(otherPEM, []byte("-----BEGIN PRIVATE KEY")):]
	noID := bytes.Replace(pemBytes, []byte("Encryption-Certificate-Id: bridge-enc-1\n\n"), nil, 1)
	if bytes.Equal(noID, pemBytes) {
		t.Fatal("test setup: id header not found")
	}
	for name, b := range map[string][]byte{
		"garbage":    []byte("not pem"),
		"cert only":  certOnly,
		"key only":   keyOnly,
		"wrong key":  append(append([]byte(nil), certOnly...), otherKey...),
		"no id":      noID,
		"two certs":  append(append([]byte(nil), certOnly...), pemBytes...),
		"empty":      nil,
		"truncated":  pemBytes[:len(pemBytes)/2],
		"other cert": append(append([]byte(nil), otherPEM[:bytes.Index(otherPEM, []byte("-----BEGIN PRIVATE KEY"))]...), keyOnly...),
	} {
		if _, err := webhook.ParseEncryptionCertPEM(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", 129), "a\nb", " lead"} {
		if _, err := webhook.NewEncryptionCert(id); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
}

func TestServerCert_ClientTrustsIt(t *testing.T) {
	h := newHarness(t, true)
	// The harness client is the ServerCert's; a client with only system roots must fail.
	resp, err := h.client.Post(h.ep.NotificationURL()+"?validationToken=ok", "text/plain", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := http.DefaultClient.Post(h.ep.NotificationURL()+"?validationToken=ok", "text/plain", http.NoBody); err == nil {
		t.Fatal("an untrusting client connected")
	}
	if !strings.HasPrefix(h.ep.NotificationURL(), "https://127.0.0.1:") || !strings.HasSuffix(h.ep.LifecycleURL(), webhook.LifecyclePath) {
		t.Fatalf("URLs %s %s", h.ep.NotificationURL(), h.ep.LifecycleURL())
	}
}

func TestEventKind_String(t *testing.T) {
	for k, want := range map[webhook.EventKind]string{webhook.Changed: "changed", webhook.Presence: "presence", webhook.Lifecycle: "lifecycle", 9: "EventKind(9)"} {
		if k.String() != want {
			t.Errorf("%d: %s", int(k), k.String())
		}
	}
	seen := map[string]bool{}
	for _, r := range webhook.Reasons() {
		if seen[r.String()] || strings.HasPrefix(r.String(), "Reason(") {
			t.Errorf("reason name %q", r.String())
		}
		seen[r.String()] = true
	}
}
