package webhook

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Graph wraps the data key with RSA-OAEP using SHA-1; not our choice.
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// decrypt opens a rich notification's encryptedContent as Graph's documentation prescribes
// (change-notifications-with-resource-data): RSA-OAEP(SHA-1) unwraps the symmetric key with
// the private key of the certificate named by encryptionCertificateId; HMAC-SHA256 of the
// ciphertext under that key must equal dataSignature; AES-CBC with IV = the key's first 16
// bytes and PKCS#7 padding yields the resource JSON.
//
// The HMAC is checked before any decryption so that padding errors are never observable for
// forged data (no padding oracle), and every failure is an error, never a panic.
func (r *Receiver) decrypt(enc *encryptedContent) (presencePlain, Reason, error) {
	var plain presencePlain
	if r.cfg.EncryptionKey == nil {
		return plain, ReasonDecryptFailed, errors.New("rich notifications are not configured")
	}
	cert, ok := r.cfg.EncryptionKey(enc.EncryptionCertificateID)
	if !ok || cert == nil || cert.Key == nil {
		return plain, ReasonDecryptFailed, fmt.Errorf("unknown encryptionCertificateId %q", enc.EncryptionCertificateID)
	}
	// The thumbprint is optional to us, but when present it must name the certificate we
	// picked: a mismatch means the id was reused for another certificate.
	if tp := enc.EncryptionCertificateThumbprint; tp != "" && !strings.EqualFold(tp, cert.Thumbprint()) {
		return plain, ReasonDecryptFailed, errors.New("encryptionCertificateThumbprint does not match the certificate")
	}
	body, err := openContent(cert.Key, enc)
	if err != nil {
		return plain, ReasonDecryptFailed, err
	}
	if err := json.Unmarshal(body, &plain); err != nil {
		return plain, ReasonBadPayload, fmt.Errorf("decrypted resource is not JSON: %w", err)
	}
	if plain.Availability == "" || plain.Activity == "" {
		return plain, ReasonBadPayload, errors.New("decrypted resource has no availability/activity")
	}
	return plain, 0, nil
}

// openContent is the cryptographic part of decrypt.
func openContent(key *rsa.PrivateKey, enc *encryptedContent) ([]byte, error) {
	wrapped, err := base64.StdEncoding.DecodeString(enc.DataKey)
	if err != nil {
		return nil, errors.New("dataKey is not base64")
	}
	sig, err := base64.StdEncoding.DecodeString(enc.DataSignature)
	if err != nil {
		return nil, errors.New("dataSignature is not base64")
	}
	data, err := base64.StdEncoding.DecodeString(enc.Data)
	if err != nil {
		return nil, errors.New("data is not base64")
	}
	sym, err := rsa.DecryptOAEP(sha1.New(), nil, key, wrapped, nil)
	if err != nil {
		return nil, errors.New("dataKey does not decrypt with our key")
	}
	switch len(sym) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("data key has %d bytes", len(sym))
	}
	mac := hmac.New(sha256.New, sym)
	mac.Write(data)
	if !hmac.Equal(mac.Sum(nil), sig) {
		return nil, errors.New("dataSignature does not match data")
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("data length %d is not a positive multiple of the block size", len(data))
	}
	block, err := aes.NewCipher(sym)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, sym[:aes.BlockSize]).CryptBlocks(out, data)
	return unpad(out)
}

// unpad removes PKCS#7 padding, checking every padding byte.
func unpad(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("empty plaintext")
	}
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize || n > len(b) {
		return nil, errors.New("bad padding")
	}
	for _, c := range b[len(b)-n:] {
		if int(c) != n {
			return nil, errors.New("bad padding")
		}
	}
	return b[:len(b)-n], nil
}
