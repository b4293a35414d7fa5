package graphsim

import (
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The Entra ID side: OpenID metadata, instance discovery, JWKS, the v2.0 token endpoint
// (client credentials with secret or certificate assertion, device code, refresh token) and
// the devicecode endpoint. Error bodies carry Entra's shape: error, error_description starting
// with the AADSTS code, error_codes, timestamp, trace_id, correlation_id, error_uri.

const (
	graphResourceURL  = "https://graph.microsoft.com"
	graphResourceGUID = "00000003-0000-0000-c000-000000000000"
	// grantDeviceCode is RFC 8628's grant type; MSAL sends the short "device_code", which
	// Entra accepts as well.
	grantDeviceCode   = "urn:ietf:params:oauth:grant-type:device_code"
	grantDeviceCodeMS = "device_code"
	assertionTypeJWT  = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// clockSkew is the leeway Entra and Graph (Microsoft.IdentityModel) allow on token times.
	clockSkew = 5 * time.Minute
)

var oidcScopes = map[string]bool{"openid": true, "profile": true, "offline_access": true, "email": true}

type deviceAuth struct {
	deviceCode string
	userCode   string
	clientID   string
	scopes     []string // as requested
	expiresAt  time.Time
	state      string // pending, approved, denied, redeemed
	userID     string
}

type refreshGrant struct {
	userID   string
	clientID string
	perms    []string // canonical delegated permission names
	oidc     []string
	issuedAt time.Time
	revoked  bool
}

func (s *Server) stsIssuer() string { return "https://sts.windows.net/" + s.tenantID + "/" }
func (s *Server) v2Issuer() string  { return s.url + "/" + s.tenantID + "/v2.0" }

// tenantOK reports whether an authority path segment names this tenant. common and
// organizations resolve to it too: the simulator has one tenant.
func (s *Server) tenantOK(t string) bool {
	switch strings.ToLower(t) {
	case s.tenantID, s.tenantDomain, "common", "organizations":
		return true
	}
	return false
}

func (s *Server) serveEntra(rc *reqCtx) {
	segs := strings.Split(strings.Trim(rc.r.URL.Path, "/"), "/")
	get, post := rc.r.Method == http.MethodGet, rc.r.Method == http.MethodPost
	switch {
	case len(segs) == 3 && strings.EqualFold(segs[0], "common") && segs[1] == "discovery" && segs[2] == "instance" && get:
		s.handleInstanceDiscovery(rc)
		return
	case len(segs) == 1 && segs[0] == "devicelogin" && get:
		rc.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(rc.w, "graphsim: device codes are approved by the test (Server.ApproveDeviceCode).")
		return
	case len(segs) == 0 || segs[0] == "":
		http.NotFound(rc.w, rc.r)
		return
	}
	tenant, rest := segs[0], strings.Join(segs[1:], "/")
	route := ""
	switch {
	case rest == "v2.0/.well-known/openid-configuration" && get:
		route = "oidc2"
	case rest == ".well-known/openid-configuration" && get:
		route = "oidc1"
	case (rest == "discovery/v2.0/keys" || rest == "discovery/keys") && get:
		route = "keys"
	case rest == "oauth2/v2.0/token" && post:
		route = "token"
	case rest == "oauth2/v2.0/devicecode" && post:
		route = "devicecode"
	default:
		http.NotFound(rc.w, rc.r)
		return
	}
	if !s.tenantOK(tenant) {
		code := "invalid_request"
		if route == "oidc1" || route == "oidc2" || route == "keys" {
			code = "invalid_tenant"
		}
		s.writeEntraError(rc, http.StatusBadRequest, code, 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing in to the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant), "")
		return
	}
	switch route {
	case "oidc2":
		s.handleOpenIDConfig(rc, tenant, true)
	case "oidc1":
		s.handleOpenIDConfig(rc, tenant, false)
	case "keys":
		issuer := ""
		if strings.Contains(rest, "v2.0") {
			issuer = s.v2Issuer()
		}
		s.writeEntra(rc, http.StatusOK, s.pki.jwks(issuer))
	case "token":
		s.handleToken(rc, tenant)
	case "devicecode":
		s.handleDeviceCode(rc)
	}
}

func (s *Server) writeEntra(rc *reqCtx, status int, v any) {
	rc.w.Header().Set("Cache-Control", "no-store, no-cache")
	rc.w.Header().Set("Pragma", "no-cache")
	writeJSONBody(rc.w, status, "application/json; charset=utf-8", v)
}

// writeEntraError writes Entra's OAuth error body. suberror is optional.
func (s *Server) writeEntraError(rc *reqCtx, status int, code string, aadsts int, desc, suberror string) {
	ts := rc.now.UTC().Format("2006-01-02 15:04:05Z")
	corr := rc.r.Header.Get("client-request-id")
	if corr == "" {
		corr = newGUID()
	}
	body := map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", aadsts, desc, rc.reqID, corr, ts),
		"error_codes":       []int{aadsts},
		"timestamp":         ts,
		"trace_id":          rc.reqID,
		"correlation_id":    corr,
		"error_uri":         fmt.Sprintf("%s/error?code=%d", s.url, aadsts),
	}
	if suberror != "" {
		body["suberror"] = suberror
	}
	s.writeEntra(rc, status, body)
}

// handleInstanceDiscovery answers MSAL's /common/discovery/instance. MSAL only calls it for
// an untrusted authority host when instance discovery is enabled, and then at
// login.microsoftonline.com, so it reaches the simulator only through a redirecting
// transport; adapters should set DisableInstanceDiscovery instead.
func (s *Server) handleInstanceDiscovery(rc *reqCtx) {
	ae := rc.r.URL.Query().Get("authorization_endpoint")
	tenant := s.tenantID
	if u, err := url.Parse(ae); err == nil && u.Host != "" {
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if len(parts) > 0 && parts[0] != "" {
			tenant = parts[0]
		}
		if !strings.EqualFold(u.Host, rc.r.Host) || !s.tenantOK(tenant) {
			s.writeEntraError(rc, http.StatusBadRequest, "invalid_instance", 50049, "Unknown or invalid instance.", "")
			return
		}
	}
	host := rc.r.Host
	s.writeEntra(rc, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": s.url + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []any{map[string]any{
			"preferred_network": host,
			"preferred_cache":   host,
			"aliases":           []string{host},
		}},
	})
}

// handleOpenIDConfig serves the OpenID Provider metadata. Like Entra, a specific tenant (id or
// domain) gets endpoints with the tenant id, common/organizations keep their name, and the v2
// issuer of common is the literal https://host/{tenantid}/v2.0. MSAL accepts the issuer
// because its host equals the authority's.
func (s *Server) handleOpenIDConfig(rc *reqCtx, tenant string, v2 bool) {
	pt := s.tenantID
	if t := strings.ToLower(tenant); t == "common" || t == "organizations" {
		pt = t
	}
	base := s.url + "/" + pt
	doc := map[string]any{
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     s.GraphURL() + "/oidc/userinfo",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"claims_supported":                      []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"kerberos_endpoint":                     base + "/kerberos",
		"tenant_region_scope":                   "WW",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          strings.TrimPrefix(s.url, "https://"),
		"rbac_url":                              "https://pas.windows.net",
	}
	if v2 {
		issuer := s.v2Issuer()
		if pt != s.tenantID {
			issuer = s.url + "/{tenantid}/v2.0"
		}
		doc["token_endpoint"] = base + "/oauth2/v2.0/token"
		doc["jwks_uri"] = base + "/discovery/v2.0/keys"
		doc["issuer"] = issuer
		doc["authorization_endpoint"] = base + "/oauth2/v2.0/authorize"
		doc["device_authorization_endpoint"] = base + "/oauth2/v2.0/devicecode"
		doc["end_session_endpoint"] = base + "/oauth2/v2.0/logout"
	} else {
		issuer := s.stsIssuer()
		if pt != s.tenantID {
			issuer = "https://sts.windows.net/{tenantid}/"
		}
		doc["token_endpoint"] = base + "/oauth2/token"
		doc["jwks_uri"] = base + "/discovery/keys"
		doc["issuer"] = issuer
		doc["authorization_endpoint"] = base + "/oauth2/authorize"
		doc["device_authorization_endpoint"] = base + "/oauth2/devicecode"
		doc["end_session_endpoint"] = base + "/oauth2/logout"
	}
	s.writeEntra(rc, http.StatusOK, doc)
}

// scopeRequest is a parsed scope parameter: Graph permissions, whether /.default was asked
// for, the OpenID scopes, and which audience form the client used for Graph.
type scopeRequest struct {
	perms      []string
	dflt       bool
	oidc       []string
	audience   string
	badScope   string // a scope for a resource the tenant does not have
	graphCount int
}

func parseScopes(raw string) scopeRequest {
	sr := scopeRequest{audience: graphResourceURL}
	for _, sc := range strings.Fields(raw) {
		l := strings.ToLower(sc)
		if oidcScopes[l] {
			sr.oidc = append(sr.oidc, l)
			continue
		}
		name := ""
		switch {
		case strings.HasPrefix(l, graphResourceURL+"//"):
			name = sc[len(graphResourceURL)+2:]
		case strings.HasPrefix(l, graphResourceURL+"/"):
			name = sc[len(graphResourceURL)+1:]
		case strings.HasPrefix(l, graphResourceGUID+"/"):
			name = sc[len(graphResourceGUID)+1:]
			sr.audience = graphResourceGUID
		case !strings.Contains(l, "/"):
			name = sc // a bare permission name means Microsoft Graph
		default:
			if sr.badScope == "" {
				sr.badScope = sc
			}
			continue
		}
		sr.graphCount++
		if name == ".default" {
			sr.dflt = true
			continue
		}
		sr.perms = append(sr.perms, name)
	}
	return sr
}

func (s *Server) handleToken(rc *reqCtx, tenant string) {
	form, err := url.ParseQuery(string(rc.body))
	if err != nil {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", "")
		return
	}
	basicID, basicSecret, hasBasic := rc.r.BasicAuth()
	if hasBasic {
		if id, err := url.QueryUnescape(basicID); err == nil {
			basicID = id
		}
		if sec, err := url.QueryUnescape(basicSecret); err == nil {
			basicSecret = sec
		}
	}
	clientID := form.Get("client_id")
	if clientID == "" {
		clientID = basicID
	}
	grant := form.Get("grant_type")
	if grant == "" {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", "")
		return
	}
	if clientID == "" {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.", "")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(rc.now)
	app := s.apps[strings.ToLower(clientID)]
	if app == nil {
		s.writeEntraError(rc, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, s.tenantDomain), "")
		return
	}
	secret := form.Get("client_secret")
	if secret == "" {
		secret = basicSecret
	}
	switch grant {
	case "client_credentials":
		acr, ok := s.authenticateClientLocked(rc, app, form, secret, tenant, true)
		if !ok {
			return
		}
		s.grantClientCredentialsLocked(rc, app, form, acr)
	case grantDeviceCode, grantDeviceCodeMS:
		acr, ok := s.authenticateClientLocked(rc, app, form, secret, tenant, !app.PublicClient)
		if !ok {
			return
		}
		s.grantDeviceCodeLocked(rc, app, form, acr)
	case "refresh_token":
		acr, ok := s.authenticateClientLocked(rc, app, form, secret, tenant, !app.PublicClient)
		if !ok {
			return
		}
		s.grantRefreshLocked(rc, app, form, acr)
	default:
		s.writeEntraError(rc, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant), "")
	}
}

// authenticateClientLocked checks the client credential and returns appidacr ("0" public,
// "1" secret, "2" certificate). It writes the error response itself when it fails.
func (s *Server) authenticateClientLocked(rc *reqCtx, app *appReg, form url.Values, secret, tenant string, confidential bool) (string, bool) {
	assertion := form.Get("client_assertion")
	switch {
	case secret != "":
		for _, sec := range app.Secrets {
			if subtle.ConstantTimeCompare([]byte(sec), []byte(secret)) == 1 {
				return "1", true
			}
		}
		for _, sec := range app.ExpiredSecrets {
			if subtle.ConstantTimeCompare([]byte(sec), []byte(secret)) == 1 {
				s.writeEntraError(rc, http.StatusUnauthorized, "invalid_client", 7000222, fmt.Sprintf("The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", app.ClientID), "")
				return "", false
			}
		}
		s.writeEntraError(rc, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", app.ClientID), "")
		return "", false
	case assertion != "":
		if t := form.Get("client_assertion_type"); t != assertionTypeJWT {
			s.writeEntraError(rc, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_assertion_type'.", "")
			return "", false
		}
		if !s.verifyAssertionLocked(rc, app, assertion, tenant) {
			return "", false
		}
		return "2", true
	case !confidential:
		return "0", true
	default:
		s.writeEntraError(rc, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.", "")
		return "", false
	}
}

// verifyAssertionLocked validates a client assertion the way Entra does: the certificate
// named by x5t#S256 (MSAL for Go, PS256) or x5t (SHA-1, RS256; older clients) must be
// registered on the app, the signature must verify with it, iss and sub must be the client id,
// aud the token endpoint, and the lifetime must cover now.
//
// The lifetime is checked against the wall clock, not the injected one: the client signs with
// its wall clock, and a test that moves simulated time forward must not break certificate
// authentication.
func (s *Server) verifyAssertionLocked(rc *reqCtx, app *appReg, assertion, tenant string) bool {
	j, err := parseJWT(assertion)
	if err != nil {
		s.writeEntraError(rc, http.StatusUnauthorized, "invalid_client", 50027, "JWT token is invalid or malformed.", "")
		return false
	}
	var cert *x509.Certificate
	thumb := ""
	if t := j.headerStr("x5t#S256"); t != "" {
		b := decodeThumbprint(t)
		thumb = strings.ToUpper(hex.EncodeToString(b))
		cert = app.certsSHA256[hex.EncodeToString(b)]
	} else if t := j.headerStr("x5t"); t != "" {
		b := decodeThumbprint(t)
		thumb = strings.ToUpper(hex.EncodeToString(b))
		cert = app.certsSHA1[hex.EncodeToString(b)]
	}
	if cert == nil {
		// Subject name + issuer authentication sends the chain in x5c; accept it when the leaf
		// is a registered certificate.
		if x5c, ok := j.header["x5c"].([]any); ok && len(x5c) > 0 {
			if s0, ok := x5c[0].(string); ok {
				if der, err := base64.StdEncoding.DecodeString(s0); err == nil {
					cert = app.certsSHA256[hex.EncodeToString(sha256Sum(der))]
				}
			}
		}
	}
	if cert == nil {
		s.writeEntraError(rc, http.StatusUnauthorized, "invalid_client", 700027, fmt.Sprintf("Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments if you are not using the global cloud.]", thumb, app.ClientID), "")
		return false
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || j.verify(pub) != nil {
		s.writeEntraError(rc, http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]", "")
		return false
	}
	if !strings.EqualFold(j.str("iss"), app.ClientID) || !strings.EqualFold(j.str("sub"), app.ClientID) {
		s.writeEntraError(rc, http.StatusUnauthorized, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .", "")
		return false
	}
	audOK := false
	valid := []string{
		s.url + "/" + tenant + "/oauth2/v2.0/token", s.url + "/" + s.tenantID + "/oauth2/v2.0/token",
		s.url + "/" + tenant + "/oauth2/token", s.url + "/" + s.tenantID + "/oauth2/token", s.v2Issuer(),
	}
	for _, a := range j.audiences() {
		for _, v := range valid {
			if strings.EqualFold(strings.TrimSuffix(a, "/"), v) {
				audOK = true
			}
		}
	}
	if !audOK {
		s.writeEntraError(rc, http.StatusUnauthorized, "invalid_client", 50013, fmt.Sprintf("Assertion failed signature validation. [Reason - The audience '%s' in the client assertion is not the token endpoint '%s'.]", strings.Join(j.audiences(), ","), s.TokenURL()), "")
		return false
	}
	wall := time.Now()
	exp, hasExp := j.unix("exp")
	nbf, hasNbf := j.unix("nbf")
	if !hasExp || wall.After(exp.Add(clockSkew)) || (hasNbf && wall.Add(clockSkew).Before(nbf)) {
		s.writeEntraError(rc, http.StatusUnauthorized, "invalid_client", 700024, fmt.Sprintf("Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .", wall.UTC().Format(time.RFC3339), nbf.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339)), "")
		return false
	}
	return true
}

func (s *Server) grantClientCredentialsLocked(rc *reqCtx, app *appReg, form url.Values, acr string) {
	raw := form.Get("scope")
	if strings.TrimSpace(raw) == "" {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.", "")
		return
	}
	sr := parseScopes(raw)
	if sr.badScope != "" {
		s.writeInvalidResource(rc, sr.badScope)
		return
	}
	if !sr.dflt || len(sr.perms) > 0 {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", raw), "")
		return
	}
	roles := make([]string, 0, len(app.roles))
	for _, r := range app.roles {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	now := rc.now
	claims := s.baseAccessClaims(app, acr, sr.audience, now)
	claims["idtyp"] = "app"
	claims["oid"] = app.spOID
	claims["sub"] = app.spOID
	if len(roles) > 0 {
		claims["roles"] = roles
	}
	tok, err := s.pki.signJWT(claims)
	if err != nil {
		s.writeEntraError(rc, http.StatusInternalServerError, "server_error", 90015, "Token signing failed.", "")
		return
	}
	secs := int(s.opts.AccessTokenLifetime / time.Second)
	s.writeEntra(rc, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok,
	})
}

func (s *Server) writeInvalidResource(rc *reqCtx, scope string) {
	res := scope
	if i := strings.LastIndex(scope, "/"); i > 0 {
		res = scope[:i]
	}
	s.writeEntraError(rc, http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", res, s.tenantDomain), "")
}

// baseAccessClaims are the claims of a v1.0 access token for Microsoft Graph, which is what
// Entra issues for Graph even from the v2.0 endpoint.
func (s *Server) baseAccessClaims(app *appReg, acr, audience string, now time.Time) map[string]any {
	// Entra back-dates iat and nbf by five minutes.
	issued := now.Add(-clockSkew)
	return map[string]any{
		"aud":             audience,
		"iss":             s.stsIssuer(),
		"iat":             issued.Unix(),
		"nbf":             issued.Unix(),
		"exp":             now.Add(s.opts.AccessTokenLifetime).Unix(),
		"app_displayname": app.DisplayName,
		"appid":           app.ClientID,
		"appidacr":        acr,
		"idp":             s.stsIssuer(),
		"tid":             s.tenantID,
		"uti":             randToken(16),
		"ver":             "1.0",
	}
}

// handleDeviceCode starts a device authorization (POST .../oauth2/v2.0/devicecode).
func (s *Server) handleDeviceCode(rc *reqCtx) {
	form, _ := url.ParseQuery(string(rc.body))
	clientID := form.Get("client_id")
	if clientID == "" {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.", "")
		return
	}
	if strings.TrimSpace(form.Get("scope")) == "" {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.", "")
		return
	}
	sr := parseScopes(form.Get("scope"))
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.apps[strings.ToLower(clientID)]
	if app == nil {
		s.writeEntraError(rc, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, s.tenantDomain), "")
		return
	}
	if sr.badScope != "" {
		s.writeInvalidResource(rc, sr.badScope)
		return
	}
	da := &deviceAuth{
		deviceCode: randToken(48),
		userCode:   userCode(),
		clientID:   app.ClientID,
		scopes:     strings.Fields(form.Get("scope")),
		expiresAt:  rc.now.Add(s.opts.DeviceCodeLifetime),
		state:      "pending",
	}
	s.deviceCodes[da.deviceCode] = da
	s.userCodes[da.userCode] = da.deviceCode
	verify := s.url + "/devicelogin"
	interval := int((s.opts.DeviceCodeInterval + time.Second - 1) / time.Second)
	s.writeEntra(rc, http.StatusOK, map[string]any{
		"user_code":        da.userCode,
		"device_code":      da.deviceCode,
		"verification_uri": verify,
		"expires_in":       int(s.opts.DeviceCodeLifetime / time.Second),
		"interval":         interval,
		"message":          fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.", verify, da.userCode),
	})
}

func userCode() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := []byte(randToken(9))
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:9])
}

func (s *Server) grantDeviceCodeLocked(rc *reqCtx, app *appReg, form url.Values, acr string) {
	da := s.deviceCodes[form.Get("device_code")]
	if da == nil || da.clientID != app.ClientID {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.", "")
		return
	}
	if da.state == "redeemed" {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.", "")
		return
	}
	if !rc.now.Before(da.expiresAt) {
		s.writeEntraError(rc, http.StatusBadRequest, "expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.", "")
		return
	}
	switch da.state {
	case "pending":
		s.writeEntraError(rc, http.StatusBadRequest, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.", "")
		return
	case "denied":
		s.writeEntraError(rc, http.StatusBadRequest, "authorization_declined", 70000, "The user has declined to authorize the request.", "")
		return
	}
	sr := parseScopes(form.Get("scope"))
	if len(sr.perms) == 0 && !sr.dflt {
		sr = parseScopes(strings.Join(da.scopes, " "))
	}
	if s.issueDelegatedLocked(rc, app, da.userID, sr, acr, form.Get("client_info") == "1") {
		da.state = "redeemed"
	}
}

func (s *Server) grantRefreshLocked(rc *reqCtx, app *appReg, form url.Values, acr string) {
	rt := s.refreshTokens[form.Get("refresh_token")]
	if rt == nil {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.", "")
		return
	}
	if rt.clientID != app.ClientID {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_grant", 70000, "Provided grant is invalid or malformed.", "")
		return
	}
	if rt.revoked {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_grant", 50173, fmt.Sprintf("The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '%s' and the TokensValidFrom date (before which tokens are not valid) for this user is '%s'.", rt.issuedAt.UTC().Format(time.RFC3339), rc.now.UTC().Format(time.RFC3339)), "")
		return
	}
	sr := parseScopes(form.Get("scope"))
	if len(sr.perms) == 0 && !sr.dflt {
		sr.perms = rt.perms
	}
	if len(sr.oidc) == 0 {
		sr.oidc = rt.oidc
	}
	s.issueDelegatedLocked(rc, app, rt.userID, sr, acr, form.Get("client_info") == "1")
}

// issueDelegatedLocked writes a delegated token response for user, or the consent error.
func (s *Server) issueDelegatedLocked(rc *reqCtx, app *appReg, userID string, sr scopeRequest, acr string, clientInfo bool) bool {
	if sr.badScope != "" {
		s.writeInvalidResource(rc, sr.badScope)
		return false
	}
	us := s.users[userID]
	if us == nil {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_grant", 50034, "The user account does not exist in the directory.", "")
		return false
	}
	if us.user.Disabled {
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_grant", 50057, "The user account is disabled.", "")
		return false
	}
	var perms []string
	seen := map[string]bool{}
	for _, p := range sr.perms {
		canon, ok := app.scopes[strings.ToLower(p)]
		if !ok {
			s.writeEntraError(rc, http.StatusBadRequest, "invalid_grant", 65001, fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.", app.ClientID, app.DisplayName), "consent_required")
			return false
		}
		if !seen[strings.ToLower(canon)] {
			seen[strings.ToLower(canon)] = true
			perms = append(perms, canon)
		}
	}
	if sr.dflt || len(sr.perms) == 0 {
		for l, canon := range app.scopes {
			if !seen[l] {
				seen[l] = true
				perms = append(perms, canon)
			}
		}
	}
	slices.Sort(perms)
	now := rc.now
	claims := s.baseAccessClaims(app, acr, sr.audience, now)
	claims["idtyp"] = "user"
	claims["oid"] = us.user.ID
	claims["sub"] = derivedGUID("sub", us.user.ID, app.ClientID)
	claims["upn"] = us.user.UserPrincipalName
	claims["unique_name"] = us.user.UserPrincipalName
	claims["name"] = us.user.DisplayName
	claims["scp"] = strings.Join(perms, " ")
	tok, err := s.pki.signJWT(claims)
	if err != nil {
		s.writeEntraError(rc, http.StatusInternalServerError, "server_error", 90015, "Token signing failed.", "")
		return false
	}
	// The granted scope string names the Graph permissions the way MSAL asked for them, so that
	// MSAL's cache finds the token again on the next silent request.
	granted := make([]string, 0, len(perms)+len(sr.oidc)+1)
	for _, p := range perms {
		granted = append(granted, graphResourceURL+"/"+p)
	}
	if sr.dflt {
		granted = append(granted, graphResourceURL+"/.default")
	}
	granted = append(granted, sr.oidc...)
	secs := int(s.opts.AccessTokenLifetime / time.Second)
	resp := map[string]any{
		"token_type": "Bearer", "scope": strings.Join(granted, " "),
		"expires_in": secs, "ext_expires_in": secs, "access_token": tok,
	}
	if slices.Contains(sr.oidc, "offline_access") {
		rt := randToken(64)
		s.refreshTokens[rt] = &refreshGrant{userID: us.user.ID, clientID: app.ClientID, perms: perms, oidc: sr.oidc, issuedAt: now}
		resp["refresh_token"] = rt
	}
	if slices.Contains(sr.oidc, "openid") {
		idt, err := s.pki.signJWT(map[string]any{
			"aud":                app.ClientID,
			"iss":                s.v2Issuer(),
			"iat":                now.Unix(),
			"nbf":                now.Unix(),
			"exp":                now.Add(time.Hour).Unix(),
			"name":               us.user.DisplayName,
			"oid":                us.user.ID,
			"preferred_username": us.user.UserPrincipalName,
			"sub":                derivedGUID("sub", us.user.ID, app.ClientID),
			"tid":                s.tenantID,
			"ver":                "2.0",
		})
		if err == nil {
			resp["id_token"] = idt
		}
	}
	if clientInfo {
		ci, _ := json.Marshal(map[string]string{"uid": us.user.ID, "utid": s.tenantID})
		resp["client_info"] = b64url(ci)
	}
	s.writeEntra(rc, http.StatusOK, resp)
	return true
}
