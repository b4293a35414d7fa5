package service_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	ksvc "github.com/kardianos/service"

	"github.com/presencebridge/presencebridge/service"
)

func TestPlanInstall_Systemd(t *testing.T) {
	p, err := service.PlanInstall(service.InstallOptions{Target: service.TargetSystemd, Executable: "/opt/presence bridge/presencebridge",
		MetricsAddr: "127.0.0.1:9464", WebhookListen: ":8443"})
	if err != nil {
		t.Fatal(err)
	}
	// What kardianos writes is the rendered text itself.
	if p.Config.Option["SystemdScript"] != p.Text || p.Config.Name != "presencebridge" {
		t.Fatalf("kardianos config: %+v", p.Config)
	}
	for _, want := range []string{
		"[Unit]\n",
		"ConditionFileIsExecutable=/opt/presence\\x20bridge/presencebridge\n",
		`ExecStart="/opt/presence bridge/presencebridge" run --service --db /var/lib/presencebridge/state.db --socket /run/presencebridge/control.sock --group presencebridge --metrics 127.0.0.1:9464` + "\n",
		"Restart=on-failure\n",
		"StateDirectory=presencebridge\n",
		"TimeoutStopSec=20s\n",
		"WantedBy=multi-user.target\n",
		"User=presencebridge\nGroup=presencebridge\n",
		"RuntimeDirectory=presencebridge\n",
		"ReadWritePaths=/var/lib/presencebridge /run/presencebridge\n",
		"ProtectSystem=strict\n",
		"ProtectHome=yes\n",
		"PrivateTmp=yes\n",
		"PrivateDevices=yes\n",
		"NoNewPrivileges=yes\n",
		"CapabilityBoundingSet=\n",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n",
		"SystemCallFilter=@system-service\n",
		"MemoryMax=1G\n",
		"LimitNOFILE=65536\n",
	} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("unit lacks %q:\n%s", want, p.Text)
		}
	}
	// Writable: the state and runtime directories, nothing else; no
	// capability while the webhook listens above 1023.
	if strings.Count(p.Text, "ReadWritePaths=") != 1 || strings.Contains(p.Text, "AmbientCapabilities") || strings.Contains(p.Text, "CAP_") {
		t.Errorf("unit writes or may more than it needs:\n%s", p.Text)
	}
	if strings.Contains(p.Text, "{{") || strings.Contains(p.Text, "Restart=always") {
		t.Fatalf("unit:\n%s", p.Text)
	}
	var out bytes.Buffer
	p.WriteDryRun(&out)
	if !strings.HasPrefix(out.String(), "# would write /etc/systemd/system/presencebridge.service") || !strings.Contains(out.String(), p.Text) {
		t.Fatalf("dry run:\n%s", out.String())
	}

	// systemd expands % and $ and splits on spaces: both are quoted.
	p, err = service.PlanInstall(service.InstallOptions{Target: service.TargetSystemd, Executable: "/usr/bin/presencebridge", DB: "/srv/100% $HOME/state.db"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Text, `--db "/srv/100%% $$HOME/state.db"`) || strings.Contains(p.Text, "StateDirectory") ||
		!strings.Contains(p.Text, `ReadWritePaths="/srv/100%% $HOME" /run/presencebridge`+"\n") {
		t.Fatalf("quoting:\n%s", p.Text)
	}
}

func TestPlanInstall_Launchd(t *testing.T) {
	p, err := service.PlanInstall(service.InstallOptions{Target: service.TargetLaunchd, Executable: "/usr/local/bin/presence&bridge"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Config.Option["LaunchdConfig"] != p.Text || p.File != "/Library/LaunchDaemons/presencebridge.plist" {
		t.Fatalf("kardianos config: %+v", p.Config)
	}
	// The plist is well-formed XML with the arguments in order.
	var plist struct {
		Dict struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal([]byte(p.Text), &plist); err != nil {
		t.Fatalf("plist is not XML: %v\n%s", err, p.Text)
	}
	dec := xml.NewDecoder(strings.NewReader(p.Text))
	var strs []string
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "string" {
			var s string
			if err := dec.DecodeElement(&s, &se); err != nil {
				t.Fatal(err)
			}
			strs = append(strs, s)
		}
	}
	want := []string{"presencebridge", "/usr/local/bin/presence&bridge", "run", "--service", "--db",
		"/Library/Application Support/presencebridge/state.db", "--socket", "/Library/Application Support/presencebridge/control.sock", "--group", "_presencebridge"}
	if len(strs) < len(want) || strings.Join(strs[:len(want)], "|") != strings.Join(want, "|") {
		t.Fatalf("plist strings %q", strs)
	}
	for _, s := range []string{"<key>KeepAlive</key>", "<key>SuccessfulExit</key>\n\t\t<false/>", "<key>RunAtLoad</key>\n\t<true/>",
		"<key>UserName</key>\n\t<string>_presencebridge</string>", "<key>GroupName</key>\n\t<string>_presencebridge</string>", "<key>Umask</key>\n\t<integer>63</integer>"} {
		if !strings.Contains(p.Text, s) {
			t.Errorf("plist lacks %q", s)
		}
	}
}

func TestPlanInstall_Windows(t *testing.T) {
	p, err := service.PlanInstall(service.InstallOptions{Target: service.TargetWindows, Executable: `C:\Program Files\presencebridge\presencebridge.exe`,
		DB: `C:\ProgramData\presencebridge\state.db`, Socket: `C:\ProgramData\presencebridge\control.sock`})
	if err != nil {
		t.Fatal(err)
	}
	cmd := `"C:\Program Files\presencebridge\presencebridge.exe" run --service --db C:\ProgramData\presencebridge\state.db --socket C:\ProgramData\presencebridge\control.sock --group presencebridge`
	if !strings.Contains(p.Text, "Command line:  "+cmd+"\n") || !strings.Contains(p.Text, "restart after 5s") {
		t.Fatalf("windows service:\n%s", p.Text)
	}
	o := p.Config.Option
	if o["OnFailure"] != "restart" || o["StartType"] != "automatic" || o["OnFailureDelayDuration"] != "5s" {
		t.Fatalf("kardianos options %v", o)
	}
	if strings.Join(p.Config.Arguments, " ") != strings.Join(p.Args, " ") || p.Config.Executable != `C:\Program Files\presencebridge\presencebridge.exe` {
		t.Fatalf("config %+v", p.Config)
	}
}

func TestPlanInstall_Refuses(t *testing.T) {
	for _, tc := range []struct {
		o   service.InstallOptions
		msg string
	}{
		{service.InstallOptions{Target: "upstart", Executable: "/x"}, "unknown service target"},
		{service.InstallOptions{Target: service.TargetSystemd, Executable: "/x", DB: "/srv/{{Name}}.db"}, "cannot be written"},
		{service.InstallOptions{Target: service.TargetSystemd, Executable: "/x", Socket: "/run/a\nb"}, "cannot be written"},
		{service.InstallOptions{Target: service.TargetSystemd, Executable: "/x", MetricsAddr: "0.0.0.0:9464"}, "--metrics-allow-remote"},
	} {
		if _, err := service.PlanInstall(tc.o); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.msg)
		}
	}
	// A real install is only for this machine's own service manager.
	p, err := service.PlanInstall(service.InstallOptions{Target: service.TargetWindows, Executable: `C:\x.exe`})
	if err != nil {
		t.Fatal(err)
	}
	if service.NativeTarget() != service.TargetWindows {
		if err := service.Install(p); err == nil || !strings.Contains(err.Error(), "only for --dry-run") {
			t.Fatalf("foreign install: %v", err)
		}
	}
	// On Linux without systemd (containers, SysV) the unit would be
	// ignored by kardianos: refused before anything is touched. (With
	// systemd this would really install, so it is not tried there.)
	if service.NativeTarget() == service.TargetSystemd && ksvc.Platform() != "linux-systemd" {
		p, err := service.PlanInstall(service.InstallOptions{Executable: "/usr/local/bin/presencebridge"})
		if err != nil {
			t.Fatal(err)
		}
		if err := service.Install(p); err == nil || !strings.Contains(err.Error(), "installs itself only as a linux-systemd service") {
			t.Fatalf("install without systemd: %v", err)
		}
	}
}
