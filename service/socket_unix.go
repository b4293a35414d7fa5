//go:build !windows

package service

import (
	"os"
	"syscall"
)

// hasGroup reports whether the file at path belongs to group gid.
func hasGroup(path string, gid uint32) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Gid == gid
}
