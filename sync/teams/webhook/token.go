package webhook

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
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

// verifyToken checks one validation token: RS256 with a key the authority publishes, aud =
// our client id, iss = the tenant's v1 STS issuer (the only form Graph uses for these tokens,
// and the only one graphsim issues), appid or azp = Graph's publisher, exp/nbf against Now.
func (r *Receiver) verifyToken(ctx context.Context, tok string) error {
	jt, err := parseJWT(tok)
	if err != nil {
		return err
	}
	if jt.header.Alg != "RS256" {
		return fmt.Errorf("token alg %q, want RS256", jt.header.Alg)
	}
	kid := jt.header.Kid
	if kid == "" {
		kid = jt.header.X5t // Entra sets both to the same value; older tokens only x5t.
	}
	if kid == "" {
		return errors.New("token has no kid")
	}
	pub, err := r.keys.key(ctx, kid)
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte(jt.signed))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], jt.sig); err != nil {
		return errors.New("token signature does not verify")
	}
	c := jt.claims
	if !c.hasAudience(r.cfg.ClientID) {
		return errors.New("token audience is not our client id")
	}
	if want := "https://sts.windows.net/" + strings.ToLower(r.cfg.TenantID) + "/"; !strings.EqualFold(c.Iss, want) {
		return fmt.Errorf("token issuer %q, want %q", c.Iss, want)
	}
	app := c.AppID
	if app == "" {
		app = c.Azp
	}
	if !strings.EqualFold(app, NotificationPublisherAppID) {
		return fmt.Errorf("token appid %q is not Graph's change-notification publisher", app)
	}
	now, skew := r.now(), r.cfg.ClockSkew
	if c.Exp == nil {
		return errors.New("token has no exp")
	}
	if now.After(c.Exp.time().Add(skew)) {
		return errors.New("token expired")
	}
	if c.Nbf != nil && now.Add(skew).Before(c.Nbf.time()) {
		return errors.New("token not yet valid")
	}
	return nil
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	X5t string `json:"x5t"`
}

// numericDate is a JWT NumericDate; JSON numbers may carry fractions.
type numericDate float64

func (d numericDate) time() time.Time {
	f := float64(d)
	// Clamp so absurd values compare as far past/future instead of overflowing.
	const limit = 1 << 40
	if f > limit {
		f = limit
	} else if f < -limit {
		f = -limit
	}
	return time.Unix(int64(f), 0)
}

type jwtClaims struct {
	Aud   json.RawMessage `json:"aud"`
	Iss   string          `json:"iss"`
	AppID string          `json:"appid"`
	Azp   string          `json:"azp"`
	Exp   *numericDate    `json:"exp"`
	Nbf   *numericDate    `json:"nbf"`
}

// hasAudience accepts aud as a string or an array of strings.
func (c *jwtClaims) hasAudience(want string) bool {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return one != "" && strings.EqualFold(one, want)
	}
	var many []string
	if json.Unmarshal(c.Aud, &many) == nil {
		for _, a := range many {
			if a != "" && strings.EqualFold(a, want) {
				return true
			}
		}
	}
	return false
}

type parsedJWT struct {
	header jwtHeader
	claims jwtClaims
	signed string
	sig    []byte
}

// parseJWT splits and decodes a compact JWS; nothing is verified yet.
func parseJWT(tok string) (*parsedJWT, error) {
	if len(tok) > maxTokenBytes {
		return nil, errors.New("token too long")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("token is not a compact JWS")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, errors.New("token is not base64url")
	}
	j := &parsedJWT{signed: parts[0] + "." + parts[1], sig: sig}
	if json.Unmarshal(hb, &j.header) != nil || json.Unmarshal(cb, &j.claims) != nil {
		return nil, errors.New("token header or claims are not JSON")
	}
	return j, nil
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
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := ks.getJSON(ctx, ks.metadataURL, &meta); err != nil {
		return nil, fmt.Errorf("openid metadata: %w", err)
	}
	u, err := url.Parse(meta.JWKSURI)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("openid metadata: jwks_uri is not an https URL")
	}
	var doc struct {
		Keys []struct {
			Kty string `json:"kty"`
			Use string `json:"use"`
			Kid string `json:"kid"`
			N   string `json:"n"`
			E   string `json:"e"`
		} `json:"keys"`
	}
	if err := ks.getJSON(ctx, u.String(), &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range doc.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") || k.Kid == "" {
			continue
		}
		pub, err := rsaKey(k.N, k.E)
		if err != nil {
			continue // one odd key must not cost the others
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable RSA signing keys")
	}
	return keys, nil
}

func (ks *keySet) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyDocBytes+1))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	if len(b) > maxKeyDocBytes {
		return fmt.Errorf("GET %s: document too large", u)
	}
	return json.Unmarshal(b, v)
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
