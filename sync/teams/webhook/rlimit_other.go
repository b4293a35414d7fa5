//go:build !unix

package webhook

// openFileLimit: Windows has no per-process descriptor limit of that kind (handles are
// bounded by memory), so only Config.MaxConnections applies.
func openFileLimit() uint64 { return 0 }
