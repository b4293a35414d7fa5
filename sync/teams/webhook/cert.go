package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Graph's encryptionCertificateThumbprint is a SHA-1 thumbprint.
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"
)

const (
	maxCertID = 128 // Graph's limit on encryptionCertificateId
	// encCertLifetime: Graph does not document checking validity, but a certificate that
	// outlives a subscription by years is reused across restarts via the store.
	encCertLifetime = 2 * 365 * 24 * time.Hour
	pemIDHeader     = "Encryption-Certificate-Id"
)

// EncryptionCert is the bridge's own key pair for rich notifications: Graph encrypts each
// notification's data key to Cert's public key; Key decrypts it. Key is a secret: persist
// MarshalPEM only in the store, never in logs.
type EncryptionCert struct {
	// ID is the subscription's encryptionCertificateId (1–128 characters).
	ID   string
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// NewEncryptionCert generates an RSA 2048 key and a self-signed certificate for it (Graph
// accepts self-signed certificates with RSA keys of 2048 to 4096 bits).
func NewEncryptionCert(id string) (*EncryptionCert, error) {
	if err := checkCertID(id); err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("webhook: encryption key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "presencebridge notification encryption", Organization: []string{"presencebridge"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(encCertLifetime),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("webhook: encryption certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &EncryptionCert{ID: id, Cert: cert, Key: key}, nil
}

func checkCertID(id string) error {
	if id == "" || len(id) > maxCertID {
		return fmt.Errorf("webhook: encryption certificate id must have 1 to %d characters", maxCertID)
	}
	for _, r := range id {
		// The id travels in JSON and in a PEM header; control characters break the latter.
		if unicode.IsControl(r) {
			return errors.New("webhook: encryption certificate id contains control characters")
		}
	}
	if strings.TrimSpace(id) != id {
		return errors.New("webhook: encryption certificate id has leading or trailing space")
	}
	return nil
}

// Base64 is the subscription's encryptionCertificate: the DER certificate, base64.
func (c *EncryptionCert) Base64() string { return base64.StdEncoding.EncodeToString(c.Cert.Raw) }

// Thumbprint is the SHA-1 thumbprint (upper-case hex) Graph sends as
// encryptionCertificateThumbprint.
func (c *EncryptionCert) Thumbprint() string {
	h := sha1.Sum(c.Cert.Raw) //nolint:gosec // see import
	return strings.ToUpper(hex.EncodeToString(h[:]))
}

// MarshalPEM encodes the certificate and its private key (PKCS#8), with the id in a PEM
// header, for the store.
func (c *EncryptionCert) MarshalPEM() ([]byte, error) {
	if c == nil || c.Cert == nil || c.Key == nil {
		return nil, errors.New("webhook: incomplete encryption certificate")
	}
	if err := checkCertID(c.ID); err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{pemIDHeader: c.ID}, Bytes: c.Cert.Raw})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), nil
}

// ParseEncryptionCertPEM reads what MarshalPEM wrote and checks that the key belongs to the
// certificate and is one Graph accepts.
func ParseEncryptionCertPEM(b []byte) (*EncryptionCert, error) {
	var c EncryptionCert
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			if c.Cert != nil {
				return nil, errors.New("webhook: more than one certificate in PEM")
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("webhook: encryption certificate: %w", err)
			}
			c.Cert, c.ID = cert, blk.Headers[pemIDHeader]
		case "PRIVATE KEY":
			if c.Key != nil {
				return nil, errors.New("webhook: more than one private key in PEM")
			}
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, errors.New("webhook: encryption key is not PKCS#8")
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, errors.New("webhook: encryption key is not RSA")
			}
			c.Key = rk
		}
	}
	if c.Cert == nil || c.Key == nil {
		return nil, errors.New("webhook: PEM lacks the certificate or the private key")
	}
	if err := checkCertID(c.ID); err != nil {
		return nil, err
	}
	pub, ok := c.Cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&c.Key.PublicKey) {
		return nil, errors.New("webhook: private key does not belong to the certificate")
	}
	if bits := pub.N.BitLen(); bits < 2048 || bits > 4096 {
		return nil, fmt.Errorf("webhook: RSA key of %d bits; Graph accepts 2048 to 4096", bits)
	}
	return &c, nil
}

// CertSet returns an EncryptionKey lookup over a fixed set of certificates, e.g. the current
// and the previous one during a rotation.
func CertSet(certs ...*EncryptionCert) func(certificateID string) (*EncryptionCert, bool) {
	m := make(map[string]*EncryptionCert, len(certs))
	for _, c := range certs {
		if c != nil {
			m[c.ID] = c
		}
	}
	return func(id string) (*EncryptionCert, bool) {
		c, ok := m[id]
		return c, ok
	}
}

// ServerCert is a self-signed TLS serving certificate for loopback, with a pool that trusts
// it: for tests and the demo, where graphsim posts to the receiver and must trust it.
type ServerCert struct {
	TLS  tls.Certificate
	Pool *x509.CertPool
}

// NewServerCert makes a ServerCert for 127.0.0.1, ::1 and localhost, plus any extra hosts
// (IP addresses or DNS names).
func NewServerCert(hosts ...string) (*ServerCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "presencebridge webhook (self-signed)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so the pool can anchor it as its own root
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ServerCert{TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, Pool: pool}, nil
}

// Client returns an HTTPS client that trusts only this certificate, e.g. for graphsim's
// Options.NotificationClient.
func (c *ServerCert) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: c.Pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
