package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI_HelpAndBadArgs(t *testing.T) {
	for _, cmd := range []string{"demo", "run", "config", "version"} {
		code, _, stderr := runCLI(t, "", cmd, "-h")
		if code != 0 || !strings.Contains(stderr, "Usage: presencebridge "+cmd) {
			t.Errorf("%s -h: code %d, %q", cmd, code, stderr)
		}
	}
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "Commands:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"demo", "--users", "lots"}, 2, "invalid value"},
		{[]string{"demo", "--users", "0", "--duration", "1s"}, 1, "--users must be between"},
		{[]string{"demo", "extra"}, 1, "unexpected argument"},
		{[]string{"config", "--db", filepath.Join(t.TempDir(), "x.db"), "bake"}, 1, `unknown config command "bake"`},
		{[]string{"config", "--db", filepath.Join(t.TempDir(), "x.db"), "get"}, 1, "wrong number of arguments"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, "", c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: code %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.msg)
		}
	}
}

func TestCLI_Config(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	t.Setenv("PRESENCEBRIDGE_DB", db)
	ok := func(args ...string) string {
		t.Helper()
		code, out, stderr := runCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, stderr)
		}
		return out
	}
	fails := func(msg string, args ...string) {
		t.Helper()
		code, _, stderr := runCLI(t, "", args...)
		if code == 0 || !strings.Contains(stderr, msg) {
			t.Fatalf("%v: code %d, stderr %q, want %q", args, code, stderr, msg)
		}
	}
	ok("config", "set", "teams.lease", "15m")
	if got := ok("config", "get", "teams.lease"); strings.TrimSpace(got) != "15m0s" {
		t.Fatalf("get: %q", got)
	}
	fails("unknown setting", "config", "set", "teams.leese", "15m")
	fails("out of range", "config", "set", "teams.lease", "2m")
	fails("not a duration", "config", "set", "teams.lease", "soon")
	fails("must be shorter", "config", "set", "teams.keepalive", "20m")
	ok("config", "set", "teams.client_secret", "hunter2")
	if got := ok("config", "get", "teams.client_secret"); strings.Contains(got, "hunter2") {
		t.Fatal("secret shown by get")
	}
	if got := ok("config", "list"); strings.Contains(got, "hunter2") || !strings.Contains(got, "teams.lease") {
		t.Fatalf("list: %s", got)
	}
	fails(`no profile "sales"`, "config", "set", "profile.sales.cross_device_busy_on_busy", "on")
	ok("profiles", "add", "sales")
	ok("config", "set", "profile.sales.cross_device_busy_on_busy", "on")
	if got := ok("config", "get", "profile.sales.cross_device_busy_on_busy"); strings.TrimSpace(got) != "true" {
		t.Fatalf("profile flag: %q", got)
	}
	fails("unknown profile setting", "config", "set", "profile.sales.make_coffee", "on")
	fails("not on or off", "config", "set", "profile.sales.cross_device_busy_on_busy", "perhaps")

	yaml := ok("config", "export")
	if strings.Contains(yaml, "hunter2") || !strings.Contains(yaml, "sales") {
		t.Fatalf("export: %s", yaml)
	}
	// Import what was exported plus a user: the masked secret keeps its value.
	yaml += "users:\n  - id: \"201\"\n    upn: anna@contoso.example\n    name: Anna\n    profile: sales\n"
	yaml = strings.Replace(yaml, "users: []\n", "", 1)
	if code, _, stderr := runCLI(t, yaml, "config", "import", "-"); code != 0 {
		t.Fatalf("import: %s\n%s", stderr, yaml)
	}
	if got := ok("config", "get", "user.201.profile"); strings.TrimSpace(got) != "sales" {
		t.Fatalf("user profile: %q", got)
	}
	code, _, stderr := runCLI(t, "settings:\n  teams.lease: 1m\n", "config", "import", "-")
	if code == 0 || !strings.Contains(stderr, "teams.lease") {
		t.Fatalf("bad import accepted: %s", stderr)
	}
	code, _, stderr = runCLI(t, "settingz: {}\n", "config", "import", "-")
	if code == 0 || !strings.Contains(stderr, "settingz") {
		t.Fatalf("unknown field accepted: %s", stderr)
	}
	if got := ok("config", "get", "teams.lease"); strings.TrimSpace(got) != "15m0s" {
		t.Fatalf("failed import changed the store: %q", got)
	}
	code, _, stderr = runCLI(t, "", "run", "--db", db)
	if code != 1 || !strings.Contains(stderr, "teams.tenant_id") || !strings.Contains(stderr, "phone.system") {
		t.Fatalf("run: %d %s", code, stderr)
	}
}

// TestDemo_KilledAndRestarted runs `demo` as a child process, kills it with
// SIGKILL while the bridge holds things, restarts it on the same database
// and checks sync/RULES.md §4.4: the holds left behind are taken over
// and resolved, and nothing the store had is lost.
func TestDemo_KilledAndRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "state.db")

	var holdsLeft int
	var auditBefore int
	for attempt := 1; holdsLeft == 0; attempt++ {
		if attempt > 5 {
			t.Fatal("the bridge never held anything when killed")
		}
		cmd := exec.Command(bin, "demo", "--db", db, "--seed", "3", "--every", "15ms", "--duration", "2m")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		applied := 0
		deadline := time.Now().Add(20 * time.Second)
		for applied < 12 && sc.Scan() && time.Now().Before(deadline) {
			if strings.HasSuffix(sc.Text(), " applied") {
				applied++
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if applied < 12 {
			t.Fatalf("demo printed only %d applied decisions", applied)
		}
		s, err := store.Open(db, store.Options{Timeout: time.Second})
		if err != nil {
			t.Fatalf("reopening after SIGKILL: %v", err)
		}
		holds, err := s.Holds()
		if err != nil {
			t.Fatal(err)
		}
		audit, _ := s.Audit(0, "")
		holdsLeft, auditBefore = len(holds), len(audit)
		if err := s.Check(); err != nil {
			t.Fatalf("database damaged by SIGKILL: %v", err)
		}
		s.Close()
	}

	// Restart: people do nothing now, the bridge must resolve what it held.
	out, err := exec.Command(bin, "demo", "--db", db, "--seed", "3", "--every", "1h", "--duration", "3s").CombinedOutput()
	if err != nil {
		t.Fatalf("restart: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "adopting ") {
		t.Fatalf("restart did not take over the holds:\n%s", out)
	}
	s, err := store.Open(db, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	holds, _ := s.Holds()
	if len(holds) != 0 {
		t.Fatalf("%d holds left after the restart and a clean stop: %+v\n%s", len(holds), holds, out)
	}
	audit, _ := s.Audit(0, "")
	if len(audit) < auditBefore {
		t.Fatalf("audit log lost entries: %d before, %d after", auditBefore, len(audit))
	}
	users, _ := s.Users()
	if len(users) != 12 {
		t.Fatalf("%d users after restart", len(users))
	}
	t.Logf("killed holding %d, all resolved on restart; audit %d -> %d entries", holdsLeft, auditBefore, len(audit))
}

func TestCLI_ServiceCommandsHelp(t *testing.T) {
	for _, cmd := range []string{"install", "uninstall", "start", "stop", "restart", "status", "users", "logs"} {
		code, _, stderr := runCLI(t, "", cmd, "-h")
		if code != 0 || !strings.Contains(stderr, "Usage: presencebridge "+cmd) {
			t.Errorf("%s -h: code %d, %q", cmd, code, stderr)
		}
		if code, _, _ := runCLI(t, "", cmd, "extra"); code == 0 {
			t.Errorf("%s extra: accepted", cmd)
		}
	}
	if code, _, stderr := runCLI(t, "", "logs", "-n", "0", "--socket", "/nonexistent"); code != 1 || !strings.Contains(stderr, "-n must be between") {
		t.Errorf("logs -n 0: %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "run", "--metrics", "0.0.0.0:9464", "--db", filepath.Join(t.TempDir(), "x.db")); code != 1 || !strings.Contains(stderr, "--metrics-allow-remote") {
		t.Errorf("run --metrics 0.0.0.0: %d %s", code, stderr)
	}
}

func TestCLI_NotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, cmd := range []string{"status", "users"} {
		code, _, stderr := runCLI(t, "", cmd, "--socket", sock)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(stderr, "is the service running? (presencebridge status / presencebridge start)") {
			t.Errorf("%s without a service: code %d, %q", cmd, code, stderr)
		}
	}
	t.Setenv("PRESENCEBRIDGE_SOCKET", sock)
	if code, _, stderr := runCLI(t, "", "users"); code != 1 || !strings.Contains(stderr, sock) {
		t.Errorf("socket from the environment: %d %s", code, stderr)
	}
}

func TestCLI_InstallDryRun(t *testing.T) {
	for _, tc := range []struct {
		target string
		want   []string
	}{
		{"systemd", []string{"# would write /etc/systemd/system/presencebridge.service", "ExecStart=/usr/local/bin/presencebridge run --service --db /var/lib/presencebridge/state.db", "Restart=on-failure"}},
		{"launchd", []string{"would write /Library/LaunchDaemons/presencebridge.plist", "<string>/Library/Application Support/presencebridge/state.db</string>"}},
		{"windows", []string{"would create this Windows service", "Start type:    automatic", `presencebridge\state.db`}},
	} {
		code, out, stderr := runCLI(t, "", "install", "--dry-run", "--target", tc.target, "--executable", "/usr/local/bin/presencebridge")
		if code != 0 {
			t.Fatalf("%s: %d %s", tc.target, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s dry run lacks %q:\n%s", tc.target, w, out)
			}
		}
	}
	if code, _, stderr := runCLI(t, "", "install", "--dry-run", "--target", "sysv"); code != 1 || !strings.Contains(stderr, "unknown service target") {
		t.Errorf("unknown target: %d %s", code, stderr)
	}
}

// lockedBuffer collects a command's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startBridge runs the daemon against a simulated office, as `run` will
// with the real sides, and returns its socket.
func startBridge(t *testing.T) (*simoffice.Office, string, func()) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pbcli") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	office := simoffice.New(3, 1, psync.RealClock{})
	dbPath := filepath.Join(dir, "state.db")
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range simoffice.Profiles()[1:] {
		db.PutProfile(p)
	}
	for _, u := range office.Users() {
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	sock := filepath.Join(dir, "control.sock")
	ready := make(chan struct{})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- service.RunDaemon(ctx, service.DaemonOptions{DBPath: dbPath, Socket: sock, Version: "cli-test",
			Adapters: func(context.Context, service.AdapterEnv) (service.Adapters, error) {
				return service.Adapters{Teams: office.Teams, Phone: office.Phone}, nil
			},
			Ready: func(service.Running) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon stop: %v", err)
		}
	}
	t.Cleanup(stop)
	return office, sock, stop
}

func TestCLI_StatusUsersLogs(t *testing.T) {
	office, sock, stop := startBridge(t)
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	wait("both sides synced", func() bool {
		_, out, _ := runCLI(t, "", "status", "--socket", sock)
		return strings.Contains(out, "teams:") && !strings.Contains(out, "not connected yet") && !strings.Contains(out, "first read")
	})
	code, out, stderr := runCLI(t, "", "status", "--socket", sock)
	if code != 0 || !strings.Contains(out, "OS service: ") || !strings.Contains(out, "bridge:    foreground cli-test") ||
		!strings.Contains(out, "healthy (simulated tenant)") || !strings.Contains(out, "holds:     0") {
		t.Fatalf("status: %d %s\n%s", code, stderr, out)
	}
	code, out, _ = runCLI(t, "", "status", "--socket", sock, "--json")
	var ov psync.Overview
	if code != 0 || json.Unmarshal([]byte(out), &ov) != nil || ov.Version != "cli-test" {
		t.Fatalf("status --json: %d %s", code, out)
	}

	office.Phone.Call("201", "desk", "c1", psync.CallConnected)
	wait("the Teams session", func() bool { act, _ := office.Teams.BridgeSession("201"); return act != "" })
	wait("the hold in users", func() bool {
		_, out, _ = runCLI(t, "", "users", "--socket", sock)
		return strings.Contains(out, "teams-session=InACall (lease ")
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[1], "Anna") || !strings.Contains(lines[1], "1 call(s)") ||
		!strings.Contains(lines[2], "protected") {
		t.Fatalf("users table:\n%s", out)
	}
	code, out, _ = runCLI(t, "", "users", "--socket", sock, "--json")
	var us []psync.UserStatus
	if code != 0 || json.Unmarshal([]byte(out), &us) != nil || len(us) != 3 || len(us[0].Holds) != 1 {
		t.Fatalf("users --json: %d %s", code, out)
	}

	wait("the decision in the audit log", func() bool {
		_, out, _ = runCLI(t, "", "logs", "--socket", sock, "-n", "5")
		return strings.Contains(out, "session: ")
	})
	if code, out, _ = runCLI(t, "", "logs", "--socket", sock, "-n", "50", "--user", "202"); code != 0 || strings.Contains(out, "Anna") {
		t.Fatalf("logs --user 202: %d\n%s", code, out)
	}

	// logs -f: the past, then live decisions, until the service stops.
	var follow lockedBuffer
	followed := make(chan int, 1)
	go func() {
		followed <- run([]string{"logs", "--socket", sock, "-n", "1", "-f"}, strings.NewReader(""), &follow, io.Discard)
	}()
	// logs -f subscribes before it reads the past: once the past is out,
	// the live decision below cannot be missed.
	wait("logs -f to print the past", func() bool { return strings.Count(follow.String(), "\n") >= 1 })
	office.Phone.Call("203", "desk", "c2", psync.CallConnected)
	wait("the live decision", func() bool { return strings.Contains(follow.String(), "Clara") })
	stop()
	select {
	case code := <-followed:
		if code != 1 {
			t.Fatalf("logs -f after the stop: code %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("logs -f did not end when the service stopped")
	}
}
