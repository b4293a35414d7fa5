package sync_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Every error here is produced for real on loopback, except "no route",
// which loopback cannot produce: it is built the way net.Dial returns it.
func TestNetFix(t *testing.T) {
	const key = "ucserver.url"

	refusedAddr := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()

	// A TCP server that accepts and never says a word.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	held := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	defer func() {
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	}()

	selfSigned := httptest.NewUnstartedServer(http.NotFoundHandler())
	selfSigned.Config.ErrorLog = quiet
	selfSigned.StartTLS()
	defer selfSigned.Close()
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	expired := expiredServer(t)
	defer expired.Close()
	tls13 := httptest.NewUnstartedServer(http.NotFoundHandler())
	tls13.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	tls13.Config.ErrorLog = quiet
	tls13.StartTLS()
	defer tls13.Close()

	trust := func(s *httptest.Server) *x509.CertPool {
		p := x509.NewCertPool()
		p.AddCert(s.Certificate())
		return p
	}
	get := func(rawURL string, cfg *tls.Config, timeout time.Duration) error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: timeout}
		defer c.CloseIdleConnections()
		resp, err := c.Get(rawURL)
		if err == nil {
			resp.Body.Close()
			return errors.New("no error")
		}
		return err
	}

	cases := []struct {
		name string
		err  func() error
		want psync.NetProblem
		says []string
	}{
		{"refused", func() error {
			_, err := net.Dial("tcp", refusedAddr)
			return err
		}, psync.NetRefused, []string{refusedAddr, "refused", "is the service running", "port in " + key, "firewall"}},
		{"refused via http", func() error {
			return get("http://"+refusedAddr+"/ws/client/createsession", nil, 5*time.Second)
		}, psync.NetRefused, []string{refusedAddr, "port in " + key}},
		{"dns", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := (&net.Dialer{}).DialContext(ctx, "tcp", "ucserver.presencebridge-test.invalid:7225")
			return err
		}, psync.NetDNS, []string{`"ucserver.presencebridge-test.invalid"`, "DNS"}},
		{"tls handshake timeout (context)", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := (&tls.Dialer{}).DialContext(ctx, "tcp", silent.Addr().String())
			return err
		}, psync.NetTimeout, []string{"does not answer", "routing", "firewall", "proxy", key}},
		{"read deadline", func() error {
			c, err := net.Dial("tcp", silent.Addr().String())
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(100 * time.Millisecond))
			_, err = c.Read(make([]byte, 1))
			return err
		}, psync.NetTimeout, []string{silent.Addr().String(), "does not answer"}},
		{"http client timeout", func() error {
			return get("https://"+silent.Addr().String()+"/", nil, 200*time.Millisecond)
		}, psync.NetTimeout, []string{silent.Addr().String(), "does not answer"}},
		{"unknown authority", func() error {
			return get(selfSigned.URL, &tls.Config{RootCAs: x509.NewCertPool()}, 5*time.Second)
		}, psync.NetTLSUnknownAuthority, []string{strings.TrimPrefix(selfSigned.URL, "https://"), "does not trust", "SSL_CERT_FILE", key}},
		{"hostname", func() error {
			return get(selfSigned.URL, &tls.Config{RootCAs: trust(selfSigned), ServerName: "ucserver.example"}, 5*time.Second)
		}, psync.NetTLSHostname, []string{`not "ucserver.example"`, "example.com", "127.0.0.1", "the host in " + key}},
		{"expired", func() error {
			return get(expired.URL, &tls.Config{RootCAs: trust(expired)}, 5*time.Second)
		}, psync.NetTLSExpired, []string{"expired", "renew", "clock"}},
		{"not tls", func() error {
			return get(strings.Replace(plain.URL, "http://", "https://", 1), nil, 5*time.Second)
		}, psync.NetTLSHandshake, []string{"does not speak TLS", key}},
		{"tls version alert", func() error {
			return get(tls13.URL, &tls.Config{RootCAs: trust(tls13), MaxVersion: tls.VersionTLS12}, 5*time.Second)
		}, psync.NetTLSHandshake, []string{"TLS handshake", "failed", key}},
		{"no route (built as net.Dial returns it)", func() error {
			return &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 7225},
				Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}
		}, psync.NetUnreachable, []string{"192.0.2.1:7225", "no route", key}},
		{"context deadline alone", func() error { return context.DeadlineExceeded }, psync.NetTimeout, []string{"the server does not answer"}},
		{"cancelled is no network problem", func() error { return fmt.Errorf("login: %w", context.Canceled) }, psync.NetOther, nil},
		{"other", func() error { return errors.New("createsession refused (HTTP 400)") }, psync.NetOther, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if got := psync.ClassifyNet(err); got != tc.want {
				t.Fatalf("ClassifyNet(%T %v) = %s, want %s", err, err, got, tc.want)
			}
			fix := psync.NetFix(err, key)
			t.Logf("%v\n  fix: %s", err, fix)
			if tc.want == psync.NetOther {
				if fix != "" {
					t.Fatalf("fix for %v: %q, want none", err, fix)
				}
				return
			}
			for _, s := range tc.says {
				if !strings.Contains(fix, s) {
					t.Errorf("fix for %v:\n  %s\nlacks %q", err, fix, s)
				}
			}
		})
	}
}

// quiet drops the servers' handshake error logs, which these tests cause
// on purpose.
var quiet = log.New(io.Discard, "", 0)

// expiredServer serves TLS with a self-signed certificate that expired
// yesterday.
func expiredServer(t *testing.T) *httptest.Server {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "expired test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.NotFoundHandler())
	s.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k}}}
	s.Config.ErrorLog = quiet
	s.StartTLS()
	return s
}
