//go:build !windows

package service

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeSetup records the commands of a setup instead of running them and
// maps every account to one uid and gid, so that no system user is made.
type fakeSetup struct {
	ran      [][]string
	exists   map[string]bool   // what getent / dscl -read find
	output   map[string]string // stdout of list commands, by argv
	uid, gid int
}

func (f *fakeSetup) env() setupEnv {
	return setupEnv{
		run: func(argv []string) (string, error) {
			key := strings.Join(argv, " ")
			switch {
			case argv[0] == "getent" || (argv[0] == "dscl" && argv[2] == "-read") || (argv[0] == "dseditgroup" && argv[2] == "checkmember"):
				if f.exists[argv[len(argv)-1]] {
					return "", nil
				}
				return "", errors.New("not found")
			}
			f.ran = append(f.ran, argv)
			return f.output[key], nil
		},
		lookup: func(string, string) (int, int, error) { return f.uid, f.gid, nil },
	}
}

func TestSetup_LinuxAccountCommands(t *testing.T) {
	p, err := PlanInstall(InstallOptions{Target: TargetSystemd, Executable: "/usr/local/bin/presencebridge", WebhookListen: ":8443",
		DB: filepath.Join(t.TempDir(), "presencebridge", "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSetup{uid: os.Getuid(), gid: os.Getgid()}
	if err := runSetup(p.Setup, f.env()); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"groupadd", "--system", "presencebridge"},
		{"useradd", "--system", "--gid", "presencebridge", "--home-dir", filepath.Dir(p.Args[3]), "--no-create-home",
			"--shell", "/usr/sbin/nologin", "--comment", "presencebridge service", "presencebridge"},
	}
	if !slices.EqualFunc(f.ran, want, slices.Equal) {
		t.Fatalf("commands %q, want %q", f.ran, want)
	}
	// Run again (a reinstall, an upgrade): the account is there, nothing
	// is created twice.
	f = &fakeSetup{uid: os.Getuid(), gid: os.Getgid(), exists: map[string]bool{"presencebridge": true}}
	if err := runSetup(p.Setup, f.env()); err != nil || len(f.ran) != 0 {
		t.Fatalf("second setup ran %q, %v", f.ran, err)
	}
}

// An upgrade from the root service of before: the database root wrote
// (0644 after a careless copy, backups beside it, the directory 0700) is
// handed to the service's account, 0600 in a 0750 directory.
func TestSetup_UpgradeFromTheRootUnitHandsOverTheDatabase(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no owners and modes to hand over")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "var", "lib", "presencebridge")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "state.db")
	for _, f := range []string{db, db + ".bak-v1-20250101T000000Z", db + ".bak-v2-20250301T000000Z"} {
		if err := os.WriteFile(f, []byte("bolt"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Today's root unit, as install wrote it before.
	oldUnit := "[Service]\nExecStart=/usr/local/bin/presencebridge run --service --db " + db +
		"\nStateDirectory=presencebridge\nStateDirectoryMode=0700\nUMask=0077\nNoNewPrivileges=yes\nProtectSystem=full\n"
	if !runsAsRoot(oldUnit) {
		t.Fatal("the old unit is not seen as running as root")
	}
	unitFile := filepath.Join(root, "presencebridge.service")
	os.WriteFile(unitFile, []byte(oldUnit), 0o644)
	if err := alreadyInstalled(unitFile, "presencebridge"); !strings.Contains(err.Error(), "runs as root") ||
		!strings.Contains(err.Error(), "presencebridge uninstall, then presencebridge install") {
		t.Fatalf("installing over the root unit: %v", err)
	}

	p, err := PlanInstall(InstallOptions{Target: TargetSystemd, Executable: "/usr/local/bin/presencebridge", DB: db, WebhookListen: ":8443"})
	if err != nil {
		t.Fatal(err)
	}
	if runsAsRoot(p.Text) {
		t.Fatal("the new unit runs as root")
	}
	// Root hands the files to another user; anyone else can still check
	// modes, with its own uid standing in for the account.
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = 65534, 65534
	}
	f := &fakeSetup{uid: uid, gid: gid}
	if err := runSetup(p.Setup, f.env()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o750}, {db, 0o600}, {db + ".bak-v1-20250101T000000Z", 0o600}, {db + ".bak-v2-20250301T000000Z", 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != c.mode || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s: mode %04o owner %d:%d, want %04o %d:%d", c.path, fi.Mode().Perm(), st.Uid, st.Gid, c.mode, uid, gid)
		}
	}

	// A database that is a symbolic link is not followed.
	os.Remove(db)
	target := filepath.Join(root, "elsewhere")
	os.WriteFile(target, nil, 0o640)
	os.Symlink(target, db)
	if err := runSetup(p.Setup, f.env()); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("setup over a symlinked database: %v", err)
	}
	// A fresh machine: no database yet, the directory is made.
	os.RemoveAll(dir)
	if err := runSetup(p.Setup, f.env()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("state directory %v, %v", fi, err)
	}
}

func TestSetup_MacOSAccount(t *testing.T) {
	users := "_amavisd 83\n_appleevents 55\nroot 0\nnobody -2\n_brew 200\nann 501\n"
	groups := "_amavisd 83\n_appstore 33\nadmin 80\n_other 201\nstaff 20\n"
	f := &fakeSetup{output: map[string]string{
		"dscl . -list /Users UniqueID":        users,
		"dscl . -list /Groups PrimaryGroupID": groups,
	}}
	if err := createDarwinAccount(f.env(), "_presencebridge"); err != nil {
		t.Fatal(err)
	}
	want := append([][]string{{"dscl", ".", "-list", "/Users", "UniqueID"}, {"dscl", ".", "-list", "/Groups", "PrimaryGroupID"}},
		darwinAccountCommands("_presencebridge", 202, 202, true, true)...)
	if !slices.EqualFunc(f.ran, want, slices.Equal) {
		t.Fatalf("commands:\n%q\nwant\n%q", f.ran, want)
	}
	for _, c := range [][]string{
		{"dscl", ".", "-create", "/Users/_presencebridge", "UniqueID", "202"},
		{"dscl", ".", "-create", "/Users/_presencebridge", "UserShell", "/usr/bin/false"},
		{"dscl", ".", "-create", "/Groups/_presencebridge", "PrimaryGroupID", "202"},
		{"dscl", ".", "-create", "/Users/_presencebridge", "IsHidden", "1"},
	} {
		if !slices.ContainsFunc(f.ran, func(r []string) bool { return slices.Equal(r, c) }) {
			t.Errorf("no %q", c)
		}
	}
	// Both there: nothing is made.
	f = &fakeSetup{exists: map[string]bool{"/Users/_presencebridge": true, "/Groups/_presencebridge": true}}
	if err := createDarwinAccount(f.env(), "_presencebridge"); err != nil || len(f.ran) != 0 {
		t.Fatalf("existing account: %q, %v", f.ran, err)
	}
	// The group is there (id 250): the user gets the same id, free for
	// users, and only the user is made.
	f = &fakeSetup{exists: map[string]bool{"/Groups/_presencebridge": true}, output: map[string]string{
		"dscl . -list /Users UniqueID":        users,
		"dscl . -list /Groups PrimaryGroupID": groups + "_presencebridge 250\n",
	}}
	if err := createDarwinAccount(f.env(), "_presencebridge"); err != nil {
		t.Fatal(err)
	}
	if want := darwinAccountCommands("_presencebridge", 250, 250, false, true); !slices.EqualFunc(f.ran[2:], want, slices.Equal) {
		t.Fatalf("commands %q, want %q", f.ran[2:], want)
	}
	// No free id: a clear error.
	var full strings.Builder
	for id := darwinIDLow; id <= darwinIDHigh; id++ {
		full.WriteString("u" + strconv.Itoa(id) + " " + strconv.Itoa(id) + "\n")
	}
	f = &fakeSetup{output: map[string]string{"dscl . -list /Users UniqueID": full.String()}}
	if err := createDarwinAccount(f.env(), "_presencebridge"); err == nil || !strings.Contains(err.Error(), "no free system id") {
		t.Fatalf("no free id: %v", err)
	}

	// The plist plan: the account step, the state directory for the admin
	// group (the socket lives there), the log directory.
	p, err := PlanInstall(InstallOptions{Target: TargetLaunchd, Executable: "/usr/local/bin/presencebridge", WebhookListen: ":8443", Group: "staff"})
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for _, s := range p.Setup {
		plan = append(plan, s.String())
	}
	for _, w := range []string{"dscl: create group and user _presencebridge",
		"dseditgroup -o checkmember -m _presencebridge staff >/dev/null || dseditgroup -o edit -a _presencebridge -t user staff",
		"install -d -m 0750 -o _presencebridge -g staff '/Library/Application Support/presencebridge'",
		"install -d -m 0750 -o _presencebridge -g _presencebridge /Library/Logs/presencebridge"} {
		if !slices.ContainsFunc(plan, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("plan lacks %q:\n%s", w, strings.Join(plan, "\n"))
		}
	}
}
