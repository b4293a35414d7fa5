package ucserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The PhoneSystem writes. Each one is a single operation on the session Run
// keeps (a restore is a fresh read, then the write): the engine has already
// recorded what it is about to do (write-ahead), so the connector only has
// to carry it out faithfully and say exactly what happened.
//
// The UCServer has no compare-and-set: a restore (or a refresh of the
// bridge's own value) reads the current value from the server, not from the
// cache, and writes only if it is still one the bridge wrote. A change by
// the user in the few milliseconds between the read and the write is
// overwritten; nothing in the protocol can prevent it.
//
// What the bridge wrote (presence and end time) comes from the engine's
// hold record, which the store keeps: the check holds after a restart too.

// liveSession returns the synced session, or ErrUnavailable.
func (c *Conn) liveSession() (*session, error) {
	c.smu.Lock()
	s := c.live
	c.smu.Unlock()
	if s == nil || s.ctx.Err() != nil {
		return nil, psync.NotSent(fmt.Errorf("%w: not connected to the UCServer", psync.ErrUnavailable))
	}
	return s, nil
}

// absentFor maps a presence to the absent state that shows it; reset is
// true for "not set", which is written by resetting the absent state.
func absentFor(p psync.PhonePresence) (state int, reset bool, err error) {
	switch p {
	case psync.PhoneNotSet:
		return absentNotSet, true, nil
	case psync.PhoneAvailable:
		return absentNotAbsent, false, nil
	case psync.PhoneBusy:
		return absentBusy, false, nil
	case psync.PhoneDND:
		return absentDoNotDisturb, false, nil
	case psync.PhoneAway:
		return absentOutOfOffice, false, nil
	}
	return 0, false, fmt.Errorf("presence %s cannot be set on a UCServer: %w", p, psync.ErrRejected)
}

// checkSuccess decodes a {bSuccess} result; false is a refusal.
func checkSuccess(op string) func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		var r struct {
			Success *asnBool `json:"bSuccess"`
		}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
		}
		if r.Success != nil && !*r.Success {
			return fmt.Errorf("%s answered bSuccess false", op)
		}
		return nil
	}
}

// SetPresence implements psync.PhoneSystem: the user's absent state (Busy,
// Do not disturb, ...) with stTimeTo = set.Until, so that the server drops
// it by itself if the bridge goes away. With own, it first reads the absent
// state and writes only if it is still one the bridge wrote, end time
// included: a person who set the same state again by hand (no end time, or
// another one) keeps it.
//
// Guess (brief §6.4, ucsim guess 13): the server resets the absent state at
// stTimeTo and tells the watchers, which is what makes stTimeTo a lease.
func (c *Conn) SetPresence(ctx context.Context, u psync.User, set psync.PresenceMark, own []psync.PresenceMark) error {
	state, reset, err := absentFor(set.Presence)
	if err != nil {
		return err
	}
	if reset {
		return fmt.Errorf("presence %s is not imposed by setting it: %w", set.Presence, psync.ErrRejected)
	}
	s, err := c.liveSession()
	if err != nil {
		return err
	}
	if len(own) > 0 {
		cur, err := c.readAbsent(ctx, s, u)
		if err != nil { // the write was not sent
			return psync.NotSent(fmt.Errorf("set presence of %s: %w", u.ID, err))
		}
		if !cur.oneOf(own) {
			return fmt.Errorf("presence of %s is %s (end %s), not the bridge's: %w", u.ID, cur.presence, endText(cur.to), psync.ErrChangedByUser)
		}
	}
	if err := psync.StillWanted(ctx); err != nil {
		return err
	}
	arg := setAbsentArg{AbsentState: absentStateArg{ContactID: string(u.ID), AbsentState: state}}
	if !set.Until.IsZero() {
		arg.AbsentState.TimeTo = formatSystemTime(set.Until)
	}
	if err := s.invoke(ctx, opSetUserAbsentState, arg, checkSuccess("asnSetUserAbsentState")); err != nil {
		return fmt.Errorf("set presence of %s to %s: %w", u.ID, set.Presence, err)
	}
	return nil
}

// sameEnd compares two stTimeTo values as the server keeps them (to the
// second; zero means none).
func sameEnd(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	return a.Truncate(time.Second).Equal(b.Truncate(time.Second))
}

// absentRead is a user's absent state as read from the server.
type absentRead struct {
	presence psync.PhonePresence
	state    int
	to       time.Time
}

// oneOf reports whether the absent state is one of the bridge's values:
// the same presence with the same end time.
func (a absentRead) oneOf(own []psync.PresenceMark) bool {
	for _, m := range own {
		if a.presence == m.Presence && sameEnd(a.to, m.Until) {
			return true
		}
	}
	return false
}

// readAbsent reads a user's absent state from the server. The result is
// read only when invoke succeeded: after a timeout the reader goroutine may
// still be applying a late answer.
func (c *Conn) readAbsent(ctx context.Context, s *session, u psync.User) (absentRead, error) {
	var got absentRead
	err := s.invoke(ctx, opGetUserAbsentState, getAbsentArg{ContactID: string(u.ID)}, func(raw json.RawMessage) error {
		var r wAbsentStateHolder
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		if r.AbsentState == nil || r.AbsentState.AbsentState == nil {
			return errors.New("no absentstate.eAbsentState")
		}
		got = absentRead{presence: absentPresence(r.AbsentState), state: int(*r.AbsentState.AbsentState), to: r.AbsentState.TimeTo.Time}
		return nil
	})
	if err != nil {
		return absentRead{}, err
	}
	return got, nil
}

// RestorePresence implements psync.PhoneSystem: restore only if the absent
// state is still one the bridge wrote (presence and end time, read fresh
// from the server). It writes back exactly the value that was there, with
// its end time: "available" (state 0) is set, "not set" (4) is a reset,
// which gives the server's own presence calculation back.
func (c *Conn) RestorePresence(ctx context.Context, u psync.User, own []psync.PresenceMark, restore psync.PresenceMark) error {
	state, reset, err := absentFor(restore.Presence)
	if err != nil {
		return err
	}
	s, err := c.liveSession()
	if err != nil {
		return err
	}
	cur, err := c.readAbsent(ctx, s, u)
	if err != nil {
		return fmt.Errorf("restore presence of %s: %w", u.ID, err)
	}
	switch {
	case cur.presence == restore.Presence && sameEnd(cur.to, restore.Until):
		return nil // already what was there
	case !cur.oneOf(own):
		return fmt.Errorf("presence of %s is %s (end %s), not the bridge's: %w", u.ID, cur.presence, endText(cur.to), psync.ErrChangedByUser)
	}
	if err := psync.StillWanted(ctx); err != nil {
		return err
	}
	if reset {
		err = s.invoke(ctx, opResetUserAbsentState, resetAbsentArg{ContactID: string(u.ID)}, nil)
	} else {
		arg := setAbsentArg{AbsentState: absentStateArg{ContactID: string(u.ID), AbsentState: state}}
		if !restore.Until.IsZero() {
			arg.AbsentState.TimeTo = formatSystemTime(restore.Until)
		}
		err = s.invoke(ctx, opSetUserAbsentState, arg, checkSuccess("asnSetUserAbsentState"))
	}
	if err != nil {
		return fmt.Errorf("restore presence of %s to %s: %w", u.ID, restore.Presence, err)
	}
	return nil
}

func endText(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// userLine checks that device is a line of u in this session, so a stale
// or wrong configuration can never switch someone else's phone.
func (c *Conn) userLine(u psync.User, device string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lines[device]
	if l == nil || l.owner.key != foldID(string(u.ID)) {
		return fmt.Errorf("device %q is not a line of %s on the UCServer: %w", device, u.ID, psync.ErrRejected)
	}
	return nil
}

// SetDeviceProtection implements psync.PhoneSystem: line DND on one line
// (the device id is the line URI). Line DND has no expiry; the engine lists
// it as held by the bridge.
func (c *Conn) SetDeviceProtection(ctx context.Context, u psync.User, device string, on bool) error {
	s, err := c.liveSession()
	if err != nil {
		return err
	}
	if err := c.userLine(u, device); err != nil {
		return err
	}
	if err := psync.StillWanted(ctx); err != nil {
		return err
	}
	if err := s.invoke(ctx, opCtiLineSetDoNotDisturb, setDNDArg{LineURI: device, DND: on}, nil); err != nil {
		return fmt.Errorf("set DND %v on %s of %s: %w", on, device, u.ID, err)
	}
	return nil
}

// RestoreDeviceProtection implements psync.PhoneSystem: restore only if the
// line's DND is still expect, read fresh with asnCtiSnapshotPhoneLine.
func (c *Conn) RestoreDeviceProtection(ctx context.Context, u psync.User, device string, expect, restore bool) error {
	s, err := c.liveSession()
	if err != nil {
		return err
	}
	if err := c.userLine(u, device); err != nil {
		return err
	}
	var cur bool
	err = s.invoke(ctx, opCtiSnapshotPhoneLine, lineArg{LineURI: device}, func(raw json.RawMessage) error {
		var r wMonitorStart
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		cur = r.DoNotDisturb != 0
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore DND on %s of %s: %w", device, u.ID, err)
	}
	switch {
	case cur == restore:
		return nil // already what was there
	case cur != expect:
		return fmt.Errorf("DND on %s of %s is %v, not %v: %w", device, u.ID, cur, expect, psync.ErrChangedByUser)
	}
	if err := psync.StillWanted(ctx); err != nil {
		return err
	}
	if err := s.invoke(ctx, opCtiLineSetDoNotDisturb, setDNDArg{LineURI: device, DND: restore}, nil); err != nil {
		return fmt.Errorf("restore DND %v on %s of %s: %w", restore, device, u.ID, err)
	}
	return nil
}
