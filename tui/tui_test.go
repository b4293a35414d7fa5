package tui

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestRun_QuitsOnQ(t *testing.T) {
	f := newFake()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := Run(t.Context(), f, Options{Now: fixedNow, Refresh: time.Hour}, strings.NewReader("q"), &out)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("q did not end Run")
	}
	// The console drew on out (alt screen) and nothing else went there.
	if !strings.Contains(out.String(), "\x1b[?1049h") {
		t.Errorf("no alt screen in %q", out.String())
	}
}

func TestRun_EndsWithContextWithoutError(t *testing.T) {
	f := newFake()
	in, w := io.Pipe() // a terminal nobody types into
	defer w.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, f, Options{Now: fixedNow, Refresh: 10 * time.Millisecond}, in, io.Discard)
		done <- err
	}()
	// Let it load and tick a few times: the periodic refresh runs.
	deadline := time.Now().Add(5 * time.Second)
	for countCalls(f, "Overview()") < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := countCalls(f, "Overview()"); n < 3 {
		t.Fatalf("Overview called %d times: no periodic refresh", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}

func countCalls(f *fakeController, call string) int {
	n := 0
	for _, c := range f.Calls() {
		if c == call {
			n++
		}
	}
	return n
}
