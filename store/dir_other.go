//go:build !windows

package store

import "log/slog"

// secureDir: on Unix the database's directory is made 0700 when created
// (create), and the file's own mode protects it (tightenMode).
func secureDir(string, bool, *slog.Logger) error { return nil }
