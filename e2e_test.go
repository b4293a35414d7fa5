package main

import (
	"crypto/rand"
	"crypto/rsa"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

const (
	e2eTenant = "5e1c0b7a-0a9b-4c1e-9d7e-2f3a4b5c6d7e"
	e2eApp    = "11111111-2222-4333-8444-555555555555"
	e2eSecret = "s3cr3t~value"
	e2eAnna   = "0a0a0a0a-0000-4000-8000-00000000000a"
)

// e2eTenantSim starts graphsim with the bridge's app and one user, and
// writes its CA to a file for SSL_CERT_FILE: the binary trusts it the way
// a custom CA is trusted in production, with no test transport.
func e2eTenantSim(t *testing.T, roles ...string) (*graphsim.Server, string) {
	t.Helper()
	if roles == nil {
		roles = []string{"Presence.ReadWrite.All", "User.Read.All"}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := graphsim.New(graphsim.Options{TenantID: e2eTenant, SigningKey: key,
		Apps:  []graphsim.App{{ClientID: e2eApp, Secrets: []string{e2eSecret}, Roles: roles}},
		Users: []graphsim.User{{ID: e2eAnna, UserPrincipalName: "anna@contoso.example", DisplayName: "Anna"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.SignIn(e2eAnna); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, ca
}

// e2eDB writes settings and one user into a new database.
func e2eDB(t *testing.T, settings map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for k, v := range settings {
		if err := db.SetSetting(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutUser(psync.User{ID: "sip:anna@contoso.example", UPN: "anna@contoso.example", DisplayName: "Anna"}); err != nil {
		t.Fatal(err)
	}
	return path
}

func teamsSettings(s *graphsim.Server, secret string) map[string]string {
	return map[string]string{"teams.tenant_id": e2eTenant, "teams.client_id": e2eApp, "teams.client_secret": secret,
		"teams.authority_url": s.URL(), "teams.graph_url": s.GraphURL()}
}

func runBin(t *testing.T, bin, ca string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+ca)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// `doctor` against a simulated tenant: all ok; then the two classic
// misconfigurations, each with the right fix.
func TestDoctor_AgainstGraphsim(t *testing.T) {
	bin := buildBinary(t)
	s, ca := e2eTenantSim(t)
	uc := ucsim.New(ucsim.Options{Addr: "127.0.0.1:0", Users: []ucsim.User{
		{ContactID: "sip:bridge@contoso.example", LoginName: "bridge", Password: "uc-pass"},
		{ContactID: "sip:anna@contoso.example", DisplayName: "Anna", Email: "anna@contoso.example", Lines: []ucsim.Line{{URI: "tel:201"}}},
	}})
	if err := uc.Start(); err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	good := teamsSettings(s, e2eSecret)
	for k, v := range map[string]string{"phone.system": "ucserver", "ucserver.url": uc.URL(), "ucserver.user": "bridge", "ucserver.password": "uc-pass"} {
		good[k] = v
	}
	out, err := runBin(t, bin, ca, "doctor", "--db", e2eDB(t, good))
	if err != nil || strings.Contains(out, "FAILED") || strings.Count(out, "teams ok ") != 6 || !strings.Contains(out, "phone ok     login") {
		t.Fatalf("doctor on a good tenant and UCServer: %v\n%s", err, out)
	}
	t.Logf("doctor:\n%s", out)

	out, err = runBin(t, bin, ca, "doctor", "--db", e2eDB(t, teamsSettings(s, "wrong-secret")))
	if err == nil || !strings.Contains(out, "FAILED app sign-in") || !strings.Contains(out, "fix: teams.client_secret is wrong or expired") || strings.Contains(out, "wrong-secret") {
		t.Fatalf("doctor with a wrong secret: %v\n%s", err, out)
	}

	s2, ca2 := e2eTenantSim(t, "Presence.ReadWrite.All")
	out, err = runBin(t, bin, ca2, "doctor", "--db", e2eDB(t, teamsSettings(s2, e2eSecret)))
	if err == nil || !strings.Contains(out, "FAILED permissions: the token lacks User.Read.All") || !strings.Contains(out, "/adminconsent?client_id="+e2eApp) {
		t.Fatalf("doctor with a missing role: %v\n%s", err, out)
	}
}

// `run` in the foreground with the real adapters against graphsim and
// ucsim: a phone call reaches Teams, the CLI reads the live state through
// the control socket, and SIGTERM stops it gracefully, releasing the hold.
func TestRun_AgainstSimulators(t *testing.T) {
	bin := buildBinary(t)
	s, ca := e2eTenantSim(t)
	uc := ucsim.New(ucsim.Options{Addr: "127.0.0.1:0", Users: []ucsim.User{
		{ContactID: "sip:bridge@contoso.example", LoginName: "bridge", Password: "uc-pass"},
		{ContactID: "sip:anna@contoso.example", DisplayName: "Anna", Email: "anna@contoso.example", Lines: []ucsim.Line{{URI: "tel:201"}}},
	}})
	if err := uc.Start(); err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	settings := teamsSettings(s, e2eSecret)
	for k, v := range map[string]string{"phone.system": "ucserver", "ucserver.url": uc.URL(), "ucserver.user": "bridge", "ucserver.password": "uc-pass"} {
		settings[k] = v
	}
	db := e2eDB(t, settings)
	sock := filepath.Join(t.TempDir(), "control.sock")
	cmd := exec.Command(bin, "run", "--db", db, "--socket", sock, "--group", "")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+ca)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	var status string // the last `status` output, for failures
	waitCLI := func(what string, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !f() {
			select {
			case err := <-exited:
				t.Fatalf("run exited (%v) while waiting for %s:\n%s", err, what, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s\nlast status:\n%s\nlogs:\n%s", what, status, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitCLI("both sides synced", func() bool {
		out, err := runBin(t, bin, ca, "status", "--socket", sock)
		status = out
		return err == nil && strings.Count(out, "healthy") == 2 && !strings.Contains(out, "UNHEALTHY") && !strings.Contains(out, "not complete")
	})
	conn, err := uc.Ring("tel:201", "tel:+4930123456")
	if err != nil {
		t.Fatal(err)
	}
	if err := uc.PickUp(conn); err != nil {
		t.Fatal(err)
	}
	waitCLI("Teams shows the phone call", func() bool {
		p, _ := s.Presence(e2eAnna)
		return p.Activity == "InACall"
	})
	out, err := runBin(t, bin, ca, "users", "--socket", sock)
	if err != nil || !strings.Contains(out, "Anna") || !strings.Contains(out, "teams-session=InACall") {
		t.Fatalf("users: %v\n%s", err, out)
	}
	// Graceful stop with the call still on: the bridge clears its session.
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not stop within 15 s\n%s", logs.String())
	}
	t.Logf("graceful stop took %s", time.Since(start))
	if p, _ := s.Presence(e2eAnna); p.Activity == "InACall" {
		t.Fatalf("Anna left Busy in Teams after the stop: %+v", p)
	}
	out, err = runBin(t, bin, ca, "config", "--db", db, "get", "teams.client_id")
	if err != nil || strings.TrimSpace(out) != e2eApp {
		t.Fatalf("database after the stop: %v %s", err, out)
	}
}

// `config import-group` adds an Entra group's members as users, keyed by
// their UCServer contact id.
func TestConfig_ImportGroup(t *testing.T) {
	bin := buildBinary(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := graphsim.New(graphsim.Options{TenantID: e2eTenant, SigningKey: key,
		Apps: []graphsim.App{{ClientID: e2eApp, Secrets: []string{e2eSecret}, Roles: []string{"Presence.ReadWrite.All", "User.Read.All", "GroupMember.Read.All"}}},
		Users: []graphsim.User{{ID: e2eAnna, UserPrincipalName: "anna@contoso.example", DisplayName: "Anna"},
			{ID: "0b0b0b0b-0000-4000-8000-00000000000b", UserPrincipalName: "ben@contoso.example", DisplayName: "Ben"}},
		Groups: []graphsim.Group{{ID: "0e0e0e0e-0000-4000-8000-00000000000e", Members: []string{e2eAnna, "0b0b0b0b-0000-4000-8000-00000000000b"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := teamsSettings(s, e2eSecret)
	settings["phone.system"] = "ucserver"
	db := e2eDB(t, settings) // Anna is already there
	out, err := runBin(t, bin, ca, "config", "--db", db, "import-group", "0e0e0e0e-0000-4000-8000-00000000000e")
	if err != nil || !strings.Contains(out, "2 members, 1 new users, 1 already known") {
		t.Fatalf("import-group: %v\n%s", err, out)
	}
	out, err = runBin(t, bin, ca, "config", "--db", db, "export")
	if err != nil || !strings.Contains(out, "sip:ben@contoso.example") || strings.Count(out, "anna@contoso.example") != 2 {
		t.Fatalf("users after the import: %v\n%s", err, out)
	}
	out, err = runBin(t, bin, ca, "config", "--db", db, "import-group", "not-a-group")
	if err == nil || !strings.Contains(out, "not-a-group") {
		t.Fatalf("unknown group: %v\n%s", err, out)
	}
}
