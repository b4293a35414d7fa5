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
		dir := os.Getenv("ProgramData")
		if dir == "" {
			dir = `C:\ProgramData`
		}
		return dir + `\presencebridge\control.sock`
	case TargetLaunchd:
		return "/var/run/presencebridge/control.sock"
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
}

// Plan is what an install creates: the kardianos configuration and, for
// systemd and launchd, the exact file it writes.
type Plan struct {
	Target string
	Config *ksvc.Config
	File   string // where the unit or plist goes ("" on Windows)
	Text   string // its content, or the Windows service's settings
	Args   []string
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
	if o.Group == "" {
		o.Group = DefaultGroup
	}
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
	p.Config = &ksvc.Config{
		Name: Name, DisplayName: displayName, Description: description,
		Executable: o.Executable, Arguments: args,
		Option: ksvc.KeyValue{},
	}
	switch o.Target {
	case TargetSystemd:
		p.File = "/etc/systemd/system/" + Name + ".service"
		p.Text = renderSystemd(o.Executable, args, o.DB)
		p.Config.Option["SystemdScript"] = p.Text
		p.Config.Dependencies = []string{"After=network-online.target", "Wants=network-online.target"}
	case TargetLaunchd:
		p.File = "/Library/LaunchDaemons/" + Name + ".plist"
		p.Text = renderLaunchd(o.Executable, args)
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
func (p Plan) WriteDryRun(w io.Writer) {
	switch p.Target {
	case TargetSystemd:
		fmt.Fprintf(w, "# would write %s (mode 0644):\n%s# then: systemctl enable %s.service && systemctl daemon-reload\n", p.File, p.Text, Name)
	case TargetLaunchd:
		fmt.Fprintf(w, "<!-- would write %s -->\n%s<!-- then start it: launchctl load %s -->\n", p.File, p.Text, p.File)
	case TargetWindows:
		fmt.Fprintf(w, "would create this Windows service (Service Control Manager):\n%s", p.Text)
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

func renderSystemd(exe string, args []string, db string) string {
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
# A stop releases what the bridge holds (presence-rules.md §4) within 10 s.
KillSignal=SIGTERM
TimeoutStopSec=20s
`, description, strings.ReplaceAll(exe, " ", `\x20`), strings.Join(cmd, " "))
	if filepath.ToSlash(filepath.Dir(db)) == "/var/lib/presencebridge" {
		b.WriteString("StateDirectory=presencebridge\nStateDirectoryMode=0700\n")
	}
	b.WriteString(`UMask=0077
SyslogIdentifier=presencebridge
NoNewPrivileges=yes
ProtectSystem=full
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`)
	return b.String()
}

var plistEscaper = strings.NewReplacer(`&`, "&amp;", `'`, "&#39;", `<`, "&lt;", `>`, "&gt;", `"`, "&#34;")

func renderLaunchd(exe string, args []string) string {
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
	<key>StandardErrorPath</key>
	<string>/Library/Logs/presencebridge.err.log</string>
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
