package ucsim

import (
	"context"
	"maps"
	"time"

	"github.com/coder/websocket"
)

// HTTPFault changes how one HTTP endpoint answers.
type HTTPFault struct {
	// Delay before the request is handled (or refused).
	Delay time.Duration
	// Status refuses the request with this status; 0 handles it normally
	// after Delay. createsession builds the documented bodies: 400 an
	// AsnLogonError (LogonErrorDetail, default 101), 502 WsError 119, 401 a
	// Basic challenge.
	Status           int
	LogonErrorDetail int
	// Times limits the fault to the next n requests; 0 keeps it until
	// cleared.
	Times int
}

// OperationFault changes how the server answers one operation id.
type OperationFault struct {
	// Delay before the invoke is processed; later invokes overtake it, as
	// the multithreaded server may answer out of order.
	Delay time.Duration
	// Error answers with this AsnRequestError instead of running the
	// operation.
	Error *RequestError
	// Reject answers as for an unknown operation (invokeProblem 1).
	Reject bool
	// Silent swallows the invoke: no answer at all.
	Silent bool
	// Times limits the fault to the next n invokes; 0 keeps it until cleared.
	Times int
}

// SetHTTPFault installs (or, with the zero HTTPFault, removes) a fault on
// an endpoint.
func (s *Server) SetHTTPFault(ep Endpoint, f HTTPFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (HTTPFault{}) {
		delete(s.httpFaults, ep)
		return
	}
	s.httpFaults[ep] = &f
}

// SetOperationFault installs (or, with the zero OperationFault, removes) a
// fault on an operation id.
func (s *Server) SetOperationFault(op int, f OperationFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (OperationFault{}) {
		delete(s.opFaults, op)
		return
	}
	s.opFaults[op] = &f
}

// ClearFaults removes every HTTP and operation fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.httpFaults)
	clear(s.opFaults)
}

func (s *Server) takeOpFaultLocked(op int) *OperationFault {
	f := s.opFaults[op]
	if f == nil {
		return nil
	}
	cp := *f
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(s.opFaults, op)
		}
	}
	return &cp
}

// DropSockets cuts every WebSocket without a close frame, as a network
// failure would, and returns how many were cut. The sessions die with them.
func (s *Server) DropSockets() int {
	s.mu.Lock()
	n := 0
	for _, sess := range s.sessions {
		if sess.conn != nil {
			n++
			s.endSessionLocked(sess, websocket.StatusAbnormalClosure, "dropped", true)
		}
	}
	s.finishLocked()
	return n
}

// ExpireSession ends one session as a missing keep-alive would (close frame
// 1000 "session expired"). It reports whether the session existed.
func (s *Server) ExpireSession(id string) bool {
	s.mu.Lock()
	sess := s.sessions[id]
	if sess != nil {
		s.stats.SessionsExpired++
		s.endSessionLocked(sess, websocket.StatusNormalClosure, "session expired", false)
	}
	s.finishLocked()
	return sess != nil
}

// Stats are counters for assertions. Maps are copies.
type Stats struct {
	ControllerRequests     int
	CreateSessionRequests  int
	SessionsCreated        int
	DestroySessionRequests int
	WebSocketRequests      int
	SocketsAccepted        int
	SessionsExpired        int
	KeepAlives             int
	Results                int         // ROSE results sent
	Errors                 int         // ROSE errors sent
	Rejects                int         // ROSE rejects sent
	Invokes                map[int]int // client invokes (incl. events) by operation id
	Events                 map[int]int // server events sent by operation id

	// Current state, computed at snapshot time.
	ActiveSessions   int
	ConnectedSockets int
	Subscriptions    int // presence subscriptions over all sessions
	Monitors         int // line monitors over all sessions
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statsLocked()
}

func (s *Server) statsLocked() Stats {
	st := s.stats
	st.Invokes = maps.Clone(s.stats.Invokes)
	st.Events = maps.Clone(s.stats.Events)
	st.ActiveSessions = len(s.sessions)
	for _, sess := range s.sessions {
		if sess.conn != nil {
			st.ConnectedSockets++
		}
		st.Subscriptions += len(sess.subs)
		st.Monitors += len(sess.monitors)
	}
	return st
}

// WaitStats blocks until cond holds for a stats snapshot or ctx ends. It
// re-evaluates on every change, so tests need no polling sleeps.
func (s *Server) WaitStats(ctx context.Context, cond func(Stats) bool) error {
	for {
		s.mu.Lock()
		st := s.statsLocked()
		ch := s.changed
		s.mu.Unlock()
		if cond(st) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Request is one entry of the HTTP request log. Secrets in the query
// (token, pass) are redacted.
type Request struct {
	Time     time.Time
	Endpoint Endpoint
	Method   string
	Path     string
	Query    string
	Status   int
}

// Requests returns the HTTP request log, oldest first (the oldest half is
// discarded when it exceeds 10,000 entries).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// SessionInfo describes one live session.
type SessionInfo struct {
	ID            string
	ContactID     string
	ClientAppID   string
	Protocol      int // iClientProtocolVersion from the negotiate body; 0 if none
	Connected     bool
	Created       time.Time
	LastKeepAlive time.Time
	Subscriptions int
	Monitors      int
}

// Sessions lists the live sessions.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, sess := range s.sessions {
		out = append(out, SessionInfo{
			ID:            sess.id,
			ContactID:     sess.owner.spec.ContactID,
			ClientAppID:   sess.clientAppID,
			Protocol:      sess.protocol,
			Connected:     sess.conn != nil,
			Created:       sess.created,
			LastKeepAlive: sess.lastKeepAlive,
			Subscriptions: len(sess.subs),
			Monitors:      len(sess.monitors),
		})
	}
	return out
}
