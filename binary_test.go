package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The end-to-end tests run the real binary. Each `go build` of it costs
// about 9 s (the linker dominates, most with -race), so the package builds
// it once, on first use, into a directory that TestMain removes after the
// run.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pbbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temporary directory for the binary:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinary returns the path of the real binary, built once per test run
// with the same race flag as the test binary.
func buildBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		bin := filepath.Join(binDir, "presencebridge")
		args := []string{"build", "-o", bin}
		if raceEnabled {
			// The same flags as the test binary: the build reuses its compiled
			// packages (the Graph SDK compiles once, not twice), and the
			// end-to-end runs are race-checked too.
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			binError = fmt.Errorf("go build: %w", err)
			return
		}
		binPath = bin
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}
