package main

import (
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/windows"
)

// readNoEcho reads one line from the console f with echo off, so that a
// secret typed in never shows. Ctrl-C puts the console back before the
// process ends.
func readNoEcho(f *os.File) (string, error) {
	h := windows.Handle(f.Fd())
	var old uint32
	if err := windows.GetConsoleMode(h, &old); err != nil {
		return "", fmt.Errorf("cannot read the console's mode (pipe the value instead): %w", err)
	}
	quiet := old&^windows.ENABLE_ECHO_INPUT | windows.ENABLE_LINE_INPUT | windows.ENABLE_PROCESSED_INPUT
	if err := windows.SetConsoleMode(h, quiet); err != nil {
		return "", fmt.Errorf("cannot turn the console's echo off (pipe the value instead): %w", err)
	}
	restore := func() { _ = windows.SetConsoleMode(h, old) }
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	done := make(chan struct{})
	defer func() { signal.Stop(sig); close(done) }()
	go func() {
		select {
		case <-sig:
			restore()
			fmt.Fprintln(os.Stderr, "\ncancelled")
			os.Exit(130)
		case <-done:
		}
	}()
	defer restore()
	return readLine(f)
}
