package ucserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The model of the watched users, guarded by Conn.mu. It is rebuilt from
// scratch in every session (the subscribe and monitor results are full
// states) and turned into engine events only once the user's snapshot of
// that session has been sent.

// uState is one watched user.
type uState struct {
	user    psync.User
	key     string // folded contact id
	version uint64 // per-user event order, kept across sessions

	known    bool // in this session's subscribe result
	tooMany  bool // the line cap was hit (logged once)
	live     bool // this session's snapshot has been sent
	presence psync.PhonePresence
	until    time.Time // the absent state's end time (stTimeTo); zero: none
	lines    []*lState
}

// lState is one line (device) of a watched user; its URI is the device id.
type lState struct {
	uri       string
	owner     *uState
	dnd       bool
	monitored bool   // a monitor of this session covers it: its events are authoritative
	pending   bool   // asnCtiLineMonitorStart in flight
	xref      string // monitor cross-ref id
	open      int64  // iLineOpenStatus (2 = open)
	name      string // u8sDescriptor, for display
	calls     []psync.Call
}

func (u *uState) resetSession() {
	u.known, u.live, u.presence, u.until, u.lines = false, false, psync.PhoneUnknown, time.Time{}, nil
}

// forgetLocked drops what is known of a user the server does not (or no
// longer) report: presence unknown, no lines, no calls.
func (c *Conn) forgetLocked(u *uState) {
	for _, l := range u.lines {
		if c.lines[l.uri] == l {
			delete(c.lines, l.uri)
		}
		if l.xref != "" && c.xrefs[l.xref] == l {
			delete(c.xrefs, l.xref)
		}
	}
	u.known, u.presence, u.until, u.lines = false, psync.PhoneUnknown, time.Time{}, nil
}

func (u *uState) state() psync.PhoneState {
	st := psync.PhoneState{Presence: u.presence, PresenceUntil: u.until}
	for _, l := range u.lines {
		st.Devices = append(st.Devices, psync.Device{ID: l.uri, DND: l.dnd, Name: l.name})
		st.Calls = append(st.Calls, l.calls...)
	}
	return st
}

// maxLinesPerUser bounds the lines (devices) kept per user: a server that
// lists ever new line URIs cannot grow the model (and the monitors) without
// end.
const maxLinesPerUser = 32

// foldID is how contact ids compare: case-insensitively, as the server
// does for sip: URIs.
func foldID(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

// setUsersLocked installs the users Run watches. A user seen in an earlier
// Run keeps its version counter, so the engine never sees an old number.
func (c *Conn) setUsersLocked(users []psync.User) {
	prev := c.users
	c.users = make(map[string]*uState, len(users))
	c.order = c.order[:0]
	for _, usr := range users {
		key := foldID(string(usr.ID))
		if key == "" {
			c.problem("a user without contact id is ignored", "set the user's id to the UCServer contact id (e.g. sip:name@domain)")
			continue
		}
		if _, dup := c.users[key]; dup {
			c.problem(fmt.Sprintf("user %s is configured twice (contact ids compare case-insensitively); the second is ignored", usr.ID), "remove the duplicate user")
			continue
		}
		u := &uState{user: usr, key: key}
		if p := prev[key]; p != nil {
			u.version = p.version
		}
		c.users[key] = u
		c.order = append(c.order, u)
	}
	// The report counts the users configured from the start, not from the
	// first session: a setup that never connects shows "0 of N".
	c.rmu.Lock()
	c.rep.users = len(c.order)
	c.rmu.Unlock()
}

// --- emitting -----------------------------------------------------------------

func (c *Conn) emitLocked(u *uState, ev psync.PhoneEvent) {
	if !u.live || c.out == nil {
		return
	}
	u.version++
	ev.User, ev.Version = u.user.ID, u.version
	c.pushLocked(ev)
}

// pushLocked queues an event for the engine. When the engine has fallen so
// far behind that the outbox is full, the queue is replaced by a snapshot
// of every user (the model is always current), so memory stays bounded and
// nothing is lost but intermediate steps.
func (c *Conn) pushLocked(ev psync.PhoneEvent) {
	if c.out.push(ev) {
		return
	}
	health, synced := c.out.reset()
	c.resyncs++
	c.log.Warn("engine is behind; queued phone events replaced by snapshots", "resyncs", c.resyncs)
	if health != nil {
		c.out.push(*health)
	}
	for _, u := range c.order {
		if u.live {
			c.snapshotLocked(u)
		}
	}
	if ev.User == "" {
		c.out.push(ev)
	} else if synced {
		c.out.push(psync.PhoneEvent{Kind: psync.PhoneSynced})
	}
}

func (c *Conn) snapshotLocked(u *uState) {
	if c.out == nil {
		return
	}
	u.version++
	u.live = true
	c.pushLocked(psync.PhoneEvent{Kind: psync.PhoneSnapshot, User: u.user.ID, Version: u.version, State: u.state()})
}

func (c *Conn) setPresenceLocked(u *uState, a *wAbsentState) {
	p, until := absentPresence(a), absentUntil(a)
	if u.presence == p && u.until.Equal(until) {
		return
	}
	u.presence, u.until = p, until
	c.emitLocked(u, psync.PhoneEvent{Kind: psync.PhonePresenceChanged, Presence: p, Until: until})
}

// absentUntil is the end time of a manual absent state; zero for none (and
// for "not set", whatever the server sends with it).
func absentUntil(a *wAbsentState) time.Time {
	if a == nil || a.AbsentState == nil || *a.AbsentState == absentNotSet {
		return time.Time{}
	}
	return a.TimeTo.Time
}

// setDNDLocked records a line's DND. The server confirms a set with an
// event even when nothing changed, and reports a change both by monitor and
// by presence: only real changes become engine events.
func (c *Conn) setDNDLocked(l *lState, on bool) {
	if l.dnd == on {
		return
	}
	l.dnd = on
	c.emitLocked(l.owner, psync.PhoneEvent{Kind: psync.PhoneDeviceChanged, Device: psync.Device{ID: l.uri, DND: on, Name: l.name}})
}

// conf says the server marks the call as a conference (bConferenceCtlr):
// a conference on hold is reported as held, and the flag is what keeps it
// a conference, also for a bridge that starts while it is held. Once a
// call has been a conference it stays one while it lasts.
//
// Guess (brief §6.4, ucsim guess 16): bConferenceCtlr stays set while the
// conference is on hold.
func (c *Conn) setCallLocked(l *lState, id string, st psync.CallState, conf bool) {
	conf = conf || st == psync.CallConference
	i := slices.IndexFunc(l.calls, func(x psync.Call) bool { return x.ID == id })
	switch {
	case st == psync.CallEnded && i < 0:
		return
	case st == psync.CallEnded:
		l.calls = slices.Delete(l.calls, i, i+1)
	case i >= 0 && l.calls[i].State == st && (l.calls[i].Conference || !conf):
		return
	case i >= 0:
		l.calls[i].State = st
		l.calls[i].Conference = l.calls[i].Conference || conf
		conf = l.calls[i].Conference
	default:
		l.calls = append(l.calls, psync.Call{ID: id, Device: l.uri, State: st, Conference: conf})
	}
	c.emitLocked(l.owner, psync.PhoneEvent{Kind: psync.PhoneCallChanged, Call: psync.Call{ID: id, Device: l.uri, State: st, Conference: conf}})
}

// replaceCallsLocked makes a line's calls exactly calls (a full list from a
// monitor snapshot), ending the ones that are gone.
func (c *Conn) replaceCallsLocked(l *lState, calls []psync.Call) {
	for _, old := range slices.Clone(l.calls) {
		if !slices.ContainsFunc(calls, func(x psync.Call) bool { return x.ID == old.ID }) {
			c.setCallLocked(l, old.ID, psync.CallEnded, false)
		}
	}
	for _, n := range calls {
		c.setCallLocked(l, n.ID, n.State, n.Conference)
	}
}

// lineLocked finds or (create) adds a line of u. A line that already
// belongs to another user stays with it.
func (c *Conn) lineLocked(u *uState, uri string, create bool) (l *lState, added bool) {
	if l := c.lines[uri]; l != nil {
		if l.owner != u {
			c.log.Debug("line listed for two users; kept with the first", "line", uri, "first", l.owner.user.ID, "second", u.user.ID)
			return nil, false
		}
		return l, false
	}
	if !create {
		return nil, false
	}
	if len(u.lines) >= maxLinesPerUser {
		if !u.tooMany {
			u.tooMany = true
			c.log.Warn("user lists too many lines; the rest are ignored", "user", u.user.ID, "max", maxLinesPerUser)
			c.problem(fmt.Sprintf("user %s lists more than %d lines; the rest are ignored", u.user.ID, maxLinesPerUser), "")
		}
		return nil, false
	}
	l = &lState{uri: uri, owner: u, open: -1}
	c.lines[uri] = l
	u.lines = append(u.lines, l)
	return l, true
}

func (c *Conn) removeLineLocked(l *lState) {
	u := l.owner
	u.lines = slices.DeleteFunc(u.lines, func(x *lState) bool { return x == l })
	delete(c.lines, l.uri)
	if l.xref != "" {
		delete(c.xrefs, l.xref)
	}
	if u.live {
		c.snapshotLocked(u) // there is no "device removed" event; a snapshot says it
	}
}

// --- mapping --------------------------------------------------------------------

// absentPresence maps the manual absent state to the presence a person
// picks. "Not set" and "not absent" both mean available: what is left is
// the server's own calculation from calls, which the engine gets as calls.
func absentPresence(a *wAbsentState) psync.PhonePresence {
	if a == nil || a.AbsentState == nil {
		return psync.PhoneUnknown
	}
	switch *a.AbsentState {
	case absentNotAbsent:
		return psync.PhoneAvailable
	case absentNotSet:
		return psync.PhoneNotSet
	case absentOutOfOffice:
		return psync.PhoneAway
	case absentBusy:
		return psync.PhoneBusy
	case absentDoNotDisturb:
		return psync.PhoneDND
	}
	return psync.PhoneUnknown
}

// callState maps EnumCallState to the engine's call states. Everything
// before "connected" (offering, dialing, ringback, busy tone, preparing)
// counts as ringing: the user is not in a conversation yet. A remote hang-up
// (disconnected) ends the call for the engine although the line still shows
// it until it is destroyed.
func callState(state, callType int64) (psync.CallState, bool) {
	switch state {
	case callStateDestroyed, callStateDisconnected:
		return psync.CallEnded, true
	case callStateOffering, callStateDialing, callStateRingback, callStateBusy, callStatePrepareCall:
		return psync.CallRinging, true
	case callStateConnected:
		if callType == callTypeConferenceController || callType == callTypeConferenceMember {
			return psync.CallConference, true
		}
		return psync.CallConnected, true
	case callStateConferenced:
		return psync.CallConference, true
	case callStateHold:
		return psync.CallHeld, true
	}
	return psync.CallEnded, false
}

// presenceCallState maps one AsnPresenceCallV2.
//
// Guess (brief §6.4, ucsim guess 3): iAction 1 means "removed" (the ASN.1
// only says "add/remove/change"); presence calls are used only for lines
// without a monitor.
func presenceCallState(pc wPresenceCall) (psync.CallState, bool) {
	if pc.Action == 1 {
		return psync.CallEnded, true
	}
	return callState(int64(pc.CallState), int64(pc.CallType))
}

func ctiCalls(list []wCtiCall, uri string) ([]psync.Call, error) {
	out := make([]psync.Call, 0, len(list))
	for _, ci := range list {
		if ci.ConnectionID == "" {
			return nil, errors.New("call without u8sConnectionID")
		}
		st, ok := callState(int64(ci.CallState), int64(ci.CallType))
		if !ok || st == psync.CallEnded {
			continue
		}
		out = append(out, psync.Call{ID: ci.ConnectionID, Device: uri, State: st, Conference: bool(ci.ConferenceCtlr) || st == psync.CallConference})
	}
	return out, nil
}

// --- results --------------------------------------------------------------------

// applySubscribe decodes an asnGetAndSubscribePresenceV2 result into the
// model (on the reader goroutine, before any later event).
func (c *Conn) applySubscribe(s *session) func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		var r wSubscribeResult
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.sess != s {
			return nil
		}
		for i := range r.Presences {
			p := &r.Presences[i]
			u := c.users[foldID(p.ContactID)]
			if u == nil {
				// Guess (brief §6.5): the result lists only contacts
				// that could be subscribed; anything else is not ours.
				c.log.Debug("subscribe result for a contact not asked for", "contact", p.ContactID)
				continue
			}
			u.known = true
			c.applyPresenceLocked(s, u, p, true)
		}
		return nil
	}
}

// applyMonitor decodes an asnCtiLineMonitorStart result: the line's full
// state, which replaces what presence said about it.
func (c *Conn) applyMonitor(s *session, uri string) func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		var r wMonitorStart
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		calls, err := ctiCalls(r.Calls, uri)
		if err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		l := c.lines[uri]
		if c.sess != s || l == nil {
			return nil // removed meanwhile
		}
		l.pending, l.monitored = false, true
		if r.CrossRefID != "" {
			if l.xref != "" {
				delete(c.xrefs, l.xref)
			}
			l.xref = r.CrossRefID
			c.xrefs[r.CrossRefID] = l
		}
		if r.LineInfo != nil {
			l.open = int64(r.LineInfo.OpenStatus)
			l.name = cleanName(r.LineInfo.Descriptor)
		}
		c.setDNDLocked(l, r.DoNotDisturb != 0)
		c.replaceCallsLocked(l, calls)
		return nil
	}
}

// applyPresenceLocked merges one AsnPresenceV2. full says it is a complete
// presence (a subscribe result) rather than an event's changed sections.
func (c *Conn) applyPresenceLocked(s *session, u *uState, p *wPresence, full bool) {
	if p.AbsentState != nil {
		c.setPresenceLocked(u, p.AbsentState)
	}
	structural := false
	var added []*lState
	if p.PhoneLines != nil {
		// Lines are only ever added from presence: whether seqPhoneLines in
		// an event is the full list or a delta is not documented (brief
		// §6.4), so removals come only from asnCtiNotifyLineAddRemove.
		for _, pl := range *p.PhoneLines {
			if pl.URI == "" {
				continue
			}
			l, isNew := c.lineLocked(u, pl.URI, true)
			if l == nil {
				continue
			}
			if isNew {
				l.dnd = pl.DoNotDisturb != 0
				structural = true
				added = append(added, l)
				continue
			}
			if !l.monitored {
				c.setDNDLocked(l, pl.DoNotDisturb != 0)
			}
		}
	}
	if p.Calls != nil {
		byLine := map[*lState][]psync.Call{}
		for _, pc := range *p.Calls {
			if pc.ConnectionID == "" || pc.LineURI == "" {
				continue
			}
			// Lines come from seqPhoneLines only: a call names a line,
			// it does not make one.
			l, _ := c.lineLocked(u, pc.LineURI, false)
			if l == nil || l.monitored {
				continue
			}
			st, ok := presenceCallState(pc)
			if !ok {
				continue
			}
			if full {
				if st != psync.CallEnded {
					byLine[l] = append(byLine[l], psync.Call{ID: pc.ConnectionID, Device: l.uri, State: st})
				}
				continue
			}
			c.setCallLocked(l, pc.ConnectionID, st, false)
		}
		if full {
			for _, l := range u.lines {
				if !l.monitored {
					c.replaceCallsLocked(l, byLine[l])
				}
			}
		}
	}
	if structural && u.live {
		c.snapshotLocked(u)
	}
	// A line that appears while the session runs gets its monitor too;
	// during the initial subscription syncSession starts them all.
	if u.live {
		for _, l := range added {
			c.startMonitorLocked(s, l)
		}
	}
}

func (c *Conn) startMonitorLocked(s *session, l *lState) {
	if l.monitored || l.pending || s.ctx.Err() != nil {
		return
	}
	l.pending = true
	uri := l.uri
	s.wg.Go(func() {
		if err := c.monitor(s.ctx, s, uri); err != nil && s.ctx.Err() == nil {
			c.log.Warn("line monitor refused; its calls come from presence", "line", uri, "err", err)
			c.problem("line "+uri+" cannot be monitored: "+err.Error(), "give the service account CTI rights on this line")
		}
	})
}

// --- events ---------------------------------------------------------------------

// onEvent applies one server event on the reader goroutine, so events reach
// the engine in the order the server sent them. Anything that does not
// decode or names nothing the connector watches is logged and dropped.
func (c *Conn) onEvent(s *session, m message) {
	op := int(m.opID)
	if id := opByName(m.opName); id != 0 {
		op = id
	}
	name := opName(op)
	if name == "" {
		name = m.opName
	}
	drop := func(why string, err error) {
		c.log.Warn("event dropped", "op", op, "name", name, "why", why, "err", c.scrub(err, s.id), "argument", s.preview(m.argument))
		c.countDropped()
	}
	decode := func(v any) bool {
		if m.argument == nil {
			drop("no argument", nil)
			return false
		}
		if err := json.Unmarshal(m.argument, v); err != nil {
			drop("argument does not decode", err)
			return false
		}
		return true
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != s {
		return // a frame of a session already given up
	}
	c.rmu.Lock()
	c.rep.lastEvent = c.clock.Now()
	c.rmu.Unlock()

	switch op {
	case opUpdatePresenceV2:
		var a wUpdatePresence
		if !decode(&a) {
			return
		}
		if a.Presence == nil || a.Presence.ContactID == "" {
			drop("no presence.u8sContactId", nil)
			return
		}
		u := c.users[foldID(a.Presence.ContactID)]
		if u == nil {
			c.log.Debug("presence of a contact not watched dropped", "contact", a.Presence.ContactID)
			return
		}
		c.applyPresenceLocked(s, u, a.Presence, false)

	case opUpdateMyAbsentStateV2:
		var a wAbsentStateHolder
		if !decode(&a) {
			return
		}
		if a.AbsentState == nil {
			drop("no absentstate", nil)
			return
		}
		if u := c.users[foldID(a.AbsentState.ContactID)]; u != nil {
			c.setPresenceLocked(u, a.AbsentState)
		}

	case opCtiNotifyLineDoNotDisturbChanged:
		var a wNotifyDND
		if !decode(&a) {
			return
		}
		l := c.eventLineLocked(a.LineURI, a.CrossRefID)
		if l == nil {
			c.log.Debug("DND of a line not watched dropped", "line", a.LineURI)
			return
		}
		if a.DoNotDisturb == nil {
			drop("no iDoNotDisturb", nil)
			return
		}
		c.setDNDLocked(l, *a.DoNotDisturb != 0)

	case opCtiNotifyLineCallInformationChanged:
		var a wNotifyCall
		if !decode(&a) {
			return
		}
		l := c.eventLineLocked(a.LineURI, a.CrossRefID)
		if l == nil {
			c.log.Debug("call on a line not watched dropped", "line", a.LineURI)
			return
		}
		if a.Call == nil || a.Call.ConnectionID == "" {
			drop("no callinformation.u8sConnectionID", nil)
			return
		}
		st, ok := callState(int64(a.Call.CallState), int64(a.Call.CallType))
		if !ok {
			drop(fmt.Sprintf("unknown call state %d", a.Call.CallState), nil)
			return
		}
		c.setCallLocked(l, a.Call.ConnectionID, st, bool(a.Call.ConferenceCtlr))

	case opCtiNotifyLineInfoChanged:
		var a wNotifyLineInfo
		if !decode(&a) {
			return
		}
		if l := c.eventLineLocked(a.LineURI, a.CrossRefID); l != nil && a.LineInfo != nil {
			l.open = int64(a.LineInfo.OpenStatus)
			l.name = cleanName(a.LineInfo.Descriptor)
		}

	case opCtiNotifyLineAddRemove:
		var a wNotifyAddRemove
		if !decode(&a) {
			return
		}
		if a.AddRemove == 1 {
			if l := c.lines[a.LineURI]; l != nil {
				c.log.Info("line removed", "line", a.LineURI, "user", l.owner.user.ID)
				c.removeLineLocked(l)
			}
		}
		// An added line has no owner here; the owner's presence lists it.

	case opCtiNotifyMonitorStopped:
		var a wMonitorStopped
		if !decode(&a) {
			return
		}
		l := c.xrefs[a.CrossRefID]
		if l == nil {
			return
		}
		delete(c.xrefs, a.CrossRefID)
		l.xref, l.monitored = "", false
		if c.lines[l.uri] == l && l.owner.live {
			// The server dropped the monitor (line gone, rights changed):
			// try once more; its snapshot corrects whatever was missed.
			c.log.Info("line monitor stopped by the server; restarting", "line", l.uri)
			c.startMonitorLocked(s, l)
		}

	case opRemovePresence:
		var a wRemovePresence
		if !decode(&a) {
			return
		}
		if u := c.users[foldID(a.ContactID)]; u != nil {
			// The server no longer reports this user: nothing of its last
			// state may stay with the engine.
			c.forgetLocked(u)
			if u.live {
				c.snapshotLocked(u)
			}
			c.log.Warn("contact removed from the UCServer", "user", u.user.ID)
			c.problem("user "+string(u.user.ID)+" was removed from the UCServer; its last state is no longer updated", "check the user on the UCServer")
		}

	case opCtiNotifyLineForwardingChanged, opCtiNotifyLineCallFeaturesChanged, opCtiNotifyMakeCallResult,
		opUpdateMyContactConfigurationV2:
		// Not needed for presence, calls or DND.

	default:
		c.log.Debug("unknown event dropped", "op", m.opID, "name", m.opName)
	}
}

// eventLineLocked finds the line an event is about: by URI, else by the
// monitor's cross-ref id.
func (c *Conn) eventLineLocked(uri, xref string) *lState {
	if l := c.lines[uri]; l != nil {
		return l
	}
	if xref != "" {
		return c.xrefs[xref]
	}
	return nil
}

// cleanName makes a name from the server fit for a terminal: no control
// characters, at most 64 characters.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
	}
	return s
}
