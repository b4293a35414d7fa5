package sipsim

import (
	"context"
	"time"
)

// Stats counts what the simulator saw and did since New.
type Stats struct {
	Requests           int // SIP requests admitted past the header checks
	Challenges         int // 401/407 digest challenges sent
	Registers          int
	Subscribes         int // SUBSCRIBE requests, initial and in-dialog
	Unknown481         int // in-dialog SUBSCRIBEs for no known subscription
	NotifiesQueued     int // NOTIFYs built for a subscription (counted at once)
	Notifies           int // NOTIFYs sent
	NotifiesDropped    int // NOTIFYs swallowed by DropNotifies
	NotifyFailures     int // NOTIFYs answered with an error or not at all
	SubscriptionsEnded int // by Expires: 0, expiry, or a failed NOTIFY
	Publishes          int
	Invites            int // Invite calls
	InvitesRefused     int // of which answered 486
	RPCRequests        int
	Restarts           int
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// WaitStats blocks until cond holds for the counters or ctx ends.
func (s *Server) WaitStats(ctx context.Context, cond func(Stats) bool) error {
	for {
		s.mu.Lock()
		st, ch := s.stats, s.changed
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

// signalLocked wakes WaitStats callers.
func (s *Server) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

type faults struct {
	refuseSubscribe int
	refusePublish   int
	refuseRegister  int
	dropNotifies    bool
	delay           time.Duration
}

// RefuseSubscribe answers every SUBSCRIBE with code (e.g. 403, 503) until
// called with 0.
func (s *Server) RefuseSubscribe(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.refuseSubscribe = code
}

// RefusePublish answers every PUBLISH with code until called with 0.
func (s *Server) RefusePublish(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.refusePublish = code
}

// RefuseRegister answers every REGISTER with code until called with 0.
func (s *Server) RefuseRegister(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.refuseRegister = code
}

// DropNotifies makes NOTIFYs vanish (counted, never sent) while on: the
// subscription stays, as when they are lost on the way.
func (s *Server) DropNotifies(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.dropNotifies = on
}

// SetAnswerDelay delays the answer to every SIP request by d (0 clears).
func (s *Server) SetAnswerDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.delay = d
}

// ClearFaults turns every fault off.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
}
