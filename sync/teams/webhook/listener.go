package webhook

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
)

// DefaultMaxConnections is the default of Config.MaxConnections: far more than Graph opens
// (it delivers over a handful of kept-alive connections), far fewer than the tens of
// thousands of idle TLS connections that once used up the process's descriptors.
const DefaultMaxConnections = 1024

// DefaultMaxStreamsPerConn is the default of Config.MaxStreamsPerConn (Go's own default is
// 250): one connection may not take more than a quarter of the MaxInFlight places.
const DefaultMaxStreamsPerConn = 8

// minConnections is the floor of the connection limit however low RLIMIT_NOFILE is.
const minConnections = 16

// connectionLimit is the limit the Endpoint enforces: the configured one, but at most half
// of openFiles, the descriptors the process may open (0: unknown).
func connectionLimit(configured int, openFiles uint64) int {
	n := configured
	if openFiles > 0 && uint64(n) > openFiles/2 {
		n = int(openFiles / 2)
	}
	return max(n, minConnections)
}

// limitListener holds at most cap(slots) connections open for the server at once (and one
// more waiting for a slot). When full, a new connection first has the server close its idle
// keep-alive connections (which otherwise sit for IdleTimeout), then waits for a slot
// rather than being refused, and the ones behind it wait in the kernel's backlog: Graph's
// delivery is served as soon as a slot frees.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	idle map[net.Conn]struct{}

	full func() // test hook: called when Accept finds every slot taken
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{}),
		idle: make(map[net.Conn]struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	// Accept first, then wait for a slot: only a connection really waiting makes room by
	// closing idle ones, and while it waits the ones behind it stay in the backlog.
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.slots <- struct{}{}:
	default:
		if l.full != nil {
			l.full()
		}
		l.closeIdle()
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// connState is the server's ConnState hook: it keeps the set of idle connections.
func (l *limitListener) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == http.StateIdle {
		l.idle[c] = struct{}{}
	} else {
		delete(l.idle, c)
	}
}

// closeIdle closes every idle connection. A request racing the close gets a closed
// connection, which clients retry on a new one; http.Server.Shutdown accepts the same race.
func (l *limitListener) closeIdle() {
	l.mu.Lock()
	conns := make([]net.Conn, 0, len(l.idle))
	for c := range l.idle {
		conns = append(conns, c)
		delete(l.idle, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		// The TCP connection under TLS: tls.Conn.Close first sends close_notify and
		// may wait seconds for a peer that does not read, with Accept waiting on it.
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn()
		}
		_ = c.Close()
	}
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
