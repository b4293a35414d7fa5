package graphsim

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is a working, empty tenant on the real clock.
type Options struct {
	// TenantID is the directory (tenant) id; a random GUID when empty.
	TenantID string
	// TenantDomain is the tenant's initial domain, accepted wherever the tenant id is
	// (authority paths). Default "contoso.onmicrosoft.com".
	TenantDomain string

	Apps   []App
	Users  []User
	Groups []Group

	// Clock drives all simulated time. Default: the real clock.
	Clock Clock
	// Logger receives the simulator's own logs (component=graphsim). Default: discarded.
	Logger *slog.Logger

	// AccessTokenLifetime is the lifetime of issued access tokens. Default 1h. (Entra picks a
	// random 60–90 minutes; a fixed value keeps tests exact.)
	AccessTokenLifetime time.Duration
	// DeviceCodeInterval is the polling interval announced by the devicecode endpoint.
	// Default 1s (Entra announces 5s; MSAL really sleeps that long between polls).
	DeviceCodeInterval time.Duration
	// DeviceCodeLifetime is how long a device code can be approved. Default 15m, as Entra.
	DeviceCodeLifetime time.Duration

	// DeliveryWorkers bounds the goroutines that POST notifications. Default 4.
	DeliveryWorkers int
	// DeliveryTimeout bounds one notification POST. Default 10s.
	DeliveryTimeout time.Duration
	// DeliveryRetries is how often a failed notification POST is retried, DeliveryRetryDelay
	// (real time) apart. Default 0: Graph retries for up to 4 hours, which no test wants; a
	// failed delivery is recorded in Deliveries and dropped.
	DeliveryRetries    int
	DeliveryRetryDelay time.Duration
	// ValidationTimeout bounds the subscription validation handshake. Default 10s, as Graph.
	ValidationTimeout time.Duration
	// NotificationClient sends validation requests and notifications. Default: a client that
	// trusts the system roots and this simulator's CA.
	NotificationClient *http.Client
	// AllowHTTPNotificationURLs accepts http:// notification URLs. Graph requires https.
	AllowHTTPNotificationURLs bool

	// RequestBudget is the number of Graph requests one app may make per RequestBudgetWindow
	// before it gets 429 with Retry-After. Default 1500 per 30s (the presence API limit);
	// negative disables the budget.
	RequestBudget       int
	RequestBudgetWindow time.Duration

	// PageSize is the default page size of collections (users, group members). Default 100.
	PageSize int
	// TickInterval is how often (real time) the simulator applies the clock's time without
	// being asked. Default 1s; negative disables it (then only requests and Tick do).
	TickInterval time.Duration
	// RequestLogLimit caps the request and delivery logs (oldest dropped). Default 10000.
	RequestLogLimit int
	// PresenceLog records every change of a user's aggregated presence (TakePresenceChanges).
	// Off by default: the log grows until it is taken.
	PresenceLog bool
	// Seed makes fault-injection rates reproducible. Default 1.
	Seed uint64
	// SigningKey signs tokens; generated when nil. Tests may share one to save key generation.
	SigningKey *rsa.PrivateKey
}

// Server is a running simulator. All methods are safe for concurrent use.
type Server struct {
	opts         Options
	clock        Clock
	log          *slog.Logger
	pki          *pki
	tenantID     string
	tenantDomain string

	ln           net.Listener
	httpSrv      *http.Server
	url          string
	notifyClient *http.Client

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	handlers  sync.WaitGroup // in-flight ServeHTTP calls; Add only under mu while !closing
	closeOnce sync.Once

	dq *deliveryQueue

	// mu guards everything below. One lock for the whole simulated world keeps the rules
	// (aggregation, notifications, budgets) consistent; nothing slow runs under it.
	mu            sync.Mutex
	apps          map[string]*appReg // lower-case client id
	users         map[string]*userState
	upns          map[string]string // lower-case UPN → lower-case id
	userOrder     []string
	groups        map[string]*Group
	deviceCodes   map[string]*deviceAuth
	userCodes     map[string]string
	refreshTokens map[string]*refreshGrant
	evaluatedAt   time.Time
	seq           uint64
	touches       uint64
	subs          map[string]*subscription
	faults        []*faultEntry
	nextFaultID   int
	rng           *rand.Rand
	budget        map[string][]time.Time
	dropNext      int
	dropRate      float64
	requests      []Request
	deliveries    []Delivery
	presenceLog   []PresenceChange
	closing       bool
}

// New starts a simulator listening on 127.0.0.1 on a free port.
func New(opts Options) (*Server, error) {
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TenantID == "" {
		opts.TenantID = newGUID()
	}
	if !isGUID(opts.TenantID) {
		return nil, fmt.Errorf("graphsim: TenantID %q is not a GUID", opts.TenantID)
	}
	if opts.TenantDomain == "" {
		opts.TenantDomain = "contoso.onmicrosoft.com"
	}
	setDefault(&opts.AccessTokenLifetime, time.Hour)
	setDefault(&opts.DeviceCodeInterval, time.Second)
	setDefault(&opts.DeviceCodeLifetime, 15*time.Minute)
	setDefault(&opts.DeliveryTimeout, 10*time.Second)
	setDefault(&opts.DeliveryRetryDelay, time.Second)
	setDefault(&opts.ValidationTimeout, 10*time.Second)
	setDefault(&opts.RequestBudgetWindow, 30*time.Second)
	setDefault(&opts.TickInterval, time.Second)
	if opts.DeliveryWorkers <= 0 {
		opts.DeliveryWorkers = 4
	}
	if opts.RequestBudget == 0 {
		opts.RequestBudget = 1500
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	if opts.RequestLogLimit <= 0 {
		opts.RequestLogLimit = 10000
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}

	p, err := newPKI(opts.SigningKey)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:          opts,
		clock:         opts.Clock,
		log:           opts.Logger.With("component", "graphsim"),
		pki:           p,
		tenantID:      strings.ToLower(opts.TenantID),
		tenantDomain:  strings.ToLower(opts.TenantDomain),
		apps:          map[string]*appReg{},
		users:         map[string]*userState{},
		upns:          map[string]string{},
		groups:        map[string]*Group{},
		deviceCodes:   map[string]*deviceAuth{},
		userCodes:     map[string]string{},
		refreshTokens: map[string]*refreshGrant{},
		subs:          map[string]*subscription{},
		rng:           rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		budget:        map[string][]time.Time{},
	}
	now := s.clock.Now()
	s.evaluatedAt = now
	// Sequence numbers continue from the wall position of the clock so that a restarted
	// simulator never hands out a number below one an adapter may have stored.
	s.seq = uint64(max(now.UnixMicro(), 1))

	for _, a := range opts.Apps {
		if err := s.RegisterApp(a); err != nil {
			return nil, err
		}
	}
	for _, u := range opts.Users {
		if _, err := s.AddUser(u); err != nil {
			return nil, err
		}
	}
	for _, g := range opts.Groups {
		if err := s.AddGroup(g); err != nil {
			return nil, err
		}
	}

	s.notifyClient = opts.NotificationClient
	if s.notifyClient == nil {
		roots, err := x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		roots.AddCert(p.caCert)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		s.notifyClient = &http.Client{Transport: tr}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("graphsim: listen: %w", err)
	}
	s.ln = ln
	s.url = "https://" + ln.Addr().String()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{p.tlsCert}, MinVersion: tls.VersionTLS12},
		// TLS handshake noise from clients that do not trust the CA belongs in debug logs,
		// not on the test's stderr.
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return s.ctx },
	}
	s.dq = newDeliveryQueue()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	for i := 0; i < opts.DeliveryWorkers; i++ {
		s.wg.Add(1)
		go s.deliveryWorker()
	}
	if opts.TickInterval > 0 {
		s.wg.Add(1)
		go s.ticker(opts.TickInterval)
	}
	s.log.Info("started", "url", s.url, "tenant", s.tenantID)
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d == 0 {
		*d = v
	}
}

func (s *Server) ticker(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.Tick()
		}
	}
}

// Close stops the listener, aborts in-flight validation handshakes and notification
// deliveries, and waits for every goroutine the simulator started.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		// Cancelling aborts validation handshakes and injected latencies (request contexts
		// derive from s.ctx). http.Server.Shutdown would wait out HTTP/2's one-second GOAWAY
		// grace per connection, so close hard and wait for our own handlers instead.
		s.cancel()
		err = s.httpSrv.Close()
		s.handlers.Wait()
		s.wg.Wait()
		s.log.Info("closed")
	})
	return err
}

// URL is the simulator's base URL, https://127.0.0.1:port (Entra endpoints live under it).
func (s *Server) URL() string { return s.url }

// GraphURL is the Graph v1.0 base URL to give msgraph-sdk-go's request adapter.
func (s *Server) GraphURL() string { return s.url + "/v1.0" }

// AuthorityHost is the value for azidentity's Cloud.ActiveDirectoryAuthorityHost.
func (s *Server) AuthorityHost() string { return s.url + "/" }

// AuthorityURL is the tenant's authority, as MSAL takes it (https://host/{tenant}).
func (s *Server) AuthorityURL() string { return s.url + "/" + s.tenantID }

// TokenURL is the tenant's v2.0 token endpoint.
func (s *Server) TokenURL() string { return s.AuthorityURL() + "/oauth2/v2.0/token" }

// TenantID is the simulated directory id.
func (s *Server) TenantID() string { return s.tenantID }

// TenantDomain is the tenant's initial domain.
func (s *Server) TenantDomain() string { return s.tenantDomain }

// CACertPEM is the PEM of the CA that issued the server certificate.
func (s *Server) CACertPEM() []byte { return append([]byte(nil), s.pki.caPEM...) }

// CertPool is a new pool holding only the simulator's CA.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.pki.caCert)
	return p
}

// Client returns a new HTTP client that trusts the simulator's CA.
func (s *Server) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}
}

// SigningKeyID is the kid (and x5t) of the key that signs all tokens.
func (s *Server) SigningKeyID() string { return s.pki.signKeyID }

// Tick applies everything the clock's current time has made due: presence session timeouts
// and expiry, user-preferred presence expiry, subscription expiry, with notifications for
// each resulting presence change.
func (s *Server) Tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.clock.Now())
}

// Request is one entry of the request log.
type Request struct {
	Time        time.Time
	RequestID   string
	Method      string
	Path        string
	RawQuery    string
	ContentType string
	// Gzip is true when the request body was labelled Content-Encoding: gzip.
	Gzip bool
	// Body is the decoded request body; nil for form bodies, which carry secrets.
	Body []byte
	// JSON is Body parsed as JSON, when it was JSON.
	JSON any
	// Form is the parsed form body of Entra requests, with secrets, assertions, codes and
	// refresh tokens replaced by "REDACTED".
	Form   url.Values
	Status int
	// AppID and UserID identify the caller of a Graph request with a valid token.
	AppID  string
	UserID string
	// Fault describes the injected fault that produced the response, if any.
	Fault string
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// TakeRequests returns the request log, oldest first, and empties it: a caller that takes it
// often sees every request even when more than RequestLogLimit arrive in total.
func (s *Server) TakeRequests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.requests
	s.requests = nil
	return out
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

func (s *Server) appendRequestLocked(r Request) {
	if len(s.requests) >= s.opts.RequestLogLimit {
		s.requests = append(s.requests[:0], s.requests[len(s.requests)-s.opts.RequestLogLimit+1:]...)
	}
	s.requests = append(s.requests, r)
}

// recorder captures the status code for the request log.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// reqCtx carries what the handlers of one request share.
type reqCtx struct {
	w       *recorder
	r       *http.Request
	body    []byte
	entry   *Request
	reqID   string
	now     time.Time
	isGraph bool
}

var (
	errBadGzip     = errors.New("body is labelled gzip but is not gzip")
	errBadEncoding = errors.New("unsupported content encoding")
	errTooLarge    = errors.New("body too large")
)

const maxBody = 16 << 20

// readBody reads and, like Graph, transparently gunzips the request body. msgraph-sdk-go
// gzips every request body by default, and (kiota-http-go#183) may resend a retried body
// uncompressed but still labelled gzip, which Graph answers with 400: so must we.
func readBody(r *http.Request) (body []byte, gz bool, err error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, false, err
	}
	if len(raw) > maxBody {
		return nil, false, errTooLarge
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return raw, false, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, true, errBadGzip
		}
		out, err := io.ReadAll(io.LimitReader(zr, maxBody+1))
		if err != nil {
			return nil, true, errBadGzip
		}
		if len(out) > maxBody {
			return nil, true, errTooLarge
		}
		return out, true, nil
	default:
		return nil, false, errBadEncoding
	}
}

var redactedFormFields = map[string]bool{
	"client_secret": true, "client_assertion": true, "refresh_token": true,
	"device_code": true, "code": true, "password": true, "assertion": true,
}

// ServeHTTP dispatches to the Entra or the Graph side after the shared steps: request id,
// body decoding, fault injection, and the request log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		http.Error(w, "graphsim: closed", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()
	rc := &reqCtx{
		w:       &recorder{ResponseWriter: w},
		r:       r,
		reqID:   newGUID(),
		now:     s.clock.Now(),
		isGraph: r.URL.Path == "/v1.0" || strings.HasPrefix(r.URL.Path, "/v1.0/"),
	}
	entry := &Request{
		Time: rc.now, RequestID: rc.reqID, Method: r.Method, Path: r.URL.Path,
		RawQuery: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"),
	}
	rc.entry = entry
	if rc.isGraph {
		rc.w.Header().Set("request-id", rc.reqID)
		crid := r.Header.Get("client-request-id")
		if crid == "" {
			crid = rc.reqID
		}
		rc.w.Header().Set("client-request-id", crid)
	} else {
		rc.w.Header().Set("x-ms-request-id", rc.reqID)
	}
	defer func() {
		entry.Status = rc.w.status()
		s.mu.Lock()
		s.appendRequestLocked(*entry)
		s.mu.Unlock()
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", entry.Status, "gzip", entry.Gzip, "fault", entry.Fault)
	}()

	body, gz, err := readBody(r)
	entry.Gzip = gz
	if err != nil {
		s.writeBodyError(rc, err)
		return
	}
	rc.body = body
	s.recordBody(entry, r, body)

	if f, ok := s.takeFault(r); ok {
		if f.Latency > 0 {
			t := time.NewTimer(f.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if f.Status != 0 {
			entry.Fault = fmt.Sprintf("status %d", f.Status)
			s.writeFault(rc, f)
			return
		}
		entry.Fault = fmt.Sprintf("latency %s", f.Latency)
	}

	if rc.isGraph {
		s.serveGraph(rc)
	} else {
		s.serveEntra(rc)
	}
}

func (s *Server) recordBody(e *Request, r *http.Request, body []byte) {
	if len(body) == 0 {
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err == nil {
			for k := range form {
				if redactedFormFields[k] {
					form[k] = []string{"REDACTED"}
				}
			}
			e.Form = form
			return
		}
	}
	e.Body = append([]byte(nil), body...)
	var v any
	if json.Unmarshal(body, &v) == nil {
		e.JSON = v
	}
}

func (s *Server) writeBodyError(rc *reqCtx, err error) {
	switch {
	case errors.Is(err, errBadEncoding):
		if rc.isGraph {
			s.writeGraphError(rc, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The content encoding of the request is not supported.")
			return
		}
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", "")
	case errors.Is(err, errTooLarge):
		if rc.isGraph {
			s.writeGraphError(rc, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is too large.")
			return
		}
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_request", 90014, "The request body is too large.", "")
	default:
		// A body labelled gzip that is not gzip is a body Graph cannot read as JSON.
		if rc.isGraph {
			s.writeGraphError(rc, http.StatusBadRequest, "BadRequest", msgBadJSON)
			return
		}
		s.writeEntraError(rc, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", "")
	}
}

const msgBadJSON = "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."

// Fault is an injected failure. Faults are checked in the order they were injected; the
// first that matches a request and fires decides its fate.
type Fault struct {
	// Method matches the request method; empty matches any.
	Method string
	// Path matches requests whose URL path starts with it, e.g. "/v1.0/communications/"; empty
	// matches every path (Entra endpoints too).
	Path string
	// Status is the status to answer with instead of handling the request (429, 500, 503, …).
	// Zero means no status fault: the request is only delayed by Latency and then handled.
	Status int
	// RetryAfter is sent as Retry-After (whole seconds, rounded up) with 429 and 503.
	RetryAfter time.Duration
	// NoRetryAfter omits the Retry-After header, to exercise a client's own backoff.
	NoRetryAfter bool
	// Count limits the fault to the next Count matching requests (that it fires on); zero
	// keeps it until removed.
	Count int
	// Rate is the probability in (0,1) that the fault fires on a matching request; zero (or
	// one) fires every time. The draw is reproducible from Options.Seed.
	Rate float64
	// Latency delays the request (real time) before the status or the normal handling.
	Latency time.Duration
}

type faultEntry struct {
	id        int
	f         Fault
	remaining int
}

// InjectFault installs f and returns a function that removes it.
func (s *Server) InjectFault(f Fault) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFaultID++
	id := s.nextFaultID
	s.faults = append(s.faults, &faultEntry{id: id, f: f, remaining: f.Count})
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.removeFaultLocked(id)
	}
}

// ClearFaults removes every injected fault, including notification drops.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.dropNext = 0
	s.dropRate = 0
}

func (s *Server) removeFaultLocked(id int) {
	for i, fe := range s.faults {
		if fe.id == id {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return
		}
	}
}

func (s *Server) takeFault(r *http.Request) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fe := range s.faults {
		if fe.f.Method != "" && !strings.EqualFold(fe.f.Method, r.Method) {
			continue
		}
		if !strings.HasPrefix(r.URL.Path, fe.f.Path) {
			continue
		}
		if fe.f.Rate > 0 && fe.f.Rate < 1 && s.rng.Float64() >= fe.f.Rate {
			continue
		}
		f := fe.f
		if fe.f.Count > 0 {
			fe.remaining--
			if fe.remaining <= 0 {
				s.removeFaultLocked(fe.id)
			}
		}
		return f, true
	}
	return Fault{}, false
}

func retryAfterSeconds(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	secs := (d + time.Second - 1) / time.Second
	return fmt.Sprint(int64(secs))
}

func (s *Server) writeFault(rc *reqCtx, f Fault) {
	if (f.Status == http.StatusTooManyRequests || f.Status == http.StatusServiceUnavailable) && !f.NoRetryAfter {
		rc.w.Header().Set("Retry-After", retryAfterSeconds(f.RetryAfter))
	}
	if !rc.isGraph {
		code, aadsts := "temporarily_unavailable", 90033
		if f.Status >= 500 && f.Status != http.StatusServiceUnavailable {
			code, aadsts = "server_error", 90015
		}
		s.writeEntraError(rc, f.Status, code, aadsts, "A transient error has occurred. Please try again.", "")
		return
	}
	code, msg := "generalException", "An error has occurred."
	switch f.Status {
	case http.StatusTooManyRequests:
		code, msg = "TooManyRequests", "Too many requests."
	case http.StatusServiceUnavailable:
		code, msg = "ServiceUnavailable", "The service is temporarily unavailable. Please try again later."
	case http.StatusGatewayTimeout:
		code, msg = "GatewayTimeout", "The gateway did not receive a response in time."
	case http.StatusBadGateway:
		code, msg = "BadGateway", "Bad gateway."
	case http.StatusInternalServerError:
		code, msg = "InternalServerError", "An internal server error occurred."
	default:
		if t := http.StatusText(f.Status); t != "" {
			msg = t
		}
	}
	s.writeGraphError(rc, f.Status, code, msg)
}

// chargeBudget counts one Graph request against the app's sliding window. Only admitted
// requests count, so a client that honours Retry-After gets through when it comes back.
func (s *Server) chargeBudgetLocked(appID string, now time.Time) (retryAfter time.Duration, ok bool) {
	if s.opts.RequestBudget < 0 {
		return 0, true
	}
	win := s.opts.RequestBudgetWindow
	ts := s.budget[appID]
	cut := 0
	for cut < len(ts) && !ts[cut].After(now.Add(-win)) {
		cut++
	}
	ts = ts[cut:]
	if len(ts) >= s.opts.RequestBudget {
		s.budget[appID] = ts
		return ts[0].Add(win).Sub(now), false
	}
	s.budget[appID] = append(ts, now)
	return 0, true
}

func writeJSONBody(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

const graphJSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

func (s *Server) writeGraph(rc *reqCtx, status int, v any) {
	writeJSONBody(rc.w, status, graphJSON, v)
}

// writeGraphError writes Graph's error envelope, with the innerError Graph adds.
func (s *Server) writeGraphError(rc *reqCtx, status int, code, msg string) {
	crid := rc.w.Header().Get("client-request-id")
	body := map[string]any{"error": map[string]any{
		"code":    code,
		"message": msg,
		"innerError": map[string]any{
			"date":              rc.now.UTC().Format("2006-01-02T15:04:05"),
			"request-id":        rc.reqID,
			"client-request-id": crid,
		},
	}}
	writeJSONBody(rc.w, status, "application/json", body)
}
