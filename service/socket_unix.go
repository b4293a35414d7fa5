//go:build !windows

package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ListenControl opens the control socket at path: the directory is made
// (0750, group group) when missing, a socket left by a dead process is
// removed, a live one is an error, and the socket itself is 0660 owned by
// the admin group, so that only root, the service's user and that group can
// connect. A group that does not exist is logged and leaves root only.
func ListenControl(path, group string, log *slog.Logger) (net.Listener, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "control")
	gid, haveGroup := lookupGroup(group)
	if group != "" && !haveGroup {
		log.Warn("admin group does not exist: only root and the service's own user can use the control socket", "group", group)
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("control socket: %w", err)
		}
		// Only a directory made here is ours to tighten: --socket may
		// point into a shared one such as /tmp.
		if err := os.Chmod(dir, 0o750); err != nil {
			return nil, fmt.Errorf("control socket: %w", err)
		}
		if haveGroup && !hasGroup(dir, gid) {
			if err := os.Chown(dir, -1, int(gid)); err != nil {
				log.Warn("cannot give the socket directory to the admin group", "dir", dir, "err", err)
			}
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket: %s exists and is not a socket; remove it or choose another --socket", path)
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket: another presencebridge is already listening on %s", path)
		}
		// Left behind by a process that died without cleaning up.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket: removing the stale %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// Under the unit the socket is the admin group's already (the
	// service's own group), and chown is filtered out there.
	if haveGroup && !hasGroup(path, gid) {
		if err := os.Chown(path, -1, int(gid)); err != nil {
			log.Warn("cannot give the control socket to the admin group", "path", path, "err", err)
		}
	}
	return l, nil
}

// DialControl connects to the control socket at path.
func DialControl(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}

// hasGroup reports whether the file at path belongs to group gid.
func hasGroup(path string, gid uint32) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Gid == gid
}
