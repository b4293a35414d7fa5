package sync

import "time"

// This file takes in what the two sides report: presence, calls, devices
// and health. It keeps the engine's picture of each user and judges what a
// report says about the bridge's own holds (its echo, or the person taking
// over); deciding what to do about it is reconcile's.

func (e *Engine) onTeams(ev TeamsEvent) {
	switch ev.Kind {
	case TeamsHealth:
		e.setHealth(SideTeams, ev.Healthy, ev.Detail, false)
		return
	case TeamsSynced:
		e.setHealth(SideTeams, true, e.health[SideTeams].Detail, true)
		return
	}
	u, ok := e.byID[ev.User]
	if !ok {
		return
	}
	e.stats.TeamsEvents++
	p := ev.Presence
	if p.Observed.IsZero() {
		p.Observed = e.clock.Now()
	}
	// Only a strictly older report is stale: the same report again (the
	// re-read after a clear) is looked at anew, because what it means
	// depends on whether the bridge's session is still there.
	if u.teamsKnown && u.teams.Newer(p) {
		e.stats.Stale++
		return
	}
	oldState := ClassifyTeams(u.teams)
	wasKnown := u.teamsKnown
	u.teams, u.teamsKnown = p, true
	e.markDirty(u)

	r := ReadTeams(p)
	h := u.teamsHold
	// §4.2: while the bridge's session is active a Teams call is its echo,
	// unless a real Teams call was recognised before the session began.
	u.teamsEcho = h != nil && r.SessionLike && !u.teamsCall
	u.alsoTeams = false
	if h != nil {
		switch {
		case r.SessionLike && (r.CallActivity == "" || h.owns(mark{activity: r.CallActivity})):
			h.echoSeen = true
			u.overridden = false
		case r.SessionLike:
			u.alsoTeams = true // a call activity other than any the bridge set
			h.echoSeen = true
			u.overridden = false
		case h.echoSeen && !u.slots[slotTeams].busy && r.BelowBusy:
			u.overridden = true
		}
	} else {
		u.overridden = false
	}
	if r.State == TeamsInCall && !u.teamsEcho {
		u.teamsCall = true
	} else if r.State != TeamsInCall {
		u.teamsCall = false
	}
	if !wasKnown || oldState != r.State {
		_, text := TeamsChannel(r.State)
		_, oldText := TeamsChannel(oldState)
		if !wasKnown {
			oldText = "not seen"
		}
		reason := "Teams presence " + p.String()
		if u.teamsEcho {
			reason += ", the bridge's own session"
		}
		if u.overridden {
			reason += ", overridden by the user in Teams"
		}
		e.emit(Decision{At: p.Observed, User: u.user.ID, Name: u.user.Name(), Side: SideTeams, What: "channel", Old: oldText, New: text, Reason: reason, Rule: "§1 " + r.State.String(), Profile: u.prof.Name, Outcome: OutcomeObserved})
	}
	e.reconcile(u)
}

func (e *Engine) onPhone(ev PhoneEvent) {
	switch ev.Kind {
	case PhoneHealth:
		e.setHealth(SidePhone, ev.Healthy, ev.Detail, false)
		return
	case PhoneSynced:
		e.setHealth(SidePhone, true, e.health[SidePhone].Detail, true)
		return
	}
	u, ok := e.byID[ev.User]
	if !ok {
		return
	}
	e.stats.PhoneEvents++
	if ev.Version != 0 {
		if ev.Version <= u.phoneVer {
			e.stats.Stale++
			return
		}
		u.phoneVer = ev.Version
	}
	// A report read before the bridge's last confirmed write, delivered
	// after its answer, shows an earlier value of the bridge's: the picture
	// keeps the confirmed one (the write's own report follows).
	late := u.presHold != nil && u.phoneKnown
	switch ev.Kind {
	case PhoneSnapshot:
		prev := u.phone
		u.phone = ev.State.Clone()
		u.phone.keepConference(prev.Calls)
		u.phoneStale = false
		if late && u.presHold.late(mark{presence: u.phone.Presence, until: u.phone.PresenceUntil}) {
			e.stats.Stale++
			u.phone.Presence, u.phone.PresenceUntil = prev.Presence, prev.PresenceUntil
		}
		u.phoneKnown = true
	case PhonePresenceChanged:
		if late && u.presHold.late(mark{presence: ev.Presence, until: ev.Until}) {
			e.stats.Stale++
			return
		}
		u.phone.Presence, u.phone.PresenceUntil = ev.Presence, ev.Until
	case PhoneCallChanged:
		u.phone.setCall(ev.Call)
	case PhoneDeviceChanged:
		u.phone.setDeviceDND(ev.Device.ID, ev.Device.DND)
		if ev.Device.Name != "" {
			u.phone.Devices[u.phone.device(ev.Device.ID)].Name = ev.Device.Name
		}
	default:
		return
	}
	e.markDirty(u)
	e.checkPhoneHolds(u)
	e.reconcile(u)
}

// checkPhoneHolds compares what the phone side now shows with what the
// bridge holds. A value of the bridge's (the target, the confirmed value,
// or one written with no known outcome) is its echo; anything else, once
// the bridge's value has been seen and no write is under way, is the person
// taking over (§4.1).
func (e *Engine) checkPhoneHolds(u *userRT) {
	now := e.clock.Now()
	if h := u.presHold; h != nil && u.phoneKnown && u.phone.Presence != PhoneUnknown {
		cur := mark{presence: u.phone.Presence}
		busy := u.slots[slotPresence].busy
		switch {
		case h.owns(cur):
			h.echoSeen = true
			h.adopted = false
		case (cur.sameValue(h.replaced) || cur.presence == PhoneNotSet) && h.leaseOver(now):
			// The side dropped the bridge's value at its end time (the
			// bridge could not refresh it in time): not the person's doing,
			// and nothing of the bridge's is there any more.
			h.adopted = false
			h.shown, h.unsure, h.applied, h.refreshAt = nil, nil, false, time.Time{}
		case h.adopted:
			// A hold of the previous run: the replaced value means its write
			// never landed (or its lease ran out); anything else is the
			// person's doing.
			h.adopted = false
			if cur.sameValue(h.replaced) {
				h.shown, h.unsure, h.applied, h.refreshAt = nil, nil, false, time.Time{}
			} else if !busy {
				e.yieldPresence(u, h, cur.presence.String())
			}
		case h.echoSeen && !busy:
			e.yieldPresence(u, h, cur.presence.String())
		}
	}
	for i := 0; i < len(u.devHolds); i++ {
		h := u.devHolds[i]
		d := u.phone.device(h.device)
		if d < 0 {
			continue
		}
		cur := mark{on: u.phone.Devices[d].DND}
		h.adopted = false
		switch {
		case h.owns(cur):
			h.echoSeen = true
		case h.echoSeen && !u.slots[slotProtect].busy:
			e.yield(u, h, onOff(cur.on))
			u.devHolds = append(u.devHolds[:i], u.devHolds[i+1:]...)
			u.yieldDev = append(u.yieldDev, h.device)
			i--
		}
	}
}

// yieldPresence lets go of the presence hold for the rest of its reason.
func (e *Engine) yieldPresence(u *userRT, h *held, now string) {
	e.yield(u, h, now)
	u.presHold = nil
	u.yieldPres = true
}

// yield lets go of a hold the user has overridden (§4.1: the user wins).
// Only the journal needs to forget it; nothing is sent to the side.
func (e *Engine) yield(u *userRT, h *held, now string) {
	e.stats.Yields++
	d := e.decision(u, h, h.target.format(h.kind), now, OutcomeYielded)
	d.Reason = "changed by the user; the user wins"
	e.emit(d)
	e.forget(u, h)
}

// forget drops a hold from the journal, in the lane of the user's other
// commands for that side so it never overtakes the next write-ahead.
func (e *Engine) forget(u *userRT, h *held) {
	e.dispatch(&command{u: u, op: opForget, user: u.user, key: h.key(u.user.ID), side: sideOf(h.kind)}, false)
}

func (e *Engine) setHealth(s Side, healthy bool, detail string, synced bool) {
	h := &e.health[s]
	back := healthy && (!h.Healthy || !h.Known || synced && !h.Synced)
	lost := !healthy && h.Synced
	if h.Healthy != healthy || !h.Known {
		h.Since = e.clock.Now()
	}
	h.Known, h.Healthy, h.Detail = true, healthy, detail
	if synced {
		h.Synced = true
	}
	if !healthy {
		h.Synced = false
	}
	e.log.Info("side health", "side", s, "healthy", healthy, "synced", h.Synced, "detail", detail)
	if back {
		e.retryNow(s)
	}
	if !healthy && s == SidePhone {
		// Every picture of the phone is now from before the loss: Teams
		// changes decided on it wait for the user's next snapshot (§2).
		for _, u := range e.users {
			u.phoneStale = true
			for _, h := range u.devHolds {
				h.applied = false // written again once the side is back
			}
			if u.teamsHold != nil && lost {
				e.reconcile(u)
			}
		}
	}
}

// retryNow runs at once everything that waits for a retry on a side that
// says it is back (reconnected, synced): backing off further would only
// keep a person stuck after the outage. A side's own Retry-After is kept.
func (e *Engine) retryNow(s Side) {
	for _, u := range e.users {
		again := false
		for sl := range nSlots {
			st := &u.slots[sl]
			if sideOfSlot(sl) != s || st.retryAt.IsZero() || st.throttled {
				continue
			}
			st.retryAt, st.attempts = time.Time{}, 0
			again = true
		}
		if again {
			e.reconcile(u)
		}
	}
}

func sideOfSlot(s slot) Side {
	if s == slotTeams {
		return SideTeams
	}
	return SidePhone
}

func sideOf(k HoldKind) Side {
	if k == HoldTeamsSession {
		return SideTeams
	}
	return SidePhone
}
