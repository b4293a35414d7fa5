package graphsim_test

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

const (
	tenantID    = "5e1c0b7a-0a9b-4c1e-9d7e-2f3a4b5c6d7e"
	daemonApp   = "11111111-2222-4333-8444-555555555555" // app-only: secret + certificate
	bridgeApp   = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee" // public client: device code for the service user
	noRolesApp  = "99999999-8888-4777-8666-555555555555"
	daemonSec   = "s3cr3t~value"
	aliceID     = "0a0a0a0a-0000-4000-8000-00000000000a"
	bobID       = "0b0b0b0b-0000-4000-8000-00000000000b"
	serviceID   = "05050505-0000-4000-8000-000000000005"
	waitTimeout = 10 * time.Second
)

// testKeys are generated once per test binary: RSA key generation under -race is slow.
type testKeys struct {
	sign     *rsa.PrivateKey
	certKey  *rsa.PrivateKey
	cert     *x509.Certificate
	otherKey *rsa.PrivateKey
	other    *x509.Certificate
	encKey   *rsa.PrivateKey
	encCert  *x509.Certificate
}

var keys = sync.OnceValue(func() testKeys {
	mk := func(cn string) (*rsa.PrivateKey, *x509.Certificate) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			panic(err)
		}
		c, _ := x509.ParseCertificate(der)
		return k, c
	}
	var tk testKeys
	var err error
	if tk.sign, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	tk.certKey, tk.cert = mk("daemon")
	tk.otherKey, tk.other = mk("unregistered")
	tk.encKey, tk.encCert = mk("webhook encryption")
	return tk
})

// env is a simulator with a standard tenant, a clock and a webhook receiver.
type env struct {
	t     *testing.T
	sim   *graphsim.Server
	clock *graphsim.ManualClock
	rcv   *receiver
	http  *http.Client
}

func newEnv(t *testing.T, tweak ...func(*graphsim.Options)) *env {
	t.Helper()
	k := keys()
	rcv := newReceiver(t)
	clock := graphsim.NewManualClock(time.Now().UTC().Truncate(time.Second))
	opts := graphsim.Options{
		TenantID: tenantID,
		Clock:    clock,
		Apps: []graphsim.App{
			{ClientID: daemonApp, DisplayName: "bridge daemon", Secrets: []string{daemonSec}, ExpiredSecrets: []string{"old-secret"},
				Certificates: []*x509.Certificate{k.cert}, Roles: []string{"Presence.ReadWrite.All", "User.Read.All", "GroupMember.Read.All"}},
			{ClientID: bridgeApp, DisplayName: "bridge subscriptions", PublicClient: true, DelegatedScopes: []string{"Presence.Read.All", "User.Read"}},
			{ClientID: noRolesApp, DisplayName: "misconfigured", Secrets: []string{"x"}},
		},
		Users: []graphsim.User{
			{ID: aliceID, UserPrincipalName: "alice@contoso.onmicrosoft.com", Mail: "alice@contoso.com", DisplayName: "Alice"},
			{ID: bobID, UserPrincipalName: "bob@contoso.onmicrosoft.com", DisplayName: "Bob", Disabled: true},
			{ID: serviceID, UserPrincipalName: "svc-presence@contoso.onmicrosoft.com", DisplayName: "Presence service"},
		},
		SigningKey:         k.sign,
		NotificationClient: rcv.ts.Client(),
		TickInterval:       -1,
	}
	for _, f := range tweak {
		f(&opts)
	}
	sim, err := graphsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return &env{t: t, sim: sim, clock: clock, rcv: rcv, http: sim.Client()}
}

// receiver is a webhook endpoint: it answers validation handshakes (configurably) and hands
// every other POST body to the test.
type receiver struct {
	ts          *httptest.Server
	mu          sync.Mutex
	mode        string        // echo, encoded, status500, wrongtype, hang
	failNext    int           // answer the next notifications with 500
	gate        chan struct{} // when set, notification POSTs wait for it
	arrived     chan struct{} // signalled when a notification POST starts waiting at the gate
	validations chan string
	bodies      chan map[string]any
	paths       chan string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{mode: "echo", validations: make(chan string, 100), bodies: make(chan map[string]any, 100), paths: make(chan string, 100)}
	r.ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if tok := req.URL.Query().Get("validationToken"); tok != "" {
			r.validations <- tok
			r.mu.Lock()
			mode := r.mode
			r.mu.Unlock()
			switch mode {
			case "status500":
				w.WriteHeader(http.StatusInternalServerError)
				return
			case "hang":
				<-req.Context().Done()
				return
			case "encoded":
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, url.QueryEscape(tok))
				return
			case "wrongtype":
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tok)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, tok)
			return
		}
		r.mu.Lock()
		gate, arrived := r.gate, r.arrived
		fail := r.failNext > 0
		if fail {
			r.failNext--
		}
		r.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if gate != nil {
			arrived <- struct{}{}
			<-gate
		}
		var body map[string]any
		b, _ := io.ReadAll(req.Body)
		_ = json.Unmarshal(b, &body)
		r.paths <- req.URL.Path
		r.bodies <- body
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.ts.Close)
	return r
}

func (r *receiver) setMode(m string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode = m
}

func (r *receiver) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case b := <-r.bodies:
		<-r.paths
		return b
	case <-time.After(waitTimeout):
		t.Fatal("no notification arrived")
		return nil
	}
}

func (r *receiver) nextAt(t *testing.T) (string, map[string]any) {
	t.Helper()
	select {
	case b := <-r.bodies:
		return <-r.paths, b
	case <-time.After(waitTimeout):
		t.Fatal("no notification arrived")
		return "", nil
	}
}

// form posts an Entra form request and decodes the JSON answer.
func (e *env) form(path string, v url.Values) (int, map[string]any) {
	e.t.Helper()
	resp, err := e.http.PostForm(e.sim.URL()+path, v)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("%s: not JSON: %s", path, b)
	}
	return resp.StatusCode, out
}

func (e *env) tokenPath() string { return "/" + tenantID + "/oauth2/v2.0/token" }

func (e *env) appToken(clientID, secret string) string {
	e.t.Helper()
	code, out := e.form(e.tokenPath(), url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {secret}, "scope": {"https://graph.microsoft.com/.default"}})
	if code != 200 {
		e.t.Fatalf("token: %d %v", code, out)
	}
	return out["access_token"].(string)
}

// userToken runs the device code flow for the bridge app as user and returns the token
// response.
func (e *env) userToken(user, scope string) map[string]any {
	e.t.Helper()
	code, dc := e.form("/"+tenantID+"/oauth2/v2.0/devicecode", url.Values{"client_id": {bridgeApp}, "scope": {scope}})
	if code != 200 {
		e.t.Fatalf("devicecode: %d %v", code, dc)
	}
	if err := e.sim.ApproveDeviceCode(dc["user_code"].(string), user); err != nil {
		e.t.Fatal(err)
	}
	code, tok := e.form(e.tokenPath(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"client_id": {bridgeApp}, "device_code": {dc["device_code"].(string)}, "client_info": {"1"}})
	if code != 200 {
		e.t.Fatalf("device token: %d %v", code, tok)
	}
	return tok
}

func (e *env) serviceToken() string {
	return e.userToken("svc-presence@contoso.onmicrosoft.com", "https://graph.microsoft.com/Presence.Read.All openid profile offline_access")["access_token"].(string)
}

type reqOpt func(*http.Request, *[]byte)

func gzipped() reqOpt {
	return func(r *http.Request, b *[]byte) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(*b)
		_ = zw.Close()
		*b = buf.Bytes()
		r.Header.Set("Content-Encoding", "gzip")
	}
}

// labelledGzip labels a plain body as gzip: kiota-http-go's retry bug.
func labelledGzip() reqOpt {
	return func(r *http.Request, _ *[]byte) { r.Header.Set("Content-Encoding", "gzip") }
}

// graph calls a Graph endpoint (path relative to /v1.0) and decodes the JSON answer, if any.
func (e *env) graph(method, path, token string, body any, opts ...reqOpt) (*http.Response, map[string]any) {
	e.t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			e.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, e.sim.GraphURL()+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req, &raw)
	}
	if raw != nil {
		req.Body = io.NopCloser(bytes.NewReader(raw))
		req.ContentLength = int64(len(raw))
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("%s %s: not JSON (%d): %s", method, path, resp.StatusCode, b)
		}
	}
	return resp, out
}

func (e *env) expect(resp *http.Response, body map[string]any, status int) {
	e.t.Helper()
	if resp.StatusCode != status {
		e.t.Fatalf("%s %s: status %d, want %d: %v", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
}

func errCode(body map[string]any) string {
	if e, ok := body["error"].(map[string]any); ok {
		c, _ := e["code"].(string)
		return c
	}
	return ""
}

func errMessage(body map[string]any) string {
	if e, ok := body["error"].(map[string]any); ok {
		c, _ := e["message"].(string)
		return c
	}
	return ""
}

// assertion builds a client assertion like MSAL for Go (PS256, x5t#S256) or like older
// clients and ADFS (RS256, x5t).
func assertion(t *testing.T, key *rsa.PrivateKey, cert *x509.Certificate, clientID, aud string, ps256 bool) string {
	t.Helper()
	header := map[string]any{"typ": "JWT"}
	if ps256 {
		h := sha256.Sum256(cert.Raw)
		header["alg"], header["x5t#S256"] = "PS256", base64.StdEncoding.EncodeToString(h[:])
	} else {
		h := sha1.Sum(cert.Raw)
		header["alg"], header["x5t"] = "RS256", base64.RawURLEncoding.EncodeToString(h[:])
	}
	now := time.Now()
	claims := map[string]any{"aud": aud, "iss": clientID, "sub": clientID, "jti": "j1", "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	if ps256 {
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], nil)
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// verifyWithJWKS checks a JWT's RS256 signature against the simulator's published keys, the
// way a webhook receiver or resource server would.
func (e *env) verifyWithJWKS(tok, keysPath string) map[string]any {
	e.t.Helper()
	resp, err := e.http.Get(e.sim.URL() + keysPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var jwks struct {
		Keys []struct {
			Kid, N, E string
			X5c       []string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		e.t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	_ = json.Unmarshal(hb, &h)
	if h["alg"] != "RS256" {
		e.t.Fatalf("alg %v", h["alg"])
	}
	for _, k := range jwks.Keys {
		if k.Kid != h["kid"] {
			continue
		}
		nb, _ := base64.RawURLEncoding.DecodeString(k.N)
		eb, _ := base64.RawURLEncoding.DecodeString(k.E)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			e.t.Fatalf("signature: %v", err)
		}
		// The x5c certificate carries the same key.
		der, _ := base64.StdEncoding.DecodeString(k.X5c[0])
		cert, err := x509.ParseCertificate(der)
		if err != nil || !cert.PublicKey.(*rsa.PublicKey).Equal(pub) {
			e.t.Fatalf("x5c does not match n/e: %v", err)
		}
		return jwtClaims(e.t, tok)
	}
	e.t.Fatalf("kid %v not in JWKS", h["kid"])
	return nil
}
