package sync

import (
	"fmt"
	"strings"
	"time"
)

// UserID is the bridge's key for a user: the phone-system contact id or
// extension. It is stable across restarts and is what the store keys on.
type UserID string

// User is one person known on both sides.
type User struct {
	ID          UserID `json:"id"`                  // phone-system contact id or extension
	Extension   string `json:"extension,omitempty"` // dialable number, for display
	TeamsID     string `json:"teams_id,omitempty"`  // Entra user object id
	UPN         string `json:"upn,omitempty"`       // Entra user principal name (deep links)
	DisplayName string `json:"name,omitempty"`
	Profile     string `json:"profile,omitempty"` // "" means the default profile
}

// Name returns the display name, or the id when there is none.
func (u User) Name() string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return string(u.ID)
}

// Validate reports what is wrong with a user record.
func (u User) Validate() error {
	if strings.TrimSpace(string(u.ID)) == "" {
		return fmt.Errorf("user: id is empty")
	}
	if u.UPN != "" && !strings.Contains(u.UPN, "@") {
		return fmt.Errorf("user %s: upn %q is not an e-mail style name", u.ID, u.UPN)
	}
	return nil
}

// Profile is what an admin decides for a group of users (RULES.md §3).
type Profile struct {
	Name string `json:"name"`
	// SetTeamsPresence: §2, phone calls set Teams presence.
	SetTeamsPresence bool `json:"set_presence_in_teams"`
	// ApplyTeamsToPhone: §1 presence changes reach the phone system.
	ApplyTeamsToPhone bool `json:"apply_teams_to_phone"`
	// TeamsDNDToPhoneDND: the §1 row "Do not disturb".
	TeamsDNDToPhoneDND bool `json:"teams_dnd_to_phone_dnd"`
	// PresentingToPhoneDND: the §1 row "Presenting".
	PresentingToPhoneDND bool `json:"presenting_to_phone_dnd"`
	// CrossDeviceBusyOnBusy: call protection on every device during a Teams call.
	CrossDeviceBusyOnBusy bool `json:"cross_device_busy_on_busy"`
	// DNDProtectionControlsPresence: a Teams call makes the phone presence
	// Do not disturb instead of Busy.
	DNDProtectionControlsPresence bool `json:"dnd_protection_controls_presence"`
	// CalendarMeetingsAsCalls: treat Busy/InAMeeting like a Teams call.
	CalendarMeetingsAsCalls bool `json:"calendar_meetings_as_calls"`
}

// DefaultProfileName is the name of the profile every installation has.
const DefaultProfileName = "default"

// NewProfile returns a profile with the defaults of RULES.md §3.
func NewProfile(name string) Profile {
	return Profile{
		Name:                 name,
		SetTeamsPresence:     true,
		ApplyTeamsToPhone:    true,
		TeamsDNDToPhoneDND:   true,
		PresentingToPhoneDND: true,
	}
}

// ProfileFlag names one setting of a profile, as used in config keys, the
// audit log and decisions ("which flag made the bridge do this").
type ProfileFlag string

// The profile flags, in the order of RULES.md §3.
const (
	FlagSetTeamsPresence     ProfileFlag = "set_presence_in_teams"
	FlagApplyTeamsToPhone    ProfileFlag = "apply_teams_to_phone"
	FlagTeamsDNDToPhoneDND   ProfileFlag = "teams_dnd_to_phone_dnd"
	FlagPresentingToPhoneDND ProfileFlag = "presenting_to_phone_dnd"
	FlagCrossDeviceBusy      ProfileFlag = "cross_device_busy_on_busy"
	FlagDNDControlsPresence  ProfileFlag = "dnd_protection_controls_presence"
	FlagCalendarAsCalls      ProfileFlag = "calendar_meetings_as_calls"
)

// ProfileFlags lists every flag with a one-line description, in §3 order.
var ProfileFlags = []struct {
	Flag ProfileFlag
	Help string
}{
	{FlagSetTeamsPresence, "phone calls set Teams presence Busy / In a call"},
	{FlagApplyTeamsToPhone, "Teams calls, meetings and DND change the phone presence"},
	{FlagTeamsDNDToPhoneDND, "Teams do-not-disturb sets phone DND"},
	{FlagPresentingToPhoneDND, "presenting in Teams sets phone DND"},
	{FlagCrossDeviceBusy, "during a Teams call every phone device rejects calls (line DND)"},
	{FlagDNDControlsPresence, "during a Teams call the phone presence is DND instead of Busy"},
	{FlagCalendarAsCalls, "calendar meetings (Busy / In a meeting) count as Teams calls"},
}

// Flag returns the value of one flag.
func (p Profile) Flag(f ProfileFlag) (bool, error) {
	ptr, err := p.flagPtr(f)
	if err != nil {
		return false, err
	}
	return *ptr, nil
}

// SetFlag sets one flag.
func (p *Profile) SetFlag(f ProfileFlag, v bool) error {
	ptr, err := p.flagPtr(f)
	if err != nil {
		return err
	}
	*ptr = v
	return nil
}

func (p *Profile) flagPtr(f ProfileFlag) (*bool, error) {
	switch f {
	case FlagSetTeamsPresence:
		return &p.SetTeamsPresence, nil
	case FlagApplyTeamsToPhone:
		return &p.ApplyTeamsToPhone, nil
	case FlagTeamsDNDToPhoneDND:
		return &p.TeamsDNDToPhoneDND, nil
	case FlagPresentingToPhoneDND:
		return &p.PresentingToPhoneDND, nil
	case FlagCrossDeviceBusy:
		return &p.CrossDeviceBusyOnBusy, nil
	case FlagDNDControlsPresence:
		return &p.DNDProtectionControlsPresence, nil
	case FlagCalendarAsCalls:
		return &p.CalendarMeetingsAsCalls, nil
	}
	return nil, fmt.Errorf("unknown profile setting %q", f)
}

// ValidateProfileName reports whether name can name a profile: it becomes a
// config key segment, so dots and spaces are out.
func ValidateProfileName(name string) error {
	if name == "" {
		return fmt.Errorf("profile name is empty")
	}
	if len(name) > 64 {
		return fmt.Errorf("profile name %q is longer than 64 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("profile name %q: only letters, digits, - and _ are allowed", name)
		}
	}
	return nil
}

// TeamsPresence is what Graph reports for a user. Availability and activity
// are open strings: unknown values are kept and classified as unknown.
type TeamsPresence struct {
	Availability string    `json:"availability"`
	Activity     string    `json:"activity"`
	Sequence     string    `json:"sequence,omitempty"` // Graph sequenceNumber
	OutOfOffice  bool      `json:"out_of_office,omitempty"`
	Observed     time.Time `json:"observed"` // when the bridge received it
}

// String renders availability/activity as Graph writes them.
func (p TeamsPresence) String() string {
	if p.Availability == "" && p.Activity == "" {
		return "unknown"
	}
	return p.Availability + "/" + p.Activity
}

// Newer reports whether p is a newer report than q (RULES.md §4.5).
// Graph's sequenceNumber is a lexicographically sortable stamp; when either
// side lacks one, the time of observation decides.
func (p TeamsPresence) Newer(q TeamsPresence) bool {
	if p.Sequence != "" && q.Sequence != "" {
		return p.Sequence > q.Sequence
	}
	return p.Observed.After(q.Observed)
}

// PhonePresence is the presence a person can pick on the phone system (the
// UCServer absent state, a SIP person state). Call-driven busy is not part of
// it: calls are reported separately.
type PhonePresence uint8

// Phone presences. The zero value means "not known". PhoneAvailable is a
// presence the person picked ("available", UCServer absent state 0);
// PhoneNotSet is no manual presence at all (absent state 4: the phone
// system shows its own). Both look available, but they are two values: a
// restore writes back exactly the one that was there, and a person who
// picks "available" by hand has changed something. New values are only
// ever appended: the last-known state stores the numbers.
const (
	PhoneUnknown PhonePresence = iota
	PhoneAvailable
	PhoneBusy
	PhoneAway
	PhoneDND
	PhoneOffline
	PhoneNotSet
)

var phonePresenceNames = [...]string{"unknown", "available", "busy", "away", "dnd", "offline", "not-set"}

func (p PhonePresence) String() string {
	if int(p) < len(phonePresenceNames) {
		return phonePresenceNames[p]
	}
	return fmt.Sprintf("presence(%d)", p)
}

// ParsePhonePresence is the inverse of String.
func ParsePhonePresence(s string) (PhonePresence, error) {
	for i, n := range phonePresenceNames {
		if strings.EqualFold(s, n) {
			return PhonePresence(i), nil
		}
	}
	return PhoneUnknown, fmt.Errorf("unknown phone presence %q", s)
}

// CallState is the state of one call on one device.
type CallState uint8

// Call states; CallEnded in an event removes the call.
const (
	CallEnded CallState = iota
	CallRinging
	CallConnected
	CallHeld
	CallConference
)

var callStateNames = [...]string{"ended", "ringing", "connected", "held", "conference"}

func (s CallState) String() string {
	if int(s) < len(callStateNames) {
		return callStateNames[s]
	}
	return fmt.Sprintf("call(%d)", s)
}

// Call is one call on one of the user's devices.
type Call struct {
	ID     string    `json:"id"`
	Device string    `json:"device"`
	State  CallState `json:"state"`
	// Conference: the call has been a conference. Phone systems report a
	// held conference as held, not as a conference; a conference put on
	// hold is still one (RULES.md §2), so the flag outlives the
	// hold, for as long as the call lasts.
	Conference bool `json:"conference,omitempty"`
}

// Device is one of the user's phone devices (desk phone line, softphone,
// TAPI line, audio/video chat) and its do-not-disturb (call protection).
type Device struct {
	ID  string `json:"id"`
	DND bool   `json:"dnd"`
	// Name is the phone system's own name for the device (a UCServer
	// line's descriptor, "Desk phone"), for display; "" when it has none.
	Name string `json:"name,omitempty"`
}

// Label is the device's name, or its id when it has none.
func (d Device) Label() string {
	if d.Name != "" {
		return d.Name
	}
	return d.ID
}

// PhoneState is everything the bridge knows of a user on the phone system.
type PhoneState struct {
	Presence PhonePresence `json:"presence"`
	// PresenceUntil is when the phone system drops the presence by itself
	// (the UCServer absent state's end time); zero: no end time, or the
	// phone system keeps none. A restore writes it back with the value.
	PresenceUntil time.Time `json:"presence_until"`
	Devices       []Device  `json:"devices,omitempty"`
	Calls         []Call    `json:"calls,omitempty"`
}

// keepConference carries the conference flag of calls the user already had
// over to a new snapshot of the same calls.
func (s *PhoneState) keepConference(prev []Call) {
	for i := range s.Calls {
		for _, p := range prev {
			if p.ID == s.Calls[i].ID && (p.Conference || p.State == CallConference) {
				s.Calls[i].Conference = true
			}
		}
		if s.Calls[i].State == CallConference {
			s.Calls[i].Conference = true
		}
	}
}

// Clone returns a deep copy.
func (s PhoneState) Clone() PhoneState {
	c := s
	c.Devices = append([]Device(nil), s.Devices...)
	c.Calls = append([]Call(nil), s.Calls...)
	return c
}

// device returns the index of device id, or -1.
func (s *PhoneState) device(id string) int {
	for i := range s.Devices {
		if s.Devices[i].ID == id {
			return i
		}
	}
	return -1
}

// setCall applies one call event: it adds, updates or (CallEnded) removes.
func (s *PhoneState) setCall(c Call) {
	if c.State == CallConference {
		c.Conference = true
	}
	for i := range s.Calls {
		if s.Calls[i].ID == c.ID {
			if c.State == CallEnded {
				s.Calls = append(s.Calls[:i], s.Calls[i+1:]...)
			} else {
				c.Conference = c.Conference || s.Calls[i].Conference
				s.Calls[i] = c
			}
			return
		}
	}
	if c.State != CallEnded {
		s.Calls = append(s.Calls, c)
	}
	if c.Device != "" && s.device(c.Device) < 0 {
		s.Devices = append(s.Devices, Device{ID: c.Device})
	}
}

// setDeviceDND records a device's DND, adding the device when new.
func (s *PhoneState) setDeviceDND(id string, on bool) {
	if i := s.device(id); i >= 0 {
		s.Devices[i].DND = on
		return
	}
	s.Devices = append(s.Devices, Device{ID: id, DND: on})
}

// Side names one side of the bridge.
type Side uint8

// The two sides.
const (
	SideTeams Side = iota + 1
	SidePhone
)

func (s Side) String() string {
	switch s {
	case SideTeams:
		return "teams"
	case SidePhone:
		return "phone"
	}
	return "?"
}

// HoldKind says what a hold imposes.
type HoldKind uint8

// Hold kinds.
const (
	// HoldTeamsSession: the bridge's Graph presence session (Set = activity).
	HoldTeamsSession HoldKind = iota + 1
	// HoldPhonePresence: phone presence (Set/Replaced = PhonePresence names).
	HoldPhonePresence
	// HoldDeviceProtection: line DND on one device (Set/Replaced = "on"/"off").
	HoldDeviceProtection
)

func (k HoldKind) String() string {
	switch k {
	case HoldTeamsSession:
		return "teams-session"
	case HoldPhonePresence:
		return "phone-presence"
	case HoldDeviceProtection:
		return "device-protection"
	}
	return fmt.Sprintf("hold(%d)", k)
}

// HoldKey identifies a hold: one per user and kind, per device for devices.
type HoldKey struct {
	User   UserID
	Kind   HoldKind
	Device string
}

func (k HoldKey) String() string {
	if k.Device != "" {
		return fmt.Sprintf("%s/%s/%s", k.User, k.Kind, k.Device)
	}
	return fmt.Sprintf("%s/%s", k.User, k.Kind)
}

// Hold records something the bridge imposed on one side, written ahead of the
// change (RULES.md §4.1), with the value it replaced and the lease.
//
// It is the stored form: values are strings here and typed in the engine.
// Set and Lease are what the bridge wants the side to show (the target);
// Shown and Unsure are what the side may really show of the bridge's: the
// last value the side confirmed, and values written whose outcome is not
// known (a timeout, a crash between the write-ahead and the answer). A
// failed write never makes the bridge disown a value of its own: the value
// is the bridge's while it is Set, Shown or Unsure.
type Hold struct {
	User     UserID   `json:"user"`
	Kind     HoldKind `json:"kind"`
	Device   string   `json:"device,omitempty"`
	Set      string   `json:"set"`                // the value the bridge imposes
	Replaced string   `json:"replaced,omitempty"` // the value it replaced ("" for a Teams session)
	// ReplacedUntil is the end time the replaced value had (zero: none):
	// a restore gives the person their value with its end time back.
	ReplacedUntil time.Time `json:"replaced_until"`
	Shown         *Mark     `json:"shown,omitempty"`  // the side confirmed it shows this value of the bridge's
	Unsure        []Mark    `json:"unsure,omitempty"` // written, not known whether the side took it
	Reason        string    `json:"reason"`
	Rule          string    `json:"rule"`
	Flag          string    `json:"flag,omitempty"`
	Profile       string    `json:"profile,omitempty"`
	Since         time.Time `json:"since"`
	// Lease is when the other side drops the state by itself; zero means the
	// other side has no expiry and the state is "held by the bridge".
	Lease time.Time `json:"lease,omitzero"`
}

// Mark is a value the bridge wrote to a side with the end time it carried
// (zero: none), as the journal keeps it. The end time is what tells the
// bridge's value from the same value set again by the person.
type Mark struct {
	Value string    `json:"value"`
	Until time.Time `json:"until,omitzero"`
}

// Key returns the hold's identity.
func (h Hold) Key() HoldKey { return HoldKey{User: h.User, Kind: h.Kind, Device: h.Device} }

// Side returns the side the hold is imposed on.
func (h Hold) Side() Side {
	if h.Kind == HoldTeamsSession {
		return SideTeams
	}
	return SidePhone
}

// Decision is one thing the bridge decided or did, for the log, the audit
// trail and the console.
type Decision struct {
	At      time.Time `json:"at"`
	User    UserID    `json:"user"`
	Name    string    `json:"name,omitempty"`
	Side    Side      `json:"side"`
	What    string    `json:"what"` // e.g. "presence", "session", "device desk"
	Old     string    `json:"old"`
	New     string    `json:"new"`
	Reason  string    `json:"reason"`
	Rule    string    `json:"rule"`
	Flag    string    `json:"flag,omitempty"`
	Profile string    `json:"profile,omitempty"`
	Outcome Outcome   `json:"outcome"`
	Err     string    `json:"error,omitempty"`
}

// Outcome says what happened to a decision.
type Outcome string

// Decision outcomes.
const (
	OutcomeApplied  Outcome = "applied"  // the other side confirmed the change
	OutcomeReleased Outcome = "released" // the bridge gave back what it held
	OutcomeYielded  Outcome = "yielded"  // the user changed it; the bridge let go
	OutcomeFailed   Outcome = "failed"   // the side refused or failed; will retry
	OutcomeObserved Outcome = "observed" // a change seen, reported for the record
)

func (d Decision) String() string {
	s := fmt.Sprintf("%s %-12s %-5s %s: %s -> %s (%s", d.At.Format("15:04:05.000"), d.Name, d.Side, d.What, d.Old, d.New, d.Reason)
	if d.Flag != "" {
		s += "; profile " + d.Profile + ": " + d.Flag
	}
	s += ") " + string(d.Outcome)
	if d.Err != "" {
		s += ": " + d.Err
	}
	return s
}
