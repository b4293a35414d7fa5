package ucsim

import (
	"bytes"

	"github.com/coder/websocket"
)

// opSpec describes one operation the simulator implements.
type opSpec struct {
	name        string
	event       bool // client→server event: never answered (keep-alive, logoff)
	argOptional bool // the argument SEQUENCE has no mandatory member
	resultType  string
	handle      func(s *Server, sess *session, a *args) (any, error)
}

func lookupOp(id int) (opSpec, bool) {
	spec := opSpec{name: OperationName(id)}
	switch id {
	case OpTransportKeepAlive, OpKeepAlive:
		spec.event, spec.handle = true, (*Server).opKeepAlive
	case OpLogoff:
		spec.event, spec.argOptional, spec.handle = true, true, (*Server).opLogoff
	case OpGetLoggedInContactV2:
		spec.argOptional, spec.resultType, spec.handle = true, "AsnGetLoggedInContactV2Result", (*Server).opGetLoggedInContact
	case OpCheckConnection:
		spec.argOptional, spec.resultType, spec.handle = true, "AsnCheckConnectionResult", (*Server).opCheckConnection
	case OpGetAndSubscribePresenceV2:
		spec.resultType, spec.handle = "AsnGetAndSubscribePresenceV2Result", (*Server).opSubscribePresence
	case OpUnsubscribePresence:
		spec.resultType, spec.handle = "AsnUnsubscribePresenceResult", (*Server).opUnsubscribePresence
	case OpSetUserAbsentState:
		spec.resultType, spec.handle = "AsnSetUserAbsentStateResult", (*Server).opSetAbsentState
	case OpGetUserAbsentState:
		spec.resultType, spec.handle = "AsnGetUserAbsentStateResult", (*Server).opGetAbsentState
	case OpResetUserAbsentState:
		spec.resultType, spec.handle = "AsnResetUserAbsentStateResult", (*Server).opResetAbsentState
	case OpCtiEnumPhoneLines:
		spec.resultType, spec.handle = "AsnCtiEnumPhoneLinesResult", (*Server).opEnumPhoneLines
	case OpCtiSnapshotPhoneLine:
		spec.resultType, spec.handle = "AsnCtiSnapshotPhoneLineResult", (*Server).opSnapshotPhoneLine
	case OpCtiLineMonitorStart:
		spec.resultType, spec.handle = "AsnCtiLineMonitorStartResult", (*Server).opLineMonitorStart
	case OpCtiLineMonitorStop:
		spec.resultType, spec.handle = "AsnCtiLineMonitorStopResult", (*Server).opLineMonitorStop
	case OpCtiLineSetDoNotDisturb:
		spec.resultType, spec.handle = "AsnCtiLineSetDoNotDisturbResult", (*Server).opLineSetDND
	case OpCtiDropCall:
		spec.resultType, spec.handle = "AsnCtiDropCallResult", (*Server).opDropCall
	default:
		return opSpec{}, false
	}
	return spec, true
}

// CTI error details (AsnCti…ErrorEnum).
const (
	ctiGeneralError = 1
	ctiAccessDenied = 2
	ctiInvalidLine  = 3
)

// Guess (brief §6.11): iErrorDetail values for presence and absent-state
// operations are not published; the simulator uses 1 for an unknown contact
// and 2 for an invalid value.
const (
	errUnknownContact = 1
	errInvalidValue   = 2
)

func (s *Server) opKeepAlive(sess *session, a *args) (any, error) {
	// The C++ decoder needs the mandatory member "dummy" (any value, null
	// included); without it the event never reaches the session timer.
	if _, ok := a.m["dummy"]; !ok {
		return nil, &errMistyped{reason: "dummy: missing"}
	}
	sess.lastKeepAlive = s.now()
	s.stats.KeepAlives++
	return nil, nil
}

func (s *Server) opLogoff(sess *session, _ *args) (any, error) {
	s.endSessionLocked(sess, websocket.StatusNormalClosure, "logoff", false)
	return nil, nil
}

func (s *Server) opGetLoggedInContact(sess *session, _ *args) (any, error) {
	u := sess.owner
	name := u.spec.LoginName
	if name == "" {
		name = u.spec.ContactID
	}
	return struct {
		LoggedInUser string    `json:"u8sLoggedInUser"`
		OwnContact   contactV2 `json:"ownContact"`
	}{name, s.contactV2Locked(u)}, nil
}

func (s *Server) opCheckConnection(_ *session, _ *args) (any, error) {
	return struct {
		ServerVersion   string `json:"u8sServerVersion"`
		ProductVersion  string `json:"u8sProductVersion"`
		ProtocolVersion int    `json:"iProtocolVersion"`
		OEMID           int    `json:"iOEMID"`
		Cookie          string `json:"u8sCookie"`
	}{s.opts.ServerVersion, s.opts.ServerVersion, 70, 0, ""}, nil
}

// opSubscribePresence implements asnGetAndSubscribePresenceV2.
//
// Guess (brief §6.5): there is no rights model, so bDontRequestPermissions
// and bOpenOnlyInternalContacts change nothing; unknown contact ids are left
// out of seqSubscribedPresence (the result lists "successfully subscribed
// contacts"). Subscribing again replaces the event flags.
func (s *Server) opSubscribePresence(sess *session, a *args) (any, error) {
	ids := a.strList("seqContactIDs")
	flags, filter := subDefault, subDefault
	if v, ok := a.optInt("iEventFlagsToSubscribe"); ok {
		flags = int(v)
	}
	if v, ok := a.optInt("iContactDetailsReturnFilter"); ok {
		filter = int(v)
	}
	a.optBool("bOpenOnlyInternalContacts")
	a.optBool("bDontRequestPermissions")
	if a.err != nil {
		return nil, a.err
	}
	list := make([]presenceV2, 0, len(ids))
	for _, id := range ids {
		u := s.users[foldID(id)]
		if u == nil {
			continue
		}
		u.watchers[sess] = flags
		sess.subs[u] = struct{}{}
		list = append(list, s.presenceV2Locked(u, filter, nil))
	}
	return struct {
		SubscribedPresence []presenceV2 `json:"seqSubscribedPresence"`
	}{list}, nil
}

func (s *Server) opUnsubscribePresence(sess *session, a *args) (any, error) {
	ids := a.strList("seqContactIDs")
	if a.err != nil {
		return nil, a.err
	}
	for _, id := range ids {
		if u := s.users[foldID(id)]; u != nil {
			delete(u.watchers, sess)
			delete(sess.subs, u)
		}
	}
	return struct {
		Result int `json:"iResult"`
	}{0}, nil
}

// userOrSelf resolves a contact id argument. Guess (brief §6.6): an empty
// id means the logged-in user, as a removed estos sample assumed.
func (s *Server) userOrSelf(sess *session, id string) *user {
	if id == "" {
		return sess.owner
	}
	return s.users[foldID(id)]
}

func (s *Server) opSetAbsentState(sess *session, a *args) (any, error) {
	as := a.obj("absentstate")
	if a.err != nil {
		return nil, a.err
	}
	id := as.str("u8sContactId")
	state := as.int("eAbsentState")
	as.optInt("iPresenceState") // the server calculates it; a client value is ignored
	from, _ := as.optTime("stTimeFrom")
	to, _ := as.optTime("stTimeTo")
	reach, hasReach := as.optInt("eReachability")
	ext, hasExt := as.get("externalPresenceStates")
	if hasExt && !bytes.HasPrefix(bytes.TrimSpace(ext), []byte("[")) {
		as.fail("externalPresenceStates", "not a list")
	}
	if as.err != nil {
		return nil, as.err
	}
	u := s.userOrSelf(sess, id)
	if u == nil {
		return nil, &RequestError{Detail: errUnknownContact, Text: "unknown contact"}
	}
	if state < AbsentNotAbsent || state > AbsentNotSet {
		return nil, &RequestError{Detail: errInvalidValue, Text: "invalid eAbsentState"}
	}
	st := absentState{state: int(state), from: from, to: to, reachability: int(reach), hasReach: hasReach}
	if hasExt {
		st.external = append([]byte(nil), ext...)
	}
	if st.state == AbsentNotSet {
		st = absentState{state: AbsentNotSet}
	}
	s.setAbsentLocked(u, st, sess.owner.spec.ContactID)
	return struct {
		Success bool `json:"bSuccess"`
	}{true}, nil
}

// setAbsentLocked sets a person's absent state; by is who did it, for the
// change log.
func (s *Server) setAbsentLocked(u *user, st absentState, by string) {
	u.absent = st
	s.logAbsentLocked(ChangeAbsent, u, by)
	if !st.from.IsZero() || !st.to.IsZero() {
		s.timed[u] = struct{}{}
	} else {
		delete(s.timed, u)
	}
	s.publishAbsentLocked(u)
}

func (s *Server) opGetAbsentState(sess *session, a *args) (any, error) {
	id := a.str("contactId") // sic: not u8sContactId
	if a.err != nil {
		return nil, a.err
	}
	u := s.userOrSelf(sess, id)
	if u == nil {
		return nil, &RequestError{Detail: errUnknownContact, Text: "unknown contact"}
	}
	s.logAbsentLocked(ReadAbsent, u, sess.owner.spec.ContactID)
	return struct {
		AbsentState absentStateV2 `json:"absentstate"`
	}{s.absentV2Locked(u)}, nil
}

func (s *Server) opResetAbsentState(sess *session, a *args) (any, error) {
	id := a.str("u8sContactId")
	if a.err != nil {
		return nil, a.err
	}
	u := s.userOrSelf(sess, id)
	if u == nil {
		return nil, &RequestError{Detail: errUnknownContact, Text: "unknown contact"}
	}
	s.setAbsentLocked(u, absentState{state: AbsentNotSet}, sess.owner.spec.ContactID)
	return struct{}{}, nil
}

// opEnumPhoneLines implements asnCtiEnumPhoneLines. Guess (brief §6.5):
// without a rights model typeofLines 1, 2 and 3 all list every line of the
// system; 0 lists the logged-in user's own lines.
func (s *Server) opEnumPhoneLines(sess *session, a *args) (any, error) {
	scope := a.int("typeofLines")
	attach := a.int("attachChangeNotify")
	if a.err != nil {
		return nil, a.err
	}
	if scope < 0 || scope > 3 {
		return nil, &errMistyped{reason: "typeofLines out of range"}
	}
	res := ctiEnumPhoneLinesResult{Lines: []ctiLineInfo{}}
	for _, u := range s.order {
		if scope == 0 && u != sess.owner {
			continue
		}
		for _, l := range u.lines {
			res.Lines = append(res.Lines, s.lineInfo(l))
		}
	}
	if attach == 1 {
		res.LineMonitorCrossRefID = s.nextIDLocked("LINES")
		sess.lineNotify = &lineNotify{scope: int(scope), xref: res.LineMonitorCrossRefID}
	}
	return res, nil
}

func (s *Server) lineArg(a *args) (*line, error) {
	uri := a.str("u8sLinePhoneNumber")
	if a.err != nil {
		return nil, a.err
	}
	l := s.lines[uri]
	if l == nil {
		return nil, &RequestError{Detail: ctiInvalidLine, Text: "invalid line"}
	}
	return l, nil
}

func (s *Server) opSnapshotPhoneLine(sess *session, a *args) (any, error) {
	l, err := s.lineArg(a)
	if err != nil {
		return nil, err
	}
	s.logLineLocked(ReadLine, l, sess.owner.spec.ContactID)
	return s.lineSnapshotLocked(l, ""), nil
}

// opLineMonitorStart implements asnCtiLineMonitorStart. Guess: every start
// creates a new monitor with its own cross-ref id, even for a line the
// session already monitors (events then arrive once per monitor).
func (s *Server) opLineMonitorStart(sess *session, a *args) (any, error) {
	l, err := s.lineArg(a)
	if err != nil {
		return nil, err
	}
	xref := s.nextIDLocked("MON")
	l.monitors[xref] = sess
	sess.monitors[xref] = l
	return s.lineSnapshotLocked(l, xref), nil
}

func (s *Server) opLineMonitorStop(sess *session, a *args) (any, error) {
	xref := a.str("u8sMonitorCrossRefID")
	if a.err != nil {
		return nil, a.err
	}
	l := sess.monitors[xref]
	if l == nil {
		// Guess: the closest documented detail for an unknown monitor.
		return nil, &RequestError{Detail: ctiInvalidLine, Text: "unknown monitor"}
	}
	delete(sess.monitors, xref)
	delete(l.monitors, xref)
	return struct{}{}, nil
}

// opLineSetDND implements asnCtiLineSetDoNotDisturb. Preconditions (brief
// §3.6, inferred): the line is open and has feature bit 2; a monitor is
// only required with Options.RequireMonitorForDND (brief §6.7).
func (s *Server) opLineSetDND(sess *session, a *args) (any, error) {
	l, err := s.lineArg(a)
	on := a.bool("bDoNotDisturb")
	if err != nil {
		return nil, err
	}
	if a.err != nil {
		return nil, a.err
	}
	if l.spec.NoDND {
		return nil, &RequestError{Detail: ctiGeneralError, Text: "line does not support do-not-disturb"}
	}
	if l.openStatus != LineOpen {
		return nil, &RequestError{Detail: ctiGeneralError, Text: "line not open"}
	}
	if s.opts.RequireMonitorForDND && !monitoredBy(l, sess) {
		return nil, &RequestError{Detail: ctiGeneralError, Text: "line not monitored"}
	}
	s.setLineDNDLocked(l, on, sess.owner.spec.ContactID)
	return struct{}{}, nil
}

func monitoredBy(l *line, sess *session) bool {
	for _, m := range l.monitors {
		if m == sess {
			return true
		}
	}
	return false
}

// setLineDNDLocked sets line DND. Guess: the monitor event is sent even
// when the value does not change (the PBX confirms every request); the
// presence event only on a change.
func (s *Server) setLineDNDLocked(l *line, on bool, by string) {
	changed := l.dnd != on
	l.dnd = on
	s.logLineLocked(ChangeLineDND, l, by)
	s.lineDNDEventLocked(l)
	if changed {
		s.publishLocked(l.owner, SubPhoneLines, nil)
	}
}

func (s *Server) opDropCall(sess *session, a *args) (any, error) {
	id := a.str("u8sConnectionID")
	if a.err != nil {
		return nil, a.err
	}
	c := s.calls[id]
	if c != nil {
		s.setCallStateLocked(c, CallDestroyed, reasonDestroyed, false, sess.owner.spec.ContactID)
	}
	return struct {
		Success bool `json:"bSuccess"`
	}{c != nil}, nil
}
