package ucsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

const (
	maxQueued     = 1 << 16 // frames per session before it counts as too slow
	maxFrameBytes = 64 << 20
	writeTimeout  = 10 * time.Second
	maxRequestLog = 10000
)

// session is a createsession user session and, once attached, its socket.
// Fields other than out are guarded by Server.mu.
type session struct {
	id            string
	owner         *user
	clientAppID   string
	protocol      int
	created       time.Time
	lastKeepAlive time.Time
	attached      bool // a socket has claimed the session
	conn          *websocket.Conn
	dead          bool
	subs          map[*user]struct{}
	monitors      map[string]*line // cross-ref id → line
	lineNotify    *lineNotify
	out           *outQueue
}

// lineNotify records an asnCtiEnumPhoneLines with attachChangeNotify=1.
type lineNotify struct {
	scope int // typeofLines
	xref  string
}

// outQueue decouples the model (which must never block on a socket) from
// the session's writer goroutine.
type outQueue struct {
	mu     sync.Mutex
	msgs   [][]byte
	closed bool
	code   websocket.StatusCode
	reason string
	wake   chan struct{}
}

func newOutQueue() *outQueue { return &outQueue{wake: make(chan struct{}, 1)} }

func (q *outQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push queues a frame; false means the queue overflowed.
func (q *outQueue) push(f []byte) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true
	}
	if len(q.msgs) >= maxQueued {
		q.mu.Unlock()
		return false
	}
	q.msgs = append(q.msgs, f)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *outQueue) shutdown(code websocket.StatusCode, reason string) {
	q.mu.Lock()
	if !q.closed {
		q.closed, q.code, q.reason = true, code, reason
	}
	q.mu.Unlock()
	q.signal()
}

func (q *outQueue) take() ([][]byte, bool, websocket.StatusCode, string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	msgs := q.msgs
	q.msgs = nil
	return msgs, q.closed, q.code, q.reason
}

// finishLocked flushes queued frames, wakes WaitStats, releases the lock
// and then closes the sockets that were dropped while it was held.
func (s *Server) finishLocked() {
	s.flushLocked()
	s.notifyLocked()
	conns := s.toClose
	s.toClose = nil
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.CloseNow()
	}
}

// endSessionLocked removes a session and everything it subscribed. A
// graceful end lets the writer send a close frame; an abrupt one cuts TCP.
func (s *Server) endSessionLocked(sess *session, code websocket.StatusCode, reason string, abrupt bool) {
	if sess.dead {
		return
	}
	sess.dead = true
	delete(s.sessions, sess.id)
	delete(sess.owner.owners, sess)
	for u := range sess.subs {
		delete(u.watchers, sess)
	}
	for xref, l := range sess.monitors {
		delete(l.monitors, xref)
	}
	sess.subs, sess.monitors, sess.lineNotify = nil, nil, nil
	sess.out.shutdown(code, reason)
	if abrupt && sess.conn != nil {
		s.toClose = append(s.toClose, sess.conn)
	}
	s.log.Info("session ended", "session", logID(sess.id), "reason", reason)
	s.notifyLocked()
}

func queryFold(r *http.Request, name string) string {
	for k, v := range r.URL.Query() {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.WebSocketRequests++ })
	f, ok := s.applyFault(EndpointWebSocket, r)
	if !ok {
		return
	}
	if f.Status != 0 {
		http.Error(w, "simulated failure", f.Status)
		s.record(EndpointWebSocket, r, f.Status)
		return
	}
	id := queryFold(r, "x-ucsessionid")
	if id == "" {
		id = r.Header.Get("X-Ucsessionid")
	}
	s.mu.Lock()
	sess := s.sessions[id]
	switch {
	case sess == nil || s.closed:
		s.mu.Unlock()
		// Guess: the status for an unknown session id is not documented.
		http.Error(w, "unknown session", http.StatusNotFound)
		s.record(EndpointWebSocket, r, http.StatusNotFound)
		return
	case sess.attached:
		s.mu.Unlock()
		// Guess: one socket per session.
		http.Error(w, "session already connected", http.StatusConflict)
		s.record(EndpointWebSocket, r, http.StatusConflict)
		return
	}
	sess.attached = true
	s.mu.Unlock()

	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled, // the node sample disables permessage-deflate
	})
	if err != nil {
		s.mu.Lock()
		sess.attached = false
		s.mu.Unlock()
		s.record(EndpointWebSocket, r, http.StatusBadRequest)
		return
	}
	s.record(EndpointWebSocket, r, http.StatusSwitchingProtocols)
	conn.SetReadLimit(maxFrameBytes)

	s.mu.Lock()
	if sess.dead || s.closed {
		s.mu.Unlock()
		_ = conn.CloseNow()
		return
	}
	sess.conn = conn
	s.stats.SocketsAccepted++
	// Added under mu while !closed, so Close's wg.Wait cannot race the Add.
	s.wg.Add(1)
	s.notifyLocked()
	s.mu.Unlock()
	defer s.wg.Done()

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop(conn, sess.out)
	}()

	s.readLoop(sess, conn)

	// Guess (brief §6.2): a session dies with its socket; the estos sample
	// always creates a new session on reconnect, so nothing relies on
	// re-attaching.
	s.mu.Lock()
	s.endSessionLocked(sess, websocket.StatusNormalClosure, "socket closed", false)
	s.finishLocked()
	<-writerDone
	_ = conn.CloseNow()
}

func (s *Server) writeLoop(conn *websocket.Conn, q *outQueue) {
	for {
		select {
		case <-q.wake:
		case <-s.ctx.Done():
			_ = conn.CloseNow()
			return
		}
		msgs, closed, code, reason := q.take()
		for _, m := range msgs {
			ctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
			err := conn.Write(ctx, websocket.MessageText, m)
			cancel()
			if err != nil {
				_ = conn.CloseNow()
				return
			}
		}
		if closed {
			_ = conn.Close(code, reason)
			return
		}
	}
}

func (s *Server) readLoop(sess *session, conn *websocket.Conn) {
	for {
		typ, data, err := conn.Read(s.ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) && websocket.CloseStatus(err) == -1 {
				s.log.Debug("socket read", "session", logID(sess.id), "err", err)
			}
			return
		}
		if typ != websocket.MessageText {
			// Binary frames would carry BER, which is out of scope.
			continue
		}
		s.handleFrame(sess, data)
	}
}

func (s *Server) handleFrame(sess *session, data []byte) {
	msgs, decodeErr := decodeMessages(data)
	s.mu.Lock()
	if sess.dead {
		s.mu.Unlock()
		return
	}
	if s.opts.AnyMessageKeepsAlive {
		sess.lastKeepAlive = s.now()
	}
	if decodeErr != nil {
		// SnaccROSEBase: unparsable JSON → reject with invokednull,
		// mistypedArgument and the parser message.
		s.replyLocked(sess, len(s.outbox), rejectFrame(s.opts.PlainFrames, "", -1, ProblemMistypedArgument, decodeErr.Error()), &s.stats.Rejects)
		s.finishLocked()
		return
	}
	for _, m := range msgs {
		if sess.dead {
			break
		}
		s.handleMessageLocked(sess, m)
	}
	s.finishLocked()
}

func (s *Server) replyLocked(sess *session, at int, frame []byte, counter *int) {
	if sess.dead {
		return
	}
	s.outbox = slices.Insert(s.outbox, at, pendingFrame{sess: sess, frame: frame})
	*counter++
}

func (s *Server) handleMessageLocked(sess *session, raw json.RawMessage) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil {
		s.log.Debug("not a ROSE message", "session", logID(sess.id))
		return
	}
	invRaw, ok := env["invoke"]
	if !ok {
		// Results, errors and rejects would answer server invokes; the
		// simulator sends none that expect an answer.
		return
	}
	plain := s.opts.PlainFrames
	inv, err := decodeInvoke(invRaw)
	if err != nil {
		// As SnaccROSEBase: even an event is rejected when the envelope
		// itself does not decode.
		id := inv.invokeID
		if id == 0 {
			id = -1
		}
		s.replyLocked(sess, len(s.outbox), rejectFrame(plain, inv.sessionID, id, ProblemMistypedArgument, err.Error()), &s.stats.Rejects)
		return
	}
	op := inv.operationID
	if op == 0 && inv.operationName != "" {
		op = operationID(inv.operationName)
	}
	s.stats.Invokes[op]++
	spec, known := lookupOp(op)
	if !known {
		if inv.invokeID != EventInvokeID {
			s.replyLocked(sess, len(s.outbox), rejectFrame(plain, inv.sessionID, inv.invokeID, ProblemUnrecognisedOperation, "unrecognisedOperation"), &s.stats.Rejects)
		}
		return
	}
	fault := s.takeOpFaultLocked(op)
	if fault == nil {
		s.runOpLocked(sess, inv, spec, nil)
		return
	}
	switch {
	case fault.Reject:
		if inv.invokeID != EventInvokeID {
			s.replyLocked(sess, len(s.outbox), rejectFrame(plain, inv.sessionID, inv.invokeID, ProblemUnrecognisedOperation, "unrecognisedOperation"), &s.stats.Rejects)
		}
	case fault.Silent:
	case fault.Delay > 0 && !s.closed:
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTimer(fault.Delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-s.ctx.Done():
				return
			}
			s.mu.Lock()
			if !sess.dead {
				s.runOpLocked(sess, inv, spec, fault.Error)
			}
			s.finishLocked()
		}()
	default:
		s.runOpLocked(sess, inv, spec, fault.Error)
	}
}

// runOpLocked executes one invoke and queues its answer in front of the
// events the operation produced.
func (s *Server) runOpLocked(sess *session, inv roseInvokeIn, spec opSpec, injected *RequestError) {
	plain := s.opts.PlainFrames
	answer := inv.invokeID != EventInvokeID && !spec.event
	mark := len(s.outbox)
	if injected != nil {
		if answer {
			s.replyLocked(sess, mark, errorFrame(plain, inv.sessionID, inv.invokeID, injected), &s.stats.Errors)
		}
		return
	}
	if inv.argument == nil && !spec.argOptional {
		// SnaccROSEBase maps ROSE_REJECT_ARGUMENT_MISSING to this reject.
		if answer {
			s.replyLocked(sess, mark, rejectFrame(plain, inv.sessionID, inv.invokeID, ProblemMistypedArgument, "argumentMissing"), &s.stats.Rejects)
		}
		return
	}
	a, err := newArgs(inv.argument)
	var res any
	if err == nil {
		res, err = spec.handle(s, sess, a)
	}
	if !answer {
		if err != nil {
			s.log.Debug("event not accepted", "op", spec.name, "err", err)
		}
		return
	}
	var me *errMistyped
	var re *RequestError
	switch {
	case err == nil:
		s.replyLocked(sess, mark, resultFrame(plain, inv.sessionID, inv.invokeID, spec.resultType, res), &s.stats.Results)
	case errors.As(err, &me):
		s.replyLocked(sess, mark, rejectFrame(plain, inv.sessionID, inv.invokeID, ProblemMistypedArgument, "mistypedArgument"), &s.stats.Rejects)
	case errors.As(err, &re):
		s.replyLocked(sess, mark, errorFrame(plain, inv.sessionID, inv.invokeID, re), &s.stats.Errors)
	default:
		s.replyLocked(sess, mark, errorFrame(plain, inv.sessionID, inv.invokeID, &RequestError{Detail: 1, Text: err.Error()}), &s.stats.Errors)
	}
}

// logID shortens a session id for logs: the full id is a bearer credential
// for the WebSocket.
func logID(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}
