//go:build linux

package service

import (
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerOf asks the kernel who is at the other end of a Unix-socket
// connection: SO_PEERCRED for the user and primary group, SO_PEERGROUPS
// for the supplementary groups. Both are the credentials the peer had when
// it connected, captured by the kernel then; reading /proc/<pid>/status
// after accept could name another process that reused the pid.
func peerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, errors.New("not a Unix-socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var (
		cred              *unix.Ucred
		groups            []uint32
		credErr, groupErr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if credErr == nil {
			groups, groupErr = peerGroups(int(fd))
		}
	}); err != nil {
		return Peer{}, err
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	if groupErr != nil {
		return Peer{}, fmt.Errorf("SO_PEERGROUPS: %w", groupErr)
	}
	return Peer{Known: true, PID: cred.Pid, UID: cred.Uid, GID: cred.Gid, Groups: groups}, nil
}

// maxGroups is the kernel's NGROUPS_MAX.
const maxGroups = 65536

// peerGroups reads SO_PEERGROUPS (Linux 4.13): the peer's supplementary
// groups as gid_t values. x/sys/unix has no helper for it that keeps the
// zero bytes of a gid (GetsockoptString stops at the first), so the
// getsockopt is made here; a buffer too small gives ERANGE and the size
// needed.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 64)
	for {
		size := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case errno == 0:
			return buf[:size/4], nil
		case errno == unix.ERANGE && int(size/4) > len(buf) && size/4 <= maxGroups:
			buf = make([]uint32, size/4)
		case errno == unix.ENOPROTOOPT:
			return nil, fmt.Errorf("this kernel does not report a peer's groups (Linux 4.13 or later does): %w", errno)
		default:
			return nil, errno
		}
	}
}
