//go:build !windows

package store

// platformSealer: nothing is sealed here; the file's owner and mode
// protect it.
func platformSealer() sealer { return nil }
