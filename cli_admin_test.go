package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// pbBin runs the real binary with a controlled environment.
type pbBin struct {
	t   *testing.T
	bin string
	env []string
}

// newPB builds the binary and isolates it from this machine: no installed
// service, no control socket, no database of its own.
func newPB(t *testing.T, extraEnv ...string) pbBin {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PRESENCEBRIDGE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "PRESENCEBRIDGE_SERVICE_FILE="+filepath.Join(dir, "no.service"),
		"PRESENCEBRIDGE_SOCKET="+filepath.Join(dir, "no.sock"))
	return pbBin{t: t, bin: buildBinary(t), env: append(env, extraEnv...)}
}

func (p pbBin) run(stdin string, args ...string) (code int, stdout, stderr string) {
	p.t.Helper()
	cmd := exec.Command(p.bin, args...)
	cmd.Env = p.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		p.t.Fatalf("%v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

func (p pbBin) ok(stdin string, args ...string) string {
	p.t.Helper()
	code, out, errs := p.run(stdin, args...)
	if code != 0 {
		p.t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
	}
	return out
}

func (p pbBin) fails(stdin string, want []string, args ...string) string {
	p.t.Helper()
	code, out, errs := p.run(stdin, args...)
	if code == 0 {
		p.t.Fatalf("%v succeeded:\n%s", args, out)
	}
	for _, w := range want {
		if !strings.Contains(errs, w) {
			p.t.Errorf("%v: stderr does not say %q:\n%s", args, w, errs)
		}
	}
	return errs
}

// The traps of the issue without a running service, through the binary.
func TestCLIBinary_AdminWithoutService(t *testing.T) {
	pb := newPB(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")

	// A mistyped --db: read commands refuse it, naming it, and create
	// nothing (before: config get printed defaults from a new empty file).
	typo := filepath.Join(dir, "sate.db")
	for _, args := range [][]string{
		{"config", "get", "teams.lease"}, {"config", "list"}, {"config", "export"},
		{"doctor"}, {"logs"}, {"profiles"}, {"users", "list"},
	} {
		pb.fails("", []string{"no database at " + typo}, append(args, "--db", typo)...)
	}
	if _, err := os.Stat(typo); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read command created %s", typo)
	}

	// Flags in any position (before: only `config --db X set`).
	_, _, errs := pb.run("", "config", "set", "teams.lease", "15m", "--db", db)
	if !strings.Contains(errs, "created a new database at "+db) {
		t.Errorf("the new database was not announced: %q", errs)
	}
	for _, args := range [][]string{
		{"config", "get", "teams.lease", "--db", db},
		{"--db", db, "config", "get", "teams.lease"},
		{"config", "--db", db, "get", "teams.lease"},
		{"--db=" + db, "config", "get", "--", "teams.lease"},
	} {
		if got := strings.TrimSpace(pb.ok("", args...)); got != "15m0s" {
			t.Errorf("%v: %q", args, got)
		}
	}
	if _, _, errs := pb.run("", "config", "get", "-h"); !strings.Contains(errs, "-db") || !strings.Contains(errs, "-socket") {
		t.Errorf("config get -h does not show the flags:\n%s", errs)
	}

	// A flag of a profile that does not exist (before: created it).
	pb.fails("", []string{`no profile "defualt"`, "profiles: default", "presencebridge profiles add defualt"},
		"config", "set", "profile.defualt.set_presence_in_teams", "false", "--db", db)
	pb.ok("", "profiles", "add", "sales", "--db", db)
	pb.ok("", "config", "set", "profile.sales.calendar_meetings_as_calls", "on", "--db", db)
	pb.ok("", "profiles", "rename", "sales", "field", "--db", db)
	if out := pb.ok("", "profiles", "--db", db); !strings.Contains(out, "field") || strings.Contains(out, "sales") || strings.Contains(out, "defualt") ||
		!strings.Contains(out, "calendar_meetings_as_calls") || !strings.Contains(out, "default (default)") {
		t.Fatalf("profiles:\n%s", out)
	}

	// Users: add, change, refuse control characters, remove.
	pb.ok("", "users", "add", "sip:anna@contoso.example", "--name", "Anna", "--upn", "anna@contoso.example", "--profile", "field", "--db", db)
	pb.fails("", []string{"control character"}, "users", "add", "202", "--name", "Ben\x1b[2J", "--db", db)
	pb.fails("", []string{"already exists"}, "users", "add", "sip:anna@contoso.example", "--db", db)
	pb.ok("", "users", "set", "sip:anna@contoso.example", "--name", "Anna Berg", "--db", db)
	pb.fails("", []string{`profile "field" is in use`, "sip:anna@contoso.example"}, "profiles", "remove", "field", "--db", db)
	if out := pb.ok("", "users", "list", "--db", db); !strings.Contains(out, "Anna Berg") || !strings.Contains(out, "field") || strings.Contains(out, "202") {
		t.Fatalf("users list:\n%s", out)
	}

	// doctor, signin and logs take the database from PRESENCEBRIDGE_DB like
	// the rest (before: doctor and signin read only --db).
	envPB := pb
	envPB.env = append(append([]string(nil), pb.env...), "PRESENCEBRIDGE_DB="+db)
	if code, out, _ := envPB.run("", "doctor"); code != 1 || !strings.Contains(out, "doctor: the configuration in "+db) || !strings.Contains(out, "teams FAILED settings") {
		t.Fatalf("doctor with PRESENCEBRIDGE_DB: %d\n%s", code, out)
	}
	envPB.fails("", []string{"missing settings: teams.tenant_id"}, "signin", "svc@contoso.example")
	envPB.ok("", "logs") // no decisions yet; read from the database
	envPB.fails("", []string{"-f follows the running bridge", db}, "logs", "-f")

	// Validation where the value is entered.
	pb.fails("", []string{"teams.client_id", "not a GUID"}, "config", "set", "teams.client_id", "not-a-guid", "--db", db)
	pb.fails("", []string{"teams.webhook_url", "https"}, "config", "set", "teams.webhook_url", "http://bridge.contoso.example", "--db", db)

	// A secret from stdin, never on the command line.
	pb.ok("s3cr3t~value\n", "config", "set", "teams.client_secret", "-", "--db", db)
	if out := pb.ok("", "config", "get", "teams.client_secret", "--db", db); strings.TrimSpace(out) != psync.Mask {
		t.Fatalf("secret shown: %q", out)
	}
	export := pb.ok("", "config", "export", "--db", db)
	if strings.Contains(export, "s3cr3t") {
		t.Fatal("export shows the secret")
	}

	// Import: replace by default, a dry run first, the changes printed.
	file := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(file, []byte("users:\n  - id: \"202\"\n    name: Ben\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := pb.ok("", "config", "import", file, "--dry-run", "--db", db)
	if !strings.Contains(out, "dry run") || !strings.Contains(out, "users: 1 added, 0 changed, 1 removed") ||
		!strings.Contains(out, "+ 202: Ben") || !strings.Contains(out, "- sip:anna@contoso.example: Anna Berg, profile field") || !strings.Contains(out, "settings: no changes") {
		t.Fatalf("dry run:\n%s", out)
	}
	out = pb.ok("", "config", "import", "--merge", file, "--db", db)
	if !strings.Contains(out, "users: 1 added, 0 changed, 0 removed") {
		t.Fatalf("merge:\n%s", out)
	}
	out = pb.ok("", "config", "import", file, "--db", db)
	if !strings.Contains(out, "users: 0 added, 0 changed, 1 removed") {
		t.Fatalf("replace:\n%s", out)
	}
	// The export of this database into a new one: the secret has no
	// stored value there, so the import fails and names it (before: the
	// secret was dropped without a word).
	fresh := filepath.Join(dir, "fresh.db")
	pb.fails(export, []string{"teams.client_secret is masked", "config set KEY -"}, "config", "import", "-", "--db", fresh)

	// demo never touches a real configuration (before: it overwrote the
	// tenant, client, secret and UCServer URL with the simulator's).
	pb.fails("", []string{"holds a configuration the demo did not create", db, "--db NEW-FILE"}, "demo", "--db", db, "--duration", "1s", "--headless")
	s, err := store.Open(db, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	values, _ := s.Settings()
	if values["teams.client_secret"] != "s3cr3t~value" || values["teams.tenant_id"] != "" || values["ucserver.url"] != "" {
		t.Fatalf("settings after the refused demo: tenant %q, ucserver %q, secret kept %v",
			values["teams.tenant_id"], values["ucserver.url"], values["teams.client_secret"] == "s3cr3t~value")
	}
}

// A demo database is the demo's to run on again; a fresh one it claims.
func TestCLIBinary_DemoRunsOnItsOwnDatabase(t *testing.T) {
	pb := newPB(t)
	db := filepath.Join(t.TempDir(), "demo.db")
	for i := 0; i < 2; i++ {
		pb.ok("", "demo", "--db", db, "--duration", "500ms", "--every", "50ms", "--users", "3", "--seed", "1", "--headless")
	}
}

// On a machine where the service is installed, a config command that
// reaches no service and names no database refuses, naming both, and
// writes nothing (before: it wrote a database the service never reads).
func TestCLIBinary_InstalledServiceNoStrayDatabase(t *testing.T) {
	dir := t.TempDir()
	plan, err := service.PlanInstall(service.InstallOptions{Target: service.TargetSystemd, Executable: "/usr/local/bin/presencebridge",
		DB: filepath.Join(dir, "service", "state.db"), Socket: filepath.Join(dir, "service.sock")})
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, "presencebridge.service")
	if err := os.WriteFile(unit, []byte(plan.Text), 0o644); err != nil {
		t.Fatal(err)
	}
	pb := newPB(t, "PRESENCEBRIDGE_SERVICE_FILE="+unit, "XDG_CONFIG_HOME="+filepath.Join(dir, "home"), "HOME="+filepath.Join(dir, "home"))
	own, err := store.DefaultPath() // what the binary would pick: same user
	if err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 {
		own = filepath.Join(dir, "home", "presencebridge", "state.db")
	}
	if _, err := os.Stat(own); err == nil {
		t.Skipf("%s exists on this machine; the test must not risk it", own)
	}
	// PRESENCEBRIDGE_SOCKET of newPB would override the unit's socket.
	env := pb.env[:0:0]
	for _, kv := range pb.env {
		if !strings.HasPrefix(kv, "PRESENCEBRIDGE_SOCKET=") {
			env = append(env, kv)
		}
	}
	pb.env = env
	errs := pb.fails("", []string{"installed", filepath.Join(dir, "service", "state.db"), own, filepath.Join(dir, "service.sock"), "--db " + own},
		"config", "set", "teams.lease", "15m")
	if _, err := os.Stat(own); err == nil {
		os.Remove(own)
		t.Fatalf("a stray database was written at %s", own)
	}
	t.Logf("refusal: %s", errs)
	// Named on purpose, the other database is fine.
	other := filepath.Join(dir, "other.db")
	pb.ok("", "config", "set", "teams.lease", "15m", "--db", other)
}
