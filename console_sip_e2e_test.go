package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsole_SIPDemo: the console of `demo --phone sip` names the phone
// side, says what Teams does to the phones (the writer), and shows a
// person's extensions as devices with their call state.
func TestConsole_SIPDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it in tmux")
	}
	bin := buildBinary(t)
	dir, err := os.MkdirTemp("", "pbcsip") // short: it holds the demo's socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "demo.sock")
	c := startConsoleTerm(t, dir, 120, 40, fmt.Sprintf("'%s' demo --phone sip --users 6 --seed 3 --every 300ms --outage-for 0 --socket '%s'", bin, sock), true)
	s := c.waitFor("the dashboard with the SIP side", func(s string) bool {
		return strings.Contains(s, "SIP PBX") && strings.Contains(s, "busy-on-busy") && strings.Contains(s, "14 of 14 extensions up")
	})
	c.note("dashboard, demo --phone sip", s)
	c.send("2")
	c.waitFor("the users screen", func(s string) bool { return strings.Contains(s, "6 of 6 users") })
	c.moveCursorTo("Anna", 6)
	c.send("Enter")
	s = c.waitFor("Anna's extensions as devices", func(s string) bool {
		return strings.Contains(s, "ext 201 ") && strings.Contains(s, "ext 201s") && strings.Contains(s, "ext 201m")
	})
	c.note("Anna, demo --phone sip", s)
}
