package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	psync "github.com/presencebridge/presencebridge/sync"
)

// TestConsole_EndpointAsksForItsSecret: in the console of the real demo, a
// new ucserver.url would clear the stored ucserver.password (it must never
// go to an address it was not given for), so the settings editor asks for
// the password in the same change. Given, both are stored; left empty, the
// password is cleared and the status line says so. Checked through the
// demo's control socket with `config get`.
func TestConsole_EndpointAsksForItsSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it in tmux")
	}
	bin := buildBinary(t)
	dir, err := os.MkdirTemp("", "pbsec") // short: it holds the demo's socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "demo.sock")
	c := startConsoleTerm(t, dir, 120, 40, fmt.Sprintf("'%s' demo --users 3 --seed 3 --outage-for 0 --socket '%s'", bin, sock), true)
	get := func(key string) string {
		t.Helper()
		out, err := exec.Command(bin, "config", "get", key, "--socket", sock).CombinedOutput()
		if err != nil {
			c.fatalf("config get %s: %v\n%s", key, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	c.waitFor("the dashboard", func(s string) bool {
		return strings.Contains(s, "1 Dashboard") && strings.Contains(s, "control socket")
	})
	if get("ucserver.password") != psync.Mask {
		c.fatalf("the demo has no ucserver.password to begin with")
	}
	c.send("4")
	c.waitFor("the settings", func(s string) bool { return settingRow(s, "ucserver.url") })

	change := func(url string) {
		c.moveCursorTo("ucserver.url", 40)
		c.send("Enter")
		c.waitFor("the editor", func(s string) bool { return strings.Contains(s, "ucserver.url = ") })
		c.send("C-u")
		c.send(url)
		c.send("Enter")
		c.waitFor("the password asked for in the same change", func(s string) bool {
			return strings.Contains(s, "ucserver.password = ") && strings.Contains(s, "clears the stored ucserver.password")
		})
		if u := get("ucserver.url"); u == url {
			c.fatalf("the url was saved before the password was asked for")
		}
	}

	change("http://127.0.0.1:1")
	c.send("pw typed in the console")
	c.waitFor("the password masked", func(s string) bool { return strings.Contains(s, "•••••") && !strings.Contains(s, "pw typed") })
	c.send("Enter")
	c.waitFor("saved", func(s string) bool { return strings.Contains(s, "ucserver.url saved") })
	if u, p := get("ucserver.url"), get("ucserver.password"); u != "http://127.0.0.1:1" || p != psync.Mask {
		c.fatalf("after the change with the password: url %q, password %q", u, p)
	}

	change("http://127.0.0.1:2")
	c.send("Enter") // left empty
	c.waitFor("the status saying it was cleared", func(s string) bool {
		return strings.Contains(s, "ucserver.password cleared: set it again")
	})
	if u, p := get("ucserver.url"), get("ucserver.password"); u != "http://127.0.0.1:2" || p != "" {
		c.fatalf("after the change without the password: url %q, password %q", u, p)
	}
	c.send("q")
}
