package webhook

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// FuzzDecodePayload holds the streaming decoder to encoding/json: what it
// accepts, json.Unmarshal accepts with the same notifications and tokens;
// what json.Unmarshal accepts, it accepts unless one of its bounds says no.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range fuzzSeed() {
		f.Add(s)
	}
	for _, s := range []string{
		`{"value":[{}]}`, `{"Value":[],"VALIDATIONTOKENS":null}`, `{"value":[],"value":[]}`, `{"value":[null]}`,
		`{"value":[],"validationTokens":[null,"a"]}`, `{"@odata.type":"x","value":[]}`, `{"value":[]} x`, `{"value":[]}  `,
		`{"value":[{"subscriptionId":5}]}`, `{"value":[{"clientState":null}]}`, ` {"value" : [ ] } `, `{"value":[{}],}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var seen []rawNotification
		tokens, err := decodePayload(bytes.NewReader(b), DefaultMaxNotifications, func(n *rawNotification) error {
			seen = append(seen, *n)
			return nil
		})
		var ref struct {
			Value            []rawNotification `json:"value"`
			ValidationTokens []string          `json:"validationTokens"`
		}
		refErr := json.Unmarshal(b, &ref)
		if err == nil {
			if refErr != nil {
				t.Fatalf("accepted what encoding/json refuses (%v)", refErr)
			}
			if ref.Value == nil || len(ref.Value) != len(seen) || len(ref.ValidationTokens) != len(tokens) {
				t.Fatalf("%d notifications and %d tokens; encoding/json has %d and %d", len(seen), len(tokens), len(ref.Value), len(ref.ValidationTokens))
			}
			for i := range seen {
				if seen[i].SubscriptionID != ref.Value[i].SubscriptionID {
					t.Fatalf("notification %d: %q, encoding/json %q", i, seen[i].SubscriptionID, ref.Value[i].SubscriptionID)
				}
			}
			return
		}
		if refErr == nil && ref.Value != nil {
			for _, bound := range []error{errValueTooLarge, errTooMany, errTooManyTokens, errTooManyMembers, errDuplicate} {
				if errors.Is(err, bound) {
					return
				}
			}
			t.Fatalf("refused (%v) what encoding/json accepts", err)
		}
	})
}

// fuzzJWK is a JWKS with the fuzz signing key under kid k1.
func fuzzJWKS() []byte {
	pub := &fuzzKeyMaterial().sign.PublicKey
	b, _ := json.Marshal(map[string]any{"keys": []any{
		map[string]any{"kty": "RSA", "use": "sig", "kid": "k1", "n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())},
		map[string]any{"kty": "EC", "kid": "ec"},
		map[string]any{"kty": "RSA", "kid": "weak", "n": "AQAB", "e": "AQAB"},
	}})
	return b
}

// FuzzParseJWKS: any key document gives usable RSA keys (2048 to 8192 bits,
// an odd public exponent) or an error; never a panic.
func FuzzParseJWKS(f *testing.F) {
	f.Add(fuzzJWKS())
	for _, s := range []string{`{"keys":[]}`, `{"keys":null}`, `{}`, `[]`, `{"keys":[{"kty":"RSA","kid":"a","n":"","e":""}]}`,
		`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB==","e":"AQAB","use":"enc"}]}`, `{"jwks_uri":"https://x/keys"}`, `{"jwks_uri":"http://x/keys"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseJWKS(b)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no key")
		}
		for kid, k := range keys {
			if kid == "" || k.N.BitLen() < 2048 || k.N.BitLen() > 8192 || k.E < 3 || k.E%2 == 0 {
				t.Fatalf("key %q: %d bits, e=%d", kid, k.N.BitLen(), k.E)
			}
		}
		if u, err := parseMetadata(b); err == nil && !strings.HasPrefix(u, "https://") {
			t.Fatalf("jwks_uri %q", u)
		}
	})
}

// FuzzVerifyToken: no token panics the verification, and only the valid
// seed's claims pass (a mutated token whose signature still verifies can
// only differ in base64 padding bits, which decode to the same bytes).
func FuzzVerifyToken(f *testing.F) {
	k := fuzzKeyMaterial()
	claims := map[string]any{"aud": fuzzClient, "iss": "https://sts.windows.net/" + fuzzTenant + "/", "appid": NotificationPublisherAppID,
		"nbf": fuzzNow.Add(-time.Minute).Unix(), "exp": fuzzNow.Add(time.Hour).Unix()}
	good := MintTokenForTest(k.sign, "k1", "", claims)
	f.Add(good)
	f.Add(MintTokenForTest(k.sign, "k1", "HS256", claims))
	f.Add(MintTokenForTest(k.sign, "k9", "", claims))
	f.Add("a.b.c")
	f.Add("")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	r := fuzzReceiver(f)
	f.Fuzz(func(t *testing.T, tok string) {
		if err := r.verifyToken(context.Background(), tok); err != nil {
			return
		}
		var c tokenClaims
		parts := strings.Split(tok, ".")
		cb, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil || json.Unmarshal(cb, &c) != nil {
			t.Fatalf("accepted a token whose claims do not decode: %q", tok)
		}
		if c.Issuer != claims["iss"] || c.AppID != NotificationPublisherAppID {
			t.Fatalf("accepted claims %+v", c)
		}
		if r.Stats().KeyFetches != 0 {
			t.Fatal("went to the network")
		}
	})
}

// FuzzParseEncryptionCertPEM: what the store gives back is either a
// certificate Graph accepts with its own key, or an error.
func FuzzParseEncryptionCertPEM(f *testing.F) {
	good, err := fuzzKeyMaterial().enc.MarshalPEM()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(bytes.Replace(good, []byte("Encryption-Certificate-Id: fuzz-cert"), []byte("Encryption-Certificate-Id: a\tb"), 1))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		c, err := ParseEncryptionCertPEM(b)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("parsing %d bytes took %v", len(b), d)
		}
		if err != nil {
			return
		}
		pub, ok := c.Cert.PublicKey.(*rsa.PublicKey)
		if !ok || !pub.Equal(&c.Key.PublicKey) || checkCertID(c.ID) != nil {
			t.Fatalf("accepted a mismatched certificate (id %q)", c.ID)
		}
		if bits := pub.N.BitLen(); bits < 2048 || bits > 4096 {
			t.Fatalf("%d-bit key accepted", bits)
		}
	})
}
