package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestJSON_ThroughTheBinary: what `status --json`, `users --json`,
// `users list --json`, `profiles --json` and `logs --json` print against a
// running bridge (the demo's socket) has snake_case keys, enums as
// strings, RFC 3339 times and null (never 0001-01-01) for a time that is
// not known, as the README's "JSON output" says.
func TestJSON_ThroughTheBinary(t *testing.T) {
	pb := newPB(t)
	dir, err := os.MkdirTemp("", "pbjson") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "demo.sock")
	d := startDemo(t, pb, "--users", "6", "--seed", "3", "--every", "100ms", "--duration", "40s", "--outage-for", "0", "--socket", sock)
	d.waitLine("control socket: "+sock, 20*time.Second)
	// Some decisions first, so that the logs and the holds have content.
	d.waitLine(" applied", 20*time.Second)

	key := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	// Map keys that are data, not field names: setting keys and user ids.
	dataMaps := map[string]bool{"pending": true}
	var walk func(path string, v any, check func(path string, v any))
	walk = func(path string, v any, check func(string, any)) {
		check(path, v)
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if !dataMaps[lastKey(path)] && !key.MatchString(k) {
					t.Errorf("%s: key %q is not snake_case", path, k)
				}
				walk(path+"."+k, x, check)
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x, check)
			}
		}
	}
	enums := map[string]bool{"teams_state": true, "presence": true, "kind": true, "side": true, "outcome": true, "colour": true, "last_side": true}
	times := map[string]bool{"at": true, "since": true, "lease": true, "observed": true, "last_change": true, "started": true, "until": true, "replaced_until": true, "presence_until": true}
	seen := map[string]int{}
	check := func(path string, v any) {
		k := lastKey(path)
		if s, ok := v.(string); ok && strings.HasPrefix(s, "0001-01-01") {
			t.Errorf("%s: an unknown time printed as %q, not null", path, s)
		}
		if enums[k] && v != nil {
			if _, ok := v.(string); !ok {
				t.Errorf("%s: enum %v is not a string", path, v)
			}
			seen["enum"]++
		}
		if times[k] {
			switch v := v.(type) {
			case nil:
				seen["null time"]++
			case string:
				if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
					t.Errorf("%s: time %q is not RFC 3339", path, v)
				}
				seen["time"]++
			default:
				t.Errorf("%s: time %v is neither a string nor null", path, v)
			}
		}
	}
	for _, args := range [][]string{{"status", "--json"}, {"users", "--json"}, {"users", "list", "--json"}, {"profiles", "--json"}} {
		out := pb.ok("", append(args, "--socket", sock)...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: not JSON: %v\n%s", args, err, out)
		}
		walk(strings.Join(args, " "), v, check)
	}
	out := pb.ok("", "logs", "--json", "-n", "50", "--socket", sock)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("logs --json printed nothing")
	}
	for _, l := range lines {
		var v any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("logs --json: a line is not JSON: %v\n%s", err, l)
		}
		walk("logs", v, check)
	}
	// The checks above must have had something to check.
	for _, what := range []string{"enum", "time", "null time"} {
		if seen[what] == 0 {
			t.Errorf("no %s in the output to check", what)
		}
	}
	// Ctrl-C: the demo releases what it holds and removes its files.
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop within 30 s of Ctrl-C")
	}
}

func lastKey(path string) string {
	path = strings.TrimSuffix(path, "[]")
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[i+1:]
	}
	return path
}
