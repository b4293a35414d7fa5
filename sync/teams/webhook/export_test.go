package webhook

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Graph's format
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// SealForTest encrypts plain for cert the way Graph (and graphsim) does, returning the
// encryptedContent object. Test-only: the receiver never encrypts.
func SealForTest(cert *x509.Certificate, certID string, plain []byte) map[string]any {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(err)
	}
	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, cert.PublicKey.(*rsa.PublicKey), key, nil)
	if err != nil {
		panic(err)
	}
	block, _ := aes.NewCipher(key)
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	padded := append([]byte(nil), plain...)
	for range pad {
		padded = append(padded, byte(pad))
	}
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, key[:aes.BlockSize]).CryptBlocks(ct, padded)
	mac := hmac.New(sha256.New, key)
	mac.Write(ct)
	tp := sha1.Sum(cert.Raw) //nolint:gosec // Graph's format
	return map[string]any{
		"data":                            base64.StdEncoding.EncodeToString(ct),
		"dataSignature":                   base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		"dataKey":                         base64.StdEncoding.EncodeToString(wrapped),
		"encryptionCertificateId":         certID,
		"encryptionCertificateThumbprint": strings.ToUpper(hex.EncodeToString(tp[:])),
	}
}

// MintTokenForTest signs claims as an RS256 JWT with Entra's header (kid and x5t); alg
// overrides the header's alg when not empty (the signature stays RS256).
func MintTokenForTest(key *rsa.PrivateKey, kid, alg string, claims map[string]any) string {
	if alg == "" {
		alg = "RS256"
	}
	hb, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": alg, "kid": kid, "x5t": kid})
	cb, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	d := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	if err != nil {
		panic(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}
