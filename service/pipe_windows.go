//go:build windows

package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"

	winio "github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// On Windows the control API is served on a named pipe whose security
// descriptor says who may connect (pipeSDDL): the file mode and owner of a
// Unix socket mean nothing there. Each connection's account is read from
// the client's own token and logged.

// ListenControl opens the control pipe for path (controlPipeName): SYSTEM,
// Administrators and the admin group may connect. The pipe is made as its
// first instance: if another process holds the name (a running bridge, or
// a program waiting to pose as one), this fails instead of sharing it.
func ListenControl(path, group string, log *slog.Logger) (net.Listener, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "control")
	name := controlPipeName(path)
	sid := ""
	if group != "" {
		s, _, _, err := windows.LookupSID("", group)
		if err != nil {
			log.Warn("admin group does not exist: only SYSTEM and Administrators can use the control pipe", "group", group, "err", err)
		} else {
			sid = s.String()
		}
	}
	l, err := winio.ListenPipe(name, &winio.PipeConfig{SecurityDescriptor: pipeSDDL(sid)})
	if err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_PIPE_BUSY) {
			return nil, fmt.Errorf("control pipe: %s is taken: another presencebridge is already listening on it, or another program made it first", name)
		}
		return nil, fmt.Errorf("control pipe %s: %w", name, err)
	}
	return &peerListener{Listener: l, log: log}, nil
}

// DialControl connects to the control pipe for path. It lets the server
// identify (not impersonate) the caller, so that the service can log whose
// command it runs.
func DialControl(ctx context.Context, path string) (net.Conn, error) {
	return winio.DialPipeAccessImpLevel(ctx, controlPipeName(path), windows.GENERIC_READ|windows.GENERIC_WRITE, winio.PipeImpLevelIdentification)
}

// peerListener names and logs the caller of each connection.
type peerListener struct {
	net.Listener
	log *slog.Logger
}

type peerConn struct {
	net.Conn
	peer Peer
}

func (l *peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	p, err := pipePeer(c)
	if err != nil {
		// The pipe's security descriptor already let the caller in.
		l.log.Warn("control pipe: connection from a caller that cannot be named", "pid", p.PID, "err", err)
	} else {
		l.log.Info("control pipe: connection", "peer", p.String())
	}
	return &peerConn{Conn: c, peer: p}, nil
}

// peerOf returns the caller that Accept named. The pipe's security
// descriptor is the gate (Peer.Known stays false).
func peerOf(c net.Conn) (Peer, error) {
	if pc, ok := c.(*peerConn); ok {
		return pc.peer, nil
	}
	return Peer{}, nil
}

// pipePeer names the client of a server pipe connection.
func pipePeer(c net.Conn) (Peer, error) {
	f, ok := c.(interface{ Fd() uintptr })
	if !ok {
		return Peer{}, errors.New("not a named-pipe connection")
	}
	h := windows.Handle(f.Fd())
	var pid uint32
	if err := windows.GetNamedPipeClientProcessId(h, &pid); err != nil {
		return Peer{}, fmt.Errorf("GetNamedPipeClientProcessId: %w", err)
	}
	account, err := pipeClientAccount(h)
	return Peer{PID: int32(pid), Account: account}, err
}

var procImpersonateNamedPipeClient = windows.NewLazySystemDLL("advapi32.dll").NewProc("ImpersonateNamedPipeClient")

// pipeClientAccount names the account of a pipe's client from the client's
// own token, taken by impersonating it at identification level, rather
// than from its process id, which another process may have by now.
func pipeClientAccount(h windows.Handle) (string, error) {
	type result struct {
		account string
		err     error
	}
	ch := make(chan result, 1)
	go func() {
		// Impersonation changes the identity of the OS thread: this
		// goroutine keeps its thread to itself, and if RevertToSelf fails
		// the thread is not handed back (it ends with the goroutine).
		runtime.LockOSThread()
		if r, _, e := procImpersonateNamedPipeClient.Call(uintptr(h)); r == 0 {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("ImpersonateNamedPipeClient: %w", e)}
			return
		}
		var tok windows.Token
		err := windows.OpenThreadToken(windows.CurrentThread(), windows.TOKEN_QUERY, true, &tok)
		if rerr := windows.RevertToSelf(); rerr != nil {
			if err == nil {
				tok.Close()
			}
			ch <- result{err: fmt.Errorf("RevertToSelf: %w", rerr)}
			return
		}
		runtime.UnlockOSThread()
		if err != nil {
			ch <- result{err: fmt.Errorf("OpenThreadToken: %w", err)}
			return
		}
		defer tok.Close()
		tu, err := tok.GetTokenUser()
		if err != nil {
			ch <- result{err: fmt.Errorf("the client's token: %w", err)}
			return
		}
		ch <- result{account: accountName(tu.User.Sid)}
	}()
	r := <-ch
	return r.account, r.err
}

// accountName is DOMAIN\user of a SID, or the SID itself when it names no
// account this machine knows.
func accountName(sid *windows.SID) string {
	account, domain, _, err := sid.LookupAccount("")
	if err != nil {
		return sid.String()
	}
	if domain == "" {
		return account
	}
	return domain + `\` + account
}
