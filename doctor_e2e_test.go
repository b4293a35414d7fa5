package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDoctor_UCServerNetworkFixes: `doctor` of the real binary against a
// UCServer address that refuses connections, one whose TLS certificate no
// trusted authority signed, and one that accepts and never answers: each
// prints its FAILED line with a fix that names the cause and the setting,
// and the timeout comes in bounded time.
func TestDoctor_UCServerNetworkFixes(t *testing.T) {
	bin := buildBinary(t)

	// A port nobody listens on: refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "https://" + l.Addr().String()
	l.Close()

	// A TLS server with its own certificate, which this machine does not trust.
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()

	// A server that accepts and says nothing.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	for _, tc := range []struct {
		name, url string
		want      []string
	}{
		{"refused", refused, []string{"refused the connection", "ucserver.url"}},
		{"unknown authority", tlsSrv.URL, []string{"ucserver.url", "SSL_CERT_FILE"}},
		{"no answer", "https://" + silent.Addr().String(), []string{"does not answer", "ucserver.url"}},
	} {
		db := e2eDB(t, map[string]string{"phone.system": "ucserver", "ucserver.url": tc.url, "ucserver.user": "bridge", "ucserver.password": "pw"})
		start := time.Now()
		out, err := exec.Command(bin, "doctor", "--db", db).CombinedOutput()
		took := time.Since(start)
		text := string(out)
		if err == nil || !strings.Contains(text, "phone FAILED") {
			t.Errorf("%s: no failed phone check (%v):\n%s", tc.name, err, text)
			continue
		}
		fix := ""
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, "fix:") && fix == "" && strings.Contains(text[:strings.Index(text, l)], "phone FAILED") {
				fix = l
			}
		}
		for _, w := range tc.want {
			if !strings.Contains(fix, w) {
				t.Errorf("%s: the fix line lacks %q: %q\n%s", tc.name, w, fix, text)
			}
		}
		if took > 45*time.Second {
			t.Errorf("%s: doctor took %s", tc.name, took)
		}
		t.Logf("%s (%s):\n%s", tc.name, took.Round(time.Millisecond), text)
	}
}
