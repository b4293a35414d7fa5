package service

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

func TestRateWindow_LastMinute(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1_000_000, 0)
	if r := w.add(t0, 100); r != 0 {
		t.Fatalf("first sample: %v", r)
	}
	// 10 events a second for 30 s.
	if r := w.add(t0.Add(30*time.Second), 400); r != 10 {
		t.Fatalf("after 30 s: %v", r)
	}
	// Then quiet: at 90 s the base is the 30 s sample, the rate is what
	// happened in the last minute (nothing), not since the start.
	if r := w.add(t0.Add(90*time.Second), 400); r != 0 {
		t.Fatalf("after a quiet minute: %v", r)
	}
	if r := w.add(t0.Add(95*time.Second), 450); r < 0.7 || r > 0.8 { // 50 events over the 65 s since the base
		t.Fatalf("after 95 s: %v", r)
	}
	// A sample that lost the race to the lock (a lower count, from an
	// Overview request concurrent with Watch) keeps the minute's history.
	if r := w.add(t0.Add(100*time.Second), 420); r < 0.7 || r > 0.8 {
		t.Fatalf("after an out-of-order sample: %v", r)
	}
}

func TestQuoting(t *testing.T) {
	for in, want := range map[string]string{
		`C:\x\y.exe`:           `C:\x\y.exe`,
		`C:\Program Files\x`:   `"C:\Program Files\x"`,
		`a"b`:                  `"a\"b"`,
		`C:\dir with space\`:   `"C:\dir with space\\"`,
		``:                     `""`,
		`say \"hi\" to\ me\\ `: `"say \\\"hi\\\" to\ me\\ "`, // only backslashes before a quote double
	} {
		if got := windowsQuote(in); got != want {
			t.Errorf("windowsQuote(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/var/lib/x.db": "/var/lib/x.db",
		"/a b":          `"/a b"`,
		"50%":           `"50%%"`,
		"$HOME":         `"$$HOME"`,
		`a"b\c`:         `"a\"b\\c"`,
	} {
		if got := systemdQuote(in); got != want {
			t.Errorf("systemdQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// recordLogger is a kardianos Logger that keeps what it is given.
type recordLogger struct {
	mu    sync.Mutex
	lines []string
}

func (r *recordLogger) add(level string, v ...any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, level+": "+fmt.Sprint(v...))
	return nil
}
func (r *recordLogger) Error(v ...any) error   { return r.add("E", v...) }
func (r *recordLogger) Warning(v ...any) error { return r.add("W", v...) }
func (r *recordLogger) Info(v ...any) error    { return r.add("I", v...) }
func (r *recordLogger) Errorf(f string, a ...any) error {
	return r.add("E", fmt.Sprintf(f, a...))
}
func (r *recordLogger) Warningf(f string, a ...any) error {
	return r.add("W", fmt.Sprintf(f, a...))
}
func (r *recordLogger) Infof(f string, a ...any) error { return r.add("I", fmt.Sprintf(f, a...)) }

func TestSystemLogHandler(t *testing.T) {
	rec := &recordLogger{}
	log := slog.New(NewSystemLogHandler(rec, slog.LevelInfo)).With("component", "daemon")
	log.Debug("not shown")
	log.Info("running", "users", 3)
	log.WithGroup("side").Warn("slow", "ms", 250)
	log.Error("failed", "err", "boom")
	want := []string{
		`I: msg=running component=daemon users=3`,
		`W: msg=slow component=daemon side.ms=250`,
		`E: msg=failed component=daemon err=boom`,
	}
	if strings.Join(rec.lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("system log got:\n%s", strings.Join(rec.lines, "\n"))
	}
}

func TestServerHandler_RefusesRequestsWithoutPeer(t *testing.T) {
	s := &Server{policy: &PeerPolicy{UIDs: []uint32{0}}, log: slog.New(slog.DiscardHandler)}
	h := s.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Fatal("reached the API") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/users", nil))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "only on its own socket") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	// Where the OS cannot name the peer, the socket's mode is the gate.
	if !(PeerPolicy{}).Allows(Peer{}) || (PeerPolicy{UIDs: []uint32{0}}).Allows(Peer{Known: true, UID: 1000, GID: 1000, Groups: []uint32{27}}) ||
		!(PeerPolicy{GIDs: []uint32{27}}).Allows(Peer{Known: true, UID: 1000, GID: 1000, Groups: []uint32{27}}) {
		t.Fatal("PeerPolicy.Allows")
	}
}

func TestWriteDecision_DropsControlCharacters(t *testing.T) {
	var b strings.Builder
	WriteDecision(&b, psync.Decision{Name: "Eve\x1b[2J", What: "presence", New: "Busy\x1b]52;c;ZXZpbA==\x07"})
	if strings.ContainsAny(b.String(), "\x1b\x07") || !strings.Contains(b.String(), "Eve[2J") {
		t.Fatalf("%q", b.String())
	}
}

func TestParseInstalled_ReadsWhatInstallWrites(t *testing.T) {
	for _, target := range []string{TargetSystemd, TargetLaunchd} {
		for _, o := range []InstallOptions{
			{Target: target, Executable: "/usr/local/bin/presencebridge"},
			{Target: target, Executable: "/opt/pb dir/presencebridge", DB: "/srv/pb 100%/state $x.db", Socket: "/run/pb/c.sock", Group: "ops"},
		} {
			p, err := PlanInstall(o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseInstalled(p.File, p.Text)
			if err != nil {
				t.Fatalf("%s: %v", target, err)
			}
			want := InstalledService{File: p.File, DB: o.DB, Socket: o.Socket, Group: o.Group}
			if want.DB == "" {
				want.DB = DefaultDBPath(target)
			}
			if want.Socket == "" {
				want.Socket = defaultSocketFor(target)
			}
			if want.Group == "" {
				want.Group = ServiceAccount(target) // presencebridge, _presencebridge on macOS
			}
			if got != want {
				t.Errorf("%s: read back %+v, want %+v\n%s", target, got, want, p.Text)
			}
		}
	}
	if _, err := parseInstalled("x", "[Service]\nType=simple\n"); err == nil {
		t.Error("a unit without ExecStart was read")
	}
}
