package asterisk

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// bannerPrefix starts the greeting every AMI sends on connect.
const bannerPrefix = "Asterisk Call Manager/"

// client is one logged-in AMI connection: actions correlated by ActionID,
// list responses collected up to their ...Complete event, everything else
// handed to onEvent in wire order on the reader goroutine.
type client struct {
	nc      net.Conn
	rd      *Reader
	banner  string
	onEvent func(Message)

	wmu sync.Mutex // one action on the wire at a time

	mu      sync.Mutex
	pending map[string]*pending
	closed  bool
	cause   error

	seq    atomic.Uint64
	done   chan struct{}
	lastRx atomic.Int64
}

type pending struct {
	resp   Message
	list   []Message
	inList bool
	err    error
	ch     chan struct{}
}

// amiError is an AMI "Response: Error": the action was refused.
type amiError struct {
	action  string
	message string
}

func (e *amiError) Error() string {
	return fmt.Sprintf("AMI %s refused: %s", e.action, e.message)
}

// permission reports whether the refusal is for a missing manager.conf class.
func (e *amiError) permission() bool {
	return strings.Contains(strings.ToLower(e.message), "permission denied")
}

// loginError is a refused Login.
type loginError struct{ message string }

func (e *loginError) Error() string {
	return "AMI login refused: " + e.message + " (check asterisk.user and asterisk.secret against manager.conf, and its permit/deny lines)"
}

// dial connects, checks the banner and logs in. events says which event
// classes the session wants ("off" for none).
func dial(ctx context.Context, addr, user, secret, events string, lim Limits, timeout time.Duration, onEvent func(Message)) (*client, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot reach the AMI at %s: %v", psync.ErrUnavailable, addr, err)
	}
	c := &client{nc: nc, rd: NewReader(nc, lim), onEvent: onEvent, pending: map[string]*pending{}, done: make(chan struct{})}
	_ = nc.SetReadDeadline(time.Now().Add(timeout))
	banner, err := c.rd.Banner()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: no AMI greeting from %s: %v", psync.ErrUnavailable, addr, err)
	}
	if !strings.HasPrefix(banner, bannerPrefix) {
		nc.Close()
		return nil, fmt.Errorf("%w: %s does not greet like an Asterisk manager interface (got %q); check asterisk.host and the port (5038)", psync.ErrRejected, addr, clip([]byte(banner), 60))
	}
	_ = nc.SetReadDeadline(time.Time{})
	c.banner = banner
	c.lastRx.Store(time.Now().UnixNano())
	go c.readLoop()
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The secret never crosses the network: Asterisk hands out a
	// challenge and the login carries MD5(challenge + secret), as
	// manager.c's authenticate() checks it. AMI has no TLS by default.
	ch, err := c.action(lctx, "Challenge", Field{"AuthType", "MD5"})
	if err == nil && ch.Get("Challenge") == "" {
		err = fmt.Errorf("%w: the AMI answered Challenge without a challenge", psync.ErrRejected)
	}
	if err == nil {
		sum := md5.Sum([]byte(ch.Get("Challenge") + secret))
		_, err = c.action(lctx, "Login", Field{"Username", user}, Field{"AuthType", "MD5"}, Field{"Key", hex.EncodeToString(sum[:])}, Field{"Events", events})
	}
	if err != nil {
		c.close(err)
		var ae *amiError
		if errors.As(err, &ae) {
			return nil, &loginError{message: ae.message}
		}
		return nil, err
	}
	return c, nil
}

// readLoop owns the socket's read side until it fails; its error ends the
// client and every action waiting on it.
func (c *client) readLoop() {
	for {
		m, err := c.rd.ReadMessage()
		if err != nil {
			if errors.Is(err, ErrFrame) {
				err = fmt.Errorf("dropped the AMI connection: %w", err)
			}
			c.close(err)
			return
		}
		c.lastRx.Store(time.Now().UnixNano())
		c.dispatch(m)
	}
}

func (c *client) dispatch(m Message) {
	id := m.Get("ActionID")
	if m.Has("Response") {
		c.mu.Lock()
		p := c.pending[id]
		if p == nil || p.resp != nil {
			c.mu.Unlock()
			return // an answer nobody waits for (timed out): dropped
		}
		p.resp = m
		if strings.EqualFold(m.Get("Response"), "Error") {
			p.err = &amiError{message: m.Get("Message")}
		} else if strings.EqualFold(m.Get("EventList"), "start") {
			p.inList = true
			c.mu.Unlock()
			return
		}
		delete(c.pending, id)
		c.mu.Unlock()
		close(p.ch)
		return
	}
	if id != "" {
		c.mu.Lock()
		if p := c.pending[id]; p != nil && p.inList {
			ev := m.Get("Event")
			if strings.EqualFold(m.Get("EventList"), "Complete") || strings.HasSuffix(ev, "Complete") {
				delete(c.pending, id)
				c.mu.Unlock()
				close(p.ch)
				return
			}
			if strings.EqualFold(ev, "DeviceStateChange") && c.onEvent != nil {
				// DeviceStateList's items go the way of live events, in
				// wire order: a change that came before an item is never
				// applied after it.
				c.mu.Unlock()
				c.onEvent(m)
				return
			}
			if len(p.list) < maxListItems {
				p.list = append(p.list, m)
			} else if p.err == nil {
				p.err = fmt.Errorf("%w: list answer longer than %d items", ErrFrame, maxListItems)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
	if m.Has("Event") && c.onEvent != nil {
		c.onEvent(m)
	}
}

// maxListItems bounds the events one list answer may collect.
const maxListItems = 200000

// action sends one action and waits for its answer (for a list action, up
// to its ...Complete event). A Response: Error is an *amiError.
func (c *client) action(ctx context.Context, name string, fields ...Field) (Message, error) {
	resp, _, err := c.list(ctx, name, fields...)
	return resp, err
}

// list is action returning the list events too.
func (c *client) list(ctx context.Context, name string, fields ...Field) (Message, []Message, error) {
	for _, f := range fields {
		if err := checkValue(f.Value); err != nil {
			return nil, nil, psync.NotSent(fmt.Errorf("%w: %s %s: %w", psync.ErrRejected, name, f.Key, err))
		}
	}
	// The prefix keeps an ActionID another client of the same account
	// uses from ever being taken for one of ours.
	id := "pb-" + strconv.FormatUint(c.seq.Add(1), 36)
	p := &pending{ch: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		cause := c.cause
		c.mu.Unlock()
		return nil, nil, psync.NotSent(fmt.Errorf("%w: AMI connection closed: %v", psync.ErrUnavailable, cause))
	}
	c.pending[id] = p
	c.mu.Unlock()
	buf := appendAction(make([]byte, 0, 128), name, id, fields)

	c.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetWriteDeadline(dl)
	} else {
		_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	}
	_, err := c.nc.Write(buf)
	c.wmu.Unlock()
	if err != nil {
		c.close(fmt.Errorf("write: %w", err))
		return nil, nil, fmt.Errorf("%w: sending %s: %v", psync.ErrUnavailable, name, err)
	}
	select {
	case <-p.ch:
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: no answer to %s: %v", psync.ErrUnavailable, name, ctx.Err())
	case <-c.done:
		return nil, nil, fmt.Errorf("%w: AMI connection lost waiting for %s: %v", psync.ErrUnavailable, name, c.err())
	}
	if p.err != nil {
		var ae *amiError
		if errors.As(p.err, &ae) {
			ae.action = name
		}
		return p.resp, p.list, p.err
	}
	return p.resp, p.list, nil
}

// close ends the connection once, with its cause.
func (c *client) close(cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if cause == nil {
		cause = errors.New("closed")
	}
	c.cause = cause
	c.mu.Unlock()
	c.nc.Close()
	close(c.done)
}

func (c *client) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// ping sends Ping and expects Pong.
func (c *client) ping(ctx context.Context) error {
	resp, err := c.action(ctx, "Ping")
	if err != nil {
		return err
	}
	if !strings.EqualFold(resp.Get("Ping"), "Pong") && !strings.EqualFold(resp.Get("Response"), "Success") {
		return fmt.Errorf("%w: Ping answered without Pong", psync.ErrUnavailable)
	}
	return nil
}

// dbGet returns the value of family/key and whether it exists.
func (c *client) dbGet(ctx context.Context, family, key string) (string, bool, error) {
	resp, list, err := c.list(ctx, "DBGet", Field{"Family", family}, Field{"Key", key})
	var ae *amiError
	if errors.As(err, &ae) && strings.Contains(strings.ToLower(ae.message), "not found") {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	// Asterisk answers DBGet as a list (Response: Success, EventList: start,
	// then a DBGetResponse event); older versions put Val in the event
	// without the list markers. Both are taken.
	for _, ev := range list {
		if ev.Has("Val") {
			return ev.Get("Val"), true, nil
		}
	}
	if resp.Has("Val") {
		return resp.Get("Val"), true, nil
	}
	return "", false, nil
}

func (c *client) dbPut(ctx context.Context, family, key, val string) error {
	_, err := c.action(ctx, "DBPut", Field{"Family", family}, Field{"Key", key}, Field{"Val", val})
	return err
}

// dbDel deletes family/key; a key that is not there is success.
func (c *client) dbDel(ctx context.Context, family, key string) error {
	_, err := c.action(ctx, "DBDel", Field{"Family", family}, Field{"Key", key})
	var ae *amiError
	if errors.As(err, &ae) && strings.Contains(strings.ToLower(ae.message), "not found") {
		return nil
	}
	return err
}

func (c *client) setvar(ctx context.Context, variable, value string) error {
	_, err := c.action(ctx, "Setvar", Field{"Variable", variable}, Field{"Value", value})
	return err
}

func (c *client) getvar(ctx context.Context, variable string) (string, error) {
	resp, err := c.action(ctx, "Getvar", Field{"Variable", variable})
	if err != nil {
		return "", err
	}
	return resp.Get("Value"), nil
}
