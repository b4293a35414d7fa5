package service

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
)

// Peer is the process at the other end of a control-socket connection, as
// the kernel reports it (SO_PEERCRED on Linux).
type Peer struct {
	Known  bool // uid and groups are known (the policy applies); else the socket's or pipe's ACL is the gate
	PID    int32
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups, where known
	// Account names the peer where the OS does by account rather than
	// uid (Windows: DOMAIN\user, from the pipe client's token).
	Account string
}

func (p Peer) String() string {
	switch {
	case p.Known:
		return fmt.Sprintf("pid %d uid %d gid %d", p.PID, p.UID, p.GID)
	case p.Account != "":
		return fmt.Sprintf("pid %d account %s", p.PID, p.Account)
	}
	return "unknown peer"
}

// PeerPolicy says who may use the control API: these user ids, and members
// (primary or supplementary) of these groups.
type PeerPolicy struct {
	UIDs []uint32
	GIDs []uint32
}

// DefaultPeerPolicy allows root, the service's own user and the members of
// the admin group (when it exists; the bool says whether it does).
func DefaultPeerPolicy(group string) (PeerPolicy, bool) {
	p := PeerPolicy{UIDs: []uint32{0}}
	if uid := os.Getuid(); uid > 0 {
		p.UIDs = append(p.UIDs, uint32(uid))
	}
	gid, ok := lookupGroup(group)
	if ok {
		p.GIDs = append(p.GIDs, gid)
	}
	return p, ok
}

func lookupGroup(name string) (uint32, bool) {
	if name == "" {
		return 0, false
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, false // Windows SIDs: no numeric group
	}
	return uint32(n), true
}

// Allows reports whether the policy lets p in. An unknown peer is let in:
// where the OS cannot name the peer, the socket's owner and mode decide.
func (pp PeerPolicy) Allows(p Peer) bool {
	if !p.Known {
		return true
	}
	if slices.Contains(pp.UIDs, p.UID) || slices.Contains(pp.GIDs, p.GID) {
		return true
	}
	for _, g := range p.Groups {
		if slices.Contains(pp.GIDs, g) {
			return true
		}
	}
	return false
}
