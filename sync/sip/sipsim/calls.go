package sipsim

import (
	"fmt"
	"slices"
	"strings"
)

type callState int

const (
	stateTrying callState = iota
	stateEarly
	stateConfirmed
	stateTerminated
)

// word is the <state> text. Kamailio's pua_dialoginfo writes "Trying"
// capitalised (observed, sip-presence.md §3.4); everything else is lower case.
func (st callState) word() string {
	switch st {
	case stateTrying:
		return "Trying"
	case stateEarly:
		return "early"
	case stateConfirmed:
		return "confirmed"
	}
	return "terminated"
}

type extension struct {
	name  string
	calls []*call // live calls in the order they started
	// lastAggregate is the Asterisk-style aggregated state last notified:
	// Asterisk only notifies when the hint state changes.
	lastAggregate string
	// everPublished turns the dummy presence document from "open" into
	// "closed" once publications existed and are gone.
	everPublished bool
}

type call struct {
	id        string // what the API hands out
	ext       string
	dialogID  string // padi-… as pua_dialoginfo names it
	sipCallID string
	localTag  string
	remoteTag string
	remote    string // the other party's number
	state     callState
	held      bool
	conf      bool
}

// AddExtension makes ext known: SUBSCRIBE and PUBLISH for it are accepted and
// calls can be started on it. Adding a known extension is a no-op.
func (s *Server) AddExtension(ext string) error {
	ext = strings.TrimSpace(ext)
	if ext == "" || strings.ContainsAny(ext, " \t\r\n<>\"@;:") {
		return fmt.Errorf("sipsim: extension %q: use the user part of a SIP URI, e.g. 201", ext)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.exts[ext]; !ok {
		s.exts[ext] = &extension{name: ext, lastAggregate: aggregate{state: stateTerminated}.key()}
	}
	return nil
}

// Extensions lists the known extensions, sorted.
func (s *Server) Extensions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.exts))
	for e := range s.exts {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

// StartCall starts an incoming call ringing on ext and returns its id, or ""
// when ext is unknown. Subscribers see it as early (StyleKamailio and
// StylePartial first send "Trying", as pua_dialoginfo with callee_trying
// does).
func (s *Server) StartCall(ext string) string {
	return s.StartCallFrom(ext, "")
}

// StartCallFrom is StartCall with the caller's number (default "9000").
func (s *Server) StartCallFrom(ext, from string) string {
	if from == "" {
		from = "9000"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.exts[ext]
	if !ok {
		s.log.Warn("StartCall on an unknown extension", "ext", ext)
		return ""
	}
	n := s.nextLocked()
	c := &call{
		id:        fmt.Sprintf("call-%d", n),
		ext:       ext,
		dialogID:  fmt.Sprintf("padi-%08x-%x-%d", 0x6b06e826+n*7919, 0xe3e+n, n),
		sipCallID: fmt.Sprintf("%d-%d@%s", n, 3600+n, s.domainLocked()),
		localTag:  fmt.Sprintf("%dU%d", 3650+n, n),
		remoteTag: fmt.Sprintf("%dT%d", 3660+n, n),
		remote:    from,
		state:     stateTrying,
	}
	s.calls[c.id] = c
	e.calls = append(e.calls, c)
	if s.opts.Style != StyleAsterisk {
		s.callChangedLocked(e, c)
	}
	c.state = stateEarly
	s.callChangedLocked(e, c)
	return c.id
}

// Answer connects a ringing call (confirmed).
func (s *Server) Answer(callID string) error {
	return s.changeCall(callID, func(c *call) { c.state = stateConfirmed })
}

// Hold puts a connected call on hold or takes it off; subscribers see
// +sip.rendering=no on the local target while it is held.
func (s *Server) Hold(callID string, on bool) error {
	return s.changeCall(callID, func(c *call) { c.held = on })
}

// Conference marks the call as a conference the extension hosts (isfocus on
// the local target).
func (s *Server) Conference(callID string) error {
	return s.changeCall(callID, func(c *call) { c.conf = true })
}

// EndCall ends the call (terminated); it is then forgotten.
func (s *Server) EndCall(callID string) error {
	return s.changeCall(callID, func(c *call) { c.state = stateTerminated })
}

func (s *Server) changeCall(callID string, change func(*call)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[callID]
	if !ok {
		return fmt.Errorf("sipsim: no call %q (ended, or never started)", callID)
	}
	change(c)
	e := s.exts[c.ext]
	s.callChangedLocked(e, c)
	if c.state == stateTerminated {
		delete(s.calls, callID)
		e.calls = slices.DeleteFunc(e.calls, func(x *call) bool { return x == c })
	}
	return nil
}

// Calls lists the ids of the live calls on ext.
func (s *Server) Calls(ext string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.exts[ext]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(e.calls))
	for _, c := range e.calls {
		out = append(out, c.id)
	}
	return out
}

// callChangedLocked tells every dialog subscriber of e about c's new state.
func (s *Server) callChangedLocked(e *extension, c *call) {
	if s.opts.Style == StyleAsterisk {
		// Asterisk notifies on hint state changes only.
		key := aggregateAsterisk(e.calls).key()
		if key == e.lastAggregate {
			return
		}
		e.lastAggregate = key
	}
	for _, sub := range s.subs {
		if sub.ext != e.name || sub.event != "dialog" {
			continue
		}
		s.queueNotifyLocked(sub, "active", "", s.dialogBodyLocked(e, sub, c))
	}
}

func (s *Server) domainLocked() string {
	if s.opts.Domain != "" {
		return s.opts.Domain
	}
	if i := strings.LastIndexByte(s.sipAddr, ':'); i > 0 {
		return s.sipAddr[:i]
	}
	return "127.0.0.1"
}
