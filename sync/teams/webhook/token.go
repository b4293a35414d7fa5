package webhook

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// NotificationPublisherAppID is the appid (azp) of validation tokens: Microsoft Graph's
// change-notification publisher.
const NotificationPublisherAppID = "0bf30f3b-4a52-48df-9a82-234910c4a086"

const (
	maxTokenBytes   = 16 << 10
	maxKeyDocBytes  = 1 << 20
	keyFetchTimeout = 10 * time.Second
)

var errUnknownKey = errors.New("token signed with an unknown key")

// verifyToken checks one validation token with golang-jwt: RS256 only (checked before any
// key is looked up, so forged HS256 or none tokens cost no JWKS fetch), signed by a key the
// authority publishes, exp required and with nbf checked against Now with ClockSkew of
// leeway, aud = our client id, iss = the tenant's v1 STS issuer (the only form Graph uses
// for these tokens, and the only one graphsim issues), and appid or azp = Graph's publisher.
// Entra writes GUIDs in lower case, so aud and iss are compared with the lower-cased
// configuration.
func (r *Receiver) verifyToken(ctx context.Context, tok string) error {
	if len(tok) > maxTokenBytes {
		return errors.New("token too long")
	}
	var c tokenClaims
	_, err := jwt.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			kid, _ = t.Header["x5t"].(string) // Entra sets both to the same value; older tokens only x5t.
		}
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		return r.keys.key(ctx, kid)
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(r.cfg.ClockSkew),
		jwt.WithTimeFunc(r.now),
		jwt.WithAudience(strings.ToLower(r.cfg.ClientID)),
		jwt.WithIssuer("https://sts.windows.net/"+strings.ToLower(r.cfg.TenantID)+"/"),
	)
	if err != nil {
		return fmt.Errorf("validation token: %w", err)
	}
	return nil
}

// tokenClaims are a validation token's claims: the registered ones golang-jwt checks, and
// the app that had Entra issue it, which Validate checks.
type tokenClaims struct {
	jwt.RegisteredClaims
	AppID string `json:"appid"`
	Azp   string `json:"azp"`
}

// Validate is called by golang-jwt after the registered claims passed.
func (c *tokenClaims) Validate() error {
	app := c.AppID
	if app == "" {
		app = c.Azp
	}
	if !strings.EqualFold(app, NotificationPublisherAppID) {
		return fmt.Errorf("token appid %q is not Graph's change-notification publisher", truncate(app, 64))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// keySet caches the authority's signing keys. It fetches the OpenID metadata and its jwks_uri
// on first use, when a token names a key it does not know (Entra rotates keys and publishes
// the new one before using it), and when the keys are older than maxAge; never more often
// than minRefetch for unknown keys, so forged kids cannot turn us into a load generator.
type keySet struct {
	client      *http.Client
	metadataURL string
	now         func() time.Time
	minRefetch  time.Duration
	maxAge      time.Duration
	log         *slog.Logger
	fetches     atomic.Uint64

	mu          sync.Mutex
	keys        map[string]*rsa.PublicKey
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last attempt
	attempted   bool
}

func (ks *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := ks.now()
	stale := ks.keys == nil || now.Sub(ks.fetchedAt) >= ks.maxAge
	k, known := ks.keys[kid]
	if known && !stale {
		return k, nil
	}
	if !ks.attempted || now.Sub(ks.attemptedAt) >= ks.minRefetch {
		ks.attempted, ks.attemptedAt = true, now
		ks.fetches.Add(1)
		keys, err := ks.fetch(ctx)
		if err != nil {
			ks.log.Warn("fetching token signing keys failed", "err", err)
		} else {
			ks.keys, ks.fetchedAt = keys, now
		}
	}
	// A stale but known key still verifies when the refetch failed or was rate limited:
	// Entra keeps old keys published for weeks after rotation.
	if k, ok := ks.keys[kid]; ok {
		return k, nil
	}
	return nil, errUnknownKey
}

func (ks *keySet) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, keyFetchTimeout)
	defer cancel()
	b, err := ks.get(ctx, ks.metadataURL)
	if err != nil {
		return nil, fmt.Errorf("openid metadata: %w", err)
	}
	jwksURI, err := parseMetadata(b)
	if err != nil {
		return nil, err
	}
	if b, err = ks.get(ctx, jwksURI); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return parseJWKS(b)
}

// parseMetadata returns the jwks_uri of an OpenID metadata document, which must be https.
func parseMetadata(b []byte) (string, error) {
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return "", fmt.Errorf("openid metadata: %w", err)
	}
	u, err := url.Parse(meta.JWKSURI)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", errors.New("openid metadata: jwks_uri is not an https URL")
	}
	return u.String(), nil
}

// parseJWKS returns the RSA signing keys of a JWK set by kid. Keys of other types or uses,
// and keys too weak or odd to trust, are skipped: one odd key must not cost the others.
func parseJWKS(b []byte) (map[string]*rsa.PublicKey, error) {
	var doc struct {
		Keys []struct {
			Kty string `json:"kty"`
			Use string `json:"use"`
			Kid string `json:"kid"`
			N   string `json:"n"`
			E   string `json:"e"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range doc.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") || k.Kid == "" {
			continue
		}
		pub, err := rsaKey(k.N, k.E)
		if err != nil {
			continue
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable RSA signing keys")
	}
	return keys, nil
}

// get fetches u, at most maxKeyDocBytes of it.
func (ks *keySet) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyDocBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	if len(b) > maxKeyDocBytes {
		return nil, fmt.Errorf("GET %s: document too large", u)
	}
	return b, nil
}

// rsaKey builds a public key from JWK n and e, refusing keys too weak or too odd to trust.
func rsaKey(n, e string) (*rsa.PublicKey, error) {
	nb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(n, "="))
	if err != nil {
		return nil, err
	}
	eb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e, "="))
	if err != nil {
		return nil, err
	}
	if len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("bad exponent")
	}
	N := new(big.Int).SetBytes(nb)
	E := new(big.Int).SetBytes(eb).Int64()
	if N.BitLen() < 2048 || N.BitLen() > 8192 || E < 3 || E%2 == 0 || E > 1<<31-1 {
		return nil, errors.New("unacceptable RSA key")
	}
	return &rsa.PublicKey{N: N, E: int(E)}, nil
}
