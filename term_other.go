//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package main

import (
	"errors"
	"os"
)

// readNoEcho cannot turn echo off on this system: the value is piped in.
func readNoEcho(*os.File) (string, error) {
	return "", errors.New("cannot turn the terminal's echo off on this system; pipe the value in: printf '%s\\n' VALUE | presencebridge config set KEY -")
}
