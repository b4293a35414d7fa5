package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// stack is one running SIP endpoint: user agent, server handlers, client
// and the local socket. It lives for one Run (or one Doctor) and is torn
// down only after the un-SUBSCRIBEs went out: sipgo closes the socket with
// the context it serves on.
type stack struct {
	cfg    Config
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	// host and port are what the bridge advertises in Via and Contact.
	host string
	port int
	stop context.CancelFunc
	done chan struct{}
	// challenges counts the digest challenges answered (doctor reports
	// whether the credentials were asked for and taken).
	challenges atomic.Int64
}

// startStack binds the local socket and serves NOTIFYs (onNotify) on it.
// For UDP the client sends from that same socket, so servers that answer
// to the source port (and NAT) reach the listener.
func startStack(cfg Config, onNotify sipgo.RequestHandler) (*stack, error) {
	lhost, lport, _ := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(lhost); lhost == "" || ip != nil && ip.IsUnspecified() {
		// Contact must be an address the server can reach: take the one
		// the system routes towards it (no packet is sent).
		h, err := localAddrTowards(cfg)
		if err != nil {
			return nil, fmt.Errorf("sip.listen %s: cannot find a local address towards sip.server %s: %w; set sip.listen to this machine's address", cfg.Listen, cfg.Server, err)
		}
		lhost = h
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("presencebridge"), sipgo.WithUserAgentHostname(cfg.Domain),
		sipgo.WithUserAgenTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(cfg.Logger))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	srv.OnNotify(onNotify)
	// Everything else a PBX might send the bridge's Contact is refused
	// plainly instead of sipgo's default 405 log line.
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})

	ctx, cancel := context.WithCancel(context.Background())
	st := &stack{cfg: cfg, ua: ua, srv: srv, host: lhost, stop: cancel, done: make(chan struct{})}
	var clientOpts []sipgo.ClientOption
	switch cfg.Transport {
	case "udp":
		pc, err := net.ListenPacket("udp", net.JoinHostPort(lhost, lport))
		if err != nil {
			cancel()
			ua.Close()
			return nil, fmt.Errorf("sip.listen %s: %w", cfg.Listen, err)
		}
		st.port = pc.LocalAddr().(*net.UDPAddr).Port
		go func() { <-ctx.Done(); pc.Close() }()
		go func() { defer close(st.done); _ = srv.ServeUDP(pc) }()
		// sipgo registers the socket for sending only once ServeUDP runs;
		// a request before that would try to bind the port a second time.
		if err := st.waitUDP(pc.LocalAddr().String()); err != nil {
			st.close()
			return nil, err
		}
		clientOpts = append(clientOpts, sipgo.WithClientConnectionAddr(pc.LocalAddr().String()))
	case "tcp":
		l, err := net.Listen("tcp", net.JoinHostPort(lhost, lport))
		if err != nil {
			cancel()
			ua.Close()
			return nil, fmt.Errorf("sip.listen %s: %w", cfg.Listen, err)
		}
		st.port = l.Addr().(*net.TCPAddr).Port
		go func() { <-ctx.Done(); l.Close() }()
		go func() { defer close(st.done); _ = srv.ServeTCP(l) }()
	case "tls":
		// The bridge has no certificate of its own: it only connects out,
		// and the server sends its NOTIFYs back on that connection.
		st.port, _ = strconv.Atoi(lport)
		close(st.done)
	}
	clientOpts = append(clientOpts, sipgo.WithClientHostname(lhost), sipgo.WithClientLogger(cfg.Logger))
	if st.port > 0 {
		clientOpts = append(clientOpts, sipgo.WithClientPort(st.port))
	}
	st.client, err = sipgo.NewClient(ua, clientOpts...)
	if err != nil {
		cancel()
		ua.Close()
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	return st, nil
}

func (st *stack) waitUDP(addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := st.ua.TransportLayer().GetConnection("udp", addr); err == nil && c != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sip.listen %s: the SIP socket did not start serving", addr)
		}
		time.Sleep(time.Millisecond)
	}
}

// close stops serving and releases the socket.
func (st *stack) close() {
	st.stop()
	<-st.done
	_ = st.ua.Close()
}

// contact is the bridge's Contact for dialogs it creates.
func (st *stack) contact() *sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: st.cfg.fromUser(), Host: st.host, Port: st.port}
	if st.cfg.Transport != "udp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", st.cfg.Transport)
	}
	return &sip.ContactHeader{Address: u}
}

// transport is the Via transport name sipgo routes by.
func (cfg Config) transportName() string { return strings.ToUpper(cfg.Transport) }

// fromUser is the user part of the bridge's own address.
func (cfg Config) fromUser() string {
	if cfg.User != "" {
		return cfg.User
	}
	return "presencebridge"
}

func localAddrTowards(cfg Config) (string, error) {
	c, err := net.Dial("udp", cfg.Server)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// request sends req (to sip.server, the outbound proxy) and answers a 401
// or 407 challenge once with the configured credentials. It returns the
// final response.
func (st *stack) request(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, st.cfg.RequestTimeout)
	defer cancel()
	req.SetDestination(st.cfg.Server)
	req.SetTransport(st.cfg.transportName())
	res, err := st.client.Do(ctx, req)
	if err != nil {
		return nil, unreachable(st.cfg, err)
	}
	if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired {
		if st.cfg.User == "" || st.cfg.Password == "" {
			return res, nil // the caller reports the challenge with its fix
		}
		st.challenges.Add(1)
		res, err = st.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: st.cfg.User, Password: st.cfg.Password})
		if err != nil {
			return nil, unreachable(st.cfg, err)
		}
	}
	return res, nil
}

// errUnreachable marks a transaction that got no final answer.
var errUnreachable = errors.New("no answer")

func unreachable(cfg Config, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("sip.server %s (%s): %w: %v; check that the address and sip.transport are right and the server runs", cfg.Server, cfg.Transport, errUnreachable, err)
}

// statusError is a final non-2xx answer.
type statusError struct {
	Method string
	Code   int
	Reason string
	Fix    string
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("%s answered %d %s", e.Method, e.Code, e.Reason)
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

// answerError turns a final non-2xx answer into an error naming the fix.
func answerError(cfg Config, method string, res *sip.Response) error {
	e := &statusError{Method: method, Code: res.StatusCode, Reason: res.Reason}
	switch res.StatusCode {
	case 401, 407:
		if cfg.User == "" || cfg.Password == "" {
			e.Fix = "the server wants digest credentials: set sip.user and sip.password"
		} else {
			e.Fix = "the server refused sip.user / sip.password: check them (and the realm's account)"
		}
	case 403:
		e.Fix = "the account may not do this: allow subscriptions/publications for sip.user on the PBX"
		if !cfg.Register {
			e.Fix += ", or set sip.register true if it only serves registered endpoints"
		}
	case 404, 484:
		e.Fix = "the extension is unknown at sip.domain " + cfg.Domain + ": check the user's extension and sip.domain"
	case 489:
		e.Fix = "the server does not offer this event package: enable dialog (BLF) subscriptions / presence on the PBX"
	case 423:
		e.Fix = "the server wants a longer expiry: raise sip.expires"
	}
	return e
}
