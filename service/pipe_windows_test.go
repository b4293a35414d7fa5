//go:build windows

package service

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// The control API listens on a named pipe whose ACL admits SYSTEM,
// Administrators and the admin group; each connection's account is named
// from the client's token and logged.
func TestListenControl_NamedPipe(t *testing.T) {
	var logBuf bytes.Buffer
	logs := &syncWriter{w: &logBuf}
	log := slog.New(slog.NewTextHandler(logs, nil))
	path := filepath.Join(t.TempDir(), "control.sock")
	l, err := ListenControl(path, "Users", log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	name := controlPipeName(path)
	sd, err := windows.GetNamedSecurityInfo(name, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	sddl := sd.String()
	if !strings.Contains(sddl, "D:P") || !strings.Contains(sddl, ";;;SY)") || !strings.Contains(sddl, ";;;BA)") ||
		!strings.Contains(strings.ToLower(sddl), "0x12019b;;;bu)") || strings.Contains(sddl, ";;;WD)") {
		t.Fatalf("pipe ACL %s", sddl)
	}

	// A second bridge on the same pipe is refused.
	if l2, err := ListenControl(path, "", nil); err == nil {
		l2.Close()
		t.Fatal("a second listener on the same pipe")
	} else if !strings.Contains(err.Error(), "is taken") {
		t.Fatalf("second listener: %v", err)
	}

	accepted := make(chan Peer, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		p, _ := peerOf(c)
		accepted <- p
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialControl(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var p Peer
	select {
	case p = <-accepted:
	case <-ctx.Done():
		t.Fatal("no connection accepted")
	}
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	if want := accountName(tu.User.Sid); p.Account != want || p.PID != int32(os.Getpid()) || p.Known {
		t.Fatalf("peer %+v, want account %s pid %d", p, want, os.Getpid())
	}
	if !strings.Contains(logs.String(), "control pipe: connection") || !strings.Contains(logs.String(), p.Account) {
		t.Fatalf("log:\n%s", logs.String())
	}
}

// syncWriter lets the listener's goroutine and the test share a buffer.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
