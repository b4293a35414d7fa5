package ucserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/coder/websocket"

	psync "github.com/presencebridge/presencebridge/sync"
)

// maxFrameBytes bounds one server frame. The largest frames are the answers
// that list everything at once: against ucsim with 1,000 users of two lines
// each, asnCtiEnumPhoneLines answers 503,158 bytes (about 250 per line the
// service account may monitor, all of them, not only the bridged users') and
// a 500-contact subscribe chunk 302,636 bytes (about 600 per contact). A
// real UCServer fills more members, so 1 MiB would already be tight for
// 2,000 lines; 4 MiB leaves room for about 16,000 at ucsim's size. A larger
// frame ends the session with an error saying so; the websocket library
// stops reading at the limit, so it costs at most the limit.
//
// An office of 10,000 users has about 20,000 lines: their enumeration is
// one answer of about 5 MB, so the limit grows with the users configured
// (frameBytesPerUser each), which the admin decides, not the server.
const (
	maxFrameBytes     = 4 << 20
	frameBytesPerUser = 2 << 10
)

// frameLimit is the largest frame a session reads for n configured users.
func frameLimit(n int) int64 {
	return max(maxFrameBytes, int64(n)*frameBytesPerUser)
}

// loginError is a refused createsession: the admin has to fix something.
type loginError struct {
	status int
	detail int64 // AsnLogonErrorEnum / WsError detail; 0 if none
	text   string
}

func (e *loginError) Error() string {
	s := fmt.Sprintf("createsession refused (HTTP %d", e.status)
	if e.detail != 0 {
		s += fmt.Sprintf(", detail %d", e.detail)
	}
	s += ")"
	if e.text != "" {
		s += ": " + e.text
	}
	return s
}

// fix says what the admin should do about a refused login.
func (e *loginError) fix() string {
	switch e.detail {
	case 101, 109:
		return "check ucserver.user / ucserver.password"
	case 103:
		return "the UCServer has no free licence for the service account"
	case 104:
		return "the UCServer does not accept this client's protocol version (70); update the UCServer"
	case 105, 106:
		return "enable Basic (password) authentication for web clients on the UCServer, or use a login token"
	case 107, 110:
		return "enable the service account on the UCServer and give it the right to log in via web services"
	case 114:
		return "the UCServer requires TLS: use https:// (port 7225) in ucserver.url"
	case 119:
		return "check ucserver.ucsid: that UCServer is not connected to UCConnect"
	case 129, 131:
		return "the service account is locked; unlock it in the UCServer administration and check ucserver.password"
	case 130:
		return "the login token has expired; issue a new one"
	}
	if e.status == http.StatusUnauthorized {
		return "check ucserver.user / ucserver.password"
	}
	return "check ucserver.url and ucserver.ucsid"
}

// auth reports whether retrying soon cannot help (bad credentials, rights):
// the connector then waits the longest backoff so it does not lock the
// account.
func (e *loginError) auth() bool {
	return e.status == http.StatusUnauthorized || e.status == http.StatusBadRequest
}

// scrubbed hides secrets in an error's text while keeping the chain for
// errors.Is and errors.As.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub replaces every secret the connector knows (password, token, the
// Basic header value, session ids) in err's text.
func (c *Conn) scrub(err error, extra ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range append(c.secrets, extra...) {
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

// shortID shows a session id in logs and reports: the full id lets anyone
// open the session's WebSocket.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

// webBase finds the UCWeb base URL: the configured web service on
// premises, or the controller's redirect through UCConnect.
func (c *Conn) webBase(ctx context.Context) (string, error) {
	if c.cfg.onPrem() {
		return c.cfg.URL, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	u := c.cfg.URL + "/controller/client/ucws?ucsid=" + url.QueryEscape(c.cfg.UCSID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("UCConnect controller: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	return parseRedirect(resp.StatusCode, body, c.cfg.URL)
}

// maxAnswerBytes bounds what is read of the controller's and createsession's
// answers: both are a few hundred bytes.
const maxAnswerBytes = 64 << 10

// parseRedirect reads the UCConnect controller's answer to a ucws lookup:
// the UCWeb base URL it redirects to. configured is ucserver.url: an https
// controller may not send the credentials to a plain http UCWeb.
func parseRedirect(status int, body []byte, configured string) (string, error) {
	if status == http.StatusNoContent {
		return "", &loginError{status: status, detail: 119, text: "no UCServer with this ucsid is connected to UCConnect"}
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("UCConnect controller answered HTTP %d", status)
	}
	var r struct {
		Redirect string `json:"redirect"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Redirect == "" {
		return "", errors.New("UCConnect controller: answer has no redirect")
	}
	ru, err := url.Parse(r.Redirect)
	if err != nil || (ru.Scheme != "http" && ru.Scheme != "https") || ru.Host == "" {
		return "", errors.New("UCConnect controller: redirect is not an http(s) URL")
	}
	if ru.User != nil || strings.ContainsAny(r.Redirect, "?# \t") {
		// The base gets paths appended; a query, a fragment or user info
		// would make every later URL something else than it looks.
		return "", errors.New("UCConnect controller: redirect has user info, a query, a fragment or blanks")
	}
	if cu, err := url.Parse(configured); ru.Scheme == "http" && (err != nil || cu.Scheme != "http") {
		// The credentials would go over plain HTTP. (Schemes compare as url.Parse
		// lower-cases them: "HTTPS://" is https too.)
		return "", errors.New("UCConnect controller: refusing an http:// UCWeb redirect from an https controller")
	}
	// The parsed form: the scheme in lower case, as wsURL expects it.
	return strings.TrimRight(ru.String(), "/"), nil
}

// createSession logs the service account in and returns the session id.
//
// Guess (brief §6.3): POST with the negotiate body and X-no401, as the
// on-premises HTML docs do, is used for UCConnect too (the node sample sends
// a GET without body there); the simulator accepts both alike.
func (c *Conn) createSession(ctx context.Context, base string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	body := []byte(`{"negotiate":{"iClientProtocolVersion":70}}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/ws/client/createsession?clientappid=15", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	req.Header.Set("X-no401", "1")
	req.Header.Set("X-ucsid", c.cfg.UCSID)
	if c.cfg.LoginToken != "" {
		req.Header.Set("x-uctoken", c.cfg.LoginToken)
	} else {
		req.SetBasicAuth(c.cfg.User, c.cfg.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("createsession: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	return parseSessionAnswer(resp.StatusCode, raw)
}

// maxSessionID bounds a session id; estos' are 32 hex digits.
const maxSessionID = 256

// parseSessionAnswer reads createsession's answer: the session id, or why
// the login was refused.
func parseSessionAnswer(status int, raw []byte) (string, error) {
	if status == http.StatusOK {
		var r struct {
			Lower string `json:"sessionid"`
			Upper string `json:"sessionID"` // the PlantUML spelling
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return "", errors.New("createsession: answer is not JSON")
		}
		id := r.Lower
		if id == "" {
			id = r.Upper
		}
		if !usableSessionID(id) {
			return "", errors.New("createsession: answer has no usable session id")
		}
		return id, nil
	}
	le := &loginError{status: status}
	var eb struct {
		Error struct {
			Detail asnInt `json:"iErrorDetail"`
			Text   string `json:"u8sErrorString"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &eb) == nil {
		// The text reaches logs, the console and doctor: printable and short.
		le.detail, le.text = int64(eb.Error.Detail), clip(printable(eb.Error.Text), maxDetailText)
	}
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusBadGateway:
		return "", le
	}
	if status >= 300 && status < 400 {
		return "", fmt.Errorf("createsession answered with a redirect (HTTP %d), which is not followed so that no credential leaves ucserver.url; set ucserver.url to the final address", status)
	}
	return "", fmt.Errorf("createsession answered HTTP %d", status)
}

// usableSessionID: the id goes into the WebSocket URL's query and, shortened,
// into logs and the console, so printable ASCII only, and nothing that
// would end the query parameter.
func usableSessionID(id string) bool {
	if id == "" || len(id) > maxSessionID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("&#?/", c) >= 0 {
			return false
		}
	}
	return true
}

// printable replaces control characters, which could move a terminal's
// cursor or forge log lines, with U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// wsURL turns the UCWeb base into the session's WebSocket URL.
func wsURL(base, sessionID string) string {
	u := base
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u + "/ws/client/websocket?x-ucsessionid=" + url.QueryEscape(sessionID)
}

// reply is what a pending invoke receives.
type reply struct{ err error }

type pendingInvoke struct {
	op    int
	apply func(json.RawMessage) error // run on the reader goroutine
	done  chan reply                  // buffered 1
}

// session is one createsession session and its WebSocket. Results are
// applied on the reader goroutine in wire order (before later events), so a
// snapshot in a result can never overwrite a newer event.
type session struct {
	c       *Conn
	id      string
	ws      *websocket.Conn
	ctx     context.Context
	cancel  context.CancelCauseFunc
	onEvent func(*session, message) // reader goroutine; nil drops events
	started time.Time
	// frameLimit: the largest frame read (see frameLimit)
	frameLimit int64

	mu      sync.Mutex
	pending map[int64]*pendingInvoke
	nextID  int64

	lastRx     atomic.Int64 // unix nanos of the last frame, c.clock
	readerDone chan struct{}
	wg         sync.WaitGroup // keep-alive and helpers

	monSem      chan struct{} // bounds the monitor starts in flight
	rejects     chan int64    // invoke ids of server invokes to reject; one sender
	nReject     int           // rejects queued so far (reader goroutine only)
	rejectsFull bool          // the switch to dropping was logged (reader goroutine only)
}

// maxRejects bounds how many server invokes a session answers with a
// reject; a server that keeps invoking the connector gets no more answers
// (they are counted), so it cannot make the connector queue without end.
const maxRejects = 64

// dial logs in and opens the session's WebSocket. onEvent handles server
// events on the reader goroutine.
func (c *Conn) dial(ctx context.Context, onEvent func(*session, message)) (*session, error) {
	base, err := c.webBase(ctx)
	if err != nil {
		return nil, c.scrub(err)
	}
	id, err := c.createSession(ctx, base)
	if err != nil {
		return nil, c.scrub(err)
	}
	return c.open(ctx, base, id, onEvent)
}

// open opens the WebSocket of a session createSession made at base.
func (c *Conn) open(ctx context.Context, base, id string, onEvent func(*session, message)) (*session, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, wsURL(base, id), &websocket.DialOptions{
		HTTPClient:      c.http,
		CompressionMode: websocket.CompressionDisabled, // as estos' node sample
	})
	if err != nil {
		detail := ""
		if resp != nil {
			detail = fmt.Sprintf(" (HTTP %d)", resp.StatusCode)
		}
		return nil, c.scrub(fmt.Errorf("websocket%s: %w", detail, err), id, url.QueryEscape(id))
	}
	c.mu.Lock()
	limit := frameLimit(len(c.order))
	c.mu.Unlock()
	ws.SetReadLimit(limit)
	sctx, scancel := context.WithCancelCause(context.WithoutCancel(ctx))
	s := &session{
		c: c, id: id, ws: ws, ctx: sctx, cancel: scancel, onEvent: onEvent, frameLimit: limit,
		started: c.clock.Now(), pending: map[int64]*pendingInvoke{}, readerDone: make(chan struct{}),
		monSem: make(chan struct{}, monitorWindow), rejects: make(chan int64, maxRejects),
	}
	s.lastRx.Store(c.clock.Now().UnixNano())
	s.wg.Go(s.sendRejects)
	go s.readLoop()
	return s, nil
}

// fail ends the session with a cause (the first cause wins).
func (s *session) fail(cause error) {
	s.cancel(cause)
	_ = s.ws.CloseNow()
}

// cause says why the session ended.
func (s *session) cause() error {
	if err := context.Cause(s.ctx); err != nil {
		return s.c.scrub(err, s.id)
	}
	return nil
}

// close ends the session politely: asnLogoff, then a close frame. It waits
// for every goroutine of the session.
func (s *session) close() {
	if s.ctx.Err() == nil {
		_ = s.event(opLogoff, struct{}{})
		done := make(chan struct{})
		go func() {
			t := time.NewTimer(time.Second)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				_ = s.ws.CloseNow() // the server did not answer the close frame
			}
		}()
		_ = s.ws.Close(websocket.StatusNormalClosure, "logoff")
		close(done)
		s.cancel(errors.New("closed by the bridge"))
	}
	_ = s.ws.CloseNow()
	<-s.readerDone
	s.wg.Wait()
}

func (s *session) write(data []byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.c.cfg.InvokeTimeout)
	defer cancel()
	if err := s.ws.Write(ctx, websocket.MessageText, data); err != nil {
		s.fail(fmt.Errorf("write: %w", err))
		return err
	}
	return nil
}

// event sends a client event (invokeID 99999, never answered).
func (s *session) event(op int, arg any) error {
	b, err := encodeInvoke(eventInvokeID, op, arg)
	if err != nil {
		return err
	}
	return s.write(b)
}

// invoke sends one operation and waits for its answer. apply, if not nil,
// decodes the result on the reader goroutine before any later frame is
// looked at; its error is invoke's error. Errors wrap psync.ErrRejected
// (the server refused) or psync.ErrUnavailable (no answer, no connection).
func (s *session) invoke(ctx context.Context, op int, arg any, apply func(json.RawMessage) error) error {
	return s.invokeWithin(ctx, s.c.cfg.InvokeTimeout, op, arg, apply)
}

// invokeWithin is invoke with its own answer timeout.
func (s *session) invokeWithin(ctx context.Context, timeout time.Duration, op int, arg any, apply func(json.RawMessage) error) (err error) {
	name := opName(op)
	start := time.Now()
	defer func() {
		result := "ok"
		switch {
		case err == nil:
		case errors.Is(err, psync.ErrRejected):
			result = "rejected"
		case errors.Is(err, psync.ErrUnavailable):
			result = "unavailable"
		default:
			result = "error"
		}
		s.c.meter.Call(psync.SidePhone, name, result, time.Since(start))
	}()
	if err := ctx.Err(); err != nil {
		return psync.NotSent(fmt.Errorf("%s: %w: %w", name, psync.ErrUnavailable, err)) // never send what nobody waits for
	}
	if cause := s.cause(); cause != nil {
		return psync.NotSent(fmt.Errorf("%s: %w: session ended: %v", name, psync.ErrUnavailable, cause))
	}
	p := &pendingInvoke{op: op, apply: apply, done: make(chan reply, 1)}
	s.mu.Lock()
	id := s.nextID
	for range maxInvokeID {
		id = id%maxInvokeID + 1
		if _, busy := s.pending[id]; !busy {
			break
		}
	}
	if _, busy := s.pending[id]; busy {
		s.mu.Unlock()
		return psync.NotSent(fmt.Errorf("%s: %w: too many operations in flight", name, psync.ErrUnavailable))
	}
	s.nextID = id
	s.pending[id] = p
	s.mu.Unlock()
	drop := func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}

	b, err := encodeInvoke(id, op, arg)
	if err != nil {
		drop()
		return fmt.Errorf("%w: %v", psync.ErrRejected, err)
	}
	if err := s.write(b); err != nil {
		drop()
		return fmt.Errorf("%s: %w: %v", name, psync.ErrUnavailable, s.c.scrub(err, s.id))
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-p.done:
		return r.err
	case <-timer.C:
		drop()
		return fmt.Errorf("%s: %w: no answer within %s", name, psync.ErrUnavailable, timeout)
	case <-ctx.Done():
		drop()
		return fmt.Errorf("%s: %w: %w", name, psync.ErrUnavailable, ctx.Err())
	case <-s.ctx.Done():
		drop()
		return fmt.Errorf("%s: %w: session ended: %v", name, psync.ErrUnavailable, s.cause())
	}
}

func (s *session) readLoop() {
	defer close(s.readerDone)
	defer func() {
		// Everything still waiting learns the session is gone.
		s.mu.Lock()
		pending := s.pending
		s.pending = map[int64]*pendingInvoke{}
		s.mu.Unlock()
		for _, p := range pending {
			p.done <- reply{err: fmt.Errorf("%s: %w: session ended: %v", opName(p.op), psync.ErrUnavailable, s.cause())}
		}
	}()
	for {
		typ, data, err := s.ws.Read(s.ctx)
		if err != nil {
			switch st := websocket.CloseStatus(err); {
			case s.ctx.Err() != nil:
			case errors.Is(err, websocket.ErrMessageTooBig):
				s.fail(fmt.Errorf("the server sent a frame over the %d MiB limit; the session is restarted", s.frameLimit>>20))
			case st != -1:
				s.fail(fmt.Errorf("server closed the WebSocket (%d %s)", st, closeReason(err)))
			default:
				s.fail(fmt.Errorf("read: %w", err))
			}
			return
		}
		s.lastRx.Store(s.c.clock.Now().UnixNano())
		if typ != websocket.MessageText {
			s.c.log.Warn("binary frame dropped (BER is not supported)", "session", shortID(s.id), "bytes", len(data))
			continue
		}
		msgs, err := decodeFrame(data)
		if err != nil {
			s.c.log.Warn("frame dropped", "session", shortID(s.id), "err", s.c.scrub(err, s.id), "bytes", len(data), "frame", s.preview(data))
			s.c.countDropped()
		}
		for _, m := range msgs {
			s.dispatch(m)
		}
	}
}

// reject queues a reject for a server invoke to the single sender; beyond
// maxRejects per session (or a full queue) the invoke is only counted.
func (s *session) reject(m message) {
	if s.nReject < maxRejects {
		select {
		case s.rejects <- m.invokeID:
			s.nReject++
			s.c.log.Warn("server invoke rejected", "session", shortID(s.id), "op", m.opID, "name", m.opName)
			return
		default:
		}
	}
	s.c.unanswered.Add(1)
	if !s.rejectsFull {
		s.rejectsFull = true
		s.c.log.Warn("server invokes no longer answered (too many)", "session", shortID(s.id), "op", m.opID, "name", m.opName)
	}
}

// sendRejects writes the queued rejects, one at a time, until the session
// ends.
func (s *session) sendRejects() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case id := <-s.rejects:
			if s.write(encodeReject(id)) != nil {
				return
			}
		}
	}
}

// preview is a frame excerpt for logs with the session id scrubbed: a
// server may echo it in anything.
func (s *session) preview(b []byte) string {
	return s.c.scrub(errors.New(preview(b)), s.id, url.QueryEscape(s.id)).Error()
}

func closeReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return strconv.Quote(ce.Reason)
	}
	return ""
}

// preview is a short, printable excerpt of a frame for logs. Frames never
// carry the bridge's credentials (those go in HTTP headers only).
func preview(b []byte) string {
	const n = 160
	if len(b) > n {
		return strings.ToValidUTF8(string(b[:n]), "?") + "…"
	}
	return strings.ToValidUTF8(string(b), "?")
}

func (s *session) take(id int64) *pendingInvoke {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	delete(s.pending, id)
	return p
}

func (s *session) dispatch(m message) {
	switch m.kind {
	case kindInvoke:
		if m.invokeID != eventInvokeID {
			// The server asks for something the connector does not
			// offer; answer as the C++ runtime would.
			s.reject(m)
			return
		}
		if s.onEvent != nil {
			s.onEvent(s, m)
		}
	case kindResult:
		p := s.take(m.invokeID)
		if p == nil {
			s.c.log.Debug("result for no pending invoke dropped (late after a timeout?)", "invokeID", m.invokeID)
			return
		}
		if h := s.c.afterTake; h != nil {
			h(p.op)
		}
		var err error
		if p.apply != nil {
			if aerr := p.apply(m.result); aerr != nil {
				err = fmt.Errorf("%s: %w: result does not decode: %v", opName(p.op), psync.ErrRejected, aerr)
				s.c.log.Warn("result dropped", "op", opName(p.op), "err", s.c.scrub(aerr, s.id), "result", s.preview(m.result))
			}
		}
		p.done <- reply{err: err}
	case kindError:
		p := s.take(m.invokeID)
		if p == nil {
			s.c.log.Debug("error for no pending invoke dropped", "invokeID", m.invokeID, "detail", m.errDetail)
			return
		}
		p.done <- reply{err: &opError{op: opName(p.op), detail: m.errDetail, text: m.errText}}
	case kindReject:
		if m.invokeID < 0 {
			// The server could not parse a frame of ours; the invoke it
			// belonged to runs into its timeout.
			s.c.log.Warn("server rejected an unparsable frame", "session", shortID(s.id), "details", m.details)
			return
		}
		p := s.take(m.invokeID)
		if p == nil {
			s.c.log.Debug("reject for no pending invoke dropped", "invokeID", m.invokeID)
			return
		}
		p.done <- reply{err: &opError{op: opName(p.op), reject: true, problem: m.problem, detail: m.problemCode, text: m.details}}
	}
}

// opError is a ROSE error or reject: the server refused for good.
type opError struct {
	op      string
	reject  bool
	problem string
	detail  int64
	text    string
}

func (e *opError) Error() string {
	if e.reject {
		return fmt.Sprintf("%s rejected (%s %d %s)", e.op, e.problem, e.detail, e.text)
	}
	return fmt.Sprintf("%s failed: UCServer error %d %q", e.op, e.detail, e.text)
}

func (e *opError) Unwrap() error { return psync.ErrRejected }

// basicSecret is the Authorization value, hidden from errors like the
// password itself.
func basicSecret(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
