//go:build linux

package service

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestPeerHelperDial is the child of TestPeerOf_GroupsOfAProcessThatIsGone:
// it connects, says one byte and exits.
func TestPeerHelperDial(t *testing.T) {
	path := os.Getenv("PRESENCEBRIDGE_TEST_PEER_DIAL")
	if path == "" {
		t.Skip("only run as a child process")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{1})
	c.Close()
}

// The kernel keeps the credentials a peer had when it connected: they are
// still there after the process has exited (and its pid may be reused),
// where /proc/<pid>/status is gone.
func TestPeerOf_GroupsOfAProcessThatIsGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestPeerHelperDial$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PRESENCEBRIDGE_TEST_PEER_DIAL="+path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	wantUID, wantGID := uint32(os.Getuid()), uint32(os.Getgid())
	var wantGroups []uint32
	if os.Geteuid() == 0 {
		// Root can give the child groups nobody else has: they can only
		// come from the child's own credentials.
		wantGroups = []uint32{4242, 4343, 70000}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: wantGroups}}
		wantUID, wantGID = 0, 0
	} else {
		gs, err := os.Getgroups()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			wantGroups = append(wantGroups, uint32(g))
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetDeadline(time.Now().Add(30 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	defer c.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the child: %v\n%s", err, out.String())
	}
	// The child has exited.
	if _, err := os.Stat("/proc/" + strconv.Itoa(cmd.Process.Pid)); !os.IsNotExist(err) {
		t.Logf("/proc/%d is still there (%v): the pid was reused", cmd.Process.Pid, err)
	}

	p, err := peerOf(c)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(p.Groups)
	slices.Sort(wantGroups)
	wantGroups = slices.Compact(wantGroups)
	if !p.Known || p.PID != int32(cmd.Process.Pid) || p.UID != wantUID || p.GID != wantGID || !slices.Equal(p.Groups, wantGroups) {
		t.Fatalf("peer %+v groups %v; want pid %d uid %d gid %d groups %v", p, p.Groups, cmd.Process.Pid, wantUID, wantGID, wantGroups)
	}
	if !(PeerPolicy{GIDs: []uint32{wantGroups[len(wantGroups)-1]}}).Allows(p) {
		t.Fatal("a member of the admin group is refused")
	}
}

// Many groups need a larger buffer than the first try (ERANGE).
func TestPeerGroups_ManyGroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can give a process many groups")
	}
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var want []uint32
	for g := range uint32(300) {
		want = append(want, 10000+g)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeerHelperDial$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PRESENCEBRIDGE_TEST_PEER_DIAL="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: want}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetDeadline(time.Now().Add(30 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	defer c.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	p, err := peerOf(c)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(p.Groups)
	if !slices.Equal(p.Groups, want) {
		t.Fatalf("%d groups %v, want %d", len(p.Groups), p.Groups, len(want))
	}
}
