package graphsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t thumbprints are SHA-1 by definition (RFC 7515 §4.1.7).
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// pki holds the simulator's key material: a CA that issues the TLS server certificate (so
// callers trust one PEM, not a self-signed leaf), and the RSA key that signs every token
// (access, id and validation tokens), published through the JWKS endpoints.
type pki struct {
	caCert    *x509.Certificate
	caPEM     []byte
	tlsCert   tls.Certificate
	signKey   *rsa.PrivateKey
	signCert  *x509.Certificate
	signKeyID string // base64url SHA-1 of signCert, used as both kid and x5t like Entra does
}

func newPKI(signKey *rsa.PrivateKey) (*pki, error) {
	// Certificates use real time, not the injected clock: TLS clients verify against their own
	// wall clock whatever the simulation pretends.
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("graphsim: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "graphsim test CA", Organization: []string{"presencebridge graphsim"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("graphsim: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("graphsim: server key: %w", err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("graphsim: server certificate: %w", err)
	}

	if signKey == nil {
		signKey, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("graphsim: signing key: %w", err)
		}
	}
	signTmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: "accounts.accesscontrol.windows.net (graphsim)"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	signDER, err := x509.CreateCertificate(rand.Reader, signTmpl, signTmpl, &signKey.PublicKey, signKey)
	if err != nil {
		return nil, fmt.Errorf("graphsim: signing certificate: %w", err)
	}
	signCert, err := x509.ParseCertificate(signDER)
	if err != nil {
		return nil, err
	}
	return &pki{
		caCert:    caCert,
		caPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tlsCert:   tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey},
		signKey:   signKey,
		signCert:  signCert,
		signKeyID: b64url(sha1Sum(signDER)),
	}, nil
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		// crypto/rand does not fail on supported platforms; a constant serial is still valid.
		return big.NewInt(1)
	}
	return n
}

func sha1Sum(b []byte) []byte {
	h := sha1.Sum(b) //nolint:gosec // see import comment
	return h[:]
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwks is the JWKS document Entra publishes, with the simulator's one signing key; issuer is
// set on the v2.0 endpoint only, as Entra does.
func (p *pki) jwks(issuer string) map[string]any {
	pub := p.signKey.PublicKey
	key := map[string]any{
		"kty": "RSA",
		"use": "sig",
		"kid": p.signKeyID,
		"x5t": p.signKeyID,
		"n":   b64url(pub.N.Bytes()),
		"e":   b64url(big.NewInt(int64(pub.E)).Bytes()),
		"x5c": []string{base64.StdEncoding.EncodeToString(p.signCert.Raw)},
	}
	if issuer != "" {
		key["issuer"] = issuer
	}
	return map[string]any{"keys": []any{key}}
}

// signJWT returns a compact RS256 JWS over claims, with Entra's header (typ, alg, x5t, kid).
func (p *pki) signJWT(claims map[string]any) (string, error) {
	header := map[string]any{"typ": "JWT", "alg": "RS256", "x5t": p.signKeyID, "kid": p.signKeyID}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64url(hb) + "." + b64url(cb)
	sig, err := rsa.SignPKCS1v15(rand.Reader, p.signKey, crypto.SHA256, sha256Sum([]byte(input)))
	if err != nil {
		return "", err
	}
	return input + "." + b64url(sig), nil
}

// parsedJWT is a compact JWS split into its parts; nothing in it is verified yet.
type parsedJWT struct {
	header map[string]any
	claims map[string]any
	input  string // header.payload, the signed bytes
	sig    []byte
}

var errMalformedJWT = errors.New("malformed JWT")

func parseJWT(tok string) (*parsedJWT, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errMalformedJWT
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, errMalformedJWT
	}
	j := &parsedJWT{input: parts[0] + "." + parts[1], sig: sig}
	if json.Unmarshal(hb, &j.header) != nil || json.Unmarshal(cb, &j.claims) != nil {
		return nil, errMalformedJWT
	}
	return j, nil
}

// verify checks the signature with pub for the algorithms Entra accepts in client assertions
// (RS256, and PS256 which MSAL for Go uses since v1.4 for AAD authorities).
func (j *parsedJWT) verify(pub *rsa.PublicKey) error {
	alg, _ := j.header["alg"].(string)
	digest := sha256Sum([]byte(j.input))
	switch alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, j.sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, digest, j.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	default:
		return fmt.Errorf("unsupported alg %q", alg)
	}
}

func (j *parsedJWT) str(name string) string {
	s, _ := j.claims[name].(string)
	return s
}

func (j *parsedJWT) headerStr(name string) string {
	s, _ := j.header[name].(string)
	return s
}

// unix reads a NumericDate claim; ok is false when absent or not a number.
func (j *parsedJWT) unix(name string) (time.Time, bool) {
	f, ok := j.claims[name].(float64)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// audiences returns aud as a list whether it was a string or an array.
func (j *parsedJWT) audiences() []string {
	switch v := j.claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// decodeThumbprint accepts a certificate thumbprint in base64url or standard base64: Entra's
// spec says base64url, MSAL for Go sends standard base64, and Entra accepts both.
func decodeThumbprint(s string) []byte {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b
		}
	}
	return nil
}

func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("graphsim: crypto/rand failed: " + err.Error())
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return formatGUID(b[:])
}

// derivedGUID gives a stable GUID for a name, so that e.g. an app's service principal object
// id is the same every time a test builds the same tenant.
func derivedGUID(parts ...string) string {
	h := sha256Sum([]byte(strings.Join(parts, "\x00")))
	h[6] = (h[6] & 0x0f) | 0x50
	h[8] = (h[8] & 0x3f) | 0x80
	return formatGUID(h[:16])
}

func formatGUID(b []byte) string {
	s := hex.EncodeToString(b)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

func randToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("graphsim: crypto/rand failed: " + err.Error())
	}
	return b64url(b)
}
