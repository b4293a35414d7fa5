//go:build !windows

package store

import "os"

// systemPath is the database of the service: root runs it.
func systemPath() (string, bool) {
	if os.Geteuid() == 0 {
		return "/var/lib/presencebridge/state.db", true
	}
	return "", false
}
