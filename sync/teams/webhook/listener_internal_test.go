package webhook

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// chanListener hands out the conns pushed into it.
type chanListener struct {
	conns  chan net.Conn
	closed chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { close(l.closed); return nil }
func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

func TestLimitListener_WaitsForASlotAndClosesIdleConns(t *testing.T) {
	inner := &chanListener{conns: make(chan net.Conn, 8), closed: make(chan struct{})}
	full := make(chan struct{}, 8)
	l := newLimitListener(inner, 2)
	l.full = func() { full <- struct{}{} }
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	next := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no connection accepted")
			return nil
		}
	}
	waitFull := func() {
		t.Helper()
		select {
		case <-full:
		case <-time.After(10 * time.Second):
			t.Fatal("the listener never found itself full")
		}
	}
	var peers []net.Conn
	push := func() {
		a, b := net.Pipe()
		peers = append(peers, b)
		inner.conns <- a
	}
	defer func() {
		for _, p := range peers {
			p.Close()
		}
	}()

	push()
	push()
	push()
	c1, c2 := next(), next()
	// Both slots taken: the third waits for one to be released.
	waitFull()
	if n := len(accepted); n != 0 {
		t.Fatalf("%d connections accepted beyond the limit", n)
	}
	c1.Close()
	c1.Close() // a second Close must not release a second slot
	c3 := next()

	// Full again (c2, c3): the fourth waits. When c3 goes, it gets c3's slot; the fifth
	// then finds the listener full with c2 idle, and closing c2 makes its room.
	push()
	waitFull()
	l.connState(c2, http.StateIdle)
	l.connState(c3, http.StateActive)
	push()
	c3.Close()
	next()
	waitFull()
	next()
	if err := c2.SetDeadline(time.Time{}); err == nil { // io.ErrClosedPipe once closed
		t.Fatal("the idle connection was not closed")
	}
	l.Close()
	for range accepted {
	}
}

func TestConnectionLimit(t *testing.T) {
	for _, tc := range []struct {
		configured int
		openFiles  uint64
		want       int
	}{
		{1024, 0, 1024},       // unknown descriptor limit: as configured
		{1024, 1 << 20, 1024}, // systemd's hard limit, which Go raises the soft one to
		{1024, 1024, 512},     // a shell's default: half of it
		{1024, 20, 16},        // never below the floor
		{8, 1 << 20, 16},
	} {
		if got := connectionLimit(tc.configured, tc.openFiles); got != tc.want {
			t.Errorf("connectionLimit(%d, %d) = %d, want %d", tc.configured, tc.openFiles, got, tc.want)
		}
	}
	if openFileLimit() == 0 {
		t.Log("RLIMIT_NOFILE unknown on this system")
	}
}
