package teams

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// maxCertFileBytes bounds what is read of a certificate or key file named by
// a setting: a PFX or PEM with its chain is a few KiB, and a setting pointing
// at /dev/zero or a log file must not fill the memory.
const maxCertFileBytes = 1 << 20

// readCertFile reads a regular file of at most maxCertFileBytes.
func readCertFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCertFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCertFileBytes {
		return nil, fmt.Errorf("%s is larger than %d KiB; a certificate file is a few KiB", path, maxCertFileBytes>>10)
	}
	return b, nil
}

// loadKeyPair is tls.LoadX509KeyPair with bounded reads.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cb, err := readCertFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	kb, err := readCertFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cb, kb)
}

// parseClientCertificate reads teams.client_certificate's content (PEM or
// PFX, the key encrypted with password or not) as azidentity does, and
// insists on a certificate and a private key.
func parseClientCertificate(b []byte, password string) ([]*x509.Certificate, crypto.PrivateKey, error) {
	certs, key, err := azidentity.ParseCertificates(b, []byte(password))
	if err != nil {
		if strings.Contains(err.Error(), "pkcs12: unknown") {
			// OpenSSL 3 and current Windows export AES-256 and SHA-256
			// by default, which the Azure SDK's PKCS#12 reader lacks.
			return nil, nil, fmt.Errorf("%w: the PFX uses an encryption the Azure SDK cannot read; export it again with `openssl pkcs12 -export -legacy` (or TripleDES-SHA1 on Windows), or use a PEM file with the certificate and the key", err)
		}
		return nil, nil, err
	}
	if len(certs) == 0 || certs[0] == nil {
		return nil, nil, errors.New("the file holds no certificate")
	}
	if key == nil {
		return nil, nil, errors.New("the file holds no private key")
	}
	return certs, key, nil
}
