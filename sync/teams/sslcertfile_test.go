package teams_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams"
)

// With the simulator's CA trusted through SSL_CERT_FILE, the whole path
// (azidentity/MSAL sign-in and Graph) runs with the product's own HTTP
// client: no test transport. Go reads SSL_CERT_FILE once per process, so
// the client runs in a child process.
func TestClient_TrustsSSLCertFile(t *testing.T) {
	if url := os.Getenv("PB_SSL_CHILD_SIM"); url != "" {
		c, err := teams.New(teams.Config{TenantID: tenantID, ClientID: appID, ClientSecret: secret,
			AuthorityURL: url, GraphURL: url + "/v1.0"})
		if err != nil {
			t.Fatal(err)
		}
		err = c.SetPresence(context.Background(), users(1)[0], "InACall", 5*time.Minute)
		if os.Getenv("SSL_CERT_FILE") == os.DevNull {
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("untrusted simulator: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	s := newSim(t, simOpts{users: 1})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{ca, os.DevNull} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestClient_TrustsSSLCertFile$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "PB_SSL_CHILD_SIM="+s.URL(), "SSL_CERT_FILE="+file, "SSL_CERT_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("SSL_CERT_FILE=%s:\n%s", file, out)
		}
	}
	ss, _ := s.Sessions(userID(0))
	found := false
	for _, x := range ss {
		found = found || x.AppID == appID
	}
	if !found {
		t.Fatal("the child's setPresence did not reach the simulator")
	}
}
