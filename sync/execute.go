package sync

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file carries out what reconcile decided: commands go into lanes,
// workers write ahead to the journal and call the sides, results come back
// to the engine goroutine, which updates the holds.

// lane is one worker's queue. A user's commands for a side always take the
// same lane, so the journal sees them in the order they were decided (a
// "forget" never overtakes the next write-ahead of the same hold).
type lane struct {
	ch      chan *command
	backlog []*command
}

type opKind uint8

const (
	opSetTeams opKind = iota + 1
	opClearTeams
	opSetPresence
	opRestorePresence
	opSetDevice
	opRestoreDevice
	opForget // delete a hold from the journal only (the user took over)
)

func (o opKind) release() bool {
	return o == opClearTeams || o == opRestorePresence || o == opRestoreDevice
}

// command is one thing to do on one side. Its values are typed; the record
// (written ahead for sets) is the only string form.
type command struct {
	u      *userRT // engine goroutine only, except u.want (atomic)
	slot   slot
	op     opKind
	side   Side
	user   User
	key    HoldKey
	record *Hold // written ahead of the call; nil: nothing to write

	mark  mark          // a set: the value and end time; a restore: the value to restore
	lease time.Duration // a Teams set: expirationDuration
	own   []mark        // what the side must still show of the bridge's (restores, refreshes)
	want  uint32        // the want code of its slot this command serves

	decision Decision
	after    TeamsPresence // written by the worker: Teams after a clear
}

// stillWanted: the command still serves what its slot wants now. A
// command that waited (in a lane, for a request budget, for a short
// Retry-After) is checked right before it is sent.
func (c *command) stillWanted() bool {
	return c.op == opForget || c.u.want[c.slot].Load() == c.want
}

type result struct {
	cmd *command
	err error
}

func (e *Engine) dispatch(c *command, occupy bool) {
	if occupy {
		c.u.slots[c.slot].busy = true
	}
	e.inflight++
	e.stats.Commands++
	l := e.lanes[c.side][c.u.idx%len(e.lanes[c.side])]
	if len(l.backlog) > 0 {
		l.backlog = append(l.backlog, c)
		return
	}
	select {
	case l.ch <- c:
	default:
		l.backlog = append(l.backlog, c)
	}
}

// pump moves backlogged commands into lanes that have room; the engine never
// blocks on a busy side.
func (e *Engine) pump() {
	for s := SideTeams; s <= SidePhone; s++ {
		for _, l := range e.lanes[s] {
		fill:
			for len(l.backlog) > 0 {
				select {
				case l.ch <- l.backlog[0]:
					l.backlog[0] = nil
					l.backlog = l.backlog[1:]
				default:
					break fill
				}
			}
		}
	}
}

// worker carries out commands: write-ahead first, then the side, then the
// journal's bookkeeping. It touches no engine state but the want codes.
func (e *Engine) worker(ctx context.Context, cmds <-chan *command) {
	for c := range cmds {
		err := e.execute(ctx, c)
		select {
		case e.results <- result{cmd: c, err: err}:
		case <-e.dead:
		}
	}
}

func (e *Engine) execute(ctx context.Context, c *command) error {
	j := e.cfg.Journal
	if c.op == opForget {
		return j.DeleteHold(c.key)
	}
	if !c.stillWanted() {
		return ErrSuperseded
	}
	if c.record != nil {
		if err := j.PutHold(*c.record); err != nil {
			return fmt.Errorf("write-ahead: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	ctx = WithStillWanted(ctx, c.stillWanted)
	if !c.stillWanted() {
		return ErrSuperseded
	}
	var err error
	switch c.op {
	case opSetTeams:
		err = e.cfg.Teams.SetPresence(ctx, c.user, c.mark.activity, c.lease)
	case opClearTeams:
		c.after, err = e.cfg.Teams.ClearPresence(ctx, c.user)
	case opSetPresence:
		var own []PresenceMark
		if len(c.own) > 0 {
			own = presenceMarks(c.own)
		}
		err = e.cfg.Phone.SetPresence(ctx, c.user, PresenceMark{Presence: c.mark.presence, Until: c.mark.until}, own)
	case opRestorePresence:
		err = e.cfg.Phone.RestorePresence(ctx, c.user, presenceMarks(c.own), PresenceMark{Presence: c.mark.presence, Until: c.mark.until})
	case opSetDevice:
		err = e.cfg.Phone.SetDeviceProtection(ctx, c.user, c.key.Device, c.mark.on)
	case opRestoreDevice:
		err = e.cfg.Phone.RestoreDeviceProtection(ctx, c.user, c.key.Device, true, c.mark.on)
	}
	if c.op.release() && (err == nil || errors.Is(err, ErrChangedByUser)) {
		if jerr := j.DeleteHold(c.key); jerr != nil {
			return fmt.Errorf("released, but the journal kept the hold: %w", jerr)
		}
	}
	return err
}

// sentMaybe: a write that failed this way may still have reached the side
// (a timeout, a lost answer, a connection that broke after the request
// went out), so its value counts as the bridge's. Only a refusal, a
// throttling answer and a command never sent are sure to have changed
// nothing. Counting too much is safe: a value the bridge does not own is
// told apart by its end time, and a value it owns too little is a person
// stuck with it.
func sentMaybe(err error) bool {
	var ra *RetryAfterError
	var ns *NotSentError
	return !errors.Is(err, ErrRejected) && !errors.Is(err, ErrSuperseded) && !errors.As(err, &ra) && !errors.As(err, &ns)
}

// holdOf is the hold a command was made for, if the engine still has it.
func (u *userRT) holdOf(k HoldKey) *held {
	switch k.Kind {
	case HoldTeamsSession:
		return u.teamsHold
	case HoldPhonePresence:
		return u.presHold
	}
	return u.devHold(k.Device)
}

func (e *Engine) onResult(r result) {
	e.inflight--
	e.pump()
	c, u := r.cmd, r.cmd.u
	if c.op == opForget {
		if r.err != nil {
			e.log.Error("journal: forgetting a hold failed; it will be released at the next start", "hold", c.key.String(), "err", r.err)
		}
		e.afterResult(u)
		return
	}
	now := e.clock.Now()
	st := &u.slots[c.slot]
	st.busy = false
	h := u.holdOf(c.key)
	if errors.Is(r.err, ErrSuperseded) {
		// Nothing was sent: the target moved on while the command waited.
		st.attempts, st.retryAt, st.throttled = 0, time.Time{}, false
		e.stats.Superseded++
		e.log.Debug("command superseded before it was sent", "hold", c.key.String())
		e.reconcile(u)
		e.afterResult(u)
		return
	}
	d := c.decision
	d.At = now
	release := c.op.release()
	switch {
	case r.err == nil:
		st.attempts, st.retryAt, st.throttled = 0, time.Time{}, false
		if release {
			e.dropHold(u, c.key)
			d.Outcome = OutcomeReleased
			e.sawRelease(u, c)
		} else {
			if h != nil {
				h.confirm(c.mark)
				e.scheduleRefresh(u, h, now)
			}
			d.Outcome = OutcomeApplied
			e.sawSet(u, c)
		}
		u.lastChange, u.lastSide = now, c.side
	case errors.Is(r.err, ErrChangedByUser):
		st.attempts, st.retryAt, st.throttled = 0, time.Time{}, false
		e.stats.Yields++
		d.Outcome, d.Reason = OutcomeYielded, "changed by the user meanwhile; left as the user set it"
		switch {
		case release:
			e.dropHold(u, c.key)
		case h != nil && (!h.echoSeen || u.phone.Presence == PhoneNotSet && h.leaseOver(now)):
			// Not the person taking over the bridge's value: the bridge
			// never saw its value on the side (its writes did not land, a
			// crash right after the write-ahead, or the person changed the
			// value a moment before the first write), or the side dropped it
			// at its end time. Nothing of the bridge's is there: once the
			// side's news has arrived, it imposes anew over what is there.
			h.shown, h.unsure, h.applied, h.refreshAt = nil, nil, false, time.Time{}
			e.stats.Yields--
			st.attempts++
			wait := e.backoff.Delay(st.attempts, nil)
			st.retryAt = now.Add(wait)
			e.schedule(u, st.retryAt)
			d.Outcome, d.Reason = OutcomeFailed, "the phone system did not show what the bridge expected; looking again in "+wait.Round(time.Millisecond).String()
		case h != nil:
			// A refresh or change found the person's own value: the bridge
			// wrote nothing and lets go for the rest of the reason.
			e.dropHold(u, c.key)
			e.forget(u, h)
			if h.kind == HoldPhonePresence {
				u.yieldPres = true
			}
		}
	case !release && errors.Is(r.err, ErrRejected):
		e.stats.Failures++
		st.attempts, st.retryAt, st.throttled = 0, time.Time{}, false
		d.Outcome, d.Err = OutcomeFailed, r.err.Error()+" (not retried until the target changes)"
		if h != nil {
			e.rejected(u, st, h, c)
		}
	default:
		e.stats.Failures++
		st.attempts++
		if h != nil && !release && sentMaybe(r.err) {
			h.maybe(c.mark, now)
		}
		var ra *RetryAfterError
		st.throttled = errors.As(r.err, &ra) && ra.Wait > 0
		wait := e.backoff.Delay(st.attempts, r.err)
		if e.stopping && !st.throttled {
			wait = min(wait, time.Second) // a stop has seconds: try again soon
		}
		st.retryAt = now.Add(wait)
		e.schedule(u, st.retryAt)
		d.Outcome, d.Err = OutcomeFailed, fmt.Sprintf("%v (retry %d in %s)", r.err, st.attempts, wait.Round(time.Millisecond))
	}
	e.emit(d)
	e.markDirty(u)
	if c.op == opClearTeams && r.err == nil && c.after.Availability != "" {
		// Judged now that the session is gone (§4.2); onTeams reconciles.
		e.onTeams(TeamsEvent{Kind: TeamsPresenceChanged, User: u.user.ID, Presence: c.after})
	} else {
		e.reconcile(u)
	}
	e.afterResult(u)
}

// rejected: the side refused the target for good. What of the bridge's is
// already on the side stays the bridge's (and is restored at the end); with
// nothing there, the hold goes.
func (e *Engine) rejected(u *userRT, st *slotState, h *held, c *command) {
	if c.op == opSetDevice {
		u.rejectedDev = append(u.rejectedDev, h.device)
	} else {
		st.rejected = c.want
	}
	switch {
	case h.shown != nil:
		h.target, h.applied = *h.shown, true
	case len(h.unsure) > 0:
		h.target = h.unsure[len(h.unsure)-1]
	default:
		e.dropHold(u, c.key)
		e.forget(u, h)
	}
}

// sawSet updates the engine's picture after a confirmed write, before the
// side's own event about it arrives.
func (e *Engine) sawSet(u *userRT, c *command) {
	switch c.op {
	case opSetPresence:
		u.phone.Presence, u.phone.PresenceUntil = c.mark.presence, c.mark.until
	case opSetDevice:
		u.phone.setDeviceDND(c.key.Device, c.mark.on)
	}
}

func (e *Engine) sawRelease(u *userRT, c *command) {
	switch c.op {
	case opRestorePresence:
		u.phone.Presence, u.phone.PresenceUntil = c.mark.presence, c.mark.until
	case opRestoreDevice:
		u.phone.setDeviceDND(c.key.Device, c.mark.on)
	}
}

// scheduleRefresh sets when a confirmed hold is re-sent: its keep-alive
// where the side has an expiry, never where it has none.
func (e *Engine) scheduleRefresh(u *userRT, h *held, now time.Time) {
	var every time.Duration
	switch h.kind {
	case HoldTeamsSession:
		every = e.cfg.Settings.TeamsKeepAlive
	case HoldPhonePresence:
		every = e.cfg.Settings.PhoneKeepAlive
	}
	if every > 0 && h.applied {
		h.refreshAt = now.Add(every)
		e.schedule(u, h.refreshAt)
	}
}

func (e *Engine) dropHold(u *userRT, k HoldKey) {
	switch k.Kind {
	case HoldTeamsSession:
		u.teamsHold = nil
	case HoldPhonePresence:
		u.presHold = nil
	case HoldDeviceProtection:
		for i, d := range u.devHolds {
			if d.device == k.Device {
				u.devHolds = append(u.devHolds[:i], u.devHolds[i+1:]...)
				break
			}
		}
	}
}
