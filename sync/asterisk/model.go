package asterisk

import (
	"slices"
	"strconv"
	"strings"

	psync "github.com/presencebridge/presencebridge/sync"
)

// uState is what the connector knows of one watched user. Guarded by
// Conn.mu, except wmu, which serialises the user's writes.
type uState struct {
	user psync.User
	exts []string
	// fpDevs are the FreePBX device ids of each extension
	// (AMPUSER/<ext>/device), for Custom:DEVDND<id>.
	fpDevs map[string][]string
	// devices are the Asterisk devices whose state is the user's calls
	// (PJSIP/201), in a stable order.
	devices []string
	state   map[string]string // device -> last AMI device state
	callID  map[string]string // device -> the live call's id
	conf    map[string]bool   // device -> the live call joined a conference
	dnd     map[string]bool   // extension -> protection shown
	// presence is the PRESENCE_STATE the PBX shows for the first extension.
	presence psync.PhonePresence
	version  uint64
	// held: the extensions whose protection this connector wrote in this
	// process, with the devices asked on (the AstDB marker mirrors it).
	held map[string][]string

	wmu chan struct{} // a one-slot lock that a context can give up on
}

func newUState(u psync.User, exts []string) *uState {
	return &uState{
		user: u, exts: exts, fpDevs: map[string][]string{}, state: map[string]string{},
		callID: map[string]string{}, conf: map[string]bool{}, dnd: map[string]bool{},
		held: map[string][]string{}, wmu: make(chan struct{}, 1),
	}
}

// extensionsOf returns the user's extensions: the Extension field,
// comma-separated, or the id when that is empty and looks like one (an id
// that is a UPN, with "@", is not an extension).
func extensionsOf(u psync.User) ([]string, bool) {
	src := u.Extension
	if strings.TrimSpace(src) == "" {
		if strings.Contains(string(u.ID), "@") {
			return nil, false
		}
		src = string(u.ID)
	}
	var out []string
	for _, e := range strings.Split(src, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if !validName(e) || strings.Contains(e, "/") {
			return nil, false
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, len(out) > 0
}

// anyDND reports whether protection shows on for the user: FreePBX DND is
// per user, so every device of theirs shows it.
func (u *uState) anyDND() bool {
	for _, on := range u.dnd {
		if on {
			return true
		}
	}
	return false
}

// Device call states (ast_devstate_str). Ringing alone is no call;
// RINGINUSE is a call that also rings.
func callOf(state string) (psync.CallState, bool) {
	switch strings.ToUpper(state) {
	case "INUSE", "BUSY", "RINGINUSE":
		return psync.CallConnected, true
	case "ONHOLD":
		return psync.CallHeld, true
	}
	return psync.CallEnded, false
}

// call renders the device's live call, if any.
func (u *uState) call(dev string) (psync.Call, bool) {
	st, ok := callOf(u.state[dev])
	id := u.callID[dev]
	if !ok || id == "" {
		return psync.Call{}, false
	}
	c := psync.Call{ID: id, Device: dev, State: st, Conference: u.conf[dev]}
	if c.Conference && st == psync.CallConnected {
		c.State = psync.CallConference
	}
	return c, true
}

// snapshot renders the user's full state.
func (u *uState) snapshot() psync.PhoneState {
	s := psync.PhoneState{Presence: u.presence}
	on := u.anyDND()
	for _, d := range u.devices {
		s.Devices = append(s.Devices, psync.Device{ID: d, DND: on, Name: d})
		if c, ok := u.call(d); ok {
			s.Calls = append(s.Calls, c)
		}
	}
	return s
}

// marker is the AstDB value that records which devices the bridge asked to
// protect: teams/<ext>/dnd = "PJSIP/201&PJSIP/202". Written before the DND
// itself, it is what tells the bridge's DND from the person's, also after a
// restart.
func parseMarker(v string) []string {
	var out []string
	for _, d := range strings.Split(v, "&") {
		if d = strings.TrimSpace(d); d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func formatMarker(devs []string) string { return strings.Join(devs, "&") }

// channelDevice is the device of a channel name: PJSIP/201-0000001a is
// PJSIP/201.
func channelDevice(ch string) string {
	if i := strings.LastIndexByte(ch, '-'); i > 0 && strings.Contains(ch[:i], "/") {
		return ch[:i]
	}
	return ch
}

// presenceValue is what the bridge writes to PRESENCE_STATE for p: state,
// subtype, message. The subtype "busy" tells the bridge's Busy from DND,
// which PRESENCE_STATE has no value of its own for.
func presenceValue(p psync.PhonePresence) (string, bool) {
	switch p {
	case psync.PhoneNotSet:
		return "not_set,,", true
	case psync.PhoneAvailable:
		return "available,,", true
	case psync.PhoneBusy:
		return "dnd,busy,In a Teams call", true
	case psync.PhoneDND:
		return "dnd,,Do not disturb", true
	case psync.PhoneAway:
		return "away,,", true
	case psync.PhoneOffline:
		return "unavailable,,", true
	}
	return "", false
}

// presenceOf reads a PRESENCE_STATE value and subtype.
func presenceOf(state, subtype string) psync.PhonePresence {
	switch strings.ToLower(strings.TrimSpace(state)) {
	case "", "not_set", "invalid":
		return psync.PhoneNotSet
	case "available", "chat":
		return psync.PhoneAvailable
	case "away", "xa":
		return psync.PhoneAway
	case "unavailable":
		return psync.PhoneOffline
	case "dnd":
		if strings.EqualFold(strings.TrimSpace(subtype), "busy") {
			return psync.PhoneBusy
		}
		return psync.PhoneDND
	}
	return psync.PhoneUnknown
}

func (u *uState) nextVersion() uint64 { u.version++; return u.version }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
