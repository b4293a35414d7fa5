// Command presencebridge keeps an office phone system and Microsoft Teams
// presence in step. This file only parses the command line and wires the
// parts together; the behaviour lives in sync, store and service.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams"
	"github.com/presencebridge/presencebridge/sync/ucserver"
	"github.com/presencebridge/presencebridge/tui"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `presencebridge keeps office phone presence and Microsoft Teams presence in step.

Usage:
  presencebridge <command> [flags]

Commands:
  demo      run the bridge against a simulated office (Graph and UCServer simulators)
  run       run the bridge in the foreground with the configured sides
  console   the live console of the running bridge
  config    show and change settings, profiles and users
  doctor    check the Microsoft Teams side step by step, with the fix for what fails
  signin    sign in a Teams service account with a device code (subscribe mode)
  version   print the version

  install   install the bridge as an OS service (--dry-run shows the unit)
  uninstall stop and remove the OS service
  start, stop, restart
            control the OS service
  status    the OS service and the running bridge
  users     every user's live state on both sides
  logs      the last decisions (-f follows them live)

Run "presencebridge <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = cmdDemo(args[1:], stdin, stdout, stderr)
	case "console":
		err = cmdConsole(args[1:], stdin, stdout, stderr)
	case "doctor":
		err = cmdDoctor(args[1:], stdout, stderr)
	case "signin":
		err = cmdSignIn(args[1:], stdout, stderr)
	case "run":
		err = cmdRun(args[1:], stderr)
	case "config":
		err = cmdConfig(args[1:], stdin, stdout, stderr)
	case "version":
		err = cmdVersion(args[1:], stdout, stderr)
	case "install", "uninstall", "start", "stop", "restart":
		err = cmdService(args[0], args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(args[1:], stdout, stderr)
	case "users":
		err = cmdUsers(args[1:], stdout, stderr)
	case "logs":
		err = cmdLogs(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "presencebridge: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "presencebridge %s: %v\n", args[0], err)
	return 1
}

// errUsage marks an error the flag package has already printed.
var errUsage = errors.New("usage")

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: presencebridge %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// parseNoArgs is parse for commands that take flags only.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// dbFlag adds --db with the PRESENCEBRIDGE_DB / OS-convention default.
func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("db", "", "database file (default: $PRESENCEBRIDGE_DB, else /var/lib/presencebridge/state.db as root, else the user config dir)")
}

func dbPath(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if env := os.Getenv("PRESENCEBRIDGE_DB"); env != "" {
		return env, nil
	}
	return store.DefaultPath()
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func cmdDemo(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "demo [--users N] [--seed N] [--duration D] [--every D] [--teams-mode poll|subscribe] [--headless] [--db FILE]", stderr)
	users := fs.Int("users", 12, "number of simulated people")
	seed := fs.Uint64("seed", 0, "seed of the people's behaviour (0: pick one and print it)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C, or q in the console)")
	every := fs.Duration("every", 400*time.Millisecond, "time between two things people do")
	mode := fs.String("teams-mode", "poll", "how the Graph adapter reads presence: poll, or subscribe (webhook)")
	headless := fs.Bool("headless", false, "print decisions as lines even on a terminal (no console)")
	db := fs.String("db", "", "database file (default: a temporary one, removed afterwards)")
	verbose := fs.Bool("v", false, "log the bridge's own messages (to stderr; to a file with the console)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *duration < 0 {
		return fmt.Errorf("--duration must not be negative")
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano()%1_000_000) + 1
	}
	console := !*headless && isTerminal(stdout)
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		w := stderr
		if console { // the console owns the screen
			f, err := os.CreateTemp("", "presencebridge-demo-*.log")
			if err != nil {
				return err
			}
			defer f.Close()
			fmt.Fprintf(stderr, "logging to %s\n", f.Name())
			w = f
		}
		logger = slog.New(slog.NewTextHandler(w, nil))
	}
	ctx, stop := signalContext()
	defer stop()
	opts := service.DemoOptions{DB: *db, Users: *users, Seed: *seed, Duration: *duration, Every: *every, TeamsMode: *mode, Version: version, Logger: logger}
	if console {
		opts.Console = func(ctx context.Context, ctrl *service.Local) error {
			return tui.Run(ctx, ctrl, tui.Options{Version: version}, stdin, stdout)
		}
	}
	return service.Demo(ctx, opts, stdout)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func cmdConsole(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("console", "console [--socket PATH]", stderr)
	sock := socketFlag(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	c := service.NewClient(*sock)
	defer c.Close()
	ctx, stop := signalContext()
	defer stop()
	if _, err := c.Overview(ctx); err != nil {
		return err // not running: say so before taking the screen
	}
	return tui.Run(ctx, c, tui.Options{Version: version}, stdin, stdout)
}

// teamsSetup opens the database read-only (the service may hold it: then
// the caller says to stop it) and builds the Teams adapter's configuration.
func teamsSetup(dbPath string) (teams.Config, []psync.User, *store.DB, error) {
	db, err := store.Open(dbPath, store.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, store.ErrInUse) {
			return teams.Config{}, nil, nil, fmt.Errorf("%w (the service holds it: stop it for this, or use the console)", err)
		}
		return teams.Config{}, nil, nil, err
	}
	values, err := db.Settings()
	if err != nil {
		db.Close()
		return teams.Config{}, nil, nil, err
	}
	users, err := db.Users()
	if err != nil {
		db.Close()
		return teams.Config{}, nil, nil, err
	}
	cfg, err := teams.ConfigFromSettings(values)
	cfg.Store = service.StorePersistence(db)
	return cfg, users, db, err
}

func cmdDoctor(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("doctor", "doctor [--db FILE]", stderr)
	dbf := dbFlag(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, users, db, err := teamsSetup(*dbf)
	if db == nil {
		return err
	}
	defer db.Close()
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	failed := 0
	teams.Doctor(ctx, cfg, users, func(c psync.Check) {
		state := "ok    "
		if c.Failed() {
			state = "FAILED"
			failed++
		}
		fmt.Fprintf(stdout, "%s %s: %s\n", state, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(stdout, "       fix: %s\n", c.Fix)
		}
	})
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

func cmdSignIn(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("signin", "signin [--db FILE] ACCOUNT", stderr)
	dbf := dbFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("name one service account (a UPN listed in teams.service_accounts)")
	}
	cfg, _, db, err := teamsSetup(*dbf)
	if db == nil {
		return err
	}
	defer db.Close()
	if err != nil {
		return err
	}
	c, err := teams.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, stop := signalContext()
	defer stop()
	done := make(chan error, 1)
	p, err := c.StartSignInWait(ctx, fs.Arg(0), func(err error) { done <- err })
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n(the code expires at %s)\n", p.Message, p.Expires.Local().Format("15:04"))
	select {
	case err := <-done:
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is signed in; the sign-in is kept in %s\n", p.Account, db.Path())
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func cmdRun(args []string, stderr io.Writer) error {
	fs := newFlags("run", "run [--db FILE] [--socket PATH] [--group NAME] [--metrics ADDR [--metrics-allow-remote]] [--service]", stderr)
	dbf := dbFlag(fs)
	sock := socketFlag(fs)
	group := fs.String("group", service.DefaultGroup, "admin group allowed on the control socket besides root")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this host:port, e.g. 127.0.0.1:9464 (default: off)")
	remote := fs.Bool("metrics-allow-remote", false, "allow a --metrics address that is not loopback (the endpoint has no authentication)")
	asService := fs.Bool("service", false, "run under the OS service manager, logging to the system log (install sets it)")
	verbose := fs.Bool("v", false, "log debug messages too (foreground)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	path, err := dbPath(*dbf)
	if err != nil {
		return err
	}
	opts := service.DaemonOptions{
		DBPath: path, Socket: *sock, Group: *group, MetricsAddr: *metrics, MetricsAllowRemote: *remote,
		Version: version,
		// The real sides, built from the stored settings.
		Adapters: service.RealAdapters(service.AdapterOptions{}),
	}
	if *asService {
		return service.RunService(opts)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts.Mode = "foreground"
	ctx, stop := signalContext()
	defer stop()
	return service.RunDaemon(ctx, opts)
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "version", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "presencebridge %s%s (%s %s/%s)\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

const configUsage = `config list                    every setting (secrets masked) and every profile
  config get KEY                 one value; KEY is a setting, profile.NAME.FLAG or user.ID.profile
  config set KEY VALUE           change it (checked first; nothing is written on error)
  config unset KEY               back to the default (settings only)
  config export [FILE]           settings, profiles and users as YAML (secrets masked)
  config import FILE|-           replace them from YAML (all or nothing)
  config import-group GROUP_ID   add the members of an Entra group as users (needs the
                                 Teams settings and GroupMember.Read.All)`

func cmdConfig(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("config", configUsage, stderr)
	dbf := dbFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errUsage
	}
	want := map[string]int{"list": 0, "get": 1, "set": 2, "unset": 1, "export": -1, "import": 1, "import-group": 1}
	n, ok := want[rest[0]]
	if !ok {
		fs.Usage()
		return fmt.Errorf("unknown config command %q", rest[0])
	}
	if n >= 0 && len(rest)-1 != n || n < 0 && len(rest) > 2 {
		fs.Usage()
		return fmt.Errorf("config %s: wrong number of arguments", rest[0])
	}
	path, err := dbPath(*dbf)
	if err != nil {
		return err
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	switch rest[0] {
	case "list":
		return configList(db, stdout)
	case "get":
		v, err := configGet(db, rest[1])
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, v)
		return nil
	case "set":
		return configSet(db, rest[1], rest[2])
	case "unset":
		if _, err := psync.LookupSetting(rest[1]); err != nil {
			return err
		}
		return db.UnsetSetting(rest[1])
	case "export":
		w := stdout
		if len(rest) == 2 && rest[1] != "-" {
			f, err := os.OpenFile(rest[1], os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		return db.ExportYAML(w, false)
	case "import":
		r := stdin
		if rest[1] != "-" {
			f, err := os.Open(rest[1])
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		return db.ImportYAML(r)
	case "import-group":
		return importGroup(db, rest[1], stdout)
	}
	return nil
}

func configList(db *store.DB, w io.Writer) error {
	values, err := db.Settings()
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "# settings (* = set in the database)")
	for _, s := range psync.SettingSpecs() {
		v, set := values[s.Key]
		mark := " "
		if set {
			mark = "*"
		} else {
			v = s.Default
		}
		fmt.Fprintf(w, "%s %-22s = %-34q # %s\n", mark, s.Key, s.Show(v), s.Help)
	}
	profiles, err := db.Profiles()
	if err != nil {
		return err
	}
	users, err := db.Users()
	if err != nil {
		return err
	}
	count := map[string]int{}
	def := values["default_profile"]
	if def == "" {
		def = psync.DefaultProfileName
	}
	for _, u := range users {
		p := u.Profile
		if p == "" {
			p = def
		}
		count[p]++
	}
	fmt.Fprintln(w, "\n# profiles")
	for _, p := range profiles {
		fmt.Fprintf(w, "profile %s (%d users)\n", p.Name, count[p.Name])
		for _, f := range psync.ProfileFlags {
			v, _ := p.Flag(f.Flag)
			fmt.Fprintf(w, "  %-34s = %-5v # %s\n", f.Flag, v, f.Help)
		}
	}
	fmt.Fprintf(w, "\n# users: %d (config export shows them)\n", len(users))
	return nil
}

// splitKey splits profile.NAME.FLAG and user.ID.profile keys.
func splitKey(key string) (kind, name, field string, ok bool) {
	for _, k := range []string{"profile.", "user."} {
		if rest, found := strings.CutPrefix(key, k); found {
			i := strings.LastIndex(rest, ".")
			if i <= 0 || i == len(rest)-1 {
				return "", "", "", false
			}
			return strings.TrimSuffix(k, "."), rest[:i], rest[i+1:], true
		}
	}
	return "", "", "", false
}

func configGet(db *store.DB, key string) (string, error) {
	if kind, name, field, ok := splitKey(key); ok {
		switch kind {
		case "profile":
			p, err := db.Profile(name)
			if err != nil {
				return "", err
			}
			v, err := p.Flag(psync.ProfileFlag(field))
			return fmt.Sprint(v), err
		case "user":
			if field != "profile" {
				return "", fmt.Errorf("user.%s.%s: only user.ID.profile can be read here (config export shows users)", name, field)
			}
			u, err := findUser(db, psync.UserID(name))
			if err != nil {
				return "", err
			}
			return u.Profile, nil
		}
	}
	spec, err := psync.LookupSetting(key)
	if err != nil {
		return "", err
	}
	values, err := db.Settings()
	if err != nil {
		return "", err
	}
	v, ok := values[key]
	if !ok {
		v = spec.Default
	}
	return spec.Show(v), nil
}

func configSet(db *store.DB, key, value string) error {
	if kind, name, field, ok := splitKey(key); ok {
		switch kind {
		case "profile":
			p, err := db.Profile(name)
			if err != nil {
				// A new profile starts from the defaults.
				if verr := psync.ValidateProfileName(name); verr != nil {
					return verr
				}
				p = psync.NewProfile(name)
			}
			var b bool
			switch strings.ToLower(value) {
			case "true", "on", "yes", "1":
				b = true
			case "false", "off", "no", "0":
			default:
				return fmt.Errorf("%s: %q is not on or off", key, value)
			}
			if err := p.SetFlag(psync.ProfileFlag(field), b); err != nil {
				return err
			}
			return db.PutProfile(p)
		case "user":
			if field != "profile" {
				return fmt.Errorf("%s: only user.ID.profile can be set here; use config import for users", key)
			}
			u, err := findUser(db, psync.UserID(name))
			if err != nil {
				return err
			}
			u.Profile = value
			return db.PutUser(u)
		}
	}
	return db.SetSetting(key, value)
}

func findUser(db *store.DB, id psync.UserID) (psync.User, error) {
	users, err := db.Users()
	if err != nil {
		return psync.User{}, err
	}
	for _, u := range users {
		if u.ID == id {
			return u, nil
		}
	}
	return psync.User{}, fmt.Errorf("no user %q", id)
}

// --- the OS service and the control-API client ------------------------------

// socketFlag adds --socket with the PRESENCEBRIDGE_SOCKET / OS default.
func socketFlag(fs *flag.FlagSet) *string {
	return fs.String("socket", service.DefaultSocket(), "control socket of the running bridge (env PRESENCEBRIDGE_SOCKET)")
}

func cmdService(action string, args []string, stdout, stderr io.Writer) error {
	if action != "install" {
		fs := newFlags(action, action+"\n\n"+action+"s the "+service.Name+" OS service (needs root / an elevated prompt).", stderr)
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			fs.Usage()
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		if err := service.Control(action); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: done\n", action)
		return nil
	}
	fs := newFlags("install", "install [--dry-run] [--target systemd|launchd|windows] [--db FILE] [--socket PATH] [--group NAME] [--metrics ADDR]", stderr)
	dry := fs.Bool("dry-run", false, "print what would be installed and change nothing")
	target := fs.String("target", service.NativeTarget(), "service manager to render for (other than this OS only with --dry-run)")
	exe := fs.String("executable", "", "program the service runs (default: this binary)")
	db := fs.String("db", "", "database of the service (default: the target's system path)")
	sock := fs.String("socket", "", "control socket of the service (default: the target's system path)")
	group := fs.String("group", service.DefaultGroup, "admin group allowed on the control socket besides root")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this host:port (default: off)")
	remote := fs.Bool("metrics-allow-remote", false, "allow a --metrics address that is not loopback")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	plan, err := service.PlanInstall(service.InstallOptions{Target: *target, Executable: *exe, DB: *db, Socket: *sock,
		Group: *group, MetricsAddr: *metrics, MetricsAllowRemote: *remote})
	if err != nil {
		return err
	}
	if *dry {
		plan.WriteDryRun(stdout)
		return nil
	}
	if err := service.Install(plan); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "installed %s; start it with: presencebridge start\n", service.Name)
	return nil
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "status [--socket PATH] [--json]", stderr)
	sock := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the bridge's overview as JSON")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	c := service.NewClient(*sock)
	defer c.Close()
	ctx, stop := signalContext()
	defer stop()
	ov, err := c.Overview(ctx)
	if *asJSON {
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(ov)
	}
	fmt.Fprintf(stdout, "OS service: %s\n", service.ServiceState())
	if err != nil {
		return err
	}
	service.WriteOverview(stdout, ov, time.Now())
	return nil
}

func cmdUsers(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("users", "users [--socket PATH] [--json]", stderr)
	sock := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the users as JSON")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	c := service.NewClient(*sock)
	defer c.Close()
	ctx, stop := signalContext()
	defer stop()
	us, err := c.Users(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(us)
	}
	service.WriteUsers(stdout, us, time.Now())
	return nil
}

func cmdLogs(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logs", "logs [-n N] [-f] [--user ID] [--socket PATH] [--json]", stderr)
	sock := socketFlag(fs)
	n := fs.Int("n", 20, fmt.Sprintf("show the last N decisions (1..%d)", service.MaxAuditLimit))
	follow := fs.Bool("f", false, "then follow new decisions live until Ctrl-C")
	user := fs.String("user", "", "only this user's decisions")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *n < 1 || *n > service.MaxAuditLimit {
		return fmt.Errorf("-n must be between 1 and %d, not %d", service.MaxAuditLimit, *n)
	}
	c := service.NewClient(*sock)
	defer c.Close()
	ctx, stop := signalContext()
	defer stop()
	// Subscribe before reading the past, so nothing falls between the two
	// (a decision made in that instant may show twice).
	var live <-chan psync.Decision
	if *follow {
		var err error
		if live, err = c.Events(ctx); err != nil {
			return err
		}
	}
	var past []psync.Decision
	var err error
	if *user != "" {
		past, err = c.History(ctx, psync.UserID(*user), *n)
	} else {
		past, err = c.Audit(ctx, *n)
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	show := func(d psync.Decision) {
		if *asJSON {
			enc.Encode(d)
			return
		}
		service.WriteDecision(stdout, d)
	}
	for i := len(past) - 1; i >= 0; i-- { // oldest first, like a log
		show(past[i])
	}
	if !*follow {
		return nil
	}
	for d := range live {
		if *user == "" || d.User == psync.UserID(*user) {
			show(d)
		}
	}
	if ctx.Err() == nil {
		return errors.New("the service closed the stream (stopped or restarting)")
	}
	return nil
}

// importGroup adds the members of an Entra group as users. A member's id
// is the phone system's key for them: the UCServer contact id for their
// e-mail, else their UPN. Users already there keep their profile.
func importGroup(db *store.DB, groupID string, stdout io.Writer) error {
	values, err := db.Settings()
	if err != nil {
		return err
	}
	cfg, err := teams.ConfigFromSettings(values)
	if err != nil {
		return err
	}
	cfg.Mode = "poll" // reading the directory needs no subscription
	c, err := teams.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, stop := signalContext()
	defer stop()
	members, err := c.GroupMembers(ctx, groupID)
	if err != nil {
		return fmt.Errorf("group %s: %w", groupID, err)
	}
	have, err := db.Users()
	if err != nil {
		return err
	}
	byUPN := map[string]psync.User{}
	for _, u := range have {
		byUPN[strings.ToLower(u.UPN)] = u
	}
	added := 0
	for _, m := range members {
		if old, ok := byUPN[strings.ToLower(m.UPN)]; ok {
			old.TeamsID = m.TeamsID
			if err := db.PutUser(old); err != nil {
				return err
			}
			continue
		}
		if values["phone.system"] == "ucserver" {
			m.ID = psync.UserID(ucserver.ContactIDForEmail(m.UPN))
		}
		if err := db.PutUser(m); err != nil {
			return err
		}
		added++
	}
	fmt.Fprintf(stdout, "%d members, %d new users, %d already known\n", len(members), added, len(members)-added)
	return nil
}
