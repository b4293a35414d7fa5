package ucsim

import "time"

// The change log: who changed (or read) what and when, as the simulator saw
// it. A soak that checks "nothing the bridge set is left, nothing the person
// chose was overwritten" needs the server's own record: the final state
// alone cannot say whether a value was the person's or the bridge's, and the
// UCServer has no compare-and-set, so the order of a read and a write
// decides whether a lost change was a race the protocol permits.

// ChangeKind says what a Change records.
type ChangeKind uint8

// Change kinds.
const (
	ChangeAbsent  ChangeKind = iota + 1 // an absent state was set or reset
	ChangeLineDND                       // a line's DND was set (also to the value it had)
	ChangeCall                          // a call changed state
	ReadAbsent                          // a session read an absent state (asnGetUserAbsentState)
	ReadLine                            // a session read a line (asnCtiSnapshotPhoneLine)
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeAbsent:
		return "absent"
	case ChangeLineDND:
		return "line-dnd"
	case ChangeCall:
		return "call"
	case ReadAbsent:
		return "read-absent"
	case ReadLine:
		return "read-line"
	}
	return "unknown"
}

// Who a Change was made by, besides a session (named by the contact id of
// its logged-in user).
const (
	ByPerson = ""         // the scripted person (SetAbsentState, Ring, ...)
	ByServer = "(server)" // the server itself: an absent state reached its stTimeTo
)

// Change is one entry of the change log.
type Change struct {
	Seq       uint64 // increasing, in the order the changes happened
	Time      time.Time
	Kind      ChangeKind
	ContactID string // the person the change concerns
	LineURI   string // line DND, calls, line reads
	By        string // ByPerson, ByServer, or a session's contact id
	// Absent is the absent state after a ChangeAbsent, or what was read.
	Absent AbsentState
	// DND is the line's DND after a ChangeLineDND, or what was read.
	DND bool
	// ConnectionID, CallState and Conferenced describe a ChangeCall.
	ConnectionID string
	CallState    int
	Conferenced  bool // the call has been a conference at some point
}

// TakeChanges returns the change log, oldest first, and empties it. It is
// empty unless Options.ChangeLog is set.
func (s *Server) TakeChanges() []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.changes
	s.changes = nil
	return out
}

func (s *Server) logLocked(c Change) {
	if !s.opts.ChangeLog {
		return
	}
	s.changeSeq++
	c.Seq, c.Time = s.changeSeq, s.now()
	s.changes = append(s.changes, c)
}

func (s *Server) logAbsentLocked(k ChangeKind, u *user, by string) {
	if !s.opts.ChangeLog {
		return
	}
	s.logLocked(Change{Kind: k, ContactID: u.spec.ContactID, By: by,
		Absent: AbsentState{State: u.absent.state, From: u.absent.from, To: u.absent.to, Reachability: u.absent.reachability}})
}

func (s *Server) logLineLocked(k ChangeKind, l *line, by string) {
	if !s.opts.ChangeLog {
		return
	}
	s.logLocked(Change{Kind: k, ContactID: l.owner.spec.ContactID, LineURI: l.spec.URI, By: by, DND: l.dnd})
}

func (s *Server) logCallLocked(c *call, by string) {
	if !s.opts.ChangeLog {
		return
	}
	s.logLocked(Change{Kind: ChangeCall, ContactID: c.line.owner.spec.ContactID, LineURI: c.line.spec.URI, By: by,
		ConnectionID: c.id, CallState: c.state, Conferenced: c.conferenced})
}
