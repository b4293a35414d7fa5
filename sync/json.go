package sync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The JSON the control API and `--json` print, and the store keeps: keys in
// snake_case, enums as their names ("busy", "in-call", "phone"), and times
// that are not known as null. Enums also read the numbers earlier versions
// stored, so old databases keep working.

// enumJSON marshals an enum by name; the zero value of an enum whose zero
// means "none" (a Side) is null.
func enumJSON(name string, null bool) ([]byte, error) {
	if null {
		return []byte("null"), nil
	}
	return json.Marshal(name)
}

// enumFromJSON reads an enum written by name or, as before, as a number.
func enumFromJSON(b []byte, what string, parse func(string) (uint8, bool)) (uint8, error) {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return 0, nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, err
		}
		if v, ok := parse(s); ok {
			return v, nil
		}
		return 0, fmt.Errorf("unknown %s %q", what, s)
	}
	n, err := strconv.ParseUint(string(b), 10, 8)
	if err != nil {
		return 0, fmt.Errorf("%s: %s is neither a name nor a small number", what, b)
	}
	return uint8(n), nil
}

func byName(names []string) func(string) (uint8, bool) {
	return func(s string) (uint8, bool) {
		for i, n := range names {
			if n == s {
				return uint8(i), true
			}
		}
		return 0, false
	}
}

// MarshalJSON writes the presence by name.
func (p PhonePresence) MarshalJSON() ([]byte, error) { return enumJSON(p.String(), false) }

// UnmarshalJSON reads a name or an old number.
func (p *PhonePresence) UnmarshalJSON(b []byte) error {
	v, err := enumFromJSON(b, "phone presence", byName(phonePresenceNames[:]))
	*p = PhonePresence(v)
	return err
}

// MarshalJSON writes the call state by name.
func (s CallState) MarshalJSON() ([]byte, error) { return enumJSON(s.String(), false) }

// UnmarshalJSON reads a name or an old number.
func (s *CallState) UnmarshalJSON(b []byte) error {
	v, err := enumFromJSON(b, "call state", byName(callStateNames[:]))
	*s = CallState(v)
	return err
}

// MarshalJSON writes "teams" or "phone", and null for none.
func (s Side) MarshalJSON() ([]byte, error) { return enumJSON(s.String(), s == 0) }

// UnmarshalJSON reads a name or an old number.
func (s *Side) UnmarshalJSON(b []byte) error {
	v, err := enumFromJSON(b, "side", byName([]string{"", "teams", "phone"}))
	*s = Side(v)
	return err
}

// MarshalJSON writes the hold kind by name.
func (k HoldKind) MarshalJSON() ([]byte, error) { return enumJSON(k.String(), false) }

// UnmarshalJSON reads a name or an old number.
func (k *HoldKind) UnmarshalJSON(b []byte) error {
	v, err := enumFromJSON(b, "hold kind", byName([]string{"", "teams-session", "phone-presence", "device-protection"}))
	*k = HoldKind(v)
	return err
}

// MarshalJSON writes the §1 row by name.
func (s TeamsState) MarshalJSON() ([]byte, error) { return enumJSON(s.String(), false) }

// UnmarshalJSON reads a name or a number.
func (s *TeamsState) UnmarshalJSON(b []byte) error {
	v, err := enumFromJSON(b, "Teams state", byName(teamsStateNames[:]))
	*s = TeamsState(v)
	return err
}

// MarshalJSON writes the colour by name.
func (c Colour) MarshalJSON() ([]byte, error) { return enumJSON(c.String(), false) }

// UnmarshalJSON reads a name or a number.
func (c *Colour) UnmarshalJSON(b []byte) error {
	v, err := enumFromJSON(b, "colour", byName([]string{"neutral", "red", "yellow"}))
	*c = Colour(v)
	return err
}

// orNull is t, or nil when t is zero (not known): JSON null.
func orNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func orZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// MarshalJSON writes an unknown observation time as null.
func (p TeamsPresence) MarshalJSON() ([]byte, error) {
	type plain TeamsPresence
	return json.Marshal(struct {
		plain
		Observed *time.Time `json:"observed"`
	}{plain(p), orNull(p.Observed)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *TeamsPresence) UnmarshalJSON(b []byte) error {
	type plain TeamsPresence
	var v struct {
		plain
		Observed *time.Time `json:"observed"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = TeamsPresence(v.plain)
	p.Observed = orZero(v.Observed)
	return nil
}

// MarshalJSON writes a lease of "no expiry" (and an unknown start) as null.
func (h Hold) MarshalJSON() ([]byte, error) {
	type plain Hold
	return json.Marshal(struct {
		plain
		Since         *time.Time `json:"since"`
		Lease         *time.Time `json:"lease"`
		ReplacedUntil *time.Time `json:"replaced_until"`
	}{plain(h), orNull(h.Since), orNull(h.Lease), orNull(h.ReplacedUntil)})
}

// UnmarshalJSON reads what MarshalJSON writes, and the records of earlier
// versions.
func (h *Hold) UnmarshalJSON(b []byte) error {
	type plain Hold
	var v struct {
		plain
		Since         *time.Time `json:"since"`
		Lease         *time.Time `json:"lease"`
		ReplacedUntil *time.Time `json:"replaced_until"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*h = Hold(v.plain)
	h.Since, h.Lease, h.ReplacedUntil = orZero(v.Since), orZero(v.Lease), orZero(v.ReplacedUntil)
	return nil
}

// MarshalJSON writes "no end time" as null.
func (s PhoneState) MarshalJSON() ([]byte, error) {
	type plain PhoneState
	return json.Marshal(struct {
		plain
		PresenceUntil *time.Time `json:"presence_until"`
	}{plain(s), orNull(s.PresenceUntil)})
}

// UnmarshalJSON reads what MarshalJSON writes, and the state earlier
// versions saved.
func (s *PhoneState) UnmarshalJSON(b []byte) error {
	type plain PhoneState
	var v struct {
		plain
		PresenceUntil *time.Time `json:"presence_until"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = PhoneState(v.plain)
	s.PresenceUntil = orZero(v.PresenceUntil)
	return nil
}

// MarshalJSON writes "no end time" as null.
func (m Mark) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Value string     `json:"value"`
		Until *time.Time `json:"until"`
	}{m.Value, orNull(m.Until)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (m *Mark) UnmarshalJSON(b []byte) error {
	var v struct {
		Value string     `json:"value"`
		Until *time.Time `json:"until"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	m.Value, m.Until = v.Value, orZero(v.Until)
	return nil
}

// HoldStatus carries the hold's own JSON plus what the engine knows of it.
// (Embedding Hold would take over the marshalling with Hold's methods.)
func (h HoldStatus) MarshalJSON() ([]byte, error) {
	hb, err := h.Hold.MarshalJSON()
	if err != nil {
		return nil, err
	}
	extra, err := json.Marshal(struct {
		Confirmed    bool `json:"confirmed"`
		HeldByBridge bool `json:"held_by_bridge"`
	}{h.Confirmed, h.HeldByBridge})
	if err != nil {
		return nil, err
	}
	// Two objects into one: {hold…,extra…}.
	return append(append(hb[:len(hb)-1:len(hb)-1], ','), extra[1:]...), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (h *HoldStatus) UnmarshalJSON(b []byte) error {
	if err := h.Hold.UnmarshalJSON(b); err != nil {
		return err
	}
	var extra struct {
		Confirmed    bool `json:"confirmed"`
		HeldByBridge bool `json:"held_by_bridge"`
	}
	if err := json.Unmarshal(b, &extra); err != nil {
		return err
	}
	h.Confirmed, h.HeldByBridge = extra.Confirmed, extra.HeldByBridge
	return nil
}

// MarshalJSON writes an unknown last change as null.
func (u UserStatus) MarshalJSON() ([]byte, error) {
	type plain UserStatus
	return json.Marshal(struct {
		plain
		LastChange *time.Time `json:"last_change"`
	}{plain(u), orNull(u.LastChange)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (u *UserStatus) UnmarshalJSON(b []byte) error {
	type plain UserStatus
	var v struct {
		plain
		LastChange *time.Time `json:"last_change"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*u = UserStatus(v.plain)
	u.LastChange = orZero(v.LastChange)
	return nil
}

// MarshalJSON writes an unknown time of the last change as null.
func (h SideHealth) MarshalJSON() ([]byte, error) {
	type plain SideHealth
	return json.Marshal(struct {
		plain
		Since *time.Time `json:"since"`
	}{plain(h), orNull(h.Since)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (h *SideHealth) UnmarshalJSON(b []byte) error {
	type plain SideHealth
	var v struct {
		plain
		Since *time.Time `json:"since"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*h = SideHealth(v.plain)
	h.Since = orZero(v.Since)
	return nil
}
