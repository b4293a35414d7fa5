package service_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
)

// maxExposure is the highest systemd-analyze exposure the unit may have
// (the root unit of before rated 9.1 UNSAFE).
const maxExposure = 2.0

// TestPlanInstall_SystemdAnalyzeSecurity rates the unit `install --dry-run`
// prints, as a whole (every other line of it is a comment), with systemd's
// own tool.
func TestPlanInstall_SystemdAnalyzeSecurity(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is missing; CI installs the systemd package (.ci/run)")
		}
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	for _, tc := range []struct {
		name string
		o    service.InstallOptions
		want []string
	}{
		{"default", service.InstallOptions{WebhookListen: ":8443"}, []string{"CapabilityBoundingSet=\n"}},
		{"webhook on 443", service.InstallOptions{WebhookListen: "0.0.0.0:443"},
			[]string{"CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n", "AmbientCapabilities=CAP_NET_BIND_SERVICE\n"}},
		{"own admin group and paths", service.InstallOptions{WebhookListen: ":8443", Group: "wheel", DB: "/srv/presencebridge/state.db", Socket: "/run/pb/admin/control.sock"},
			[]string{"SupplementaryGroups=wheel\n", "ReadWritePaths=/srv/presencebridge /run/pb/admin\n", "RuntimeDirectory=pb/admin\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Target, tc.o.Executable = service.TargetSystemd, "/usr/local/bin/presencebridge"
			p, err := service.PlanInstall(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(p.Text, w) {
					t.Errorf("unit lacks %q", w)
				}
			}
			var dry bytes.Buffer
			p.WriteDryRun(&dry)
			unit := filepath.Join(t.TempDir(), "presencebridge.service")
			if err := os.WriteFile(unit, dry.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tool, "security", "--offline=true", "--no-pager", unit)
			cmd.Dir = filepath.Dir(unit)
			out, err := cmd.CombinedOutput()
			m := regexp.MustCompile(`Overall exposure level for presencebridge\.service: ([0-9.]+)`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("systemd-analyze: %v\n%s", err, out)
			}
			score, _ := strconv.ParseFloat(string(m[1]), 64)
			t.Logf("exposure %.1f", score)
			if score > maxExposure {
				var bad []string
				for _, l := range strings.Split(string(out), "\n") {
					if strings.Contains(l, "✗") {
						bad = append(bad, strings.Join(strings.Fields(l), " "))
					}
				}
				t.Fatalf("exposure %.1f, want at most %.1f; open points:\n%s", score, maxExposure, strings.Join(bad, "\n"))
			}
		})
	}
}

// The webhook's port decides the capability: read from the database at
// install time, also from one an older build wrote.
func TestPlanInstall_WebhookPortFromTheDatabase(t *testing.T) {
	for _, tc := range []struct {
		listen string
		cap    bool
	}{{"", false}, {":8443", false}, {"10.0.0.5:443", true}, {":80", true}, {":1024", false}} {
		dir := t.TempDir()
		db := filepath.Join(dir, "presencebridge", "state.db")
		s, err := store.Open(db, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if tc.listen != "" {
			if err := s.SetSetting("teams.webhook_listen", tc.listen); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		p, err := service.PlanInstall(service.InstallOptions{Target: service.TargetSystemd, Executable: "/usr/local/bin/presencebridge", DB: db})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(p.Text, "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"); got != tc.cap || (!got && !strings.Contains(p.Text, "CapabilityBoundingSet=\n")) {
			t.Errorf("webhook_listen %q: unit has CAP_NET_BIND_SERVICE %v, want %v", tc.listen, got, tc.cap)
		}
		for _, pr := range p.Problems {
			if strings.Contains(pr, "webhook") {
				t.Errorf("problem %q", pr)
			}
		}
	}
	// A database in use: install cannot tell and says why.
	db := filepath.Join(t.TempDir(), "presencebridge", "state.db")
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := service.PlanInstall(service.InstallOptions{Target: service.TargetSystemd, Executable: "/usr/local/bin/presencebridge", DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(p.Problems, "\n"), "cannot read teams.webhook_listen") {
		t.Fatalf("problems %q", p.Problems)
	}
}

// `go run . install` would install a binary from the build cache, gone
// after the next go clean.
func TestPlanInstall_RefusesATransientBinary(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "gocache")
	t.Setenv("GOCACHE", cache)
	for _, exe := range []string{
		filepath.Join(os.TempDir(), "go-build1234", "b001", "exe", "presencebridge"),
		filepath.Join(cache, "ab", "presencebridge"),
		"/var/tmp/presencebridge",
		"/home/ann/.cache/go-build/12/presencebridge",
	} {
		p, err := service.PlanInstall(service.InstallOptions{Target: service.TargetSystemd, Executable: exe, WebhookListen: ":8443"})
		if err != nil {
			t.Fatal(err)
		}
		problems := strings.Join(p.Problems, "\n")
		if !strings.Contains(problems, exe) || !strings.Contains(problems, "/usr/local/bin/presencebridge") {
			t.Errorf("%s: problems %q", exe, p.Problems)
		}
		if err := service.Install(p); err == nil || !strings.Contains(err.Error(), "/usr/local/bin/presencebridge") {
			t.Errorf("%s: install: %v", exe, err)
		}
		var dry bytes.Buffer
		p.WriteDryRun(&dry)
		if !strings.HasPrefix(dry.String(), "# REFUSED: install would stop here: "+exe) {
			t.Errorf("dry run:\n%s", dry.String())
		}
	}
	p, err := service.PlanInstall(service.InstallOptions{Target: service.TargetSystemd, Executable: "/usr/local/bin/presencebridge", WebhookListen: ":8443"})
	if err != nil || len(p.Problems) != 0 {
		t.Fatalf("a binary in /usr/local/bin: %q, %v", p.Problems, err)
	}
}

func TestPlanInstall_RefusesPathsTheSandboxHides(t *testing.T) {
	for _, tc := range []struct {
		o   service.InstallOptions
		say string
	}{
		{service.InstallOptions{DB: "/home/ann/presencebridge/state.db"}, "/home"},
		{service.InstallOptions{DB: "/root/.config/presencebridge/state.db"}, "/root"},
		{service.InstallOptions{Socket: "/tmp/pb/control.sock"}, "/tmp"},
		{service.InstallOptions{DB: "/var/lib/state.db"}, "directory of its own"},
		{service.InstallOptions{DB: "/srv/state.db"}, "directory of its own"},
	} {
		tc.o.Target, tc.o.Executable, tc.o.WebhookListen = service.TargetSystemd, "/usr/local/bin/presencebridge", ":8443"
		p, err := service.PlanInstall(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(p.Problems, "\n"), tc.say) {
			t.Errorf("%+v: problems %q, want %q", tc.o, p.Problems, tc.say)
		}
	}
	// A directory with files of others is not handed to the service.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "passwords.txt"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "state.db.bak-v1-20250101T000000Z"), []byte("x"), 0o600)
	p, err := service.PlanInstall(service.InstallOptions{Target: service.TargetLaunchd, Executable: "/usr/local/bin/presencebridge",
		DB: filepath.Join(dir, "state.db"), Socket: filepath.Join(dir, "control.sock"), WebhookListen: ":8443"})
	if err != nil {
		t.Fatal(err)
	}
	if pr := strings.Join(p.Problems, "\n"); !strings.Contains(pr, "passwords.txt") || strings.Contains(pr, "bak-v1") {
		t.Fatalf("problems %q", p.Problems)
	}
}
