//go:build windows

package store

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// systemPath is the database of the service. Windows has no root: the
// service runs as LocalSystem, whose token is elevated, as is an
// administrator's console managing it.
func systemPath() (string, bool) {
	if !windows.GetCurrentProcessToken().IsElevated() {
		return "", false
	}
	dir := os.Getenv("ProgramData")
	if dir == "" {
		dir = `C:\ProgramData`
	}
	return filepath.Join(dir, "presencebridge", "state.db"), true
}
