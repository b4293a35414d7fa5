package sync

import (
	"fmt"
	"time"
)

// mark is one value a hold imposes, typed by the hold's kind (the Teams
// session's activity, a phone presence, a device's protection), with the end
// time it is written with. Strings exist only in the stored record (Hold);
// the engine and its commands work with marks.
type mark struct {
	activity string        // HoldTeamsSession: ActivityInACall or ActivityInAConferenceCall
	presence PhonePresence // HoldPhonePresence
	on       bool          // HoldDeviceProtection
	until    time.Time     // the end time written with it (zero: none)
}

// sameValue compares the values, not the end times.
func (m mark) sameValue(o mark) bool {
	return m.activity == o.activity && m.presence == o.presence && m.on == o.on
}

// same compares value and end time (to the second, as phone systems keep it).
func (m mark) same(o mark) bool {
	return m.sameValue(o) && m.until.Truncate(time.Second).Equal(o.until.Truncate(time.Second))
}

// format is the mark's value as the stored record and the audit log write it.
func (m mark) format(k HoldKind) string {
	switch k {
	case HoldTeamsSession:
		return m.activity
	case HoldPhonePresence:
		return m.presence.String()
	}
	return onOff(m.on)
}

// parseMark reads a value of the stored record back.
func parseMark(k HoldKind, s string, until time.Time) (mark, error) {
	switch k {
	case HoldTeamsSession:
		switch s {
		case ActivityInACall, ActivityInAConferenceCall:
			return mark{activity: s, until: until}, nil
		}
		return mark{}, fmt.Errorf("%q is not an activity the bridge sets", s)
	case HoldPhonePresence:
		p, err := ParsePhonePresence(s)
		if err != nil {
			return mark{}, err
		}
		return mark{presence: p, until: until}, nil
	case HoldDeviceProtection:
		switch s {
		case "on":
			return mark{on: true, until: until}, nil
		case "off", "":
			return mark{until: until}, nil
		}
		return mark{}, fmt.Errorf("%q is neither on nor off", s)
	}
	return mark{}, fmt.Errorf("unknown hold kind %d", k)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// maxUnsure bounds the values kept whose write had no known outcome. A
// retry writes the value and end time it tried before (see reconcile), so
// the list grows only with refreshes that time out, one per half lease;
// values past their end time go first, as the side has dropped them.
const maxUnsure = 8

// maxEarlier bounds the earlier values of the bridge's kept to recognise a
// late report of one of them.
const maxEarlier = 4

// held is a hold as the engine works with it: the typed target, what the
// side has confirmed, what may have reached it, and run-time facts.
type held struct {
	kind     HoldKind
	device   string
	target   mark  // what the bridge wants the side to show
	replaced mark  // the value the bridge replaced (restored at the end)
	shown    *mark // the last value of the bridge's the side confirmed
	unsure   []mark
	earlier  []mark // values of the bridge's the last confirmed write replaced
	why      Why
	profile  string
	since    time.Time

	echoSeen  bool      // the side's own events have shown a value of the bridge's
	applied   bool      // the target as it stands was confirmed
	adopted   bool      // loaded from the journal at start, not yet compared
	refreshAt time.Time // keep-alive or retry of the target due (zero: now)
}

// owns reports whether v is a value of the bridge's for this hold: the
// target, the confirmed value, or one written with no known outcome.
func (h *held) owns(v mark) bool {
	if h.target.sameValue(v) || h.shown != nil && h.shown.sameValue(v) {
		return true
	}
	for _, m := range h.unsure {
		if m.sameValue(v) {
			return true
		}
	}
	return false
}

// onSide is what the side may show of the bridge's right now: the confirmed
// value and the unsure ones. Empty means nothing of the bridge's ever
// reached the side.
func (h *held) onSide() []mark {
	var out []mark
	if h.shown != nil {
		out = append(out, *h.shown)
	}
	return append(out, h.unsure...)
}

// own is everything the side may show of the bridge's, the target included
// (a command for it may have been cut off by a crash).
func (h *held) own() []mark {
	out := h.onSide()
	for _, m := range out {
		if m.same(h.target) {
			return out
		}
	}
	return append(out, h.target)
}

// confirm records that the side took m. The values it replaced are kept
// for a while as earlier ones: a report read before this write may still
// arrive after its answer.
func (h *held) confirm(m mark) {
	for _, o := range h.onSide() {
		if !o.same(m) && !o.until.IsZero() {
			h.earlier = append(h.earlier, o)
		}
	}
	if len(h.earlier) > maxEarlier {
		h.earlier = h.earlier[len(h.earlier)-maxEarlier:]
	}
	c := m
	h.shown = &c
	h.unsure = nil
	h.applied = h.target.same(m)
}

// late reports whether v, value and end time, is an earlier value of the
// bridge's that a confirmed write has replaced: a report of it now is a
// late one. Only values with an end time can be told apart from a person's.
func (h *held) late(v mark) bool {
	if v.until.IsZero() {
		return false
	}
	for _, m := range h.own() {
		if m.same(v) {
			return false // a value of the bridge's as it stands
		}
	}
	for _, m := range h.earlier {
		if m.same(v) {
			return true
		}
	}
	return false
}

// maybe records that m was written but the outcome is not known. At the
// bound, values the side has dropped at their end time go first, then
// the oldest.
func (h *held) maybe(m mark, now time.Time) {
	for _, u := range h.unsure {
		if u.same(m) {
			return
		}
	}
	if h.shown != nil && h.shown.same(m) {
		return
	}
	h.unsure = append(h.unsure, m)
	if len(h.unsure) > maxUnsure {
		live := h.unsure[:0]
		for _, u := range h.unsure {
			if u.until.IsZero() || now.Before(u.until) {
				live = append(live, u)
			}
		}
		h.unsure = live
	}
	if len(h.unsure) > maxUnsure {
		h.unsure = h.unsure[len(h.unsure)-maxUnsure:]
	}
}

// leaseOver reports whether every value of the bridge's that carried an end
// time has passed it: the side has dropped them by itself.
func (h *held) leaseOver(now time.Time) bool {
	own := h.own()
	for _, m := range own {
		if m.until.IsZero() || now.Before(m.until) {
			return false
		}
	}
	return len(own) > 0
}

// record is the hold as the journal keeps it.
func (h *held) record(u UserID) Hold {
	r := Hold{User: u, Kind: h.kind, Device: h.device, Set: h.target.format(h.kind), Lease: h.target.until, ReplacedUntil: h.replaced.until,
		Reason: h.why.Reason, Rule: h.why.Rule, Flag: string(h.why.Flag), Profile: h.profile, Since: h.since}
	if h.kind != HoldTeamsSession {
		r.Replaced = h.replaced.format(h.kind)
	}
	if h.shown != nil {
		r.Shown = &Mark{Value: h.shown.format(h.kind), Until: h.shown.until}
	}
	for _, m := range h.unsure {
		r.Unsure = append(r.Unsure, Mark{Value: m.format(h.kind), Until: m.until})
	}
	return r
}

// key is the hold's identity.
func (h *held) key(u UserID) HoldKey { return HoldKey{User: u, Kind: h.kind, Device: h.device} }

// heldFrom reads a stored record. A record written by an earlier run is
// taken as imposed but unconfirmed: its target may or may not have reached
// the side before the process ended, so it counts as unsure.
func heldFrom(r Hold) (*held, error) {
	target, err := parseMark(r.Kind, r.Set, r.Lease)
	if err != nil {
		return nil, fmt.Errorf("hold %s: set: %w", r.Key(), err)
	}
	h := &held{kind: r.Kind, device: r.Device, target: target, profile: r.Profile, since: r.Since,
		why: Why{Reason: r.Reason, Rule: r.Rule, Flag: ProfileFlag(r.Flag)}, adopted: true}
	if r.Kind != HoldTeamsSession {
		if h.replaced, err = parseMark(r.Kind, r.Replaced, r.ReplacedUntil); err != nil {
			return nil, fmt.Errorf("hold %s: replaced: %w", r.Key(), err)
		}
	}
	if r.Shown != nil {
		m, err := parseMark(r.Kind, r.Shown.Value, r.Shown.Until)
		if err != nil {
			return nil, fmt.Errorf("hold %s: shown: %w", r.Key(), err)
		}
		h.shown = &m
	}
	for _, s := range r.Unsure {
		m, err := parseMark(r.Kind, s.Value, s.Until)
		if err != nil {
			return nil, fmt.Errorf("hold %s: unsure: %w", r.Key(), err)
		}
		h.maybe(m, time.Time{}) // nothing is dropped on loading
	}
	h.maybe(target, time.Time{})
	return h, nil
}

// adopt takes over the holds an earlier run left in the journal (§4.4):
// they are treated as imposed but unconfirmed, refreshed at once if still
// justified, released once the side that justified them has been seen. A
// record that cannot be read is kept as an orphan and reported, never
// dropped: it may stand for something still imposed.
func (e *Engine) adopt(holds []Hold) {
	for _, r := range holds {
		u, ok := e.byID[r.User]
		if !ok {
			e.orphans = append(e.orphans, r)
			e.log.Warn("hold of a user no longer configured is kept", "hold", r.Key().String())
			continue
		}
		h, err := heldFrom(r)
		if err != nil {
			e.orphans = append(e.orphans, r)
			e.log.Error("a stored hold cannot be read; it is kept and reported", "err", err)
			continue
		}
		switch r.Kind {
		case HoldTeamsSession:
			u.teamsHold = h
		case HoldPhonePresence:
			u.presHold = h
		case HoldDeviceProtection:
			u.devHolds = append(u.devHolds, h)
		}
	}
	if len(holds) > 0 {
		e.log.Info("adopted holds of the previous run", "holds", len(holds), "orphans", len(e.orphans))
	}
}

// presenceMarks turns marks into what the phone port takes.
func presenceMarks(ms []mark) []PresenceMark {
	out := make([]PresenceMark, 0, len(ms))
	for _, m := range ms {
		out = append(out, PresenceMark{Presence: m.presence, Until: m.until})
	}
	return out
}
