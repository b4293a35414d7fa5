//go:build !windows

package store

import (
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// adoptDirOwner gives a file the store just created (the database, a
// backup) the owner and group of its directory when root creates it: the
// service runs as its own user, and an admin command run as root while the
// service is stopped must not leave it a file it cannot open.
func adoptDirOwner(path string, log *slog.Logger) {
	if os.Geteuid() != 0 {
		return
	}
	dir, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return
	}
	st, ok := dir.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return
	}
	if err := os.Lchown(path, int(st.Uid), int(st.Gid)); err != nil {
		log.Warn("cannot give the new file to the owner of its directory", "path", path, "uid", st.Uid, "err", err)
	}
}
