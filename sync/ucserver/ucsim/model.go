package ucsim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The simulation model. Everything here is guarded by Server.mu; functions
// ending in Locked expect the caller to hold it.

type user struct {
	spec     User
	key      string // folded contact id
	lines    []*line
	absent   absentState
	presence int                   // last published iPresenceState
	watchers map[*session]int      // subscribed sessions → iEventFlagsToSubscribe
	owners   map[*session]struct{} // sessions logged in as this user
}

type absentState struct {
	state        int
	from, to     time.Time
	reachability int
	hasReach     bool
	external     json.RawMessage // echoed verbatim; semantics unknown (brief §6.9)
}

type line struct {
	owner      *user
	spec       Line
	index      int // position among the owner's lines; 0 is the primary line
	openStatus int
	dnd        bool
	busyOnBusy bool
	calls      []*call
	monitors   map[string]*session // monitor cross-ref id → session
}

type call struct {
	id, tracker  string
	line         *line
	state        int
	outbound     bool
	remote       string
	remoteUser   *user
	conferenced  bool
	discReason   int
	created      time.Time
	connected    time.Time
	disconnected time.Time
}

// Values of AsnPresenceCallV2.iAction. Guess: the ASN.1 comment only says
// "add/remove/change"; we number them in that order.
const (
	callActionAdd    = 0
	callActionRemove = 1
	callActionChange = 2
)

func foldID(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

func intp(v int) *int { return &v }

func strp(v string) *string { return &v }

func (s *Server) addUserLocked(spec User) (*user, error) {
	if strings.TrimSpace(spec.ContactID) == "" {
		return nil, fmt.Errorf("ucsim: user without ContactID")
	}
	key := foldID(spec.ContactID)
	if _, dup := s.users[key]; dup {
		return nil, fmt.Errorf("ucsim: duplicate user %q", spec.ContactID)
	}
	if spec.LoginName != "" {
		if _, dup := s.logins[foldID(spec.LoginName)]; dup {
			return nil, fmt.Errorf("ucsim: duplicate login name %q", spec.LoginName)
		}
	}
	if spec.Token != "" {
		if _, dup := s.tokens[spec.Token]; dup {
			return nil, fmt.Errorf("ucsim: duplicate token for %q", spec.ContactID)
		}
	}
	seen := map[string]bool{}
	for _, l := range spec.Lines {
		if l.URI == "" {
			return nil, fmt.Errorf("ucsim: user %q has a line without URI", spec.ContactID)
		}
		if _, dup := s.lines[l.URI]; dup || seen[l.URI] {
			return nil, fmt.Errorf("ucsim: duplicate line %q", l.URI)
		}
		seen[l.URI] = true
	}
	u := &user{
		spec:     spec,
		key:      key,
		absent:   absentState{state: AbsentNotSet},
		watchers: map[*session]int{},
		owners:   map[*session]struct{}{},
	}
	u.spec.Lines = nil
	for i, ls := range spec.Lines {
		l := &line{
			owner:      u,
			spec:       ls,
			index:      i,
			openStatus: LineOpen,
			dnd:        ls.DND,
			busyOnBusy: ls.BusyOnBusy,
			monitors:   map[string]*session{},
		}
		u.lines = append(u.lines, l)
		s.lines[ls.URI] = l
		if n := l.number(); n != "" {
			s.numbers[n] = l
		}
	}
	s.users[key] = u
	s.order = append(s.order, u)
	if spec.LoginName != "" {
		s.logins[foldID(spec.LoginName)] = u
	}
	if spec.Token != "" {
		s.tokens[spec.Token] = u
	}
	u.presence = s.computePresenceLocked(u)
	return u, nil
}

func (l *line) number() string {
	if l.spec.Number != "" {
		return l.spec.Number
	}
	return strings.TrimPrefix(l.spec.URI, "tel:")
}

// effectiveAbsent reports the manual state if it is set and inside its
// validity window at now. Guess: the window only gates the state's effect
// on presence; the state itself is reported as set throughout, and Sweep
// resets it to "not set" once stTimeTo has passed.
func (u *user) effectiveAbsent(now time.Time) (int, bool) {
	a := u.absent
	if a.state == AbsentNotSet {
		return 0, false
	}
	if !a.from.IsZero() && now.Before(a.from) {
		return 0, false
	}
	if !a.to.IsZero() && !now.Before(a.to) {
		return 0, false
	}
	return a.state, true
}

// computePresenceLocked derives iPresenceState.
//
// Guess (brief §6.4, the server algorithm is not published): the low byte
// starts as available; an effective manual absent state replaces it
// (not-absent→available, out-of-office→absent, busy→busy, DND→DND); an
// active call (dialing, ringback, busy, connected, conferenced, hold) raises
// "available" to "busy" but leaves a stronger manual state alone, following
// the ASN.1 note that the manual state holds "until the system computes a
// new non-available state". Flags: eCALL for an active call, eRINGING for an
// offering call, eCONFERENCING for a conferenced call. Line DND does not
// influence presence (the coupling is a desktop-client option, brief §3.5).
func (s *Server) computePresenceLocked(u *user) int {
	low := PresenceAvailable
	if st, ok := u.effectiveAbsent(s.now()); ok {
		switch st {
		case AbsentOutOfOffice:
			low = PresenceAbsent
		case AbsentBusy:
			low = PresenceBusy
		case AbsentDoNotDisturb:
			low = PresenceDoNotDisturb
		}
	}
	flags, active := 0, false
	for _, l := range u.lines {
		for _, c := range l.calls {
			switch c.state {
			case CallOffering:
				flags |= PresenceFlagRinging
			case CallConferenced:
				active = true
				flags |= PresenceFlagConferencing
			case CallDialing, CallRingback, CallBusy, CallConnected, CallHold:
				active = true
			}
		}
	}
	if active {
		flags |= PresenceFlagCall
		if low < PresenceBusy {
			low = PresenceBusy
		}
	}
	return low | flags
}

func (s *Server) netContact(u *user) netDatabaseContact {
	c := netDatabaseContact{
		DisplayName: u.spec.DisplayName,
		FirstName:   u.spec.FirstName,
		LastName:    u.spec.LastName,
		EMail:       u.spec.Email,
		SIPAddress:  strings.TrimPrefix(u.spec.ContactID, "sip:"),
		CtiUserName: u.spec.LoginName,
	}
	if len(u.lines) > 0 {
		c.PhoneBusiness = u.lines[0].number()
	}
	return c
}

func (s *Server) absentV2Locked(u *user) absentStateV2 {
	a := u.absent
	out := absentStateV2{
		ContactID:      u.spec.ContactID,
		AbsentState:    a.state,
		PresenceState:  intp(u.presence),
		ExternalStates: a.external,
	}
	if !a.from.IsZero() {
		out.TimeFrom = strp(formatSystemTime(a.from))
	}
	if !a.to.IsZero() {
		out.TimeTo = strp(formatSystemTime(a.to))
	}
	if a.hasReach {
		out.Reachability = intp(a.reachability)
	}
	return out
}

// Static rights and feature set reported for a user without User.Rights.
// The simulator has no rights model: every session may see and change
// everything (brief §6.5).
const (
	simFeatureSet    = 4095  // every AsnContactFeatureSetEnum bit incl. 2048 "set absent"
	simStaticRights  = 2124  // web-service login, ProCall, CTI lines, presence user
	simStaticRights2 = 32770 // login over internet, web app
)

func lineState(l *line) int {
	if l.openStatus == LineOpen {
		return 1
	}
	return 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Server) presenceLines(u *user) []presenceLine {
	out := make([]presenceLine, 0, len(u.lines))
	for _, l := range u.lines {
		out = append(out, presenceLine{
			LinePhoneNumber: l.spec.URI,
			LineNumber:      l.number(),
			State:           lineState(l),
			DoNotDisturb:    boolInt(l.dnd),
		})
	}
	return out
}

func (s *Server) presenceCall(c *call, action int) presenceCallV2 {
	pc := presenceCallV2{
		Action:          action,
		ConnectionID:    c.id,
		LinePhoneNumber: c.line.spec.URI,
		LineNumber:      c.line.number(),
		CurrentNumberSC: c.remote,
		TrackerID:       c.tracker,
		CallState:       c.state,
		Features:        callFeatures(c.state),
		Outbound:        c.outbound,
		Internal:        c.remoteUser != nil,
	}
	if c.remoteUser != nil {
		rc := s.netContact(c.remoteUser)
		pc.RemoteContact = &rc
	}
	return pc
}

// presenceV2Locked builds the AsnPresenceV2 sections selected by mask. When
// calls is non-nil it replaces the full call list (events carry only the
// changed call, marked by iAction).
func (s *Server) presenceV2Locked(u *user, mask int, calls []presenceCallV2) presenceV2 {
	p := presenceV2{ContactID: u.spec.ContactID}
	if mask&SubPresence != 0 {
		p.PresenceState = intp(u.presence)
	}
	if mask&SubData != 0 {
		rc := s.netContact(u)
		p.RemoteContact = &rc
	}
	if mask&SubConfiguration != 0 {
		r := u.rights()
		p.ContactFeatureSet = intp(r.ContactFeatureSet)
		p.StaticRights = intp(r.StaticRights)
		p.StaticRights2 = intp(r.StaticRights2)
		p.MonitorAccessRights = intp(0)
	}
	if mask&SubAbsentState != 0 {
		a := s.absentV2Locked(u)
		p.AbsentState = &a
	}
	if mask&SubNote != 0 {
		p.CustomNote = &customNote{ContactID: u.spec.ContactID, Username: u.spec.DisplayName}
	}
	if mask&SubAppointment != 0 {
		p.ActualAppointments = &[]appointmentEntry{}
	}
	if mask&SubPhoneLines != 0 {
		pl := s.presenceLines(u)
		p.PhoneLines = &pl
	}
	if mask&SubPhoneCalls != 0 {
		if calls == nil {
			calls = []presenceCallV2{}
			for _, l := range u.lines {
				for _, c := range l.calls {
					calls = append(calls, s.presenceCall(c, callActionAdd))
				}
			}
		}
		p.Calls = &calls
	}
	if mask&SubPhoneForwards != 0 {
		p.LineForwards = &[]presenceForward{}
	}
	return p
}

// publishLocked recomputes a user's presence and sends one
// asnUpdatePresenceV2 to every watcher whose subscription covers a changed
// section.
//
// Guess (brief §5, §6.4): one event per change carrying only the changed
// sections; iChangedFlags lists the triggering sections plus 1 when
// iPresenceState changed; iPresenceState is included whenever the watcher
// subscribed to flag 1 (the brief's example event shows it next to an
// absent-state change); seqPhoneLines is the full list; seqCalls holds only
// the changed call.
func (s *Server) publishLocked(u *user, sections int, calls []presenceCallV2) {
	if p := s.computePresenceLocked(u); p != u.presence {
		u.presence = p
		sections |= SubPresence
	}
	s.fanOutLocked(u, sections, calls)
}

func (s *Server) fanOutLocked(u *user, sections int, calls []presenceCallV2) {
	if sections == 0 || len(u.watchers) == 0 {
		return
	}
	type variant struct{ changed, withState int }
	frames := map[variant][]byte{}
	for sess, flags := range u.watchers {
		v := variant{changed: flags & sections, withState: flags & SubPresence}
		if v.changed == 0 {
			continue
		}
		f, ok := frames[v]
		if !ok {
			arg := updatePresenceV2Arg{
				Presence:     s.presenceV2Locked(u, v.changed|v.withState, calls),
				ChangedFlags: v.changed,
			}
			f = eventFrame(s.opts.PlainFrames, OpUpdatePresenceV2, "AsnUpdatePresenceV2Argument", arg)
			frames[v] = f
		}
		s.emitLocked(sess, OpUpdatePresenceV2, f)
	}
}

// publishAbsentLocked tells the user's own sessions (asnUpdateMyAbsentStateV2)
// and the watchers (asnUpdatePresenceV2, flag 16) about a new absent state.
func (s *Server) publishAbsentLocked(u *user) {
	prev := u.presence
	u.presence = s.computePresenceLocked(u)
	sections := SubAbsentState
	if u.presence != prev {
		sections |= SubPresence
	}
	if len(u.owners) > 0 {
		f := eventFrame(s.opts.PlainFrames, OpUpdateMyAbsentStateV2, "AsnUpdateMyAbsentStateV2Argument",
			struct {
				AbsentState absentStateV2 `json:"absentstate"`
			}{s.absentV2Locked(u)})
		for sess := range u.owners {
			s.emitLocked(sess, OpUpdateMyAbsentStateV2, f)
		}
	}
	s.fanOutLocked(u, sections, nil)
}

func (s *Server) contactV2Locked(u *user) contactV2 {
	r := u.rights()
	c := contactV2{
		ContactID:           u.spec.ContactID,
		ContactFeatureSet:   r.ContactFeatureSet,
		PresenceState:       u.presence,
		StaticRights:        r.StaticRights,
		StaticRights2:       r.StaticRights2,
		MonitorAccessRights: 0,
		RemoteContact:       s.netContact(u),
		PhoneLines:          []contactPhoneLineV2{},
		AbsentState:         s.absentV2Locked(u),
		CustomNote:          customNote{ContactID: u.spec.ContactID, Username: u.spec.DisplayName},
		ActualAppointments:  []appointmentEntry{},
		UserPropertyBag:     userPropertyBag{Properties: []stringPair{}},
	}
	for _, l := range u.lines {
		pl := contactPhoneLineV2{
			Type:            lineType(l),
			LinePhoneNumber: l.spec.URI,
			Descriptor:      l.spec.Descriptor,
			Number:          l.number(),
			Calls:           []contactCallInformationV2{},
			LineForwards:    []lineForward{},
			State:           lineState(l),
			DoNotDisturb:    l.dnd,
			AddressNames:    []string{},
		}
		for _, cl := range l.calls {
			pl.Calls = append(pl.Calls, contactCallInformationV2{
				ContactChangedID:     u.spec.ContactID,
				PresenceState:        u.presence,
				ConnectionID:         cl.id,
				LinePhoneNumber:      l.spec.URI,
				CallState:            cl.state,
				DisconnectedReason:   cl.discReason,
				Features:             callFeatures(cl.state),
				Outbound:             cl.outbound,
				Internal:             cl.remoteUser != nil,
				CurrentNumberSC:      cl.remote,
				TrackerID:            cl.tracker,
				LocalCurrentNumberSC: l.number(),
			})
		}
		c.PhoneLines = append(c.PhoneLines, pl)
	}
	return c
}

// lineType is AsnContactPhoneLineType: the first line is primary, others
// secondary.
func lineType(l *line) int {
	if l.index == 0 {
		return 1
	}
	return 2
}

func lineFeatures(l *line) int {
	f := 1 | 4 // make call, pickup
	if !l.spec.NoDND {
		f |= 2 // DND settable
	}
	return f
}

func (s *Server) lineInfo(l *line) ctiLineInfo {
	return ctiLineInfo{
		Type:            lineType(l),
		LineOpenStatus:  l.openStatus,
		LinePhoneNumber: l.spec.URI,
		Descriptor:      l.spec.Descriptor,
		PhoneNumber:     l.number(),
		LineFeatures:    lineFeatures(l),
	}
}

// callFeatures is a plausible EnumCallFeatures set per state.
func callFeatures(state int) int {
	const (
		answer, hangUp, blindTransfer, redirect = 1, 32, 256, 512
		hold, unhold, confStart                 = 8192, 16384, 65536
	)
	switch state {
	case CallOffering:
		return answer | hangUp | redirect
	case CallDialing, CallRingback, CallBusy, CallDisconnected, CallConferenced:
		return hangUp
	case CallConnected:
		return hangUp | hold | blindTransfer | confStart
	case CallHold:
		return hangUp | unhold
	}
	return 0
}

func (s *Server) ctiCall(c *call) ctiCallInformation {
	ci := ctiCallInformation{
		LinePhoneNumber:    c.line.spec.URI,
		ConnectionID:       c.id,
		CallState:          c.state,
		DisconnectedReason: c.discReason,
		Features:           callFeatures(c.state),
		Outbound:           c.outbound,
		Internal:           c.remoteUser != nil,
		ConferenceCtlr:     c.conferenced,
		LocalNumberSC:      c.line.number(),
		RemoteNumberSC:     c.remote,
		TrackerID:          c.tracker,
		CallCreated:        formatSystemTime(c.created),
		CallConnected:      formatSystemTime(c.connected),
		CallDisconnected:   formatSystemTime(c.disconnected),
	}
	if c.conferenced {
		ci.ConferenceCtlrID = "CONF-" + c.id
	}
	lc := s.netContact(c.line.owner)
	ci.LocalContact = &lc
	if c.remoteUser != nil {
		rc := s.netContact(c.remoteUser)
		ci.RemoteContact = &rc
	}
	return ci
}

func (s *Server) lineSnapshotLocked(l *line, xref string) ctiLineMonitorStartResult {
	r := ctiLineMonitorStartResult{
		MonitorCrossRefID: xref,
		LineInfo:          s.lineInfo(l),
		Calls:             []ctiCallInformation{},
		DoNotDisturb:      boolInt(l.dnd),
		LineForwards:      []lineForward{},
		OptionalParams:    map[string]any{"BusyOnBusy": boolInt(l.busyOnBusy)},
	}
	for _, c := range l.calls {
		r.Calls = append(r.Calls, s.ctiCall(c))
	}
	return r
}

// Line-monitor events go to every monitor of the line; each carries its own
// cross-ref id, so each is encoded separately.

func (s *Server) lineDNDEventLocked(l *line) {
	for xref, sess := range l.monitors {
		s.emitLocked(sess, OpCtiNotifyLineDoNotDisturbChanged, eventFrame(s.opts.PlainFrames,
			OpCtiNotifyLineDoNotDisturbChanged, "AsnCtiNotifyLineDoNotDisturbChangedArgument",
			ctiNotifyDNDArg{
				MonitorCrossRefID: xref,
				LinePhoneNumber:   l.spec.URI,
				DoNotDisturb:      boolInt(l.dnd),
				OptionalParams:    map[string]any{"BusyOnBusy": boolInt(l.busyOnBusy)},
			}))
	}
}

func (s *Server) callEventLocked(c *call, reason int) {
	if len(c.line.monitors) == 0 {
		return
	}
	ci := s.ctiCall(c)
	for xref, sess := range c.line.monitors {
		s.emitLocked(sess, OpCtiNotifyLineCallInformationChanged, eventFrame(s.opts.PlainFrames,
			OpCtiNotifyLineCallInformationChanged, "AsnCtiNotifyLineCallInformationChangedArgument",
			ctiNotifyCallInfoArg{
				MonitorCrossRefID: xref,
				LinePhoneNumber:   c.line.spec.URI,
				Reason:            reason,
				CallInformation:   ci,
			}))
	}
}

func (s *Server) lineInfoEventLocked(l *line) {
	for xref, sess := range l.monitors {
		s.emitLocked(sess, OpCtiNotifyLineInfoChanged, eventFrame(s.opts.PlainFrames,
			OpCtiNotifyLineInfoChanged, "AsnCtiNotifyLineInfoChangedArgument",
			ctiNotifyLineInfoArg{MonitorCrossRefID: xref, LinePhoneNumber: l.spec.URI, LineInfo: s.lineInfo(l)}))
	}
}

// lineAddRemoveLocked notifies sessions that enumerated lines with
// attachChangeNotify=1 and whose scope covers the line.
func (s *Server) lineAddRemoveLocked(l *line, addremove int) {
	for _, sess := range s.sessions {
		n := sess.lineNotify
		if n == nil || (n.scope == 0 && sess.owner != l.owner) {
			continue
		}
		s.emitLocked(sess, OpCtiNotifyLineAddRemove, eventFrame(s.opts.PlainFrames,
			OpCtiNotifyLineAddRemove, "AsnCtiNotifyLineAddRemoveArgument",
			ctiNotifyLineAddRemoveArg{
				LineMonitorCrossRefID: n.xref,
				LinePhoneNumber:       l.spec.URI,
				AddRemove:             addremove,
				LineInfo:              s.lineInfo(l),
			}))
	}
}

func (s *Server) userStateLocked(u *user) UserState {
	st := UserState{
		ContactID:     u.spec.ContactID,
		PresenceState: u.presence,
		Absent: AbsentState{
			State:        u.absent.state,
			From:         u.absent.from,
			To:           u.absent.to,
			Reachability: u.absent.reachability,
		},
		Watchers: len(u.watchers),
	}
	for _, l := range u.lines {
		ls := LineState{URI: l.spec.URI, DND: l.dnd, BusyOnBusy: l.busyOnBusy, OpenStatus: l.openStatus, Monitors: len(l.monitors)}
		for _, c := range l.calls {
			ls.Calls = append(ls.Calls, CallState{ConnectionID: c.id, LineURI: l.spec.URI, State: c.state, Outbound: c.outbound, Remote: c.remote})
		}
		st.Lines = append(st.Lines, ls)
	}
	return st
}
