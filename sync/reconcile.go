package sync

import (
	"slices"
	"time"
)

// This file decides. reconcile compares what each side should show for a
// user (the rules of rules.go applied to the engine's picture) with what the
// bridge holds, and sends at most one command per slot. It is idempotent:
// calling it again with nothing changed sends nothing. Every command it
// sends carries typed values; the stored record is built from them.

// Want codes: what a slot wants, as a number the workers can read
// atomically. 0 always means "nothing imposed": release what is held.
const (
	wantNothing     uint32 = 0
	wantInACall     uint32 = 1
	wantInConfCall  uint32 = 2
	wantProtectOn   uint32 = 1
	presenceWantOff        = wantNothing
	// wantWait: the slot waits for the other side to be in sync; nothing
	// that waited is sent.
	wantWait uint32 = 1 << 31
)

func teamsWant(activity string) uint32 {
	switch activity {
	case ActivityInACall:
		return wantInACall
	case ActivityInAConferenceCall:
		return wantInConfCall
	}
	return wantNothing
}

// wantOf is the want code a mark serves.
func wantOf(k HoldKind, m mark) uint32 {
	switch k {
	case HoldTeamsSession:
		return teamsWant(m.activity)
	case HoldPhonePresence:
		return uint32(m.presence)
	}
	if m.on {
		return wantProtectOn
	}
	return wantNothing
}

func (e *Engine) reconcile(u *userRT) {
	now := e.clock.Now()
	e.reconcileTeams(u, now)
	e.reconcilePresence(u, now)
	e.reconcileProtect(u, now)
}

func (e *Engine) ready(u *userRT, s slot, now time.Time) bool {
	st := &u.slots[s]
	if st.busy {
		return false
	}
	if !st.retryAt.IsZero() && now.Before(st.retryAt) {
		return false
	}
	return true
}

// releasing says nothing may be imposed on u any more: the bridge stops, or
// the admin removes the user.
func (e *Engine) releasing(u *userRT) bool { return e.stopping || u.leaving }

func (e *Engine) reconcileTeams(u *userRT, now time.Time) {
	var want TeamsTarget
	if !e.releasing(u) {
		if !u.phoneKnown {
			return // §4.6: decide nothing on a state not seen
		}
		want = TeamsTargetFor(u.phone, *u.prof)
	}
	h := u.teamsHold
	if !e.releasing(u) && u.phoneStale {
		// §2: the phone system was lost since this user's picture was
		// taken, so their calls may have changed unseen. Nothing is sent
		// on the old picture (no set, change, keep-alive or clear, and
		// nothing that waited): a session Teams shows runs on its lease
		// until a fresh picture arrives.
		u.want[slotTeams].Store(wantWait)
		return
	}
	code := teamsWant(want.Activity)
	u.want[slotTeams].Store(code)
	if !e.ready(u, slotTeams, now) {
		return
	}
	st := &u.slots[slotTeams]
	if code == wantNothing || code != st.rejected {
		st.rejected = 0
	}
	lease := e.cfg.Settings.TeamsLease
	switch {
	case code != wantNothing && code == st.rejected:
		return
	case code != wantNothing && (h == nil || h.target.activity != want.Activity):
		old := "none"
		if h == nil {
			h = &held{kind: HoldTeamsSession, since: now}
			u.teamsHold = h
		} else {
			old = AvailabilityBusy + "/" + h.target.activity
		}
		h.target = mark{activity: want.Activity, until: now.Add(lease)}
		h.why, h.profile, h.applied = want.Why, u.prof.Name, false
		d := e.decision(u, h, old, AvailabilityBusy+"/"+want.Activity, "")
		e.dispatchSet(u, slotTeams, h, lease, nil, d)
	case code == wantNothing && h != nil:
		if e.releaseUnsent(u, h, "no connected call any more") {
			return
		}
		d := e.decision(u, h, AvailabilityBusy+"/"+h.target.activity, "cleared", "")
		d.Reason = e.releaseReason(u, "no connected call any more")
		e.dispatch(&command{u: u, slot: slotTeams, op: opClearTeams, user: u.user, key: h.key(u.user.ID), side: SideTeams, want: wantNothing, decision: d}, true)
	case h != nil && !now.Before(h.refreshAt):
		h.target.until = now.Add(lease)
		d := e.decision(u, h, AvailabilityBusy+"/"+h.target.activity, AvailabilityBusy+"/"+h.target.activity, "")
		if h.applied || h.shown != nil {
			d.Reason = "keep-alive: " + h.why.Reason
		}
		e.dispatchSet(u, slotTeams, h, lease, nil, d)
	}
}

// awaitsSnapshot: the phone side is back after a loss but this user's
// state has not been read again yet. A phone write now would go out on the
// picture from before the loss (a line DND the person switched on meanwhile
// taken for off), so it waits for the snapshot, which comes within the
// sync. While the side is still down, writes are tried and fail unsent,
// which changes nothing and shows in the audit.
func (e *Engine) awaitsSnapshot(u *userRT) bool {
	return u.phoneStale && e.health[SidePhone].Healthy && !e.releasing(u)
}

// phoneTarget is what the phone side should show; false when Teams has not
// been seen yet (§4.6).
func (e *Engine) phoneTarget(u *userRT) (PhoneTarget, bool) {
	if e.releasing(u) {
		return PhoneTarget{}, true
	}
	if !u.teamsKnown {
		return PhoneTarget{}, false
	}
	t := PhoneTargetFor(ClassifyTeams(u.teams), u.teamsEcho, *u.prof)
	can := AbilitiesOf(e.cfg.Phone)
	if can&AbilityPresence == 0 {
		t.Presence, t.PresenceWhy = PhoneUnknown, Why{}
	}
	if can&AbilityProtection == 0 {
		t.Protect, t.ProtectWhy = false, Why{}
	}
	return t, true
}

func (e *Engine) reconcilePresence(u *userRT, now time.Time) {
	t, ok := e.phoneTarget(u)
	if !ok {
		return
	}
	want := t.Presence
	u.want[slotPresence].Store(uint32(want))
	if e.awaitsSnapshot(u) {
		return
	}
	if !e.ready(u, slotPresence, now) {
		return
	}
	if u.yieldPres {
		if want != PhoneUnknown {
			return // the user took over for the rest of this reason
		}
		u.yieldPres = false
	}
	st := &u.slots[slotPresence]
	code := uint32(want)
	if code == presenceWantOff || code != st.rejected {
		st.rejected = 0
	}
	h := u.presHold
	lease := e.cfg.Settings.PhoneLease
	switch {
	case want != PhoneUnknown && code == st.rejected:
		return
	case want != PhoneUnknown && h != nil && !u.phoneKnown:
		return // a hold of the previous run: nothing is written before the phone is seen
	case want != PhoneUnknown && h == nil:
		if !u.phoneKnown || u.phone.Presence == want {
			// Not seen yet, or the user already shows it: nothing to
			// impose, so nothing to restore later.
			return
		}
		h = &held{kind: HoldPhonePresence, since: now, replaced: mark{presence: u.phone.Presence, until: u.phone.PresenceUntil},
			target: mark{presence: want, until: now.Add(lease)}, why: t.PresenceWhy, profile: u.prof.Name}
		u.presHold = h
		d := e.decision(u, h, h.replaced.format(h.kind), want.String(), "")
		e.dispatchSet(u, slotPresence, h, lease, nil, d)
	case want != PhoneUnknown && len(h.onSide()) == 0 && u.phone.Presence == want:
		// Nothing of the bridge's reached the side, and the person shows
		// the value now themselves: nothing to impose, nothing to restore.
		e.releaseUnsent(u, h, "the phone shows it already")
	case want != PhoneUnknown && h.target.presence != want:
		old := h.target.format(h.kind)
		e.reimpose(u, h)
		h.target = mark{presence: want, until: now.Add(lease)}
		h.why, h.profile, h.applied = t.PresenceWhy, u.prof.Name, false
		d := e.decision(u, h, old, want.String(), "")
		e.dispatchSet(u, slotPresence, h, lease, h.onSide(), d)
	case want == PhoneUnknown && h != nil:
		if h.echoSeen && u.phoneKnown && u.phone.Presence != PhoneUnknown && !h.owns(mark{presence: u.phone.Presence}) {
			e.yieldPresence(u, h, u.phone.Presence.String())
			return
		}
		if e.releaseUnsent(u, h, "reason ended: "+h.why.Reason) {
			return
		}
		d := e.decision(u, h, h.target.format(h.kind), h.replaced.format(h.kind), "")
		d.Reason = e.releaseReason(u, "reason ended: "+h.why.Reason)
		e.dispatch(&command{u: u, slot: slotPresence, op: opRestorePresence, user: u.user, key: h.key(u.user.ID), side: SidePhone,
			mark: restoreMark(h.replaced, now), own: h.own(), want: wantNothing, decision: d}, true)
	case h != nil && !now.Before(h.refreshAt):
		e.reimpose(u, h)
		if h.applied || h.target.until.Sub(now) < lease/2 {
			h.target.until = now.Add(lease)
		} // else a retry: the same value and end time again, so that what the
		// side may show of the bridge's stays a few known values
		d := e.decision(u, h, h.target.format(h.kind), h.target.format(h.kind), "")
		if h.applied || h.shown != nil {
			d.Reason = "lease refresh: " + h.why.Reason
		}
		e.dispatchSet(u, slotPresence, h, lease, h.onSide(), d)
	}
}

// releaseUnsent lets go of a hold none of whose values can have reached the
// side (every write was refused, throttled or never sent): there is nothing
// to clear or restore, so nothing is sent, and the journal forgets it.
func (e *Engine) releaseUnsent(u *userRT, h *held, why string) bool {
	if len(h.onSide()) > 0 {
		return false
	}
	d := e.decision(u, h, h.target.format(h.kind), "nothing to undo", OutcomeReleased)
	d.Reason = e.releaseReason(u, why) + "; nothing of the bridge's had reached the side"
	e.emit(d)
	e.dropHold(u, h.key(u.user.ID))
	e.forget(u, h)
	return true
}

// reimpose: when nothing of the bridge's ever reached the side (every write
// so far failed for sure), the next write imposes anew over whatever is
// there now, so the value to restore later is what the person shows now.
func (e *Engine) reimpose(u *userRT, h *held) {
	if len(h.onSide()) == 0 && u.phoneKnown && u.phone.Presence != PhoneUnknown && u.phone.Presence != h.target.presence {
		h.replaced = mark{presence: u.phone.Presence, until: u.phone.PresenceUntil}
	}
}

// restoreMark is what a restore writes back: the replaced value with its
// end time, or, once that end time has passed, no presence at all, as the
// phone system itself would show by then.
func restoreMark(replaced mark, now time.Time) mark {
	if !replaced.until.IsZero() && !now.Before(replaced.until) {
		return mark{presence: PhoneNotSet}
	}
	return replaced
}

func (e *Engine) reconcileProtect(u *userRT, now time.Time) {
	t, ok := e.phoneTarget(u)
	if !ok {
		return
	}
	code := wantNothing
	if t.Protect {
		code = wantProtectOn
	}
	u.want[slotProtect].Store(code)
	if e.awaitsSnapshot(u) {
		return
	}
	if !e.ready(u, slotProtect, now) {
		return
	}
	if !t.Protect {
		u.yieldDev, u.rejectedDev = u.yieldDev[:0], u.rejectedDev[:0]
		// Release what is no longer justified, one device per command.
		for i, h := range u.devHolds {
			if d := u.phone.device(h.device); h.echoSeen && d >= 0 && !h.owns(mark{on: u.phone.Devices[d].DND}) {
				e.yield(u, h, onOff(u.phone.Devices[d].DND))
				u.devHolds = append(u.devHolds[:i], u.devHolds[i+1:]...)
				e.reconcileProtect(u, now)
				return
			}
			if e.releaseUnsent(u, h, "reason ended: "+h.why.Reason) {
				e.reconcileProtect(u, now)
				return
			}
			d := e.decision(u, h, h.target.format(h.kind), h.replaced.format(h.kind), "")
			d.Reason = e.releaseReason(u, "reason ended: "+h.why.Reason)
			e.dispatch(&command{u: u, slot: slotProtect, op: opRestoreDevice, user: u.user, key: h.key(u.user.ID), side: SidePhone,
				mark: h.replaced, own: h.own(), want: wantNothing, decision: d}, true)
			return
		}
		return
	}
	if !u.phoneKnown {
		return
	}
	for _, dev := range u.phone.Devices {
		if h := u.devHold(dev.ID); h != nil {
			if dev.DND && e.releaseUnsent(u, h, "the phone shows it already") {
				// Nothing of the bridge's reached the line (every write
				// failed unsent) and it shows DND: the person's own, not
				// the bridge's to switch off later.
				e.reconcileProtect(u, now)
				return
			}
			// A hold is re-sent until a write of this run confirmed it: a
			// failed call, a hold adopted after a restart, or one held
			// while the phone side was lost. It is sent even when the
			// device shows protection already: where protection is an
			// entry with a lifetime (a SIP proxy's busy table), only a
			// write of this run keeps it alive, and the restarted or
			// reconnected connector knows only what it is told.
			if !h.applied {
				d := e.decision(u, h, "off", "on", "")
				e.dispatchSet(u, slotProtect, h, 0, nil, d)
				return
			}
			continue
		}
		if dev.DND || slices.Contains(u.yieldDev, dev.ID) || slices.Contains(u.rejectedDev, dev.ID) {
			continue // protected already, the user took over, or the side refused it
		}
		h := &held{kind: HoldDeviceProtection, device: dev.ID, target: mark{on: true}, replaced: mark{on: false},
			why: t.ProtectWhy, profile: u.prof.Name, since: now}
		u.devHolds = append(u.devHolds, h)
		d := e.decision(u, h, "off", "on", "")
		e.dispatchSet(u, slotProtect, h, 0, nil, d)
		return
	}
}

// dispatchSet sends the hold's target, written ahead. own is what the side
// must still show for the write to go ahead (a refresh or change of the
// bridge's own value); nil writes over what is there.
func (e *Engine) dispatchSet(u *userRT, s slot, h *held, lease time.Duration, own []mark, d Decision) {
	op := opSetTeams
	switch h.kind {
	case HoldPhonePresence:
		op = opSetPresence
	case HoldDeviceProtection:
		op = opSetDevice
	}
	if h.kind == HoldPhonePresence && len(own) == 0 {
		// The first write imposes over the person's value; it goes only if
		// that is still what the side shows (a person who changed it a
		// moment ago keeps their change, and the bridge looks again).
		own = []mark{h.replaced}
	}
	rec := h.record(u.user.ID)
	e.dispatch(&command{u: u, slot: s, op: op, user: u.user, key: h.key(u.user.ID), side: sideOf(h.kind), record: &rec,
		mark: h.target, lease: lease, own: own, want: wantOf(h.kind, h.target), decision: d}, true)
}

// releaseReason says why a hold is released: its own reason, the stop, or
// the user's removal.
func (e *Engine) releaseReason(u *userRT, why string) string {
	switch {
	case e.stopping:
		return "bridge shutting down"
	case u.leaving:
		return "user removed by the admin"
	}
	return why
}

func (u *userRT) devHold(id string) *held {
	for _, h := range u.devHolds {
		if h.device == id {
			return h
		}
	}
	return nil
}

func (e *Engine) decision(u *userRT, h *held, old, new string, outcome Outcome) Decision {
	what := "presence"
	switch h.kind {
	case HoldTeamsSession:
		what = "session"
	case HoldDeviceProtection:
		what = "device " + h.device
	}
	return Decision{User: u.user.ID, Name: u.user.Name(), Side: sideOf(h.kind), What: what, Old: old, New: new,
		Reason: h.why.Reason, Rule: h.why.Rule, Flag: string(h.why.Flag), Profile: u.prof.Name, Outcome: outcome}
}
