package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

// consoleTerm is one tmux server of the test's own (its own socket under
// its own TMUX_TMPDIR, no configuration file), so that a user's tmux is
// never touched, with the console running in its only pane.
type consoleTerm struct {
	t      *testing.T
	socket string   // tmux -L name
	env    []string // for every tmux call
	dir    string   // the pane's stderr and exit code land here
	screen string   // the last capture, for failure messages
	w, h   int      // the pane's size
}

const (
	consoleSession = "pb"
	consoleWidth   = 120
	consoleHeight  = 40
	consoleStep    = 20 * time.Second // deadline of one step
)

func (c *consoleTerm) tmux(args ...string) (string, error) {
	cmd := exec.Command("tmux", append([]string{"-L", c.socket, "-f", "/dev/null"}, args...)...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tmux %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// capture is the pane's text as the user sees it (no escape codes).
func (c *consoleTerm) capture() (string, error) {
	out, err := c.tmux("capture-pane", "-p", "-t", consoleSession)
	if err == nil {
		c.screen = out
	}
	return out, err
}

// send types one key. The console gets one key per read only if the test
// waits for its effect before the next: Bubble Tea turns letters that
// arrive together ("jj") into one key message that matches no binding.
func (c *consoleTerm) send(key string) {
	c.t.Helper()
	if _, err := c.tmux("send-keys", "-t", consoleSession, key); err != nil {
		c.fatalf("sending %q: %v", key, err)
	}
}

// fatalf fails with the last screen, the pane's stderr and exit code, so
// that a failure in CI can be understood from the log alone.
func (c *consoleTerm) fatalf(format string, args ...any) {
	c.t.Helper()
	msg := fmt.Sprintf(format, args...)
	stderr, _ := os.ReadFile(filepath.Join(c.dir, "stderr"))
	rc, err := os.ReadFile(filepath.Join(c.dir, "rc"))
	exit := "still running (no exit code yet)"
	if err == nil {
		exit = "exited with " + strings.TrimSpace(string(rc))
	}
	c.t.Fatalf("%s\n--- last screen (%dx%d) ---\n%s\n--- pane: %s; stderr ---\n%s", msg, c.w, c.h, c.screen, exit, stderr)
}

// waitFor polls the screen until ok accepts it and returns that screen.
func (c *consoleTerm) waitFor(what string, ok func(screen string) bool) string {
	c.t.Helper()
	deadline := time.Now().Add(consoleStep)
	for {
		s, err := c.capture()
		if err == nil && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			if err != nil {
				c.fatalf("timed out after %s waiting for %s (last capture failed: %v)", consoleStep, what, err)
			}
			c.fatalf("timed out after %s waiting for %s", consoleStep, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cursorRow is the text of the row the list's cursor (▸) is on, from the
// first column on (left: the users table and the profile list).
func cursorRow(screen string) string {
	for _, l := range strings.Split(screen, "\n") {
		if rest, ok := strings.CutPrefix(l, "▸ "); ok {
			return rest
		}
	}
	return ""
}

// rowNamed says whether a list row starts with name (the cursor or two
// blanks, then the name, then blanks).
func rowNamed(screen, name string) bool {
	for _, l := range strings.Split(screen, "\n") {
		for _, prefix := range []string{"▸ ", "  "} {
			if rest, ok := strings.CutPrefix(l, prefix+name+" "); ok && strings.HasPrefix(rest, " ") {
				return true
			}
		}
	}
	return false
}

// moveCursorTo presses j, one at a time, until the cursor is on the row of
// name; at most limit times.
func (c *consoleTerm) moveCursorTo(name string, limit int) string {
	c.t.Helper()
	s, _ := c.capture()
	for range limit + 1 {
		row := cursorRow(s)
		if strings.HasPrefix(row, name+" ") {
			return s
		}
		c.send("j")
		s = c.waitFor("the cursor to leave "+strings.Fields(row + " ?")[0], func(s string) bool { return cursorRow(s) != row })
	}
	c.fatalf("the cursor never reached %s", name)
	return ""
}

// flagLine is the line of the flag list that names flag, "" if none.
func flagLine(screen string, flag psync.ProfileFlag) string {
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasSuffix(strings.TrimRight(l, " "), "] "+string(flag)) {
			return l
		}
	}
	return ""
}

func checkbox(on bool) string {
	if on {
		return "[x]"
	}
	return "[ ]"
}

// TestConsole_DemoInTmux runs `presencebridge demo` in a real terminal
// (tmux, 120x40) and drives the live console like an admin: the users
// screen, one user's detail, a profile flag toggled on the Profiles screen
// and seen to take effect, then q. Afterwards the flag is in the store, the
// engine logged the change, and the database lock is free again.
func TestConsole_DemoInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is not installed; CI must install it (.ci/run)")
		}
		t.Skip("tmux is not installed")
	}
	start := time.Now()
	bin := buildBinary(t)
	built := time.Since(start)

	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	const users = 12
	c := startConsoleTerm(t, dir, consoleWidth, consoleHeight, fmt.Sprintf("'%s' demo --users %d --seed 3 --every 300ms --db '%s'", bin, users, db))

	// 1. The console is up: the tab bar, and the dashboard has loaded.
	tabs := "1 Dashboard  2 Users  3 Profiles  4 Settings  5 Events"
	c.waitFor("the tab bar and the dashboard", func(s string) bool {
		return strings.Contains(s, tabs) && strings.Contains(s, fmt.Sprintf("%d users · ", users))
	})

	// 2. The users screen: the table's header and everyone in the office,
	// sorted by name, the cursor on the first.
	office := simoffice.Users(users)
	names := make([]string, len(office))
	for i, u := range office {
		names[i] = u.Name()
	}
	c.send("2")
	s := c.waitFor("the users screen with everyone", func(s string) bool {
		if !strings.Contains(s, tabs) || !strings.Contains(s, fmt.Sprintf("%d of %d users · sorted by name", users, users)) ||
			!strings.Contains(s, "  Name ▼") || !strings.Contains(s, "Holds lease") {
			return false
		}
		for _, n := range names {
			if !rowNamed(s, n) {
				return false
			}
		}
		return true
	})
	sorted := slices.Sorted(slices.Values(names))
	if row := cursorRow(s); !strings.HasPrefix(row, sorted[0]+" ") {
		c.fatalf("the cursor is on %q, want the first by name, %s", row, sorted[0])
	}

	// 3. Down to one person, enter: the detail screen for that person.
	who := office[2]
	c.moveCursorTo(who.Name(), users)
	c.send("Enter")
	title := fmt.Sprintf("%s  ext %s · id %s · %s", who.Name(), who.Extension, who.ID, who.UPN)
	detail := c.waitFor("the detail screen of "+who.Name(), func(s string) bool {
		return strings.Contains(s, title) && strings.Contains(s, "│ Teams ") && strings.Contains(s, "│ Phone system ") &&
			strings.Contains(s, "│ presence ") && strings.Contains(s, "What the bridge imposes (") &&
			strings.Contains(s, "Last transitions (newest first")
	})
	t.Logf("the detail screen of %s:\n%s", who.Name(), detail)

	// 4. The Profiles screen: onto the profile, into its flags, toggle the
	// first flag (where the flag cursor starts).
	const profile = "meetings"
	var before bool
	found := false
	for _, p := range simoffice.Profiles() {
		if p.Name == profile {
			before, _ = p.Flag(psync.ProfileFlags[0].Flag)
			found = true
		}
	}
	if !found {
		t.Fatalf("simoffice has no profile %q", profile)
	}
	flag := psync.ProfileFlags[0].Flag
	c.send("3")
	c.waitFor("the Profiles screen", func(s string) bool {
		return strings.Contains(s, "Profiles ") && strings.Contains(s, "│ Flags of ") && rowNamed(s, profile)
	})
	c.moveCursorTo(profile, len(simoffice.Profiles()))
	c.send("l")
	s = c.waitFor("the flags of "+profile+" with the cursor", func(s string) bool {
		return strings.Contains(s, "│ Flags of "+profile) && strings.Contains(flagLine(s, flag), "▸ ")
	})
	if l := flagLine(s, flag); !strings.Contains(l, "▸ "+checkbox(before)+" "+string(flag)) {
		c.fatalf("%s of %s before the toggle: %q, want %s", flag, profile, l, checkbox(before))
	}
	c.send("Space")
	state := map[bool]string{true: "on", false: "off"}[!before]
	c.waitFor(fmt.Sprintf("%s of %s to show %s", flag, profile, checkbox(!before)), func(s string) bool {
		return strings.Contains(flagLine(s, flag), "▸ "+checkbox(!before)+" "+string(flag)) &&
			strings.Contains(s, fmt.Sprintf("✓ profile %s: %s %s", profile, flag, state))
	})

	// 5. The engine took it: its decision is in the live event log.
	c.send("5")
	c.waitFor("the decision about the profile on the Events screen", func(s string) bool {
		if !strings.Contains(s, "decisions, newest at the bottom") {
			return false
		}
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, "bridge ") && strings.Contains(l, "profile "+profile+": ") &&
				strings.Contains(l, "→ changed (edited by the admin)") {
				return true
			}
		}
		return false
	})
	// Back on Profiles, reloaded from the bridge: the new value stays.
	c.send("3")
	c.waitFor("the Profiles screen to show the new value again", func(s string) bool {
		return strings.Contains(s, "│ Flags of "+profile) && strings.Contains(flagLine(s, flag), checkbox(!before)+" "+string(flag))
	})

	// 6. q quits: the demo ends, the pane closes, the session is gone.
	c.send("q")
	quit := time.Now()
	for {
		if _, err := c.tmux("has-session", "-t", consoleSession); err != nil {
			break
		}
		if time.Since(quit) > 15*time.Second {
			c.capture()
			c.fatalf("the demo still runs %s after q", time.Since(quit).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopped := time.Since(quit)
	rc, err := os.ReadFile(filepath.Join(dir, "rc"))
	if err != nil || strings.TrimSpace(string(rc)) != "0" {
		c.fatalf("the demo did not exit cleanly after q (exit code %q, %v)", strings.TrimSpace(string(rc)), err)
	}

	// 7. The lock is free (config opens the database: its default lock
	// wait is 2 s) and the flag is stored.
	out, err := exec.Command(bin, "config", "--db", db, "get", fmt.Sprintf("profile.%s.%s", profile, flag)).CombinedOutput()
	if err != nil {
		c.fatalf("config get after quitting: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != fmt.Sprint(!before) {
		c.fatalf("config get profile.%s.%s = %q, want %v", profile, flag, got, !before)
	}
	sdb, err := store.Open(db, store.Options{Timeout: time.Second})
	if err != nil {
		c.fatalf("opening the store after quitting: %v", err)
	}
	defer sdb.Close()
	audit, err := sdb.Audit(0, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(audit, func(d psync.Decision) bool { return d.What == "profile "+profile && d.New == "changed" }) {
		c.fatalf("the audit log (%d entries) lacks the change of profile %s", len(audit), profile)
	}
	t.Logf("build %s, console %s, stopped %s after q", built.Round(time.Millisecond), time.Since(start.Add(built)).Round(time.Millisecond), stopped.Round(time.Millisecond))
}

// startConsoleTerm runs command in the only pane of a tmux server of the
// test's own, in a terminal of w×h. The pane runs a script, so that the
// terminal type is fixed whatever tmux's default-terminal and the default
// shell are, and so that the command's stderr and exit code outlive the
// pane (in dir). With keep, the pane stays open after the command ends,
// for what it printed last.
func startConsoleTerm(t *testing.T, dir string, w, h int, command string, keep ...bool) *consoleTerm {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is not installed; CI must install it (.ci/run)")
		}
		t.Skip("tmux is not installed")
	}
	if strings.ContainsAny(dir, "'\n") {
		t.Fatalf("a temporary path the pane's shell cannot take quoted: %q", dir)
	}
	// tmux's socket lives in a short directory of the test's own: socket
	// paths are limited to about 100 bytes.
	tmuxDir, err := os.MkdirTemp("", "pbtmux")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmuxDir) })
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "TMUX=") || strings.HasPrefix(kv, "TMUX_PANE=") || strings.HasPrefix(kv, "TMUX_TMPDIR=")
	})
	c := &consoleTerm{t: t, socket: fmt.Sprintf("pbconsole-%d-%d", os.Getpid(), time.Now().UnixNano()),
		env: append(env, "TMUX_TMPDIR="+tmuxDir), dir: dir, w: w, h: h}
	t.Cleanup(func() { _, _ = c.tmux("kill-server") }) // ends the command if the test failed
	after := ""
	if len(keep) > 0 && keep[0] {
		after = "sleep 120\n"
	}
	script := fmt.Sprintf("TERM=xterm-256color\nexport TERM\n%s 2>'%s/stderr'\necho $? >'%s/rc'\n%s", command, dir, dir, after)
	scriptPath := filepath.Join(dir, "console.sh")
	if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.tmux("new-session", "-d", "-s", consoleSession, "-x", fmt.Sprint(w), "-y", fmt.Sprint(h),
		"/bin/sh '"+scriptPath+"'"); err != nil {
		t.Fatal(err)
	}
	if size, err := c.tmux("display-message", "-p", "-t", consoleSession, "#{pane_width}x#{pane_height}"); err != nil ||
		strings.TrimSpace(size) != fmt.Sprintf("%dx%d", w, h) {
		c.fatalf("pane size %q (%v), want %dx%d", strings.TrimSpace(size), err, w, h)
	}
	return c
}
