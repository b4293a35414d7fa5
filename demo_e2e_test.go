package main

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
	psync "github.com/presencebridge/presencebridge/sync"
)

// demoRun is a `demo --headless` running as a child process, its output
// collected line by line.
type demoRun struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    gosync.Mutex
	lines []string
	done  chan error
}

func startDemo(t *testing.T, pb pbBin, args ...string) *demoRun {
	t.Helper()
	cmd := exec.Command(pb.bin, append([]string{"demo", "--headless"}, args...)...)
	cmd.Env = pb.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &demoRun{t: t, cmd: cmd, done: make(chan error, 1)}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.mu.Lock()
			d.lines = append(d.lines, sc.Text())
			d.mu.Unlock()
		}
	}()
	go func() { <-read; d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

func (d *demoRun) output() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.lines...)
}

// waitLine waits for a line containing s and returns its index.
func (d *demoRun) waitLine(s string, within time.Duration) int {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		for i, l := range d.output() {
			if strings.Contains(l, s) {
				return i
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no line with %q within %s; the demo printed:\n%s", s, within, tail(d.output(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(ls []string, n int) string {
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// decisionOutcome reads the outcome of a decision line (psync.Decision's
// String: "... (why) outcome" or "... (why) failed: error"); "" for the
// other lines.
var decisionLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} .*\) (applied|released|observed|yielded|failed)(: .*)?$`)

func decisionOutcome(l string) string {
	if m := decisionLine.FindStringSubmatch(l); m != nil {
		return m[1]
	}
	return ""
}

// TestDemo_EveryOutcomeAndItsSocket runs the real `demo --headless` with a
// short scheduled UCServer outage and checks, through its output and its
// control socket:
//   - status, users and logs work against the socket the demo prints;
//   - the users query gives everyone once, then only what changed;
//   - every outcome appears: applied, released, observed, yielded (a
//     person's own change wins) and failed during the outage, followed by
//     applied phone changes once the UCServer is back and the side healthy
//     again (the bridge converges);
//   - it ends with a summary line, nothing held, and the socket removed.
func TestDemo_EveryOutcomeAndItsSocket(t *testing.T) {
	pb := newPB(t)
	dir, err := os.MkdirTemp("", "pbdemo") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "demo.sock")
	d := startDemo(t, pb, "--users", "12", "--seed", "3", "--every", "100ms", "--duration", "30s",
		"--outage-after", "6s", "--outage-for", "5s", "--socket", sock)

	// The socket and the command line to try it are printed at the start.
	d.waitLine("control socket: "+sock, 20*time.Second)
	d.waitLine("status --socket "+sock, time.Second)
	c := service.NewClient(sock)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ov psync.Overview
	waitFor(t, "the demo's bridge on its socket, both sides synced", func() bool {
		ov, err = c.Overview(ctx)
		return err == nil && ov.Engine.Teams.Synced && ov.Engine.Phone.Synced
	})
	if ov.Mode != "demo" {
		t.Fatalf("overview mode %q, want demo", ov.Mode)
	}
	status := pb.ok("", "status", "--socket", sock)
	for _, want := range []string{"bridge:", "demo", "phone:", "healthy", "estos UCServer", "subscribed users: 12 of 12"} {
		if !strings.Contains(status, want) {
			t.Errorf("status against the demo lacks %q:\n%s", want, status)
		}
	}
	users := pb.ok("", "users", "--socket", sock)
	if !strings.Contains(users, "ID") || strings.Count(users, "\n") != 13 || !strings.Contains(users, "Anna") {
		t.Errorf("users against the demo, want a header and 12 users:\n%s", users)
	}
	waitFor(t, "decisions for logs", func() bool { return strings.Count(pb.ok("", "logs", "-n", "3", "--socket", sock), "\n") == 3 })

	// The console's query: everyone once, then only the users that changed.
	all, err := c.UsersSince(ctx, 0)
	if err != nil || !all.Full || len(all.Users) != 12 {
		t.Fatalf("UsersSince(0): %v, full %v, %d users", err, all.Full, len(all.Users))
	}
	prev := map[psync.UserID]psync.UserStatus{}
	for _, u := range all.Users {
		prev[u.User.ID] = u
	}
	v, deltas, changed := all.Version, 0, 0
	for deltas < 20 {
		ch, err := c.UsersSince(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Full || ch.Total != 12 {
			t.Fatalf("UsersSince(%d): full %v, total %d", v, ch.Full, ch.Total)
		}
		for _, u := range ch.Users {
			if old, ok := prev[u.User.ID]; ok && reflect.DeepEqual(old, u) {
				t.Errorf("UsersSince(%d) returned %s, unchanged", v, u.User.ID)
			}
			prev[u.User.ID] = u
		}
		if len(ch.Users) == 12 {
			t.Errorf("UsersSince(%d) returned everyone: changes only, please", v)
		}
		changed += len(ch.Users)
		v = ch.Version
		deltas++
		time.Sleep(100 * time.Millisecond)
	}
	if changed == 0 {
		t.Errorf("in 20 refreshes over 2 s of a busy office, no user changed")
	}

	// The outage: commands fail while the UCServer is down; once it is back
	// the side is healthy again and phone changes are applied.
	down := d.waitLine("the phone system goes down", 20*time.Second)
	back := d.waitLine("the phone system is back", 20*time.Second)
	waitFor(t, "the phone side healthy again after the outage", func() bool {
		ov, err = c.Overview(ctx)
		return err == nil && ov.Engine.Phone.Healthy && ov.Engine.Phone.Synced
	})

	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, tail(d.output(), 40))
		}
	case <-time.After(time.Minute):
		t.Fatalf("the demo did not end after its duration")
	}
	out := d.output()
	count := map[string]int{}
	failedInOutage, appliedAfter := 0, 0
	for i, l := range out {
		oc := decisionOutcome(l)
		count[oc]++
		if oc == "failed" && i > down {
			failedInOutage++
		}
		if oc == "applied" && i > back && strings.Contains(l, " phone ") {
			appliedAfter++
		}
	}
	for _, oc := range []string{"applied", "released", "observed", "yielded", "failed"} {
		if count[oc] == 0 {
			t.Errorf("no %s decision in the demo's output", oc)
		}
	}
	if failedInOutage == 0 || appliedAfter == 0 {
		t.Errorf("%d failed decisions during the outage, %d phone changes applied after it; want some of each", failedInOutage, appliedAfter)
	}
	last := out[len(out)-1]
	if !strings.HasPrefix(last, "presencebridge demo: up ") || !strings.HasSuffix(last, " · 0 holds left") {
		t.Errorf("the last line is not the summary with nothing held: %q", last)
	}
	for _, oc := range []string{"applied", "released", "observed", "yielded", "failed"} {
		if !regexp.MustCompile(`[1-9]\d* ` + oc).MatchString(last) {
			t.Errorf("the summary counts no %s: %q", oc, last)
		}
	}
	if _, err := os.Stat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the demo's socket is still there after it ended: %v", err)
	}
	t.Logf("outcomes: %v; %d failed during the outage, %d applied on the phone after it\n%s", count, failedInOutage, appliedAfter, last)
}

// waitFor polls cond until it holds, for at most 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDemo_OtherPhoneSystems runs `demo --phone sip` and `--phone asterisk`
// through the binary: the real SIP and Asterisk connectors against their
// simulators, both ways (phone calls set Teams sessions, Teams calls
// protect the phones), through an outage of the phone system, ending with
// nothing held.
func TestDemo_OtherPhoneSystems(t *testing.T) {
	pb := newPB(t)
	for _, tc := range []struct{ phone, about, side string }{
		{"sip", "phone: the SIP connector against sipsim", "SIP PBX"},
		{"asterisk", "phone: the Asterisk connector against amisim", "Asterisk"},
	} {
		t.Run(tc.phone, func(t *testing.T) {
			t.Parallel()
			dir, err := os.MkdirTemp("", "pbdemo") // short: socket paths are limited
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			sock := filepath.Join(dir, "demo.sock")
			d := startDemo(t, pb, "--phone", tc.phone, "--users", "8", "--seed", "5", "--every", "100ms", "--duration", "25s",
				"--outage-after", "6s", "--outage-for", "4s", "--socket", sock)
			d.waitLine(tc.about, 20*time.Second)
			d.waitLine("control socket: "+sock, 5*time.Second)
			c := service.NewClient(sock)
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			waitFor(t, "both sides synced", func() bool {
				ov, err := c.Overview(ctx)
				return err == nil && ov.Engine.Teams.Synced && ov.Engine.Phone.Synced
			})
			if status := pb.ok("", "status", "--socket", sock); !strings.Contains(status, tc.side) {
				t.Errorf("status does not name the phone side %q:\n%s", tc.side, status)
			}
			d.waitLine("the phone system goes down", 20*time.Second)
			d.waitLine("the phone system is back", 20*time.Second)
			waitFor(t, "the phone side healthy again after the outage", func() bool {
				ov, err := c.Overview(ctx)
				return err == nil && ov.Engine.Phone.Healthy && ov.Engine.Phone.Synced
			})
			select {
			case err := <-d.done:
				if err != nil {
					t.Fatalf("demo: %v\n%s", err, tail(d.output(), 40))
				}
			case <-time.After(90 * time.Second):
				t.Fatalf("the demo did not end:\n%s", tail(d.output(), 40))
			}
			var teamsSet, phoneSet int
			for _, l := range d.output() {
				if decisionOutcome(l) != "applied" {
					continue
				}
				switch {
				case strings.Contains(l, " teams session: "):
					teamsSet++
				case strings.Contains(l, " phone "):
					phoneSet++
				}
			}
			out := d.output()
			if teamsSet == 0 || phoneSet == 0 {
				t.Errorf("applied: %d Teams sessions, %d phone writes; want both:\n%s", teamsSet, phoneSet, tail(out, 60))
			}
			if last := out[len(out)-1]; !strings.Contains(last, "0 holds left") {
				t.Errorf("the demo ended with %q, want nothing held", last)
			}
		})
	}
}
