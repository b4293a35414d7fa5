package ucsim

import (
	"fmt"
	"slices"

	"github.com/coder/websocket"
)

// Scripted people: these methods act as the people in front of the phones
// and their ProCall clients. Each change produces the events a real server
// would push to every session that subscribed or monitors.

// AsnCtiCallInfoChangedReason values used by the simulator.
const (
	reasonOffering    = 0
	reasonDialing     = 1
	reasonRingback    = 2
	reasonConnected   = 3
	reasonConferenced = 4
	reasonHold        = 5
	reasonDisconnect  = 11
	reasonDestroyed   = 12
)

// AddUser adds a person at run time; sessions that enumerated lines with
// attachChangeNotify get asnCtiNotifyLineAddRemove (added) for each line.
func (s *Server) AddUser(u User) error {
	s.mu.Lock()
	nu, err := s.addUserLocked(u)
	if err == nil {
		for _, l := range nu.lines {
			s.lineAddRemoveLocked(l, 0)
		}
	}
	s.finishLocked()
	return err
}

// RemoveUser removes a person: watchers get asnRemovePresence, line monitors
// asnCtiNotifyMonitorStopped, line-list watchers asnCtiNotifyLineAddRemove
// (removed), and the person's own sessions end.
func (s *Server) RemoveUser(contactID string) error {
	s.mu.Lock()
	u := s.users[foldID(contactID)]
	if u == nil {
		s.mu.Unlock()
		return fmt.Errorf("ucsim: unknown user %q", contactID)
	}
	if len(u.watchers) > 0 {
		f := eventFrame(s.opts.PlainFrames, OpRemovePresence, "AsnRemovePresenceArgument",
			struct {
				ContactID string `json:"u8sContactID"`
			}{u.spec.ContactID})
		for sess := range u.watchers {
			s.emitLocked(sess, OpRemovePresence, f)
			delete(sess.subs, u)
		}
		clear(u.watchers)
	}
	for _, l := range u.lines {
		for xref, sess := range l.monitors {
			s.emitLocked(sess, OpCtiNotifyMonitorStopped, eventFrame(s.opts.PlainFrames,
				OpCtiNotifyMonitorStopped, "AsnCtiNotifyMonitorStoppedArgument",
				ctiNotifyMonitorStoppedArg{MonitorCrossRefID: xref}))
			delete(sess.monitors, xref)
		}
		clear(l.monitors)
		s.lineAddRemoveLocked(l, 1)
		for _, c := range l.calls {
			delete(s.calls, c.id)
		}
		delete(s.lines, l.spec.URI)
		if s.numbers[l.number()] == l {
			delete(s.numbers, l.number())
		}
	}
	for sess := range u.owners {
		s.endSessionLocked(sess, websocket.StatusNormalClosure, "user removed", false)
	}
	delete(s.users, u.key)
	delete(s.logins, foldID(u.spec.LoginName))
	delete(s.tokens, u.spec.Token)
	delete(s.timed, u)
	s.order = slices.DeleteFunc(s.order, func(o *user) bool { return o == u })
	s.finishLocked()
	return nil
}

func (s *Server) lineLocked(uri string) (*line, error) {
	l := s.lines[uri]
	if l == nil {
		return nil, fmt.Errorf("ucsim: unknown line %q", uri)
	}
	return l, nil
}

func (s *Server) newCallLocked(l *line, remote string, outbound bool) *call {
	c := &call{
		id:       s.nextIDLocked("CALL"),
		line:     l,
		remote:   remote,
		outbound: outbound,
		created:  s.now(),
	}
	c.tracker = "TRK" + c.id[len("CALL"):]
	if rl := s.numbers[remote]; rl != nil {
		c.remoteUser = rl.owner
	} else if rl := s.lines[remote]; rl != nil {
		c.remoteUser = rl.owner
	}
	l.calls = append(l.calls, c)
	s.calls[c.id] = c
	return c
}

// setCallStateLocked moves a call and publishes it: a line-monitor event
// (asnCtiNotifyLineCallInformationChanged) and a presence event with the
// changed call (flag 256, plus 1 if iPresenceState moved).
func (s *Server) setCallStateLocked(c *call, state, reason int, isNew bool, by string) {
	c.state = state
	now := s.now()
	switch state {
	case CallConnected, CallConferenced:
		if c.connected.IsZero() {
			c.connected = now
		}
		if state == CallConferenced {
			c.conferenced = true
		}
	case CallDisconnected, CallDestroyed:
		if c.disconnected.IsZero() {
			c.disconnected = now
		}
	}
	action := callActionChange
	if isNew {
		action = callActionAdd
	}
	if state == CallDestroyed {
		action = callActionRemove
		c.line.calls = slices.DeleteFunc(c.line.calls, func(o *call) bool { return o == c })
		delete(s.calls, c.id)
	}
	s.logCallLocked(c, by)
	s.callEventLocked(c, reason)
	s.publishLocked(c.line.owner, SubPhoneCalls, []presenceCallV2{s.presenceCall(c, action)})
}

// Ring starts an inbound call from remote on a line (offering). It returns
// the connection id.
func (s *Server) Ring(lineURI, remote string) (string, error) {
	s.mu.Lock()
	l, err := s.lineLocked(lineURI)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	c := s.newCallLocked(l, remote, false)
	s.setCallStateLocked(c, CallOffering, reasonOffering, true, ByPerson)
	s.finishLocked()
	return c.id, nil
}

// Dial starts an outbound call on a line: dialing, then ringback. It
// returns the connection id; PickUp then means the remote side answered.
func (s *Server) Dial(lineURI, remote string) (string, error) {
	s.mu.Lock()
	l, err := s.lineLocked(lineURI)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	c := s.newCallLocked(l, remote, true)
	s.setCallStateLocked(c, CallDialing, reasonDialing, true, ByPerson)
	s.setCallStateLocked(c, CallRingback, reasonRingback, false, ByPerson)
	s.finishLocked()
	return c.id, nil
}

// transition applies a scripted call change after checking the state.
func (s *Server) transition(connectionID string, from []int, to, reason int) error {
	s.mu.Lock()
	c := s.calls[connectionID]
	if c == nil {
		s.mu.Unlock()
		return fmt.Errorf("ucsim: unknown call %q", connectionID)
	}
	if from != nil && !slices.Contains(from, c.state) {
		s.mu.Unlock()
		return fmt.Errorf("ucsim: call %q is in state %d", connectionID, c.state)
	}
	if to == CallDestroyed && c.connected.IsZero() {
		c.discReason = 1 // never connected
	}
	if to == CallDisconnected {
		c.discReason = 0
	}
	s.setCallStateLocked(c, to, reason, false, ByPerson)
	s.finishLocked()
	return nil
}

// PickUp connects a call: the person answers a ringing call, the remote
// side answers a dialled one, or the person retrieves a held one.
func (s *Server) PickUp(connectionID string) error {
	return s.transition(connectionID, []int{CallOffering, CallDialing, CallRingback, CallHold}, CallConnected, reasonConnected)
}

// Hold puts a connected (or conferenced) call on hold.
func (s *Server) Hold(connectionID string) error {
	return s.transition(connectionID, []int{CallConnected, CallConferenced}, CallHold, reasonHold)
}

// Conference turns a connected or held call into a conference.
func (s *Server) Conference(connectionID string) error {
	return s.transition(connectionID, []int{CallConnected, CallHold}, CallConferenced, reasonConferenced)
}

// HangUp ends a call locally in any state: the line event says destroyed
// and the call leaves presence.
func (s *Server) HangUp(connectionID string) error {
	return s.transition(connectionID, nil, CallDestroyed, reasonDestroyed)
}

// RemoteHangUp is the remote party hanging up: the call stays on the line
// as disconnected until HangUp.
func (s *Server) RemoteHangUp(connectionID string) error {
	return s.transition(connectionID, []int{CallDialing, CallRingback, CallConnected, CallConferenced, CallHold}, CallDisconnected, reasonDisconnect)
}

// SetAbsentState is the person setting a manual state in their own client.
func (s *Server) SetAbsentState(contactID string, st AbsentState) error {
	if st.State < AbsentNotAbsent || st.State > AbsentNotSet {
		return fmt.Errorf("ucsim: invalid absent state %d", st.State)
	}
	s.mu.Lock()
	u := s.users[foldID(contactID)]
	if u == nil {
		s.mu.Unlock()
		return fmt.Errorf("ucsim: unknown user %q", contactID)
	}
	as := absentState{state: st.State, from: st.From, to: st.To, reachability: st.Reachability, hasReach: st.Reachability != 0}
	if st.State == AbsentNotSet {
		as = absentState{state: AbsentNotSet}
	}
	s.setAbsentLocked(u, as, ByPerson)
	s.finishLocked()
	return nil
}

// ResetAbsentState clears a person's manual state.
func (s *Server) ResetAbsentState(contactID string) error {
	return s.SetAbsentState(contactID, AbsentState{State: AbsentNotSet})
}

// SetLineDND is the person toggling DND on the phone itself.
func (s *Server) SetLineDND(lineURI string, on bool) error {
	s.mu.Lock()
	l, err := s.lineLocked(lineURI)
	if err == nil {
		s.setLineDNDLocked(l, on, ByPerson)
	}
	s.finishLocked()
	return err
}

// SetBusyOnBusy changes the read-only BusyOnBusy value of a line. Guess: the
// change is reported in a DND-changed event, the only event carrying it.
func (s *Server) SetBusyOnBusy(lineURI string, on bool) error {
	s.mu.Lock()
	l, err := s.lineLocked(lineURI)
	if err == nil && l.busyOnBusy != on {
		l.busyOnBusy = on
		s.lineDNDEventLocked(l)
	}
	s.finishLocked()
	return err
}

// SetLineOpenStatus changes a line's iLineOpenStatus (LineOpen = 2 is
// usable) and sends asnCtiNotifyLineInfoChanged to its monitors.
func (s *Server) SetLineOpenStatus(lineURI string, status int) error {
	s.mu.Lock()
	l, err := s.lineLocked(lineURI)
	if err == nil && l.openStatus != status {
		l.openStatus = status
		s.lineInfoEventLocked(l)
		s.publishLocked(l.owner, SubPhoneLines, nil)
	}
	s.finishLocked()
	return err
}

// UserState returns a snapshot of one person.
func (s *Server) UserState(contactID string) (UserState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[foldID(contactID)]
	if u == nil {
		return UserState{}, false
	}
	return s.userStateLocked(u), true
}
