package graphsim

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Graph wraps the notification key with RSA-OAEP(SHA-1).
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Presence change subscriptions (shared/docs/graph-presence.md §3): delegated tokens with
// Presence.Read.All only; one subscription per application per delegated user; at most 650
// users; at most 60 minutes; the validation handshake on create (and on a notificationUrl
// change); basic notifications, or rich ones encrypted with the subscriber's certificate and
// accompanied by validation tokens; reauthorizationRequired lifecycle notifications.
//
// Errors specific to the presence service use Graph's wrapped form, as seen in the field:
// code ExtensionError, message "Operation: Create; Exception: [Status Code: Conflict;
// Reason: A subscripton already exists. ...]" (sic). Messages Microsoft never published are
// the simulator's own wording in the same shape.

const (
	maxSubscriptionLifetime = 60 * time.Minute
	maxSubscriptionUsers    = 650
	maxClientState          = 128
	// notificationPublisherAppID is the appid of validation tokens: Graph's change
	// notification publisher.
	notificationPublisherAppID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
	graphTimeLayout            = "2006-01-02T15:04:05.0000000Z"
)

type subscription struct {
	id                  string
	appID               string
	creatorID           string
	resource            string
	userIDs             []string
	users               map[string]bool
	changeType          string
	notificationURL     string
	lifecycleURL        string
	clientState         string
	expiresAt           time.Time
	includeResourceData bool
	encCert             *x509.Certificate
	encCertB64          string
	encCertID           string
	latestTLS           string
	reauthPending       bool
}

// Subscription is a snapshot of a live subscription.
type Subscription struct {
	ID                       string
	AppID                    string
	CreatorID                string
	Resource                 string
	UserIDs                  []string
	NotificationURL          string
	LifecycleNotificationURL string
	ClientState              string
	ExpirationDateTime       time.Time
	IncludeResourceData      bool
	ReauthorizationPending   bool
}

func (sub *subscription) snapshot() Subscription {
	return Subscription{
		ID: sub.id, AppID: sub.appID, CreatorID: sub.creatorID, Resource: sub.resource,
		UserIDs: append([]string(nil), sub.userIDs...), NotificationURL: sub.notificationURL,
		LifecycleNotificationURL: sub.lifecycleURL, ClientState: sub.clientState,
		ExpirationDateTime: sub.expiresAt, IncludeResourceData: sub.includeResourceData,
		ReauthorizationPending: sub.reauthPending,
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) subscriptionJSON(sub *subscription) map[string]any {
	return map[string]any{
		"id":                        sub.id,
		"resource":                  sub.resource,
		"applicationId":             sub.appID,
		"changeType":                sub.changeType,
		"clientState":               nullable(sub.clientState),
		"notificationUrl":           sub.notificationURL,
		"notificationQueryOptions":  nil,
		"lifecycleNotificationUrl":  nullable(sub.lifecycleURL),
		"expirationDateTime":        sub.expiresAt.UTC().Format(graphTimeLayout),
		"creatorId":                 sub.creatorID,
		"includeResourceData":       sub.includeResourceData,
		"latestSupportedTlsVersion": sub.latestTLS,
		"encryptionCertificate":     nullable(sub.encCertB64),
		"encryptionCertificateId":   nullable(sub.encCertID),
		"notificationUrlAppId":      nil,
		"notificationContentType":   nil,
	}
}

func parseGraphTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

var filterIDIn = regexp.MustCompile(`(?i)^\s*id\s+in\s*\((.*)\)\s*$`)

// parsePresenceResource accepts communications/presences/{id},
// communications/presences('{id}') and communications/presences?$filter=id in ('a','b').
func parsePresenceResource(resource string) ([]string, bool) {
	r := strings.TrimPrefix(strings.TrimSpace(resource), "/")
	lr := strings.ToLower(r)
	const prefix = "communications/presences"
	if !strings.HasPrefix(lr, prefix) {
		return nil, false
	}
	rest := r[len(prefix):]
	switch {
	case strings.HasPrefix(rest, "/"):
		id := strings.TrimPrefix(rest, "/")
		return []string{strings.ToLower(id)}, isGUID(id)
	case strings.HasPrefix(rest, "('") && strings.HasSuffix(rest, "')"):
		id := rest[2 : len(rest)-2]
		return []string{strings.ToLower(id)}, isGUID(id)
	case strings.HasPrefix(rest, "?"):
		q, err := url.ParseQuery(strings.ReplaceAll(rest[1:], "+", "%2B"))
		if err != nil {
			return nil, false
		}
		m := filterIDIn.FindStringSubmatch(q.Get("$filter"))
		if m == nil {
			return nil, false
		}
		var ids []string
		seen := map[string]bool{}
		for _, part := range strings.Split(m[1], ",") {
			id := strings.ToLower(strings.Trim(strings.TrimSpace(part), "'"))
			if !isGUID(id) {
				return nil, false
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		return ids, len(ids) > 0
	}
	return nil, false
}

func (s *Server) extensionError(rc *reqCtx, op string, status int, reason string) {
	s.writeGraphError(rc, status, "ExtensionError", fmt.Sprintf("Operation: %s; Exception: [Status Code: %s; Reason: %s]", op, strings.ReplaceAll(http.StatusText(status), " ", ""), reason))
}

type subscriptionRequest struct {
	ChangeType                string  `json:"changeType"`
	NotificationURL           string  `json:"notificationUrl"`
	LifecycleNotificationURL  string  `json:"lifecycleNotificationUrl"`
	Resource                  string  `json:"resource"`
	ExpirationDateTime        *string `json:"expirationDateTime"`
	ClientState               string  `json:"clientState"`
	IncludeResourceData       bool    `json:"includeResourceData"`
	EncryptionCertificate     string  `json:"encryptionCertificate"`
	EncryptionCertificateID   string  `json:"encryptionCertificateId"`
	LatestSupportedTLSVersion string  `json:"latestSupportedTlsVersion"`
}

func (s *Server) checkNotificationURL(rc *reqCtx, raw, field string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("Invalid %s '%s'.", field, raw))
		return false
	}
	if u.Scheme == "http" && !s.opts.AllowHTTPNotificationURLs {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("The %s must use https.", field))
		return false
	}
	return true
}

// checkExpiration enforces the presence lifetime rule against the simulated clock.
func (s *Server) checkExpiration(rc *reqCtx, op string, raw *string, now time.Time) (time.Time, bool) {
	if raw == nil || *raw == "" {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", "expirationDateTime is a required property for subscription creation.")
		return time.Time{}, false
	}
	exp, ok := parseGraphTime(*raw)
	if !ok {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("Invalid expirationDateTime '%s'.", *raw))
		return time.Time{}, false
	}
	if !exp.After(now) {
		s.extensionError(rc, op, http.StatusBadRequest, "Subscription expiration must be in the future.")
		return time.Time{}, false
	}
	if exp.Sub(now) > maxSubscriptionLifetime {
		s.extensionError(rc, op, http.StatusBadRequest, "Subscription expiration can only be 60 minutes in the future.")
		return time.Time{}, false
	}
	return exp, true
}

func (s *Server) handleCreateSubscription(rc *reqCtx, p *principal) {
	var req subscriptionRequest
	if !s.decodeJSON(rc, &req) {
		return
	}
	for _, f := range [][2]string{{"changeType", req.ChangeType}, {"notificationUrl", req.NotificationURL}, {"resource", req.Resource}} {
		if f[1] == "" {
			s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("%s is a required property for subscription creation.", f[0]))
			return
		}
	}
	if !s.checkNotificationURL(rc, req.NotificationURL, "notificationUrl") {
		return
	}
	if req.LifecycleNotificationURL != "" && !s.checkNotificationURL(rc, req.LifecycleNotificationURL, "lifecycleNotificationUrl") {
		return
	}
	ids, ok := parsePresenceResource(req.Resource)
	if !ok {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("The resource '%s' is not supported or is malformed.", req.Resource))
		return
	}
	if !p.delegated || !p.has(permSubscribePresence.delegated, p.scopes) {
		s.extensionError(rc, "Create", http.StatusForbidden, "The request is not authorized for this user or application.")
		return
	}
	if !strings.EqualFold(req.ChangeType, "updated") {
		s.extensionError(rc, "Create", http.StatusBadRequest, fmt.Sprintf("ChangeType '%s' is not supported. Presence subscriptions support 'updated' only.", req.ChangeType))
		return
	}
	if len(ids) > maxSubscriptionUsers {
		s.extensionError(rc, "Create", http.StatusBadRequest, fmt.Sprintf("The number of users in the subscription (%d) exceeds the maximum of %d.", len(ids), maxSubscriptionUsers))
		return
	}
	if len(req.ClientState) > maxClientState {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("clientState must not exceed %d characters.", maxClientState))
		return
	}
	sub := &subscription{
		id: newGUID(), appID: p.appID, creatorID: p.userID, resource: req.Resource,
		userIDs: ids, users: map[string]bool{}, changeType: "updated",
		notificationURL: req.NotificationURL, lifecycleURL: req.LifecycleNotificationURL,
		clientState: req.ClientState, latestTLS: "v1_2",
	}
	for _, id := range ids {
		sub.users[id] = true
	}
	if req.LatestSupportedTLSVersion != "" {
		sub.latestTLS = req.LatestSupportedTLSVersion
	}
	if req.IncludeResourceData {
		cert, ok := s.parseEncryptionCert(rc, req.EncryptionCertificate, req.EncryptionCertificateID)
		if !ok {
			return
		}
		sub.includeResourceData = true
		sub.encCert, sub.encCertB64, sub.encCertID = cert, req.EncryptionCertificate, req.EncryptionCertificateID
	}

	s.mu.Lock()
	s.advanceLocked(rc.now)
	exp, ok := s.checkExpiration(rc, "Create", req.ExpirationDateTime, rc.now)
	conflict := ok && s.conflictLocked(p)
	s.mu.Unlock()
	if !ok {
		return
	}
	if conflict {
		s.extensionError(rc, "Create", http.StatusConflict, "A subscripton already exists. It must be deleted before a another can be made.")
		return
	}
	sub.expiresAt = exp

	// The handshake runs without the lock: it may take the full ten seconds.
	if !s.validateEndpoint(rc, req.NotificationURL) {
		return
	}
	if req.LifecycleNotificationURL != "" && !s.validateEndpoint(rc, req.LifecycleNotificationURL) {
		return
	}

	s.mu.Lock()
	s.advanceLocked(s.clock.Now())
	if s.conflictLocked(p) {
		s.mu.Unlock()
		s.extensionError(rc, "Create", http.StatusConflict, "A subscripton already exists. It must be deleted before a another can be made.")
		return
	}
	s.subs[sub.id] = sub
	body := s.subscriptionJSON(sub)
	s.mu.Unlock()
	s.log.Info("subscription created", "id", sub.id, "app", sub.appID, "users", len(ids), "rich", sub.includeResourceData)
	body["@odata.context"] = s.GraphURL() + "/$metadata#subscriptions/$entity"
	s.writeGraph(rc, http.StatusCreated, body)
}

// conflictLocked reports whether the caller's app already has a presence subscription for the
// signed-in user: Microsoft allows one per application per delegated user.
func (s *Server) conflictLocked(p *principal) bool {
	for _, sub := range s.subs {
		if sub.appID == p.appID && sub.creatorID == p.userID {
			return true
		}
	}
	return false
}

func (s *Server) parseEncryptionCert(rc *reqCtx, b64, id string) (*x509.Certificate, bool) {
	if b64 == "" || id == "" {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", "encryptionCertificate and encryptionCertificateId are required when includeResourceData is true.")
		return nil, false
	}
	if len(id) > 128 {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", "encryptionCertificateId must not exceed 128 characters.")
		return nil, false
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	var cert *x509.Certificate
	if err == nil {
		cert, err = x509.ParseCertificate(der)
	}
	if err != nil {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", "The encryptionCertificate is not a valid base64-encoded X.509 certificate.")
		return nil, false
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < 2048 || pub.N.BitLen() > 4096 {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", "The encryptionCertificate must hold an RSA key of 2048 to 4096 bits.")
		return nil, false
	}
	return cert, true
}

// validateEndpoint performs Graph's validation handshake: POST url?validationToken=<token>,
// expecting 200, text/plain, and the URL-decoded token as the body, within
// ValidationTimeout. The token contains spaces and a colon, like Graph's, so an endpoint that
// echoes it still URL-encoded fails here as it would against Graph.
func (s *Server) validateEndpoint(rc *reqCtx, raw string) bool {
	token := "Validation: Testing client application reachability for subscription Request-Id: " + newGUID()
	u, _ := url.Parse(raw)
	q := u.Query()
	q.Set("validationToken", token)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.ValidationTimeout)
	defer cancel()
	fail := func(status int, err error, msg string) bool {
		s.recordDelivery(Delivery{Time: s.clock.Now(), Kind: "validation", URL: raw, Status: status, Err: errString(err)})
		s.writeGraphError(rc, http.StatusBadRequest, "ValidationError", msg)
		return false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), http.NoBody)
	if err != nil {
		return fail(0, err, "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.")
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := s.notifyClient.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fail(0, err, "Subscription validation request timed out.")
		}
		return fail(0, err, "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fail(resp.StatusCode, err, "Subscription validation request timed out.")
	}
	if resp.StatusCode != http.StatusOK {
		return fail(resp.StatusCode, nil, "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.")
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/plain" {
		return fail(resp.StatusCode, nil, "Subscription validation request failed. Response must have Content-Type text/plain.")
	}
	if string(body) != token {
		return fail(resp.StatusCode, nil, "Subscription validation request failed. Response must exactly match validationToken query parameter.")
	}
	s.recordDelivery(Delivery{Time: s.clock.Now(), Kind: "validation", URL: raw, Status: resp.StatusCode})
	return true
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// visibleLocked finds a subscription the caller may see: same app, and for delegated callers
// the same user.
func (s *Server) visibleLocked(p *principal, id string) *subscription {
	sub := s.subs[strings.ToLower(id)]
	if sub == nil || sub.appID != p.appID || (p.delegated && sub.creatorID != p.userID) {
		return nil
	}
	return sub
}

func (s *Server) subscriptionNotFound(rc *reqCtx, id string) {
	s.writeGraphError(rc, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Subscription with id '%s' was not found.", id))
}

func (s *Server) handleListSubscriptions(rc *reqCtx, p *principal) {
	s.mu.Lock()
	s.advanceLocked(rc.now)
	var subs []*subscription
	for _, sub := range s.subs {
		if s.visibleLocked(p, sub.id) != nil {
			subs = append(subs, sub)
		}
	}
	slices.SortFunc(subs, func(a, b *subscription) int { return strings.Compare(a.id, b.id) })
	vals := make([]any, 0, len(subs))
	for _, sub := range subs {
		vals = append(vals, s.subscriptionJSON(sub))
	}
	s.mu.Unlock()
	s.writeGraph(rc, http.StatusOK, map[string]any{"@odata.context": s.GraphURL() + "/$metadata#subscriptions", "value": vals})
}

func (s *Server) handleGetSubscription(rc *reqCtx, p *principal, id string) {
	s.mu.Lock()
	s.advanceLocked(rc.now)
	sub := s.visibleLocked(p, id)
	var body map[string]any
	if sub != nil {
		body = s.subscriptionJSON(sub)
	}
	s.mu.Unlock()
	if sub == nil {
		s.subscriptionNotFound(rc, id)
		return
	}
	body["@odata.context"] = s.GraphURL() + "/$metadata#subscriptions/$entity"
	s.writeGraph(rc, http.StatusOK, body)
}

// handleUpdateSubscription renews (expirationDateTime) and/or moves (notificationUrl, which
// is validated again) a subscription. Graph documents no other updatable property.
func (s *Server) handleUpdateSubscription(rc *reqCtx, p *principal, id string) {
	var req struct {
		ExpirationDateTime *string `json:"expirationDateTime"`
		NotificationURL    string  `json:"notificationUrl"`
	}
	if !s.decodeJSON(rc, &req) {
		return
	}
	if req.ExpirationDateTime == nil && req.NotificationURL == "" {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidRequest", "expirationDateTime is a required property for subscription update.")
		return
	}
	if req.NotificationURL != "" && !s.checkNotificationURL(rc, req.NotificationURL, "notificationUrl") {
		return
	}
	s.mu.Lock()
	s.advanceLocked(rc.now)
	sub := s.visibleLocked(p, id)
	if sub == nil {
		s.mu.Unlock()
		s.subscriptionNotFound(rc, id)
		return
	}
	if !p.delegated || !p.has(permSubscribePresence.delegated, p.scopes) {
		s.mu.Unlock()
		s.extensionError(rc, "Update", http.StatusForbidden, "The request is not authorized for this user or application.")
		return
	}
	exp := sub.expiresAt
	if req.ExpirationDateTime != nil {
		var ok bool
		if exp, ok = s.checkExpiration(rc, "Update", req.ExpirationDateTime, rc.now); !ok {
			s.mu.Unlock()
			return
		}
	}
	s.mu.Unlock()
	if req.NotificationURL != "" && !s.validateEndpoint(rc, req.NotificationURL) {
		return
	}
	s.mu.Lock()
	s.advanceLocked(s.clock.Now())
	sub = s.visibleLocked(p, id)
	if sub == nil {
		s.mu.Unlock()
		s.subscriptionNotFound(rc, id)
		return
	}
	sub.expiresAt = exp
	sub.reauthPending = false
	if req.NotificationURL != "" {
		sub.notificationURL = req.NotificationURL
	}
	body := s.subscriptionJSON(sub)
	s.mu.Unlock()
	body["@odata.context"] = s.GraphURL() + "/$metadata#subscriptions/$entity"
	s.writeGraph(rc, http.StatusOK, body)
}

func (s *Server) handleDeleteSubscription(rc *reqCtx, p *principal, id string) {
	s.mu.Lock()
	s.advanceLocked(rc.now)
	sub := s.visibleLocked(p, id)
	if sub != nil {
		delete(s.subs, sub.id)
	}
	s.mu.Unlock()
	if sub == nil {
		s.subscriptionNotFound(rc, id)
		return
	}
	s.log.Info("subscription deleted", "id", sub.id)
	rc.w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleReauthorize(rc *reqCtx, p *principal, id string) {
	s.mu.Lock()
	s.advanceLocked(rc.now)
	sub := s.visibleLocked(p, id)
	if sub != nil {
		sub.reauthPending = false
	}
	s.mu.Unlock()
	if sub == nil {
		s.subscriptionNotFound(rc, id)
		return
	}
	rc.w.WriteHeader(http.StatusOK)
}

// expireSubscriptionsLocked removes subscriptions whose expiry is at or before t. Graph sends
// no lifecycle notification for this on presence; the subscription is simply gone (PATCH → 404).
func (s *Server) expireSubscriptionsLocked(t time.Time) {
	for id, sub := range s.subs {
		if !t.Before(sub.expiresAt) {
			delete(s.subs, id)
			s.log.Info("subscription expired", "id", id)
		}
	}
}

// notifyPresenceLocked queues a notification of us's new presence for every live
// subscription that covers the user.
func (s *Server) notifyPresenceLocked(us *userState, t time.Time) {
	id := us.user.ID
	for _, sub := range s.subs {
		if !sub.users[id] || !t.Before(sub.expiresAt) {
			continue
		}
		n := map[string]any{
			"subscriptionId":                 sub.id,
			"clientState":                    nullable(sub.clientState),
			"changeType":                     "updated",
			"tenantId":                       s.tenantID,
			"resource":                       "communications/presences/" + id,
			"subscriptionExpirationDateTime": sub.expiresAt.UTC().Format(graphTimeLayout),
			"resourceData": map[string]any{
				"@odata.id":   "users/" + id + "/presence",
				"@odata.type": "#microsoft.graph.presence",
				"id":          id,
			},
			"organizationId": s.tenantID,
		}
		it := notificationItem{url: sub.notificationURL, kind: "notification", subID: sub.id, userID: id, payload: n}
		if sub.includeResourceData {
			// The documented decrypted payload: the presence resource's ids, availability and
			// activity, and nothing more (no sequenceNumber).
			plain, _ := json.Marshal(map[string]any{
				"@odata.type":  "#Microsoft.Graph.presence",
				"@odata.id":    "users/" + id + "/presence",
				"id":           id,
				"availability": us.cur.availability,
				"activity":     us.cur.activity,
			})
			enc, err := encryptForSubscriber(sub.encCert, sub.encCertID, plain)
			if err != nil {
				s.log.Error("encrypt notification", "subscription", sub.id, "err", err)
				continue
			}
			n["encryptedContent"] = enc
			it.richAppID = sub.appID
		}
		s.dq.push(it)
	}
}

// encryptForSubscriber encrypts a rich notification payload as Graph does: a random AES-256
// key wrapped with RSA-OAEP (SHA-1) for the subscriber's certificate; AES-CBC with PKCS#7
// padding and IV = the first 16 bytes of the key; HMAC-SHA256 of the ciphertext with the key.
func encryptForSubscriber(cert *x509.Certificate, certID string, plain []byte) (map[string]any, error) {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("encryption certificate has no RSA key")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, key, nil) //nolint:gosec // Graph's format
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	padded := append(append([]byte(nil), plain...), make([]byte, pad)...)
	for i := len(plain); i < len(padded); i++ {
		padded[i] = byte(pad)
	}
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, key[:aes.BlockSize]).CryptBlocks(ct, padded)
	mac := hmac.New(sha256.New, key)
	mac.Write(ct)
	return map[string]any{
		"data":                            base64.StdEncoding.EncodeToString(ct),
		"dataSignature":                   base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		"dataKey":                         base64.StdEncoding.EncodeToString(wrapped),
		"encryptionCertificateId":         certID,
		"encryptionCertificateThumbprint": strings.ToUpper(hex.EncodeToString(sha1Sum(cert.Raw))),
	}, nil
}

// validationToken is the JWT that accompanies rich notifications: issued by the tenant's STS
// to the subscribing app, on behalf of Graph's change-notification publisher.
func (s *Server) validationToken(appID string) (string, error) {
	now := s.clock.Now()
	return s.pki.signJWT(map[string]any{
		"aud":      appID,
		"iss":      s.stsIssuer(),
		"iat":      now.Add(-clockSkew).Unix(),
		"nbf":      now.Add(-clockSkew).Unix(),
		"exp":      now.Add(time.Hour).Unix(),
		"appid":    notificationPublisherAppID,
		"appidacr": "2",
		"azp":      notificationPublisherAppID,
		"idp":      s.stsIssuer(),
		"tid":      s.tenantID,
		"ver":      "1.0",
	})
}
