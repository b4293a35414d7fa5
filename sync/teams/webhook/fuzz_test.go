package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

const (
	fuzzTenant = "5e1c0b7a-0a9b-4c1e-9d7e-2f3a4b5c6d7e"
	fuzzClient = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	fuzzSub    = "7f0c3a52-1111-4222-8333-444455556666"
	fuzzUser   = "0a0a0a0a-0000-4000-8000-00000000000a"
	fuzzState  = "fuzz-state"
)

type fuzzKeys struct {
	enc  *EncryptionCert
	sign *rsa.PrivateKey
}

var fuzzKeyMaterial = sync.OnceValue(func() fuzzKeys {
	enc, err := NewEncryptionCert("fuzz-cert")
	if err != nil {
		panic(err)
	}
	sign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return fuzzKeys{enc: enc, sign: sign}
})

var fuzzNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// fuzzReceiver has its signing keys preloaded so the fuzzer never touches the network.
func fuzzReceiver(tb testing.TB) *Receiver {
	k := fuzzKeyMaterial()
	r, err := New(Config{
		Lookup: func(id string) (string, bool) {
			if id == fuzzSub {
				return fuzzState, true
			}
			return "", false
		},
		EncryptionKey: CertSet(k.enc),
		ClientID:      fuzzClient,
		TenantID:      fuzzTenant,
		MetadataURL:   "https://127.0.0.1:1/metadata",
		Now:           func() time.Time { return fuzzNow },
		QueueSize:     4,
		EventBuffer:   1024,
	})
	if err != nil {
		tb.Fatal(err)
	}
	r.keys.keys = map[string]*rsa.PublicKey{"k1": &k.sign.PublicKey}
	r.keys.fetchedAt, r.keys.attemptedAt, r.keys.attempted = fuzzNow, fuzzNow, true
	r.keys.minRefetch, r.keys.maxAge = 1<<62, 1<<62
	return r
}

func fuzzSeed() [][]byte {
	k := fuzzKeyMaterial()
	plain, _ := json.Marshal(map[string]any{"id": fuzzUser, "availability": "Busy", "activity": "InACall", "sequenceNumber": 7})
	tok := MintTokenForTest(k.sign, "k1", "", map[string]any{
		"aud": fuzzClient, "iss": "https://sts.windows.net/" + fuzzTenant + "/", "appid": NotificationPublisherAppID,
		"nbf": fuzzNow.Add(-time.Minute).Unix(), "exp": fuzzNow.Add(time.Hour).Unix(),
	})
	item := func(extra map[string]any) map[string]any {
		n := map[string]any{"subscriptionId": fuzzSub, "clientState": fuzzState, "changeType": "updated",
			"resource": "communications/presences/" + fuzzUser, "resourceData": map[string]any{"id": fuzzUser},
			"subscriptionExpirationDateTime": "2026-01-01T13:00:00.0000000Z"}
		for k, v := range extra {
			n[k] = v
		}
		return n
	}
	enc := SealForTest(k.enc.Cert, k.enc.ID, plain)
	mk := func(v any) []byte { b, _ := json.Marshal(v); return b }
	return [][]byte{
		mk(map[string]any{"value": []any{item(nil)}}),
		mk(map[string]any{"value": []any{item(map[string]any{"encryptedContent": enc})}, "validationTokens": []string{tok}}),
		mk(map[string]any{"value": []any{item(map[string]any{"lifecycleEvent": "reauthorizationRequired"})}}),
		mk(map[string]any{"value": []any{item(map[string]any{"clientState": "x"}), item(map[string]any{"subscriptionId": "other"})}}),
		mk(map[string]any{"value": []any{item(map[string]any{"resourceData": nil, "resource": "users('" + fuzzUser + "')/presence"})}}),
		[]byte(`{"value":[]}`),
		[]byte(`{"value":[{"subscriptionId":"` + fuzzSub + `","clientState":"` + fuzzState + `","encryptedContent":{"data":"","dataKey":"","dataSignature":""}}],"validationTokens":["a.b.c"]}`),
		[]byte(`{"value":null}`),
		[]byte(`not json`),
		[]byte(``),
	}
}

// FuzzParsePayload drives arbitrary bodies through the whole receiving path: the handler
// (parse, clientState, queue) and the worker (tokens, decryption, events). It must never
// panic, must answer only 202/400, and every event it emits must be well-formed.
func FuzzParsePayload(f *testing.F) {
	for _, s := range fuzzSeed() {
		f.Add(s)
	}
	r := fuzzReceiver(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/notify", bytes.NewReader(b)))
		if w.Code != http.StatusAccepted && w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", w.Code)
		}
		check := func(ev Event) {
			if ev.SubscriptionID != fuzzSub {
				t.Fatalf("event for a foreign subscription: %+v", ev)
			}
			switch ev.Kind {
			case Changed, Presence:
				if !isGUID(ev.UserID) {
					t.Fatalf("event without a user: %+v", ev)
				}
				if ev.Kind == Presence && (ev.Availability == "" || ev.Activity == "") {
					t.Fatalf("presence without state: %+v", ev)
				}
			case Lifecycle:
				if ev.Lifecycle == "" {
					t.Fatalf("lifecycle without event: %+v", ev)
				}
			default:
				t.Fatalf("kind %v", ev.Kind)
			}
		}
		select {
		case j := <-r.queue:
			// A body can hold more notifications than Events buffers: consume while the
			// worker runs, as the adapter would.
			done := make(chan struct{})
			go func() { defer close(done); r.process(context.Background(), j) }()
			for running := true; running; {
				select {
				case ev := <-r.events:
					check(ev)
				case <-done:
					running = false
				}
			}
		default:
		}
		for len(r.events) > 0 {
			check(<-r.events)
		}
		// The pure parts, too, on the raw input.
		var notes []rawNotification
		if tokens, err := decodePayload(bytes.NewReader(b), DefaultMaxNotifications, func(n *rawNotification) error {
			notes = append(notes, *n)
			return nil
		}); err == nil {
			for i := range notes {
				_ = notes[i].userID()
				if ec := notes[i].EncryptedContent; ec != nil {
					_, _, _ = r.decrypt(ec)
				}
			}
			for _, tok := range tokens {
				_ = r.verifyToken(context.Background(), tok)
			}
		}
		_, _ = unpad(b)
		_ = idFromPath(string(b))
	})
}

// TestFuzzSeedsProduceEvents keeps the seed corpus honest: the valid seeds must really reach
// the consumer, or the fuzzer would only ever explore rejection paths.
func TestFuzzSeedsProduceEvents(t *testing.T) {
	r := fuzzReceiver(t)
	for _, s := range fuzzSeed()[:3] {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/notify", bytes.NewReader(s)))
		r.process(context.Background(), <-r.queue)
	}
	want := []EventKind{Changed, Presence, Lifecycle}
	for _, k := range want {
		ev := <-r.events
		if ev.Kind != k || (k != Lifecycle && ev.UserID != fuzzUser) {
			t.Fatalf("got %+v, want %v", ev, k)
		}
		if k == Presence && (ev.Availability != "Busy" || ev.Sequence != "7") {
			t.Fatalf("presence %+v", ev)
		}
	}
	if r.Stats().KeyFetches != 0 {
		t.Fatal("fuzz receiver went to the network")
	}
}
