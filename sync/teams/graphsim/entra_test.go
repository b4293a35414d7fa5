package graphsim_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crypto/tls"
	"crypto/x509"

	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

func TestServer_CACertificate(t *testing.T) {
	e := newEnv(t)
	// The PEM is what a caller writes for SSL_CERT_FILE; it must verify the server on every
	// loopback name the certificate covers.
	pemFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pemFile, e.sim.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(pemFile)
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("CA PEM does not parse")
	}
	u, _ := url.Parse(e.sim.URL())
	if u.Hostname() != "127.0.0.1" {
		t.Fatalf("listens on %s, want 127.0.0.1", u.Hostname())
	}
	for _, name := range []string{"127.0.0.1", "localhost", "::1"} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name}}}
		resp, err := c.Get(e.sim.URL() + "/" + tenantID + "/v2.0/.well-known/openid-configuration")
		if err != nil {
			t.Fatalf("server name %s: %v", name, err)
		}
		resp.Body.Close()
	}
	if _, err := http.Get(e.sim.URL() + "/common/discovery/instance"); err == nil {
		t.Fatal("a client without the CA must not trust the simulator")
	}
}

func TestServer_OpenIDConfiguration(t *testing.T) {
	e := newEnv(t)
	for _, tenant := range []string{tenantID, "contoso.onmicrosoft.com"} {
		resp, err := e.http.Get(e.sim.URL() + "/" + tenant + "/v2.0/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		base := e.sim.URL() + "/" + tenantID
		want := map[string]string{
			"token_endpoint":                base + "/oauth2/v2.0/token",
			"authorization_endpoint":        base + "/oauth2/v2.0/authorize",
			"device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
			"jwks_uri":                      base + "/discovery/v2.0/keys",
			"issuer":                        base + "/v2.0",
		}
		for k, v := range want {
			if doc[k] != v {
				t.Errorf("%s: %s = %v, want %s", tenant, k, doc[k], v)
			}
		}
	}
	// common keeps its name and the literal {tenantid} issuer, which MSAL substitutes.
	resp, _ := e.http.Get(e.sim.URL() + "/common/v2.0/.well-known/openid-configuration")
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc["issuer"] != e.sim.URL()+"/{tenantid}/v2.0" || doc["token_endpoint"] != e.sim.URL()+"/common/oauth2/v2.0/token" {
		t.Errorf("common: %v %v", doc["issuer"], doc["token_endpoint"])
	}
	// Unknown tenant: Entra's AADSTS90002.
	resp, _ = e.http.Get(e.sim.URL() + "/nosuchtenant.example/v2.0/.well-known/openid-configuration")
	var eb map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.HasPrefix(eb["error_description"].(string), "AADSTS90002:") {
		t.Errorf("unknown tenant: %d %v", resp.StatusCode, eb)
	}
}

func TestServer_InstanceDiscovery(t *testing.T) {
	e := newEnv(t)
	host := strings.TrimPrefix(e.sim.URL(), "https://")
	q := url.Values{"api-version": {"1.1"}, "authorization_endpoint": {"https://" + host + "/" + tenantID + "/oauth2/v2.0/authorize"}}
	resp, err := e.http.Get(e.sim.URL() + "/common/discovery/instance?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TenantDiscoveryEndpoint string `json:"tenant_discovery_endpoint"`
		Metadata                []struct {
			PreferredNetwork string   `json:"preferred_network"`
			Aliases          []string `json:"aliases"`
		}
	}
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc.TenantDiscoveryEndpoint != e.sim.URL()+"/"+tenantID+"/v2.0/.well-known/openid-configuration" {
		t.Errorf("tenant_discovery_endpoint = %s", doc.TenantDiscoveryEndpoint)
	}
	if len(doc.Metadata) != 1 || doc.Metadata[0].PreferredNetwork != host {
		t.Errorf("metadata = %+v", doc.Metadata)
	}
}

func TestServer_ClientSecret(t *testing.T) {
	e := newEnv(t)
	tok := e.appToken(daemonApp, daemonSec)
	// The JWKS of both the v2.0 and the v1 key endpoints verify it.
	for _, p := range []string{"/" + tenantID + "/discovery/v2.0/keys", "/common/discovery/keys"} {
		c := e.verifyWithJWKS(tok, p)
		if c["aud"] != "https://graph.microsoft.com" || c["iss"] != "https://sts.windows.net/"+tenantID+"/" ||
			c["tid"] != tenantID || c["appid"] != daemonApp || c["appidacr"] != "1" || c["idtyp"] != "app" {
			t.Fatalf("claims: %v", c)
		}
		roles, _ := json.Marshal(c["roles"])
		if string(roles) != `["GroupMember.Read.All","Presence.ReadWrite.All","User.Read.All"]` {
			t.Fatalf("roles %s", roles)
		}
		if _, ok := c["scp"]; ok {
			t.Fatal("app token with scp")
		}
	}

	// HTTP Basic client authentication (client_secret_basic) works too.
	req, _ := http.NewRequest(http.MethodPost, e.sim.TokenURL(), strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"https://graph.microsoft.com/.default"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(daemonApp, daemonSec)
	resp, err := e.http.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("basic auth: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestServer_TokenErrors(t *testing.T) {
	e := newEnv(t)
	cc := func(clientID, secret, scope string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {scope}}
		if secret != "" {
			v.Set("client_secret", secret)
		}
		return v
	}
	graphDefault := "https://graph.microsoft.com/.default"
	tests := []struct {
		name   string
		path   string
		form   url.Values
		status int
		err    string
		aadsts string
	}{
		{"wrong secret", e.tokenPath(), cc(daemonApp, "nope", graphDefault), 401, "invalid_client", "AADSTS7000215:"},
		{"expired secret", e.tokenPath(), cc(daemonApp, "old-secret", graphDefault), 401, "invalid_client", "AADSTS7000222:"},
		{"no credential", e.tokenPath(), cc(daemonApp, "", graphDefault), 401, "invalid_client", "AADSTS7000218:"},
		{"unknown app", e.tokenPath(), cc("12345678-1234-4234-8234-123456789012", "x", graphDefault), 400, "unauthorized_client", "AADSTS700016:"},
		{"unknown tenant", "/fabrikam.example/oauth2/v2.0/token", cc(daemonApp, daemonSec, graphDefault), 400, "invalid_request", "AADSTS90002:"},
		{"scope not .default", e.tokenPath(), cc(daemonApp, daemonSec, "https://graph.microsoft.com/User.Read.All"), 400, "invalid_scope", "AADSTS1002012:"},
		{"other resource", e.tokenPath(), cc(daemonApp, daemonSec, "https://vault.azure.net/.default"), 400, "invalid_resource", "AADSTS500011:"},
		{"bad grant", e.tokenPath(), url.Values{"grant_type": {"password"}, "client_id": {daemonApp}}, 400, "unsupported_grant_type", "AADSTS70003:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := e.form(tc.path, tc.form)
			desc, _ := out["error_description"].(string)
			if code != tc.status || out["error"] != tc.err || !strings.HasPrefix(desc, tc.aadsts) {
				t.Fatalf("got %d %v", code, out)
			}
			codes, _ := out["error_codes"].([]any)
			if len(codes) != 1 || out["trace_id"] == nil || out["correlation_id"] == nil || !strings.Contains(desc, "\r\nTrace ID: ") {
				t.Fatalf("not Entra's error shape: %v", out)
			}
		})
	}
}

func TestServer_CertificateAssertion(t *testing.T) {
	e := newEnv(t)
	k := keys()
	try := func(a string) (int, map[string]any) {
		return e.form(e.tokenPath(), url.Values{"grant_type": {"client_credentials"}, "client_id": {daemonApp},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a},
			"scope": {"https://graph.microsoft.com/.default openid profile offline_access"}, "client_info": {"1"}})
	}
	for _, ps := range []bool{true, false} {
		code, out := try(assertion(t, k.certKey, k.cert, daemonApp, e.sim.TokenURL(), ps))
		if code != 200 {
			t.Fatalf("ps256=%v: %d %v", ps, code, out)
		}
		if c := jwtClaims(t, out["access_token"].(string)); c["appidacr"] != "2" {
			t.Fatalf("appidacr %v", c["appidacr"])
		}
	}
	cases := []struct {
		name, assertion, aadsts string
	}{
		{"unregistered certificate", assertion(t, k.otherKey, k.other, daemonApp, e.sim.TokenURL(), true), "AADSTS700027:"},
		{"signed by another key", assertion(t, k.otherKey, k.cert, daemonApp, e.sim.TokenURL(), true), "AADSTS700027:"},
		{"wrong audience", assertion(t, k.certKey, k.cert, daemonApp, "https://example.com/token", true), "AADSTS50013:"},
		{"wrong issuer", assertion(t, k.certKey, k.cert, noRolesApp, e.sim.TokenURL(), true), "AADSTS700021:"},
		{"garbage", "not.a.jwt", "AADSTS50027:"},
	}
	for _, tc := range cases {
		code, out := try(tc.assertion)
		if code != 401 || out["error"] != "invalid_client" || !strings.HasPrefix(out["error_description"].(string), tc.aadsts) {
			t.Errorf("%s: %d %v", tc.name, code, out)
		}
	}
}

func TestServer_DeviceCodeFlow(t *testing.T) {
	e := newEnv(t)
	code, dc := e.form("/organizations/oauth2/v2.0/devicecode", url.Values{"client_id": {bridgeApp},
		"scope": {"https://graph.microsoft.com/Presence.Read.All openid profile offline_access"}})
	if code != 200 || dc["interval"] != float64(1) || dc["expires_in"] != float64(900) || !strings.Contains(dc["message"].(string), dc["user_code"].(string)) {
		t.Fatalf("devicecode: %d %v", code, dc)
	}
	poll := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {bridgeApp},
		"device_code": {dc["device_code"].(string)}, "client_info": {"1"},
		"scope": {"https://graph.microsoft.com/Presence.Read.All openid profile offline_access"}}
	// Polling before the person acts: authorization_pending, which MSAL keeps polling on.
	// MSAL sends the short grant type, RFC 8628 clients the URN; both work.
	for i, grant := range []string{"device_code", "urn:ietf:params:oauth:grant-type:device_code"} {
		poll.Set("grant_type", grant)
		code, out := e.form(e.tokenPath(), poll)
		if code != 400 || out["error"] != "authorization_pending" || !strings.HasPrefix(out["error_description"].(string), "AADSTS70016:") {
			t.Fatalf("poll %d: %d %v", i, code, out)
		}
	}
	pending := e.sim.PendingDeviceCodes()
	if len(pending) != 1 || pending[0].UserCode != dc["user_code"] {
		t.Fatalf("pending = %+v", pending)
	}
	if err := e.sim.ApproveDeviceCode(pending[0].UserCode, "svc-presence@contoso.onmicrosoft.com"); err != nil {
		t.Fatal(err)
	}
	code, tok := e.form(e.tokenPath(), poll)
	if code != 200 {
		t.Fatalf("after approval: %d %v", code, tok)
	}
	c := e.verifyWithJWKS(tok["access_token"].(string), "/"+tenantID+"/discovery/v2.0/keys")
	if c["scp"] != "Presence.Read.All" || c["oid"] != serviceID || c["idtyp"] != "user" || c["appidacr"] != "0" || c["upn"] != "svc-presence@contoso.onmicrosoft.com" {
		t.Fatalf("claims %v", c)
	}
	if tok["scope"] != "https://graph.microsoft.com/Presence.Read.All openid profile offline_access" || tok["refresh_token"] == nil {
		t.Fatalf("response %v", tok)
	}
	idt := e.verifyWithJWKS(tok["id_token"].(string), "/"+tenantID+"/discovery/v2.0/keys")
	if idt["aud"] != bridgeApp || idt["iss"] != e.sim.URL()+"/"+tenantID+"/v2.0" || idt["preferred_username"] != "svc-presence@contoso.onmicrosoft.com" {
		t.Fatalf("id token %v", idt)
	}
	ci, _ := base64.RawURLEncoding.DecodeString(tok["client_info"].(string))
	if string(ci) != `{"uid":"`+serviceID+`","utid":"`+tenantID+`"}` {
		t.Fatalf("client_info %s", ci)
	}
	// A device code is redeemed once.
	if code, out := e.form(e.tokenPath(), poll); code != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("second redemption: %d %v", code, out)
	}

	// Declined, and expired.
	_, dc2 := e.form("/"+tenantID+"/oauth2/v2.0/devicecode", url.Values{"client_id": {bridgeApp}, "scope": {"Presence.Read.All"}})
	if err := e.sim.DenyDeviceCode(dc2["user_code"].(string)); err != nil {
		t.Fatal(err)
	}
	poll.Set("device_code", dc2["device_code"].(string))
	if code, out := e.form(e.tokenPath(), poll); code != 400 || out["error"] != "authorization_declined" {
		t.Fatalf("declined: %d %v", code, out)
	}
	_, dc3 := e.form("/"+tenantID+"/oauth2/v2.0/devicecode", url.Values{"client_id": {bridgeApp}, "scope": {"Presence.Read.All"}})
	e.clock.Advance(16 * time.Minute)
	poll.Set("device_code", dc3["device_code"].(string))
	if code, out := e.form(e.tokenPath(), poll); code != 400 || out["error"] != "expired_token" {
		t.Fatalf("expired: %d %v", code, out)
	}
}

func TestServer_DeviceCodeMisconfigured(t *testing.T) {
	e := newEnv(t)
	// A confidential app without "Allow public client flows" cannot redeem without a secret.
	_, dc := e.form("/"+tenantID+"/oauth2/v2.0/devicecode", url.Values{"client_id": {daemonApp}, "scope": {"Presence.Read.All"}})
	_ = e.sim.ApproveDeviceCode(dc["user_code"].(string), aliceID)
	code, out := e.form(e.tokenPath(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {daemonApp}, "device_code": {dc["device_code"].(string)}})
	if code != 401 || !strings.HasPrefix(out["error_description"].(string), "AADSTS7000218:") {
		t.Fatalf("%d %v", code, out)
	}
	// A scope nobody consented to.
	_, dc = e.form("/"+tenantID+"/oauth2/v2.0/devicecode", url.Values{"client_id": {bridgeApp}, "scope": {"https://graph.microsoft.com/Presence.ReadWrite.All"}})
	_ = e.sim.ApproveDeviceCode(dc["user_code"].(string), aliceID)
	code, out = e.form(e.tokenPath(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {bridgeApp}, "device_code": {dc["device_code"].(string)}})
	if code != 400 || out["error"] != "invalid_grant" || out["suberror"] != "consent_required" || !strings.HasPrefix(out["error_description"].(string), "AADSTS65001:") {
		t.Fatalf("%d %v", code, out)
	}
	// A disabled account.
	_, dc = e.form("/"+tenantID+"/oauth2/v2.0/devicecode", url.Values{"client_id": {bridgeApp}, "scope": {"Presence.Read.All"}})
	_ = e.sim.ApproveDeviceCode(dc["user_code"].(string), bobID)
	code, out = e.form(e.tokenPath(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {bridgeApp}, "device_code": {dc["device_code"].(string)}})
	if code != 400 || !strings.HasPrefix(out["error_description"].(string), "AADSTS50057:") {
		t.Fatalf("%d %v", code, out)
	}
}

func TestServer_RefreshToken(t *testing.T) {
	e := newEnv(t)
	tok := e.userToken(serviceID, "https://graph.microsoft.com/.default offline_access openid profile")
	if c := jwtClaims(t, tok["access_token"].(string)); c["scp"] != "Presence.Read.All User.Read" {
		t.Fatalf(".default grants the consented scopes: %v", c["scp"])
	}
	rt := tok["refresh_token"].(string)
	e.clock.Advance(2 * time.Hour)
	code, out := e.form(e.tokenPath(), url.Values{"grant_type": {"refresh_token"}, "client_id": {bridgeApp}, "refresh_token": {rt},
		"scope": {"https://graph.microsoft.com/Presence.Read.All offline_access openid profile"}})
	if code != 200 || out["refresh_token"] == nil || out["refresh_token"] == rt {
		t.Fatalf("refresh: %d %v", code, out)
	}
	rotated := out["refresh_token"].(string)
	c := jwtClaims(t, out["access_token"].(string))
	if c["scp"] != "Presence.Read.All" || int64(c["exp"].(float64)) != e.clock.Now().Add(time.Hour).Unix() {
		t.Fatalf("claims %v", c)
	}
	// Another app cannot use the grant; a revoked grant fails with AADSTS50173.
	code, out = e.form(e.tokenPath(), url.Values{"grant_type": {"refresh_token"}, "client_id": {daemonApp}, "client_secret": {daemonSec}, "refresh_token": {rt}})
	if code != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("other app: %d %v", code, out)
	}
	if err := e.sim.RevokeRefreshTokens("svc-presence@contoso.onmicrosoft.com"); err != nil {
		t.Fatal(err)
	}
	code, out = e.form(e.tokenPath(), url.Values{"grant_type": {"refresh_token"}, "client_id": {bridgeApp}, "refresh_token": {rotated}})
	if code != 400 || !strings.HasPrefix(out["error_description"].(string), "AADSTS50173:") {
		t.Fatalf("revoked: %d %v", code, out)
	}
}

func TestServer_GraphTokenValidation(t *testing.T) {
	e := newEnv(t, func(o *graphsim.Options) { o.AccessTokenLifetime = 30 * time.Minute })
	tok := e.appToken(daemonApp, daemonSec)
	resp, body := e.graph(http.MethodGet, "/users/"+aliceID, tok, nil)
	e.expect(resp, body, 200)

	cases := []struct{ name, token, msg string }{
		{"missing", "", "Access token is empty."},
		{"not a JWT", "abc", "CompactToken parsing failed with error code: 80049217"},
		{"tampered", tok[:len(tok)-4] + "AAAA", "Access token validation failure."},
	}
	for _, tc := range cases {
		resp, body := e.graph(http.MethodGet, "/users/"+aliceID, tc.token, nil)
		if resp.StatusCode != 401 || errCode(body) != "InvalidAuthenticationToken" || errMessage(body) != tc.msg || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %v", tc.name, resp.StatusCode, body)
		}
	}
	// Past expiry plus Graph's five minutes of skew.
	e.clock.Advance(36 * time.Minute)
	resp, body = e.graph(http.MethodGet, "/users/"+aliceID, tok, nil)
	if resp.StatusCode != 401 || errMessage(body) != "Access token has expired or is not yet valid." {
		t.Fatalf("expired: %d %v", resp.StatusCode, body)
	}
	inner, _ := body["error"].(map[string]any)["innerError"].(map[string]any)
	if inner["request-id"] != resp.Header.Get("request-id") || inner["date"] == nil {
		t.Fatalf("innerError %v", inner)
	}
}

func TestServer_MissingRole(t *testing.T) {
	e := newEnv(t)
	// Entra issues the token anyway (without roles); Graph refuses.
	tok := e.appToken(noRolesApp, "x")
	if _, ok := jwtClaims(t, tok)["roles"]; ok {
		t.Fatal("roles claim for an app without roles")
	}
	resp, body := e.graph(http.MethodGet, "/users/"+aliceID+"/presence", tok, nil)
	if resp.StatusCode != 403 || errCode(body) != "Forbidden" || !strings.Contains(errMessage(body), "Presence.Read.All") {
		t.Fatalf("presence: %d %v", resp.StatusCode, body)
	}
	resp, body = e.graph(http.MethodGet, "/users/"+aliceID, tok, nil)
	if resp.StatusCode != 403 || errCode(body) != "Authorization_RequestDenied" {
		t.Fatalf("user: %d %v", resp.StatusCode, body)
	}
	// Revoking a role at runtime takes effect with the next token.
	if err := e.sim.RegisterApp(graphsim.App{ClientID: daemonApp, Secrets: []string{daemonSec}, Roles: []string{"User.Read.All"}}); err != nil {
		t.Fatal(err)
	}
	tok = e.appToken(daemonApp, daemonSec)
	resp, body = e.graph(http.MethodPost, "/users/"+aliceID+"/presence/setPresence", tok, map[string]any{"sessionId": daemonApp, "availability": "Busy", "activity": "InACall"})
	if resp.StatusCode != 403 || !strings.Contains(errMessage(body), "Presence.ReadWrite.All") {
		t.Fatalf("setPresence: %d %v", resp.StatusCode, body)
	}
}
