//go:build unix

package webhook

import "syscall"

// openFileLimit is the soft RLIMIT_NOFILE (Go raises it to the hard limit at start), 0 if
// unknown. RLIM_INFINITY converts to the largest uint64, which limits nothing.
func openFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return uint64(rl.Cur) //nolint:unconvert // int64 on some BSDs
}
