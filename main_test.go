package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
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
	if code != 1 || !strings.Contains(stderr, "no Graph adapter") || !strings.Contains(stderr, "phone.system") {
		t.Fatalf("run: %d %s", code, stderr)
	}
}

// buildBinary builds the real binary once for the end-to-end tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "presencebridge")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// TestDemo_KilledAndRestarted runs `demo` as a child process, kills it with
// SIGKILL while the bridge holds things, restarts it on the same database
// and checks presence-rules.md §4.4: the holds left behind are taken over
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
