package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// Every admin command while `run` holds the database: through the control
// socket, which the CLI finds in the installed service's unit, never
// meeting "database in use". The bridge runs in poll mode with an http
// webhook_url left from an old configuration, which must not stop it.
func TestRun_AdminThroughTheSocket(t *testing.T) {
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
	for k, v := range map[string]string{"phone.system": "ucserver", "ucserver.url": uc.URL(), "ucserver.user": "bridge", "ucserver.password": "uc-pass",
		"teams.webhook_url": "http://legacy.contoso.example"} {
		settings[k] = v
	}
	db := e2eDB(t, settings)
	dir, err := os.MkdirTemp("", "pbadm") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "control.sock")
	plan, err := service.PlanInstall(service.InstallOptions{Target: service.TargetSystemd, Executable: "/usr/local/bin/presencebridge", DB: db, Socket: sock, Group: "nogroup-pb"})
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, "presencebridge.service")
	if err := os.WriteFile(unit, []byte(plan.Text), 0o644); err != nil {
		t.Fatal(err)
	}
	pb := newPB(t, "SSL_CERT_FILE="+ca, "PRESENCEBRIDGE_SERVICE_FILE="+unit)
	env := pb.env[:0:0]
	for _, kv := range pb.env {
		if !strings.HasPrefix(kv, "PRESENCEBRIDGE_SOCKET=") { // the unit names it
			env = append(env, kv)
		}
	}
	pb.env = env

	cmd := exec.Command(pb.bin, "run", "--db", db, "--socket", sock, "--group", "")
	cmd.Env = pb.env
	var logs lockedBuffer
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
	wait := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !f(); time.Sleep(50 * time.Millisecond) {
			select {
			case err := <-exited:
				t.Fatalf("run exited (%v) while waiting for %s:\n%s", err, what, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s\n%s", what, logs.String())
			}
		}
	}
	var status string
	wait("both sides synced", func() bool {
		code, out, _ := pb.run("", "status")
		status = out
		return code == 0 && strings.Count(out, "healthy") == 2 && !strings.Contains(out, "not complete")
	})
	if !strings.Contains(status, "database:   "+db) {
		t.Fatalf("status does not name the database:\n%s", status)
	}

	// Settings, profiles and users through the socket.
	pb.ok("", "config", "set", "teams.lease", "15m")
	if got := strings.TrimSpace(pb.ok("", "config", "get", "teams.lease")); got != "15m0s" {
		t.Fatalf("get: %q", got)
	}
	if got := strings.TrimSpace(pb.ok("", "config", "get", "teams.lease", "--db", db)); got != "15m0s" {
		t.Fatalf("get --db of the running bridge's database: %q", got)
	}
	pb.fails("", []string{`no profile "defualt"`, "presencebridge profiles add defualt"}, "config", "set", "profile.defualt.set_presence_in_teams", "false")
	pb.ok("", "profiles", "add", "sales")
	pb.ok("", "config", "set", "profile.sales.set_presence_in_teams", "off")
	pb.ok("", "config", "set", "user.sip:anna@contoso.example.profile", "sales")
	var us []psync.UserStatus
	if out := pb.ok("", "users", "--json"); json.Unmarshal([]byte(out), &us) != nil || len(us) != 1 || us[0].Profile != "sales" {
		t.Fatalf("the running engine did not move Anna: %s", out)
	}
	// Users added and removed while the bridge runs (before: refused or
	// applied only at the next start).
	pb.ok("", "users", "add", "sip:ben@contoso.example", "--name", "Ben", "--upn", "ben@contoso.example")
	if out := pb.ok("", "users", "--json"); !strings.Contains(out, "sip:ben@contoso.example") {
		t.Fatalf("the running engine does not have Ben: %s", out)
	}
	pb.ok("", "users", "remove", "sip:ben@contoso.example")
	if out := pb.ok("", "users", "list"); strings.Contains(out, "ben@") {
		t.Fatalf("Ben still configured:\n%s", out)
	}
	if out := pb.ok("", "config", "list"); !strings.Contains(out, "# database "+db) || strings.Contains(out, e2eSecret) {
		t.Fatalf("list:\n%s", out)
	}
	export := pb.ok("", "config", "export")
	if strings.Contains(export, e2eSecret) || !strings.Contains(export, "sales") {
		t.Fatalf("export:\n%s", export)
	}
	if out := pb.ok(strings.Replace(export, "15m0s", "20m0s", 1), "config", "import", "-", "--dry-run"); !strings.Contains(out, `~ teams.lease: "15m0s" -> "20m0s"`) {
		t.Fatalf("import dry run:\n%s", out)
	}
	if out := pb.ok(export, "config", "import", "-"); !strings.Contains(out, "nothing changed") {
		t.Fatalf("re-import of the export:\n%s", out)
	}
	if out := pb.ok("", "logs", "-n", "5"); !strings.Contains(out, "profile") {
		t.Fatalf("logs:\n%s", out)
	}
	out := pb.ok("", "doctor")
	if !strings.Contains(out, "through the running bridge") || !strings.Contains(out, "teams ok     app sign-in") || strings.Contains(out, "FAILED") {
		t.Fatalf("doctor through the socket:\n%s", out)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not stop\n%s", logs.String())
	}
	// Stopped: the same commands open the database themselves.
	if got := strings.TrimSpace(pb.ok("", "config", "get", "profile.sales.set_presence_in_teams", "--db", db)); got != "false" {
		t.Fatalf("after the stop: %q", got)
	}
}

// Ctrl-C during doctor prints "cancelled" and exits 130, not a failed
// check (before: "FAILED app sign-in … context canceled").
func TestDoctor_CtrlC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for { // a server that accepts and never answers
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	}()
	db := e2eDB(t, map[string]string{"teams.tenant_id": e2eTenant, "teams.client_id": e2eApp, "teams.client_secret": e2eSecret,
		"teams.authority_url": "https://" + ln.Addr().String(), "teams.graph_url": "https://" + ln.Addr().String() + "/v1.0"})
	pb := newPB(t)
	cmd := exec.Command(pb.bin, "doctor", "--db", db)
	cmd.Env = pb.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "doctor: ") {
		t.Fatalf("first line %q", sc.Text())
	}
	select { // the sign-in is under way, and hangs
	case c := <-accepted:
		defer c.Close()
	case <-time.After(20 * time.Second):
		t.Fatal("doctor never reached the authority")
	}
	cmd.Process.Signal(os.Interrupt)
	var rest strings.Builder
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !asExit(err, &ee) || ee.ExitCode() != 130 || strings.TrimSpace(errb.String()) != "cancelled" ||
		strings.Contains(rest.String(), "FAILED app sign-in") || strings.Contains(rest.String(), "context canceled") {
		t.Fatalf("doctor after Ctrl-C: %v, stderr %q, stdout:\n%s", err, errb.String(), rest.String())
	}
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}
