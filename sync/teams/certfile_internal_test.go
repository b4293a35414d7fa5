package teams

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// testdata/client-cert.pem, .pfx (legacy TripleDES/SHA-1) and -aes.pfx
// (AES-256/SHA-256, OpenSSL 3's default) hold a self-signed test certificate
// and its key (the PFX files with the password "test-only"); they sign
// nothing real.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseClientCertificate(t *testing.T) {
	pemBytes, pfx := readTestdata(t, "client-cert.pem"), readTestdata(t, "client-cert.pfx")
	for name, tc := range map[string]struct {
		b  []byte
		pw string
		ok bool
	}{
		"pem":              {pemBytes, "", true},
		"pfx":              {pfx, "test-only", true},
		"pfx bad password": {pfx, "nope", false},
		"cert only":        {pemBytes[:bytes.Index(pemBytes, []byte("-----BEGIN PRIVATE KEY"))], "", false},
		"key only":         {pemBytes[bytes.Index(pemBytes, []byte("-----BEGIN PRIVATE KEY")):], "", false},
		"garbage":          {[]byte("not a certificate"), "", false},
		"empty":            {nil, "", false},
		"truncated pfx":    {pfx[:len(pfx)/2], "test-only", false},
	} {
		certs, key, err := parseClientCertificate(tc.b, tc.pw)
		if tc.ok != (err == nil) {
			t.Errorf("%s: err %v", name, err)
			continue
		}
		if tc.ok && (len(certs) == 0 || key == nil) {
			t.Errorf("%s: %d certs, key %v", name, len(certs), key != nil)
		}
	}
	// The SDK cannot read AES PFX files; the error says what to do.
	if _, _, err := parseClientCertificate(readTestdata(t, "client-cert-aes.pfx"), "test-only"); err == nil || !strings.Contains(err.Error(), "-legacy") {
		t.Errorf("AES PFX: %v", err)
	}
}

func TestReadCertFile_Bounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), maxCertFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readCertFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversize file: %v", err)
	}
	// Through the settings, as the bridge reads teams.client_certificate.
	if _, err := ConfigFromSettings(map[string]string{"teams.tenant_id": "contoso.onmicrosoft.com", "teams.client_id": "c",
		"teams.client_certificate": big}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversize teams.client_certificate: %v", err)
	}
	if _, err := readCertFile(dir); err == nil {
		t.Fatal("a directory was read")
	}
	if runtime.GOOS != "windows" {
		// A setting pointing at an endless device must not read it.
		if _, err := readCertFile("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("/dev/zero: %v", err)
		}
	}
	b, err := readCertFile(filepath.Join("testdata", "client-cert.pem"))
	if err != nil || !bytes.Contains(b, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("%v", err)
	}
	if _, err := loadKeyPair(big, big); err == nil {
		t.Fatal("oversize webhook certificate loaded")
	}
}

// FuzzParseClientCertificate: no file content panics the reader of
// teams.client_certificate, and what it accepts has a certificate and a key.
func FuzzParseClientCertificate(f *testing.F) {
	pemBytes, pfx := readTestdata(f, "client-cert.pem"), readTestdata(f, "client-cert.pfx")
	f.Add(pemBytes, "")
	f.Add(pfx, "test-only")
	f.Add(pfx, "")
	f.Add(readTestdata(f, "client-cert-aes.pfx"), "test-only")
	f.Add(pemBytes[:len(pemBytes)/2], "")
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"), "")
	f.Fuzz(func(t *testing.T, b []byte, pw string) {
		certs, key, err := parseClientCertificate(b, pw)
		if err == nil && (len(certs) == 0 || certs[0] == nil || key == nil) {
			t.Fatalf("accepted %d certs, key %v", len(certs), key != nil)
		}
	})
}
