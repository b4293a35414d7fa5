package ucsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Server is a running (or not yet started) UCServer simulator. All methods
// are safe for concurrent use.
type Server struct {
	opts             Options
	log              *slog.Logger
	now              func() time.Time
	keepAliveTimeout time.Duration
	mux              *http.ServeMux

	ctx    context.Context // server lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // socket handlers, sweeper, delayed invokes

	mu         sync.Mutex
	configErr  error
	users      map[string]*user // folded contact id
	order      []*user          // insertion order, for stable line lists
	logins     map[string]*user // folded login name
	tokens     map[string]*user
	lines      map[string]*line // line URI
	numbers    map[string]*line // dialable number, to mark calls internal
	calls      map[string]*call // connection id
	sessions   map[string]*session
	timed      map[*user]struct{} // users whose absent state has a validity window
	seq        uint64
	outbox     []pendingFrame
	toClose    []*websocket.Conn // sockets to cut once mu is released
	stats      Stats
	changed    chan struct{} // closed and replaced whenever stats change
	requests   []Request
	httpFaults map[Endpoint]*HTTPFault
	opFaults   map[int]*OperationFault
	changes    []Change
	changeSeq  uint64

	ln      net.Listener
	srv     *http.Server
	url     string
	started bool
	closed  bool
}

type pendingFrame struct {
	sess  *session
	frame []byte
}

// New builds a simulator from opts. Configuration errors (duplicate ids,
// lines without URI) are reported by Start.
func New(opts Options) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:       opts,
		log:        opts.Logger,
		now:        opts.Now,
		ctx:        ctx,
		cancel:     cancel,
		users:      map[string]*user{},
		logins:     map[string]*user{},
		tokens:     map[string]*user{},
		lines:      map[string]*line{},
		numbers:    map[string]*line{},
		calls:      map[string]*call{},
		sessions:   map[string]*session{},
		timed:      map[*user]struct{}{},
		changed:    make(chan struct{}),
		httpFaults: map[Endpoint]*HTTPFault{},
		opFaults:   map[int]*OperationFault{},
		stats:      Stats{Invokes: map[int]int{}, Events: map[int]int{}},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "ucsim")
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case opts.KeepAliveTimeout == 0:
		s.keepAliveTimeout = 30 * time.Second
	case opts.KeepAliveTimeout > 0:
		s.keepAliveTimeout = opts.KeepAliveTimeout
	}
	if s.opts.Addr == "" {
		s.opts.Addr = "127.0.0.1:0"
	}
	if s.opts.SweepInterval <= 0 {
		s.opts.SweepInterval = 100 * time.Millisecond
	}
	if s.opts.ServerVersion == "" {
		s.opts.ServerVersion = "8.0.0.0"
	}
	s.mu.Lock()
	for _, u := range opts.Users {
		if _, err := s.addUserLocked(u); err != nil && s.configErr == nil {
			s.configErr = err
		}
	}
	s.mu.Unlock()

	mux := http.NewServeMux()
	mux.HandleFunc("/controller/client/ucws", s.handleController)
	mux.HandleFunc("/ws/client/createsession", s.handleCreateSession)
	mux.HandleFunc("/ws/client/destroysession", s.handleDestroySession)
	mux.HandleFunc("/ws/client/websocket", s.handleWebSocket)
	mux.HandleFunc("/ws/client/websocket/", s.handleWebSocket)
	s.mux = mux
	return s
}

// Start binds Options.Addr (default a free 127.0.0.1 port) and serves in the
// background until Close.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.configErr != nil {
		s.mu.Unlock()
		return s.configErr
	}
	if s.started || s.closed {
		s.mu.Unlock()
		return errors.New("ucsim: Start called twice or after Close")
	}
	s.started = true
	s.mu.Unlock()

	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("ucsim: listen: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.ln = ln
	s.srv = srv
	s.url = "http://" + ln.Addr().String()
	s.mu.Unlock()

	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.opts.SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				s.Sweep()
			}
		}
	}()
	s.log.Info("listening", "url", s.url)
	return nil
}

// URL is the base URL ("http://127.0.0.1:port") of both the UCWeb endpoints
// and the UCConnect controller endpoint. Empty before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// WebSocketURL returns the URL a client opens for sessionID.
func (s *Server) WebSocketURL(sessionID string) string {
	return "ws" + strings.TrimPrefix(s.URL(), "http") + "/ws/client/websocket?x-ucsessionid=" + sessionID
}

// ServeHTTP serves the simulator's endpoints, for use without Start (e.g.
// mounted in another server).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Close drops every socket, stops the listener and waits for all goroutines
// the simulator started.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, sess := range s.sessions {
		s.endSessionLocked(sess, websocket.StatusGoingAway, "server shutdown", true)
	}
	srv := s.srv
	s.finishLocked()

	s.cancel()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) nextIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%08d", prefix, s.seq)
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// notifyLocked wakes WaitStats callers.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) emitLocked(sess *session, op int, frame []byte) {
	if sess.dead {
		return
	}
	s.outbox = append(s.outbox, pendingFrame{sess: sess, frame: frame})
	s.stats.Events[op]++
}

// flushLocked hands queued frames to the session writers. Producers queue
// into outbox first so that an invoke's result always precedes the events
// it caused.
func (s *Server) flushLocked() {
	if len(s.outbox) == 0 {
		return
	}
	for _, p := range s.outbox {
		if !p.sess.out.push(p.frame) && !p.sess.dead {
			s.log.Warn("session too slow, dropping", "session", logID(p.sess.id))
			s.endSessionLocked(p.sess, websocket.StatusPolicyViolation, "send queue overflow", true)
		}
	}
	clear(s.outbox)
	s.outbox = s.outbox[:0]
}

// Sweep expires sessions whose keep-alive is overdue and applies absent
// state validity windows at the current simulation time. It runs every
// SweepInterval; tests with a fake clock call it directly after advancing.
//
// Guess (brief §6.2): the timeout value, whether other traffic counts as
// keep-alive (here: only with Options.AnyMessageKeepsAlive) and the close
// code (here: 1000 "session expired") are not published.
func (s *Server) Sweep() {
	s.mu.Lock()
	now := s.now()
	if s.keepAliveTimeout > 0 {
		for _, sess := range s.sessions {
			if now.Sub(sess.lastKeepAlive) > s.keepAliveTimeout {
				s.stats.SessionsExpired++
				s.endSessionLocked(sess, websocket.StatusNormalClosure, "session expired", false)
			}
		}
	}
	for u := range s.timed {
		if !u.absent.to.IsZero() && !now.Before(u.absent.to) {
			u.absent = absentState{state: AbsentNotSet}
			delete(s.timed, u)
			s.logAbsentLocked(ChangeAbsent, u, ByServer)
			s.publishAbsentLocked(u)
			continue
		}
		if u.absent.to.IsZero() && !now.Before(u.absent.from) {
			delete(s.timed, u) // started, and open-ended: nothing left to watch
		}
		// A window that just opened changes the computed presence only.
		s.publishLocked(u, 0, nil)
	}
	s.finishLocked()
}

// ---- HTTP endpoints -------------------------------------------------------

// Endpoint names an HTTP endpoint for fault injection and the request log.
type Endpoint string

// The simulator's HTTP endpoints.
const (
	EndpointController     Endpoint = "controller"
	EndpointCreateSession  Endpoint = "createsession"
	EndpointDestroySession Endpoint = "destroysession"
	EndpointWebSocket      Endpoint = "websocket"
)

func (s *Server) record(ep Endpoint, r *http.Request, status int) {
	q := r.URL.Query()
	for _, k := range []string{"token", "pass"} {
		if q.Has(k) {
			q.Set(k, "REDACTED")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) >= maxRequestLog {
		copy(s.requests, s.requests[len(s.requests)/2:])
		s.requests = s.requests[:len(s.requests)-len(s.requests)/2]
	}
	s.requests = append(s.requests, Request{
		Time: s.now(), Endpoint: ep, Method: r.Method, Path: r.URL.Path, Query: q.Encode(), Status: status,
	})
	s.notifyLocked()
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	// The node sample treats a controller answer without Content-Length as
	// an error, so never let net/http fall back to chunked encoding.
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) knownUCSID(id string) bool {
	return s.opts.UCSID != "" && strings.EqualFold(id, s.opts.UCSID)
}

// applyFault applies a configured HTTP fault. It returns the status to fail
// with (0 = proceed normally) after any delay; false if the request died
// while waiting.
func (s *Server) applyFault(ep Endpoint, r *http.Request) (HTTPFault, bool) {
	s.mu.Lock()
	f := s.httpFaults[ep]
	var fault HTTPFault
	if f != nil {
		fault = *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				delete(s.httpFaults, ep)
			}
		}
	}
	s.mu.Unlock()
	if fault.Delay > 0 {
		t := time.NewTimer(fault.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return fault, false
		case <-s.ctx.Done():
			return fault, false
		}
	}
	return fault, true
}

func (s *Server) handleController(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.ControllerRequests++ })
	f, ok := s.applyFault(EndpointController, r)
	if !ok {
		return
	}
	if f.Status != 0 {
		w.WriteHeader(f.Status)
		s.record(EndpointController, r, f.Status)
		return
	}
	if !s.knownUCSID(r.URL.Query().Get("ucsid")) {
		// EXT evidence only: 204 = "no UCServer with this ucsid connected".
		w.WriteHeader(http.StatusNoContent)
		s.record(EndpointController, r, http.StatusNoContent)
		return
	}
	body, _ := json.Marshal(struct {
		Redirect string `json:"redirect"`
	}{s.URL()})
	writeJSON(w, http.StatusOK, body)
	s.record(EndpointController, r, http.StatusOK)
}

type logonErrorBody struct {
	Error struct {
		Type           string `json:"_type"`
		ErrorDetail    int    `json:"iErrorDetail"`
		AuthCredetials string `json:"sAuthCredetials"` // sic, as documented
		ErrorString    string `json:"u8sErrorString"`
		FailedUser     string `json:"u8sFailedUser"`
	} `json:"error"`
	ErrorValue int    `json:"error_value"`
	InvokedID  int    `json:"invokedID"`
	SessionID  string `json:"sessionID"`
}

// logonError builds the documented 400 body. Guess: invokedID (44 in the
// docs' sample) and sessionID carry no meaning here and are 0 and "".
func logonError(detail int, text, failedUser string) []byte {
	var b logonErrorBody
	b.Error.Type = "AsnLogonError"
	b.Error.ErrorDetail = detail
	b.Error.ErrorString = text
	b.Error.FailedUser = failedUser
	out, _ := json.Marshal(b)
	return out
}

func wsError119() []byte {
	return []byte(`{"error":{"details":"no UCServer with this ucsid is connected to this UCWeb","_type":"WsError","iErrorDetail":119,"u8sErrorString":"UCServer is not connected here"}}`)
}

// Logon error details (AsnLogonErrorEnum) the simulator produces.
const (
	LogonInternalError       = 100
	LogonBadCredentials      = 101
	LogonIncompatibleVersion = 104
	LogonNegotiationRequired = 105
	LogonMethodUnsupported   = 106
)

func headerOrQuery(r *http.Request, header, query string) string {
	if v := r.Header.Get(header); v != "" {
		return v
	}
	return r.URL.Query().Get(query)
}

func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.CreateSessionRequests++ })
	status, body, hdr := s.createSession(r)
	if status == 0 {
		return // client went away during an injected delay
	}
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	if status == http.StatusUnauthorized {
		w.WriteHeader(status)
	} else {
		writeJSON(w, status, body)
	}
	s.record(EndpointCreateSession, r, status)
}

func (s *Server) createSession(r *http.Request) (int, []byte, map[string]string) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, []byte(`{}`), nil
	}
	f, ok := s.applyFault(EndpointCreateSession, r)
	if !ok {
		return 0, nil, nil
	}
	// Guess (brief §6.3): the real challenge lists the server's methods
	// (NTLM, Negotiate, …); only Basic is simulated.
	challenge := map[string]string{"WWW-Authenticate": `Basic realm="UCServer"`}
	switch f.Status {
	case 0:
	case http.StatusBadRequest:
		d := f.LogonErrorDetail
		if d == 0 {
			d = LogonBadCredentials
		}
		return f.Status, logonError(d, "simulated logon failure", ""), nil
	case http.StatusUnauthorized:
		return f.Status, nil, challenge
	case http.StatusBadGateway:
		return f.Status, wsError119(), nil
	default:
		return f.Status, []byte(`{"error":"simulated failure"}`), nil
	}

	// Guess: a request without any ucsid is treated as on-prem ("local").
	ucsid := headerOrQuery(r, "X-Ucsid", "ucsid")
	if ucsid != "" && !strings.EqualFold(ucsid, "local") && !s.knownUCSID(ucsid) {
		return http.StatusBadGateway, wsError119(), nil
	}

	protocol := 0
	if r.Body != nil {
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if len(bytes.TrimSpace(raw)) > 0 {
			var body struct {
				Negotiate *struct {
					ClientProtocolVersion json.RawMessage `json:"iClientProtocolVersion"`
				} `json:"negotiate"`
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				return http.StatusBadRequest, logonError(LogonIncompatibleVersion, "createsession body is not JSON", ""), nil
			}
			if body.Negotiate != nil {
				if v, ok := parseInt(body.Negotiate.ClientProtocolVersion); ok {
					protocol = int(v)
				}
			}
		}
	}
	if s.opts.RequireNegotiate && protocol == 0 {
		return http.StatusBadRequest, logonError(LogonIncompatibleVersion, "iClientProtocolVersion required", ""), nil
	}

	no401 := r.Header.Get("X-No401") != "" || r.URL.Query().Has("no401")
	token := headerOrQuery(r, "X-Uctoken", "token")
	q := r.URL.Query()
	basicUser, basicPass, hasBasic := r.BasicAuth()

	s.mu.Lock()
	var u *user
	var failedUser string
	switch {
	case token != "":
		u = s.tokens[token]
	case q.Has("user"):
		failedUser = q.Get("user")
		if c := s.logins[foldID(failedUser)]; c != nil && c.spec.Password == q.Get("pass") {
			u = c
		}
	case hasBasic:
		failedUser = basicUser
		if c := s.logins[foldID(basicUser)]; c != nil && c.spec.Password == basicPass {
			u = c
		}
	case r.Header.Get("Authorization") != "":
		s.mu.Unlock()
		// Guess: NTLM/Kerberos/JWT are not simulated; answer as a server
		// without that method would.
		if no401 {
			return http.StatusBadRequest, logonError(LogonMethodUnsupported, "authentication method not supported", ""), nil
		}
		return http.StatusUnauthorized, nil, challenge
	default:
		s.mu.Unlock()
		// Guess: with X-no401 and no credentials at all the server reports
		// "negotiation required" instead of challenging.
		if no401 {
			return http.StatusBadRequest, logonError(LogonNegotiationRequired, "credentials required", ""), nil
		}
		return http.StatusUnauthorized, nil, challenge
	}
	if u == nil {
		s.mu.Unlock()
		return http.StatusBadRequest, logonError(LogonBadCredentials, "invalid user name or password", failedUser), nil
	}
	now := s.now()
	sess := &session{
		id:            newSessionID(),
		owner:         u,
		clientAppID:   q.Get("clientappid"),
		protocol:      protocol,
		created:       now,
		lastKeepAlive: now,
		subs:          map[*user]struct{}{},
		monitors:      map[string]*line{},
		out:           newOutQueue(),
	}
	s.sessions[sess.id] = sess
	u.owners[sess] = struct{}{}
	s.stats.SessionsCreated++
	s.notifyLocked()
	s.mu.Unlock()
	s.log.Info("session created", "session", logID(sess.id), "contact", u.spec.ContactID)
	body, _ := json.Marshal(struct {
		SessionID string `json:"sessionid"`
	}{sess.id})
	return http.StatusOK, body, nil
}

func (s *Server) handleDestroySession(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.DestroySessionRequests++ })
	f, ok := s.applyFault(EndpointDestroySession, r)
	if !ok {
		return
	}
	if f.Status != 0 {
		writeJSON(w, f.Status, []byte(`{}`))
		s.record(EndpointDestroySession, r, f.Status)
		return
	}
	id := headerOrQuery(r, "X-Ucsessionid", "ucsessionid")
	s.mu.Lock()
	sess := s.sessions[id]
	if sess != nil {
		s.endSessionLocked(sess, websocket.StatusNormalClosure, "session destroyed", false)
	}
	s.finishLocked()
	// Guess: the response of destroysession is not documented.
	status := http.StatusOK
	if sess == nil {
		status = http.StatusNotFound
	}
	writeJSON(w, status, []byte(`{}`))
	s.record(EndpointDestroySession, r, status)
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.notifyLocked()
	s.mu.Unlock()
}
