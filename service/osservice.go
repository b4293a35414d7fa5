package service

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	ksvc "github.com/kardianos/service"
)

// Name is the OS service's name: the systemd unit, the launchd label and
// the Windows service.
const Name = "presencebridge"

const (
	displayName = "presencebridge"
	description = "presencebridge keeps Microsoft Teams presence and the office phone system in step"
)

// Service-manager targets an install can be rendered for.
const (
	TargetSystemd = "systemd"
	TargetLaunchd = "launchd"
	TargetWindows = "windows"
)

// NativeTarget is the service manager of this OS ("" where none is supported).
func NativeTarget() string {
	switch runtime.GOOS {
	case "linux":
		return TargetSystemd
	case "darwin":
		return TargetLaunchd
	case "windows":
		return TargetWindows
	}
	return ""
}

// DefaultDBPath is where the service keeps its database on a target.
func DefaultDBPath(target string) string {
	switch target {
	case TargetWindows:
		dir := os.Getenv("ProgramData")
		if dir == "" {
			dir = `C:\ProgramData`
		}
		return dir + `\presencebridge\state.db`
	case TargetLaunchd:
		return "/Library/Application Support/presencebridge/state.db"
	}
	return "/var/lib/presencebridge/state.db"
}

// defaultSocketFor is DefaultSocket for a target that may not be this OS.
func defaultSocketFor(target string) string {
	switch target {
	case TargetWindows:
		return defaultPipe
	case TargetLaunchd:
		// Beside the database: the service runs as _presencebridge, which
		// cannot make a directory in /var/run, and launchd makes none.
		return "/Library/Application Support/presencebridge/control.sock"
	}
	return "/run/presencebridge/control.sock"
}

// InstallOptions are the knobs of `presencebridge install`.
type InstallOptions struct {
	Target             string // TargetSystemd, TargetLaunchd, TargetWindows; "" = NativeTarget()
	Executable         string // "" = this binary
	DB                 string // "" = DefaultDBPath(Target)
	Socket             string // "" = the target's default socket
	Group              string // admin group of the control socket; "" = DefaultGroup
	MetricsAddr        string // "" = no metrics endpoint
	MetricsAllowRemote bool
	// WebhookListen decides whether the unit may bind a port below 1024;
	// "" = teams.webhook_listen as stored in DB (its default :8443 when
	// there is no database yet).
	WebhookListen string
}

// Plan is what an install creates: the kardianos configuration and, for
// systemd and launchd, the exact file it writes.
type Plan struct {
	Target string
	Config *ksvc.Config
	File   string // where the unit or plist goes ("" on Windows)
	Text   string // its content, or the Windows service's settings
	Args   []string
	// Account is the system user and group the service runs as ("" on
	// Windows: LocalSystem).
	Account string
	// Setup is what install does before it writes the unit: the account,
	// and the state directory and database handed to it.
	Setup []SetupStep
	// Problems would stop the installed service from working: Install
	// refuses a plan that has any, and a dry run lists them.
	Problems []string
}

// PlanInstall renders what an install would create. The unit and plist are
// rendered here and handed to kardianos as its SystemdScript/LaunchdConfig
// template, so the dry run shows byte for byte what kardianos writes.
func PlanInstall(o InstallOptions) (Plan, error) {
	if o.Target == "" {
		o.Target = NativeTarget()
	}
	switch o.Target {
	case TargetSystemd, TargetLaunchd, TargetWindows:
	case "":
		return Plan{}, fmt.Errorf("installing as a service is not supported on %s", runtime.GOOS)
	default:
		return Plan{}, fmt.Errorf("unknown service target %q (systemd, launchd or windows)", o.Target)
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return Plan{}, fmt.Errorf("finding this program: %w", err)
		}
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		o.Executable = exe
	}
	if o.DB == "" {
		o.DB = DefaultDBPath(o.Target)
	}
	if o.Socket == "" {
		o.Socket = defaultSocketFor(o.Target)
	}
	o.Group = defaultGroupFor(o.Target, o.Group)
	args := []string{"run", "--service", "--db", o.DB, "--socket", o.Socket, "--group", o.Group}
	if o.MetricsAddr != "" {
		args = append(args, "--metrics", o.MetricsAddr)
		if o.MetricsAllowRemote {
			args = append(args, "--metrics-allow-remote")
		}
	}
	for _, v := range append([]string{o.Executable}, args...) {
		// kardianos renders the file as a template of its own: text that
		// looks like an action would be taken for one.
		if strings.Contains(v, "{{") || strings.ContainsAny(v, "\x00\n\r") {
			return Plan{}, fmt.Errorf("%q cannot be written into a service file (no {{, line breaks or NUL)", v)
		}
	}
	if o.MetricsAddr != "" {
		if err := CheckMetricsAddr(o.MetricsAddr, o.MetricsAllowRemote); err != nil {
			return Plan{}, err
		}
	}
	p := Plan{Target: o.Target, Args: args}
	if where, ok := transientExecutable(o.Executable); ok {
		p.Problems = append(p.Problems, fmt.Sprintf("%s lies in %s, which is cleaned up (go run and go test build there); "+
			"put the binary where it stays, e.g. sudo install -m 0755 %s /usr/local/bin/presencebridge, then run /usr/local/bin/presencebridge install",
			o.Executable, where, o.Executable))
	}
	sb, steps, problems := planSandbox(o)
	p.Account, p.Setup = sb.account, steps
	p.Problems = append(p.Problems, problems...)
	p.Config = &ksvc.Config{
		Name: Name, DisplayName: displayName, Description: description,
		Executable: o.Executable, Arguments: args,
		Option: ksvc.KeyValue{},
	}
	switch o.Target {
	case TargetSystemd:
		p.File = "/etc/systemd/system/" + Name + ".service"
		p.Text = renderSystemd(o.Executable, args, sb)
		p.Config.Option["SystemdScript"] = p.Text
		p.Config.Dependencies = []string{"After=network-online.target", "Wants=network-online.target"}
	case TargetLaunchd:
		p.File = "/Library/LaunchDaemons/" + Name + ".plist"
		p.Text = renderLaunchd(o.Executable, args, sb)
		p.Config.Option["LaunchdConfig"] = p.Text
		p.Config.Option["KeepAlive"] = true
		p.Config.Option["RunAtLoad"] = true
	case TargetWindows:
		p.Config.Option["StartType"] = "automatic"
		p.Config.Option["DelayedAutoStart"] = true
		p.Config.Option["OnFailure"] = "restart"
		p.Config.Option["OnFailureDelayDuration"] = "5s"
		p.Config.Option["OnFailureResetPeriod"] = 86400
		p.Text = renderWindows(o.Executable, args)
	}
	return p, nil
}

// WriteDryRun prints what Install would do, without touching the machine.
// For systemd every line but the unit's is a comment, so the output as a
// whole is the unit file (systemd-analyze can read it).
func (p Plan) WriteDryRun(w io.Writer) {
	comment := func(format string, a ...any) {
		for _, line := range strings.Split(strings.TrimRight(fmt.Sprintf(format, a...), "\n"), "\n") {
			switch p.Target {
			case TargetLaunchd:
				fmt.Fprintf(w, "<!-- %s -->\n", strings.ReplaceAll(line, "--", "- -"))
			case TargetWindows:
				fmt.Fprintf(w, "%s\n", line)
			default:
				fmt.Fprintf(w, "# %s\n", line)
			}
		}
	}
	for _, pr := range p.Problems {
		comment("REFUSED: install would stop here: %s", pr)
	}
	switch p.Target {
	case TargetSystemd:
		comment("would write %s (mode 0644):", p.File)
		fmt.Fprint(w, p.Text)
	case TargetLaunchd:
		comment("would write %s", p.File)
		fmt.Fprint(w, p.Text)
	case TargetWindows:
		fmt.Fprintf(w, "would create this Windows service (Service Control Manager):\n%s", p.Text)
	}
	if len(p.Setup) > 0 {
		comment("before writing it, as root, would run (each step only when needed):")
		for _, s := range p.Setup {
			comment("  %s", s)
		}
	}
	switch p.Target {
	case TargetSystemd:
		comment("then: systemctl enable %s.service && systemctl daemon-reload", Name)
	case TargetLaunchd:
		comment("then start it: launchctl load %s", p.File)
	}
}

// systemdQuote quotes one ExecStart argument: systemd expands % and $, and
// splits on spaces outside double quotes.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`).Replace(s)
	if r == "" || strings.ContainsAny(s, " \t\"'\\") || r != s {
		return `"` + r + `"`
	}
	return r
}

// systemdPathQuote quotes one path of a list setting (ReadWritePaths=):
// systemd resolves % specifiers there and splits on spaces.
func systemdPathQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`).Replace(s)
	if strings.ContainsAny(s, " \t\"'\\") {
		return `"` + r + `"`
	}
	return r
}

// MemoryMax and LimitNOFILE of the unit. 10,000 users need well under
// 256 MB; the cap stops a runaway at 1 GiB instead of the OOM killer
// choosing among the machine's processes. The webhook's connection limit
// stays well below the descriptor limit.
const (
	unitMemoryMax   = "1G"
	unitLimitNOFILE = 65536
)

func renderSystemd(exe string, args []string, sb sandbox) string {
	var b strings.Builder
	cmd := []string{systemdQuote(exe)}
	for _, a := range args {
		cmd = append(cmd, systemdQuote(a))
	}
	fmt.Fprintf(&b, `[Unit]
Description=%s
ConditionFileIsExecutable=%s
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=simple
ExecStart=%s
# Restart after a crash, not after "presencebridge stop".
Restart=on-failure
RestartSec=5s
# A stop releases what the bridge holds (sync/RULES.md §4.7) within 10 s.
KillSignal=SIGTERM
TimeoutStopSec=20s
SyslogIdentifier=presencebridge

# Its own user, never root; the admin group reaches the control socket.
User=%s
Group=%s
`, description, strings.ReplaceAll(exe, " ", `\x20`), strings.Join(cmd, " "), sb.account, sb.account)
	customGroup := sb.group != sb.account
	if customGroup {
		// To give the control socket to the admin group it must be a member.
		fmt.Fprintf(&b, "SupplementaryGroups=%s\n", sb.group)
	}
	if sb.stateRel != "" {
		fmt.Fprintf(&b, "StateDirectory=%s\nStateDirectoryMode=0750\n", sb.stateRel)
	}
	if sb.runtimeRel != "" {
		mode := "0750"
		if customGroup {
			mode = "0755" // members of another group must reach the socket (0660 itself)
		}
		fmt.Fprintf(&b, "RuntimeDirectory=%s\nRuntimeDirectoryMode=%s\n", sb.runtimeRel, mode)
	}
	rw := make([]string, len(sb.readWrite))
	for i, p := range sb.readWrite {
		rw[i] = systemdPathQuote(p)
	}
	fmt.Fprintf(&b, `UMask=0077

# The sandbox (systemd-analyze security rates it; install_test checks the
# score). It writes only its database and socket directories.
ReadWritePaths=%s
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
# The control socket reads a caller's groups with SO_PEERGROUPS, not from
# /proc, so other processes can be hidden.
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
LockPersonality=yes
# Go writes no executable memory.
MemoryDenyWriteExecute=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RemoveIPC=yes
KeyringMode=private
`, strings.Join(rw, " "))
	if sb.bindLow {
		fmt.Fprintf(&b, `# teams.webhook_listen is %s, below port 1024: only that capability.
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE
`, sb.listen)
	} else {
		b.WriteString("CapabilityBoundingSet=\n")
	}
	b.WriteString(`# The Graph API, the phone system and the webhook; the control socket.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
`)
	if customGroup {
		b.WriteString("SystemCallFilter=@chown\n")
	}
	fmt.Fprintf(&b, `# A refused call fails with EPERM (Go then does without, e.g. setrlimit)
# instead of killing the process.
SystemCallErrorNumber=EPERM
MemoryMax=%s
LimitNOFILE=%d

[Install]
WantedBy=multi-user.target
`, unitMemoryMax, unitLimitNOFILE)
	return b.String()
}

var plistEscaper = strings.NewReplacer(`&`, "&amp;", `'`, "&#39;", `<`, "&lt;", `>`, "&gt;", `"`, "&#34;")

func renderLaunchd(exe string, args []string, sb sandbox) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + Name + `</string>
	<key>ProgramArguments</key>
	<array>
`)
	for _, a := range append([]string{exe}, args...) {
		fmt.Fprintf(&b, "\t\t<string>%s</string>\n", plistEscaper.Replace(a))
	}
	b.WriteString(`	</array>
	<key>RunAtLoad</key>
	<true/>
	<!-- Restart after a crash, not after "presencebridge stop". -->
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>5</integer>
	<!-- A stop releases what the bridge holds within 10 s. -->
	<key>ExitTimeOut</key>
	<integer>20</integer>
	<!-- Its own user, never root; files only for it (umask 077). -->
	<key>UserName</key>
	<string>` + plistEscaper.Replace(sb.account) + `</string>
	<key>GroupName</key>
	<string>` + plistEscaper.Replace(sb.account) + `</string>
	<key>Umask</key>
	<integer>63</integer>
	<key>StandardErrorPath</key>
	<string>` + launchdLogDir + `/presencebridge.err.log</string>
</dict>
</plist>
`)
	return b.String()
}

// windowsQuote quotes one argument the way CommandLineToArgvW reads it back.
func windowsQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for _, c := range s {
		switch c {
		case '\\':
			slashes++
			continue
		case '"':
			b.WriteString(strings.Repeat(`\`, 2*slashes+1))
		default:
			b.WriteString(strings.Repeat(`\`, slashes))
		}
		slashes = 0
		b.WriteRune(c)
	}
	b.WriteString(strings.Repeat(`\`, 2*slashes))
	b.WriteByte('"')
	return b.String()
}

func renderWindows(exe string, args []string) string {
	cmd := []string{windowsQuote(exe)}
	for _, a := range args {
		cmd = append(cmd, windowsQuote(a))
	}
	return fmt.Sprintf(`  Service name:  %s
  Display name:  %s
  Description:   %s
  Command line:  %s
  Start type:    automatic (delayed start)
  Account:       LocalSystem
  On failure:    restart after 5s (failure count reset after 1 day)
  Logs:          Windows Event Log (Application), source %s
`, Name, displayName, description, strings.Join(cmd, " "), Name)
}
