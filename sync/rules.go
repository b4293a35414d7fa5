package sync

import (
	"net/url"
	"strings"
)

// TeamsState is a Teams presence classified into the rows of
// RULES.md §1.
type TeamsState uint8

// Teams states, one per row of the §1 table (Busy by hand and a calendar
// appointment are the same Busy/Busy on the wire).
const (
	TeamsUnknown TeamsState = iota
	TeamsAvailable
	TeamsBusy
	TeamsDoNotDisturb
	TeamsBeRightBack
	TeamsAway
	TeamsOffline
	TeamsInCall
	TeamsPresenting
	TeamsInMeeting
	TeamsOutOfOffice
)

var teamsStateNames = [...]string{"unknown", "available", "busy", "do-not-disturb", "be-right-back", "away", "offline", "in-call", "presenting", "in-meeting", "out-of-office"}

func (s TeamsState) String() string {
	if int(s) < len(teamsStateNames) {
		return teamsStateNames[s]
	}
	return "unknown"
}

// Graph activity and availability values the rules look at.
const (
	ActivityInACall           = "InACall"
	ActivityInAConferenceCall = "InAConferenceCall"
	AvailabilityBusy          = "Busy"
)

// ClassifyTeams maps a Graph presence to a §1 row. Both strings are compared
// case-insensitively; anything unrecognised is TeamsUnknown, never an error.
// Activity is looked at before availability because it carries the
// real-time communication (see the package doc for the order).
func ClassifyTeams(p TeamsPresence) TeamsState {
	act := strings.ToLower(p.Activity)
	avail := strings.ToLower(p.Availability)
	switch act {
	case "presenting":
		return TeamsPresenting
	case "inacall", "inaconferencecall":
		return TeamsInCall
	}
	// "Focusing" comes as DoNotDisturb/DoNotDisturb; some tenants report
	// the availability alone.
	if avail == "donotdisturb" || act == "donotdisturb" || act == "urgentinterruptionsonly" || avail == "focusing" {
		return TeamsDoNotDisturb
	}
	switch act {
	case "inameeting":
		return TeamsInMeeting
	case "outofoffice":
		return TeamsOutOfOffice
	}
	switch avail {
	case "outofoffice":
		return TeamsOutOfOffice
	case "busy", "busyidle", "inacall", "inameeting":
		return TeamsBusy
	case "berightback":
		return TeamsBeRightBack
	case "away":
		return TeamsAway
	case "available", "availableidle":
		return TeamsAvailable
	case "offline":
		return TeamsOffline
	}
	return TeamsUnknown
}

// TeamsReading is a Teams presence as the engine reads it: its §1 row, and
// the two facts about the bridge's own session (RULES.md §4.2)
// that the engine judges beside it. ReadTeams is the one place they are
// derived from Graph's strings.
type TeamsReading struct {
	State TeamsState
	// SessionLike: Busy with a call activity, or Busy/Busy (Graph has been
	// seen to report that for an app-set call): what the bridge's own
	// session looks like from outside.
	SessionLike bool
	// CallActivity is the call activity in Graph's spelling
	// (ActivityInACall or ActivityInAConferenceCall), "" for anything else.
	CallActivity string
	// BelowBusy: an availability Microsoft's aggregation ranks below Busy
	// (Available, Away, BeRightBack, Offline). Seen while the bridge's
	// session is active, it means a user-preferred state hides it.
	BelowBusy bool
}

// ReadTeams reads a Graph presence for the engine (case-insensitive).
func ReadTeams(p TeamsPresence) TeamsReading {
	r := TeamsReading{State: ClassifyTeams(p)}
	switch strings.ToLower(p.Activity) {
	case "inacall":
		r.CallActivity = ActivityInACall
	case "inaconferencecall":
		r.CallActivity = ActivityInAConferenceCall
	}
	switch strings.ToLower(p.Availability) {
	case "busy":
		r.SessionLike = r.CallActivity != "" || strings.EqualFold(p.Activity, "busy")
	case "available", "availableidle", "away", "berightback", "offline":
		r.BelowBusy = true
	}
	return r
}

// Colour is the colour of the Teams channel shown to admins.
type Colour uint8

// Channel colours of the §1 table.
const (
	ColourNeutral Colour = iota
	ColourRed
	ColourYellow
)

func (c Colour) String() string {
	switch c {
	case ColourRed:
		return "red"
	case ColourYellow:
		return "yellow"
	}
	return "neutral"
}

// TeamsChannel returns the colour and text shown to admins for a Teams state
// (the last column of the §1 table).
func TeamsChannel(s TeamsState) (Colour, string) {
	switch s {
	case TeamsAvailable:
		return ColourNeutral, "Present"
	case TeamsBusy:
		return ColourRed, "Busy"
	case TeamsDoNotDisturb, TeamsPresenting:
		return ColourRed, "Do not disturb"
	case TeamsBeRightBack, TeamsAway:
		return ColourYellow, "Absent"
	case TeamsInCall:
		return ColourRed, "In call"
	case TeamsInMeeting:
		return ColourRed, "In a meeting"
	case TeamsOutOfOffice:
		return ColourYellow, "Out of office"
	}
	return ColourNeutral, "Unknown"
}

// Why explains a decision: the rule (a row of RULES.md) and the
// profile flag that allowed it.
type Why struct {
	Reason string      // what happened, in words
	Rule   string      // e.g. "§1 Teams call"
	Flag   ProfileFlag // "" when no flag is involved
}

// TeamsTarget is what the bridge's Teams session should show (§2).
type TeamsTarget struct {
	Activity string // "" = no session; ActivityInACall or ActivityInAConferenceCall
	Why
}

// TeamsTargetFor applies §2: a connected or held call on any device sets
// Busy/InACall, a conference Busy/InAConferenceCall (also while it is held:
// a conference on hold is still one), ringing nothing, and only while the
// profile allows "set presence in Teams".
func TeamsTargetFor(ph PhoneState, prof Profile) TeamsTarget {
	var conf, connected bool
	var dev string
	for _, c := range ph.Calls {
		switch {
		case c.State == CallConference, c.State == CallHeld && c.Conference:
			conf, dev = true, c.Device
		case c.State == CallConnected, c.State == CallHeld:
			connected = true
			if dev == "" {
				dev = c.Device
			}
		}
	}
	if !conf && !connected {
		return TeamsTarget{}
	}
	if !prof.SetTeamsPresence {
		return TeamsTarget{}
	}
	if conf {
		return TeamsTarget{Activity: ActivityInAConferenceCall, Why: Why{Reason: "conference call on " + dev, Rule: "§2 conference call", Flag: FlagSetTeamsPresence}}
	}
	return TeamsTarget{Activity: ActivityInACall, Why: Why{Reason: "connected call on " + dev, Rule: "§2 connected call", Flag: FlagSetTeamsPresence}}
}

// PhoneTarget is what the bridge should impose on the phone system (§1).
type PhoneTarget struct {
	// Presence is PhoneUnknown for "no change".
	Presence    PhonePresence
	PresenceWhy Why
	// Protect: call protection (line DND) on every device of the user.
	Protect    bool
	ProtectWhy Why
}

// PhoneTargetFor applies §1 and the profile to a classified Teams state.
// echo says the state is the bridge's own Teams session coming back
// (§4.2): then it never counts as a Teams call.
func PhoneTargetFor(s TeamsState, echo bool, prof Profile) PhoneTarget {
	var t PhoneTarget
	call := s == TeamsInCall && !echo
	meeting := s == TeamsInMeeting && prof.CalendarMeetingsAsCalls
	switch {
	case call || meeting:
		rule, reason, flag := "§1 Teams call", "in a Teams call or meeting", FlagApplyTeamsToPhone
		if meeting {
			rule, reason, flag = "§1 calendar meeting", "in a calendar meeting", FlagCalendarAsCalls
		}
		if prof.ApplyTeamsToPhone {
			t.Presence = PhoneBusy
			t.PresenceWhy = Why{Reason: reason, Rule: rule, Flag: flag}
			if prof.DNDProtectionControlsPresence {
				t.Presence = PhoneDND
				t.PresenceWhy.Flag = FlagDNDControlsPresence
			}
		}
		if prof.CrossDeviceBusyOnBusy {
			t.Protect = true
			t.ProtectWhy = Why{Reason: reason, Rule: rule + ", call protection", Flag: FlagCrossDeviceBusy}
		}
	case s == TeamsPresenting:
		if prof.ApplyTeamsToPhone && prof.PresentingToPhoneDND {
			t.Presence = PhoneDND
			t.PresenceWhy = Why{Reason: "presenting in Teams", Rule: "§1 presenting", Flag: FlagPresentingToPhoneDND}
		}
		if prof.CrossDeviceBusyOnBusy {
			t.Protect = true
			t.ProtectWhy = Why{Reason: "presenting in Teams", Rule: "§1 presenting, call protection", Flag: FlagCrossDeviceBusy}
		}
	case s == TeamsDoNotDisturb:
		if prof.ApplyTeamsToPhone && prof.TeamsDNDToPhoneDND {
			t.Presence = PhoneDND
			t.PresenceWhy = Why{Reason: "do not disturb in Teams", Rule: "§1 do not disturb", Flag: FlagTeamsDNDToPhoneDND}
		}
	}
	return t
}

// DeepLinks are the Teams links of RULES.md §5 for one user.
type DeepLinks struct {
	Chat string `json:"chat"`
	Call string `json:"call"`
	// ChatApp and CallApp open the desktop client directly (msteams:/l/...).
	ChatApp string `json:"chat_app"`
	CallApp string `json:"call_app"`
}

// LinksFor returns the deep links for a UPN, or zero links without one.
func LinksFor(upn string) DeepLinks {
	if upn == "" {
		return DeepLinks{}
	}
	// "@" stays readable as in Microsoft's examples; everything else that
	// could break the query is escaped.
	q := "?users=" + strings.ReplaceAll(url.QueryEscape(upn), "%40", "@")
	return DeepLinks{
		Chat:    "https://teams.microsoft.com/l/chat/0/0" + q,
		Call:    "https://teams.microsoft.com/l/call/0/0" + q,
		ChatApp: "msteams:/l/chat/0/0" + q,
		CallApp: "msteams:/l/call/0/0" + q,
	}
}
