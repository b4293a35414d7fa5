package service

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/presencebridge/presencebridge/store"
)

// The service runs as a system user of its own, never as root: install
// creates it, hands it the state directory, and the unit confines it
// (renderSystemd). This file plans that: the account, the directories and
// files it must own, and what install refuses before it changes anything.

// ServiceAccount is the system user (and group) the service runs as on a
// target; "" on Windows, where it stays LocalSystem.
func ServiceAccount(target string) string {
	switch target {
	case TargetSystemd:
		return "presencebridge"
	case TargetLaunchd:
		return "_presencebridge" // macOS names system accounts with a leading underscore
	}
	return ""
}

// defaultGroupFor is the admin group of a target when --group is left at
// this OS's default.
func defaultGroupFor(target, group string) string {
	if group != "" && group != DefaultGroup {
		return group
	}
	if a := ServiceAccount(target); a != "" {
		return a
	}
	return DefaultGroup
}

// Where a binary must not be installed from: `go run . install` and
// `go test` run one out of the build cache or a temporary directory, which
// the next `go clean` or reboot removes, leaving a service that cannot
// start.
func transientExecutable(exe string) (string, bool) {
	clean := filepath.Clean(exe)
	var dirs []string
	if c := os.Getenv("GOCACHE"); c != "" && c != "off" {
		dirs = append(dirs, c)
	}
	if c, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(c, "go-build"))
	}
	dirs = append(dirs, os.TempDir(), "/tmp", "/var/tmp")
	for _, d := range dirs {
		if d != "" && isUnder(clean, filepath.Clean(d)) {
			return d, true
		}
	}
	if strings.Contains(filepath.ToSlash(clean), "/go-build") {
		return "the Go build cache", true
	}
	return "", false
}

// isUnder reports whether p is dir or lies below it.
func isUnder(p, dir string) bool {
	if p == dir {
		return true
	}
	if !strings.HasSuffix(dir, string(filepath.Separator)) {
		dir += string(filepath.Separator)
	}
	return strings.HasPrefix(p, dir)
}

// isUnderSlash is isUnder for the slash paths of a unit, whatever this OS.
func isUnderSlash(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// SetupStep is one thing install does before it writes the unit: a
// command, or making a directory or file belong to the service's account.
// Each is idempotent: a command with Unless runs only when Unless fails
// (the account is not there yet), and ownership is set, not added.
type SetupStep struct {
	Run    []string // a command
	Unless []string // a command whose success means Run is not needed

	// Do is a step that decides as it goes (macOS picks a free id for the
	// account); Desc says what it does.
	Do   func(setupEnv) error
	Desc string

	Path  string      // a directory or file (with Glob, a pattern)
	Dir   bool        // Path is a directory, made when missing
	Glob  bool        // Path is a filepath.Match pattern: every match
	Owner string      // user name
	Group string      // group name
	Mode  fs.FileMode // permission bits
}

func (s SetupStep) String() string {
	if s.Do != nil {
		return s.Desc
	}
	if s.Run != nil {
		line := shellJoin(s.Run)
		if s.Unless != nil {
			line = shellJoin(s.Unless) + " >/dev/null || " + line
		}
		return line
	}
	line := ""
	if s.Dir {
		line = fmt.Sprintf("install -d -m %04o -o %s -g %s %s", s.Mode, s.Owner, s.Group, shellQuote(s.Path))
	} else {
		p := shellQuote(s.Path)
		if s.Glob {
			p = shellQuote(filepath.Dir(s.Path)) + "/" + filepath.Base(s.Path) // the shell expands it
		}
		line = fmt.Sprintf("chown %s:%s %s && chmod %04o %s", s.Owner, s.Group, p, s.Mode, p)
		if !s.Glob {
			line = "[ -e " + p + " ] && " + line
		}
	}
	return line
}

func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sandbox is what the systemd unit and the setup need to know.
type sandbox struct {
	account    string
	group      string   // admin group of the control socket
	stateDir   string   // the database's directory
	socketDir  string   // the control socket's directory
	stateRel   string   // StateDirectory= (relative to /var/lib), or ""
	runtimeRel string   // RuntimeDirectory= (relative to /run), or ""
	readWrite  []string // ReadWritePaths=
	bindLow    bool     // the webhook listens below port 1024
	listen     string   // teams.webhook_listen as read
}

// planSandbox works out the account, the directories and the setup steps
// of a target, and what would stop the installed service from working
// (problems: install refuses, a dry run shows them).
func planSandbox(o InstallOptions) (sb sandbox, steps []SetupStep, problems []string) {
	sb.account = ServiceAccount(o.Target)
	sb.group = o.Group
	if sb.account == "" {
		return sb, nil, nil
	}
	slash := func(p string) string { return filepath.ToSlash(p) }
	sb.stateDir, sb.socketDir = path.Dir(slash(o.DB)), path.Dir(slash(o.Socket))

	if o.Target == TargetSystemd {
		// ProtectHome= and PrivateTmp= hide these from the service.
		for _, p := range []struct{ what, path string }{{"database", o.DB}, {"control socket", o.Socket}} {
			for _, hidden := range []string{"/home", "/root", "/run/user", "/tmp", "/var/tmp"} {
				if isUnderSlash(slash(p.path), hidden) {
					problems = append(problems, fmt.Sprintf("the service cannot reach its %s %s: the unit hides %s from it (ProtectHome=, PrivateTmp=); "+
						"use the default (leave --db and --socket out) or a path under /var/lib or /srv", p.what, p.path, hidden))
				}
			}
		}
		if rel, ok := strings.CutPrefix(sb.stateDir, "/var/lib/"); ok && rel != "" {
			sb.stateRel = rel
		}
		if rel, ok := strings.CutPrefix(sb.socketDir, "/run/"); ok && rel != "" {
			sb.runtimeRel = rel
		}
		sb.readWrite = []string{sb.stateDir}
		if sb.socketDir != sb.stateDir {
			sb.readWrite = append(sb.readWrite, sb.socketDir)
		}
	}
	if p := sharedDirProblem(o.DB, o.Socket); p != "" {
		problems = append(problems, p)
	}

	// The webhook needs CAP_NET_BIND_SERVICE only below port 1024.
	listen, err := o.WebhookListen, error(nil)
	if listen == "" {
		listen, err = storedWebhookListen(o.DB)
	}
	if err != nil {
		problems = append(problems, err.Error())
	}
	sb.listen = listen
	if _, port, err := net.SplitHostPort(listen); err == nil {
		if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 1024 {
			sb.bindLow = true
		}
	}

	// The account: idempotent, so that a reinstall or an upgrade from a
	// root service finds it there.
	switch o.Target {
	case TargetSystemd:
		steps = append(steps,
			SetupStep{Unless: []string{"getent", "group", sb.account}, Run: []string{"groupadd", "--system", sb.account}},
			SetupStep{Unless: []string{"getent", "passwd", sb.account}, Run: []string{"useradd", "--system", "--gid", sb.account,
				"--home-dir", sb.stateDir, "--no-create-home", "--shell", "/usr/sbin/nologin", "--comment", "presencebridge service", sb.account}})
	case TargetLaunchd:
		steps = append(steps, darwinAccountStep(sb.account))
		if sb.group != sb.account {
			// To give the control socket to the admin group it must be a member.
			steps = append(steps, SetupStep{Unless: []string{"dseditgroup", "-o", "checkmember", "-m", sb.account, sb.group},
				Run: []string{"dseditgroup", "-o", "edit", "-a", sb.account, "-t", "user", sb.group}})
		}
	}
	if o.Target == NativeTarget() && sb.group != sb.account {
		if _, ok := lookupGroup(sb.group); !ok {
			problems = append(problems, fmt.Sprintf("the admin group %s does not exist: create it first (groupadd %s), or leave --group out to use %s", sb.group, sb.group, sb.account))
		}
	}

	// The state directory and what is in it belong to the account: a
	// database the root service wrote is handed over (upgrade).
	stateGroup := sb.account
	if o.Target == TargetLaunchd {
		// The socket lives here on macOS: the admin group must reach it.
		stateGroup = sb.group
	}
	steps = append(steps,
		SetupStep{Path: filepath.Dir(o.DB), Dir: true, Owner: sb.account, Group: stateGroup, Mode: 0o750},
		SetupStep{Path: o.DB, Owner: sb.account, Group: sb.account, Mode: 0o600},
		SetupStep{Path: filepath.Join(globEscape(filepath.Dir(o.DB)), globEscape(filepath.Base(o.DB))+".bak-v*"), Glob: true,
			Owner: sb.account, Group: sb.account, Mode: 0o600},
	)
	if o.Target == TargetSystemd && sb.runtimeRel == "" && sb.socketDir != sb.stateDir {
		steps = append(steps, SetupStep{Path: filepath.Dir(o.Socket), Dir: true, Owner: sb.account, Group: sb.group, Mode: 0o750})
	}
	if o.Target == TargetLaunchd {
		steps = append(steps, SetupStep{Path: launchdLogDir, Dir: true, Owner: sb.account, Group: sb.account, Mode: 0o750})
	}
	return sb, steps, problems
}

// launchdLogDir holds the service's stderr on macOS: /Library/Logs itself
// is root's.
const launchdLogDir = "/Library/Logs/presencebridge"

// globEscape quotes the metacharacters of filepath.Match.
func globEscape(s string) string {
	if filepath.Separator == '\\' {
		return strings.NewReplacer("*", "[*]", "?", "[?]", "[", "[[]").Replace(s)
	}
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(s)
}

// systemDirs are directories install must never hand to the service.
var systemDirs = []string{"/", "/etc", "/var", "/var/lib", "/var/run", "/run", "/srv", "/opt", "/usr", "/usr/local",
	"/Library", "/Library/Application Support", "/private/var"}

// sharedDirProblem refuses a database directory the service cannot have
// to itself: install makes it the service's, which must not happen to a
// system directory or to one that holds files of others.
func sharedDirProblem(db, socket string) string {
	dir := filepath.Dir(db)
	if slices.Contains(systemDirs, filepath.ToSlash(dir)) {
		return fmt.Sprintf("the database %s must have a directory of its own, which install gives to the service; %s is shared (e.g. --db %s)",
			db, dir, filepath.Join(dir, "presencebridge", filepath.Base(db)))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	base := filepath.Base(db)
	var foreign []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, base) || strings.HasPrefix(n, "."+base) || n == filepath.Base(socket) && filepath.Dir(socket) == dir {
			continue
		}
		foreign = append(foreign, n)
	}
	if len(foreign) == 0 {
		return ""
	}
	if len(foreign) > 3 {
		foreign = append(foreign[:3], "…")
	}
	return fmt.Sprintf("the database's directory %s holds other files (%s); install gives the directory to the service: give the database a directory of its own",
		dir, strings.Join(foreign, ", "))
}

// storedWebhookListen reads teams.webhook_listen from the database, or its
// default when there is no database yet.
func storedWebhookListen(db string) (string, error) {
	def := ":8443"
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return def, nil
	}
	all, err := store.PeekSettings(db, time.Second)
	if err != nil {
		return def, fmt.Errorf("cannot read teams.webhook_listen (whether the webhook needs a port below 1024) from the database: %v", err)
	}
	if v := all["teams.webhook_listen"]; v != "" {
		return v, nil
	}
	return def, nil
}

// setupEnv is what running the setup touches: commands and account
// lookups. Tests give their own, so that no system user is created.
type setupEnv struct {
	run    func(argv []string) (stdout string, err error)
	lookup func(user, group string) (uid, gid int, err error)
}

func systemSetupEnv() setupEnv {
	return setupEnv{
		run: func(argv []string) (string, error) {
			var stdout, stderr strings.Builder
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				return stdout.String(), fmt.Errorf("%s: %v: %s", shellJoin(argv), err, strings.TrimSpace(stderr.String()))
			}
			return stdout.String(), nil
		},
		lookup: func(name, group string) (int, int, error) {
			u, err := user.Lookup(name)
			if err != nil {
				return 0, 0, err
			}
			g, err := user.LookupGroup(group)
			if err != nil {
				return 0, 0, err
			}
			uid, err1 := strconv.Atoi(u.Uid)
			gid, err2 := strconv.Atoi(g.Gid)
			if err := errors.Join(err1, err2); err != nil {
				return 0, 0, fmt.Errorf("user %s / group %s: %w", name, group, err)
			}
			return uid, gid, nil
		},
	}
}

// runSetup carries the steps out in order, stopping at the first failure.
func runSetup(steps []SetupStep, env setupEnv) error {
	for _, s := range steps {
		if err := runStep(s, env); err != nil {
			return fmt.Errorf("preparing the service (%s): %w", s, err)
		}
	}
	return nil
}

func runStep(s SetupStep, env setupEnv) error {
	if s.Do != nil {
		return s.Do(env)
	}
	if s.Run != nil {
		if s.Unless != nil {
			if _, err := env.run(s.Unless); err == nil {
				return nil
			}
		}
		_, err := env.run(s.Run)
		return err
	}
	uid, gid, err := env.lookup(s.Owner, s.Group)
	if err != nil {
		return err
	}
	paths := []string{s.Path}
	if s.Glob {
		if paths, err = filepath.Glob(s.Path); err != nil {
			return err
		}
	}
	for _, p := range paths {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist) && s.Dir:
			if err := os.MkdirAll(p, s.Mode); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrNotExist):
			continue // no database yet
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			// Following it would hand the service whatever it points to.
			return fmt.Errorf("%s is a symbolic link; give the real path", p)
		case s.Dir != fi.IsDir():
			return fmt.Errorf("%s is not a %s", p, map[bool]string{true: "directory", false: "regular file"}[s.Dir])
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
		if err := os.Chmod(p, s.Mode); err != nil {
			return err
		}
	}
	return nil
}
