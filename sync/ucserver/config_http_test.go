package ucserver_test

import (
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/sync/ucserver"
)

// A plain http UCServer on another machine needs the explicit opt-in: the
// password goes in Basic auth, in clear. On this machine it crosses no
// network.
func TestNew_PlainHTTPNeedsTheOptIn(t *testing.T) {
	cfg := ucserver.Config{URL: "http://ucserver.contoso.example:7224", User: "bridge", Password: "p"}
	if _, err := ucserver.New(cfg); err == nil || !strings.Contains(err.Error(), "ucserver.allow_http") {
		t.Fatalf("http to another machine without the opt-in: %v", err)
	}
	cfg.AllowHTTP = true
	c, err := ucserver.New(cfg)
	if err != nil {
		t.Fatalf("with the opt-in: %v", err)
	}
	c.Close()
	for _, u := range []string{"http://127.0.0.1:7224", "http://localhost:7224", "http://[::1]:7224"} {
		c, err := ucserver.New(ucserver.Config{URL: u, User: "bridge", Password: "p"})
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		c.Close()
	}
}
