package sip

import (
	psync "github.com/presencebridge/presencebridge/sync"
)

// callOf maps one live dialog of extension ext to the engine's call
// (contract "Mapping to the port"): confirmed is a call, held when the local
// target says +sip.rendering=no; everything before confirmed only rings.
// ok is false for a dialog that is no call at all (terminated, unknown
// state).
func callOf(ext string, d Dialog) (psync.Call, bool) {
	c := psync.Call{ID: ext + "/" + d.ID, Device: ext, Conference: d.Conference}
	switch d.State {
	case stateConfirmed:
		switch {
		case d.Held:
			c.State = psync.CallHeld
		case d.Conference:
			c.State = psync.CallConference
		default:
			c.State = psync.CallConnected
		}
	case stateTrying, stateProceeding, stateEarly:
		c.State = psync.CallRinging
	default:
		return psync.Call{}, false
	}
	return c, true
}

// callsOf maps the live dialogs of one extension.
func callsOf(ext string, dialogs []Dialog) []psync.Call {
	var out []psync.Call
	for _, d := range dialogs {
		if c, ok := callOf(ext, d); ok {
			out = append(out, c)
		}
	}
	return out
}
