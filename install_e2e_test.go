package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCLIBinary_InstallRefusesATransientBinary: a binary that go run or
// go test built lies in the build cache or a temporary directory, which
// are cleaned up, so a service installed from there would stop working.
// install refuses it and says where to put the binary (README "Running
// as a service"); the dry run shows the refusal.
func TestCLIBinary_InstallRefusesATransientBinary(t *testing.T) {
	bin := buildBinary(t) // built into a temporary directory
	other := "windows"    // a target that is not this machine's: install would stop there anyway
	if runtime.GOOS == "windows" {
		other = "systemd"
	}
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	cached := filepath.Join(strings.TrimSpace(string(gocache)), "ab", "exe", "presencebridge")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"temporary directory, dry run", []string{"install", "--dry-run", "--target", "systemd"}},
		{"build cache, dry run", []string{"install", "--dry-run", "--target", "systemd", "--executable", cached}},
		{"temporary directory", []string{"install", "--target", other}},
		{"build cache", []string{"install", "--target", other, "--executable", cached}},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), "PRESENCEBRIDGE_DB="+filepath.Join(t.TempDir(), "state.db"))
		out, err := cmd.CombinedOutput()
		text := string(out)
		if !strings.Contains(text, "which is cleaned up") || !strings.Contains(text, "/usr/local/bin/presencebridge") {
			t.Errorf("%s: no refusal naming where to put the binary:\n%s", tc.name, text)
		}
		if strings.Contains(tc.name, "dry run") {
			if err != nil || !strings.Contains(text, "REFUSED") {
				t.Errorf("%s: %v\n%s", tc.name, err, text)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: install succeeded:\n%s", tc.name, text)
		}
		if strings.Contains(text, "service manager is") {
			t.Errorf("%s: refused for the target, not for the binary's place first:\n%s", tc.name, text)
		}
	}
}
