package sipsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Server is one simulated PBX / presence server. Create it with New, bind it
// with Start, stop it with Close. All methods are safe for concurrent use.
type Server struct {
	opts Options
	log  *slog.Logger

	mu         sync.Mutex
	exts       map[string]*extension
	calls      map[string]*call
	subs       map[dialogKey]*subscription
	regs       map[string]*registration // by AOR + contact
	pubs       map[string]*publication  // by SIP-ETag
	htables    map[string]*htable
	nonces     map[string]time.Time
	faults     faults
	stats      Stats
	changed    chan struct{} // closed and replaced on every stats change
	seq        uint64
	sipAddr    string // host:port, fixed after the first Start
	rpcAddr    string
	running    *runtime
	closed     bool
	everBound  bool
	sweepStop  context.CancelFunc
	sweepDone  chan struct{}
	notifyWG   sync.WaitGroup
	configErr  error
	rpcHandler http.Handler
}

// runtime is what one Start … Kill cycle owns: the sockets and the sipgo
// stack bound to them. Kill throws it away; the model outlives it.
type runtime struct {
	ctx    context.Context
	cancel context.CancelFunc
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	udp    net.PacketConn
	tcp    net.Listener
	httpLn net.Listener
	http   *http.Server
	wg     sync.WaitGroup
}

// New builds a simulator from opts. Configuration errors are reported by
// Start.
func New(opts Options) *Server {
	opts.setDefaults()
	s := &Server{
		opts:    opts,
		log:     opts.Logger.With("component", "sipsim"),
		exts:    map[string]*extension{},
		calls:   map[string]*call{},
		subs:    map[dialogKey]*subscription{},
		regs:    map[string]*registration{},
		pubs:    map[string]*publication{},
		htables: map[string]*htable{},
		nonces:  map[string]time.Time{},
		changed: make(chan struct{}),
	}
	for _, e := range opts.Extensions {
		if err := s.AddExtension(e); err != nil && s.configErr == nil {
			s.configErr = err
		}
	}
	for _, t := range opts.HTables {
		if t.Name == "" || t.AutoExpire < 0 {
			s.configErr = fmt.Errorf("sipsim: hash table %q: a name and a non-negative autoexpire are required", t.Name)
			continue
		}
		s.htables[t.Name] = &htable{autoExpire: time.Duration(t.AutoExpire) * time.Second, cells: map[string]*cell{}}
	}
	s.rpcHandler = http.HandlerFunc(s.serveRPC)
	return s
}

// Start binds the SIP port (UDP, and TCP on the same port unless
// Options.NoTCP) and the JSON-RPC HTTP port, and serves until Kill or Close.
// After Kill, Start binds the same ports again.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.configErr != nil {
		s.mu.Unlock()
		return s.configErr
	}
	if s.closed {
		s.mu.Unlock()
		return errors.New("sipsim: Start after Close")
	}
	if s.running != nil {
		s.mu.Unlock()
		return errors.New("sipsim: already started")
	}
	sipAddr, rpcAddr := s.opts.Addr, s.opts.RPCAddr
	if s.everBound {
		sipAddr, rpcAddr = s.sipAddr, s.rpcAddr
	}
	s.mu.Unlock()

	rt, err := s.bind(sipAddr, rpcAddr)
	if err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		rt.stop()
		return errors.New("sipsim: Start after Close")
	}
	s.running = rt
	s.sipAddr = rt.udp.LocalAddr().String()
	s.rpcAddr = rt.httpLn.Addr().String()
	s.everBound = true
	if s.sweepStop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.sweepStop = cancel
		s.sweepDone = make(chan struct{})
		go s.sweepLoop(ctx)
	}
	s.log.Info("listening", "sip", s.sipAddr, "rpc", s.rpcAddr)
	return nil
}

func (s *Server) bind(sipAddr, rpcAddr string) (*runtime, error) {
	host, _, err := net.SplitHostPort(sipAddr)
	if err != nil {
		return nil, fmt.Errorf("sipsim: Options.Addr %q: %w", sipAddr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("sipsim: Options.Addr %q is not a loopback address: the simulator serves tests on 127.0.0.1 only", sipAddr)
	}
	rt := &runtime{}
	udp, err := net.ListenPacket("udp", sipAddr)
	if err != nil {
		return nil, fmt.Errorf("sipsim: listen udp %s: %w", sipAddr, err)
	}
	rt.udp = udp
	bound := udp.LocalAddr().(*net.UDPAddr)
	if !s.opts.NoTCP {
		// The same port number on TCP is usually free when the UDP one was;
		// when it is not, the simulator stays UDP-only rather than failing.
		if ln, err := net.Listen("tcp", bound.String()); err == nil {
			rt.tcp = ln
		} else {
			s.log.Warn("tcp on the SIP port unavailable; serving udp only", "err", err)
		}
	}
	rt.httpLn, err = net.Listen("tcp", rpcAddr)
	if err != nil {
		rt.stop()
		return nil, fmt.Errorf("sipsim: listen rpc %s: %w", rpcAddr, err)
	}

	parser := sip.NewParser()
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("sipsim"),
		sipgo.WithUserAgentHostname(bound.IP.String()),
		sipgo.WithUserAgentParser(parser),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(s.log)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(s.log)),
	)
	if err != nil {
		rt.stop()
		return nil, fmt.Errorf("sipsim: user agent: %w", err)
	}
	rt.ua = ua
	rt.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(s.log))
	if err != nil {
		rt.stop()
		return nil, fmt.Errorf("sipsim: server: %w", err)
	}
	// NOTIFYs must leave from the listening socket: subscribers (and
	// Kamailio's peers) match them to the subscription by source and Via.
	rt.client, err = sipgo.NewClient(ua,
		sipgo.WithClientHostname(bound.IP.String()),
		sipgo.WithClientPort(bound.Port),
		sipgo.WithClientConnectionAddr(bound.String()),
		sipgo.WithClientLogger(s.log),
	)
	if err != nil {
		rt.stop()
		return nil, fmt.Errorf("sipsim: client: %w", err)
	}
	s.installHandlers(rt)

	rt.ctx, rt.cancel = context.WithCancel(context.Background())
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		_ = rt.srv.ServeUDP(udp)
	}()
	if rt.tcp != nil {
		rt.wg.Add(1)
		go func() {
			defer rt.wg.Done()
			_ = rt.srv.ServeTCP(rt.tcp)
		}()
	}
	// sipgo registers the listening socket for outgoing use only once its
	// read loop runs; a NOTIFY sent before that would try to bind the port
	// a second time.
	if err := waitListening(ua, bound.String()); err != nil {
		rt.stop()
		return nil, err
	}
	rt.http = &http.Server{Handler: s.rpcHandler, ReadHeaderTimeout: 5 * time.Second}
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		_ = rt.http.Serve(rt.httpLn)
	}()
	return rt, nil
}

func (rt *runtime) stop() {
	if rt.cancel != nil {
		rt.cancel()
	}
	if rt.http != nil {
		_ = rt.http.Close()
	} else if rt.httpLn != nil {
		_ = rt.httpLn.Close()
	}
	if rt.udp != nil {
		_ = rt.udp.Close()
	}
	if rt.tcp != nil {
		_ = rt.tcp.Close()
	}
	if rt.ua != nil {
		_ = rt.ua.Close()
	}
	rt.wg.Wait()
}

// Kill stops answering at once, as a crashed PBX would: sockets close and
// every subscription is forgotten (Kamailio with subs_db_mode 0 keeps them
// in memory only). Calls, extensions, registrations, publications and hash
// tables survive, as if they were kept in a database. Start binds the same
// ports again.
func (s *Server) Kill() {
	s.mu.Lock()
	rt := s.running
	s.running = nil
	s.dropSubscriptionsLocked()
	s.mu.Unlock()
	if rt != nil {
		rt.stop()
	}
}

// Restart forgets every subscription without a word, as a Kamailio restarted
// with subs_db_mode 0 does: later in-dialog refreshes get 481 and no NOTIFY
// tells the subscribers. The sockets stay open.
func (s *Server) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropSubscriptionsLocked()
	s.stats.Restarts++
	s.signalLocked()
}

// Close stops everything the simulator started and waits for it.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rt := s.running
	s.running = nil
	s.dropSubscriptionsLocked()
	stop := s.sweepStop
	done := s.sweepDone
	s.mu.Unlock()
	if rt != nil {
		rt.stop()
	}
	if stop != nil {
		stop()
		<-done
	}
	s.notifyWG.Wait()
	return nil
}

// Addr is the SIP host:port ("127.0.0.1:port"); empty before the first Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sipAddr
}

// URL is the SIP URI of the server ("sip:127.0.0.1:port"); empty before the
// first Start.
func (s *Server) URL() string {
	a := s.Addr()
	if a == "" {
		return ""
	}
	return "sip:" + a
}

// RPCURL is the Kamailio jsonrpcs endpoint ("http://127.0.0.1:port/RPC");
// empty before the first Start.
func (s *Server) RPCURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rpcAddr == "" {
		return ""
	}
	return "http://" + s.rpcAddr + "/RPC"
}

// Domain is the host part of extension URIs in bodies.
func (s *Server) Domain() string {
	if s.opts.Domain != "" {
		return s.opts.Domain
	}
	a := s.Addr()
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return "127.0.0.1"
}

func (s *Server) sweepLoop(ctx context.Context) {
	defer close(s.sweepDone)
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep(time.Now())
		}
	}
}

func (s *Server) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireSubscriptionsLocked(now)
	for k, r := range s.regs {
		if now.After(r.expiresAt) {
			delete(s.regs, k)
		}
	}
	for k, p := range s.pubs {
		if now.After(p.expiresAt) {
			delete(s.pubs, k)
			s.presenceChangedLocked(p.ext)
		}
	}
	for _, t := range s.htables {
		t.sweep(now)
	}
	for n, at := range s.nonces {
		// Nonces live five minutes: long enough for any client to answer
		// the challenge, short enough to keep a flood of unauthenticated
		// requests from growing the map for long.
		if now.Sub(at) > 5*time.Minute {
			delete(s.nonces, n)
		}
	}
}

func (s *Server) nextLocked() uint64 {
	s.seq++
	return s.seq
}

func (s *Server) nextIDLocked(prefix string) string {
	return prefix + strconv.FormatUint(s.nextLocked(), 10)
}

func waitListening(ua *sipgo.UserAgent, addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := ua.TransportLayer().GetConnection("udp", addr); err == nil && c != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sipsim: the udp listener on %s did not come up", addr)
		}
		time.Sleep(time.Millisecond)
	}
}
