package webhook

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifyToken_EachCheck proves each check refuses for its own reason, not because an
// earlier one happened to fail.
func TestVerifyToken_EachCheck(t *testing.T) {
	r := fuzzReceiver(t)
	k := fuzzKeyMaterial()
	rogue, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(mutate func(map[string]any)) map[string]any {
		c := map[string]any{
			"aud": fuzzClient, "iss": "https://sts.windows.net/" + fuzzTenant + "/", "appid": NotificationPublisherAppID,
			"nbf": fuzzNow.Add(-time.Minute).Unix(), "exp": fuzzNow.Add(time.Hour).Unix(),
		}
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	mint := func(mutate func(map[string]any)) string { return MintTokenForTest(k.sign, "k1", "", claims(mutate)) }
	good := mint(nil)
	parts := strings.Split(good, ".")
	for _, tc := range []struct {
		name string
		tok  string
		want error // nil: valid
	}{
		{"valid", good, nil},
		{"aud in an array", mint(func(c map[string]any) { c["aud"] = []string{"x", fuzzClient} }), nil},
		{"azp instead of appid", mint(func(c map[string]any) { delete(c, "appid"); c["azp"] = NotificationPublisherAppID }), nil},
		{"exp within the skew", mint(func(c map[string]any) { c["exp"] = fuzzNow.Add(-4 * time.Minute).Unix() }), nil},
		{"expired", mint(func(c map[string]any) { c["exp"] = fuzzNow.Add(-6 * time.Minute).Unix() }), jwt.ErrTokenExpired},
		{"no exp", mint(func(c map[string]any) { delete(c, "exp") }), jwt.ErrTokenRequiredClaimMissing},
		{"not yet valid", mint(func(c map[string]any) { c["nbf"] = fuzzNow.Add(6 * time.Minute).Unix() }), jwt.ErrTokenNotValidYet},
		{"other audience", mint(func(c map[string]any) { c["aud"] = "someone" }), jwt.ErrTokenInvalidAudience},
		{"no audience", mint(func(c map[string]any) { delete(c, "aud") }), jwt.ErrTokenRequiredClaimMissing},
		{"v2 issuer", mint(func(c map[string]any) { c["iss"] = "https://login.microsoftonline.com/" + fuzzTenant + "/v2.0" }), jwt.ErrTokenInvalidIssuer},
		{"other app", mint(func(c map[string]any) { c["appid"] = "x" }), jwt.ErrTokenInvalidClaims},
		{"exp not a number", mint(func(c map[string]any) { c["exp"] = "tomorrow" }), jwt.ErrTokenMalformed},
		{"rogue signature", MintTokenForTest(rogue, "k1", "", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"unknown kid", MintTokenForTest(k.sign, "k9", "", claims(nil)), jwt.ErrTokenUnverifiable},
		{"HS256", MintTokenForTest(k.sign, "k1", "HS256", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." + parts[1] + ".", jwt.ErrTokenSignatureInvalid},
		{"two parts", parts[0] + "." + parts[1], jwt.ErrTokenMalformed},
		{"not base64", "!!." + parts[1] + "." + parts[2], jwt.ErrTokenMalformed},
	} {
		err := r.verifyToken(context.Background(), tc.tok)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := r.verifyToken(context.Background(), strings.Repeat("a", maxTokenBytes+1)); err == nil {
		t.Error("oversize token accepted")
	}
	if r.Stats().KeyFetches != 0 {
		t.Fatal("went to the network")
	}

	// The configuration's GUIDs in upper case still match Entra's lower-case claims.
	r.cfg.ClientID, r.cfg.TenantID = strings.ToUpper(fuzzClient), strings.ToUpper(fuzzTenant)
	if err := r.verifyToken(context.Background(), good); err != nil {
		t.Fatalf("upper-case configuration: %v", err)
	}
}
