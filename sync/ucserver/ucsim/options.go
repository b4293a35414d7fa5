package ucsim

import (
	"log/slog"
	"time"
)

// Options configure a Server. The zero value is a usable empty simulator on
// 127.0.0.1 with a 30 s keep-alive timeout.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0" (a free loopback port).
	Addr string
	// UCSID is the id the simulated UCServer is known by (UCConnect path).
	// "local" (on-prem web service) is always accepted as well.
	UCSID string
	// Users are the people (and service accounts) of the simulated server.
	Users []User
	// KeepAliveTimeout ends a session when no keep-alive event arrived for
	// this long. Zero means 30 s; negative disables expiry.
	KeepAliveTimeout time.Duration
	// SweepInterval is how often (in real time) session expiry and absent
	// state validity are checked. Zero means 100 ms. Tests with a fake clock
	// call Server.Sweep instead of waiting.
	SweepInterval time.Duration
	// Now is the simulation clock (timestamps, absent state stTimeFrom and
	// stTimeTo, keep-alive expiry). Default time.Now.
	Now func() time.Time
	// Logger receives diagnostic logs; default discards.
	Logger *slog.Logger

	// RequireNegotiate makes createsession fail (400, iErrorDetail 104)
	// without a {"negotiate":{"iClientProtocolVersion":…}} body, as the HTML
	// docs say ProCall 7+ requires; the node sample sends none.
	RequireNegotiate bool
	// RequireMonitorForDND makes asnCtiLineSetDoNotDisturb fail with
	// iErrorDetail 1 unless the session monitors the line (brief §6.7).
	RequireMonitorForDND bool
	// AnyMessageKeepsAlive lets every client message, not only the
	// keep-alive events 1706/100, reset the keep-alive timer.
	AnyMessageKeepsAlive bool
	// PlainFrames sends bare ROSE objects instead of the one-element array
	// UCWeb uses, to test clients against both shapes.
	PlainFrames bool
	// ServerVersion is reported by asnCheckConnection; default "8.0.0.0".
	ServerVersion string
}

// User is one contact of the simulated server. Users with LoginName (or
// Token) can log in; the logged-in user is what asnGetLoggedInContactV2
// returns and what typeofLines 0 ("own lines") means.
type User struct {
	ContactID   string // e.g. "sip:alice@example.com"; the presence key
	DisplayName string
	FirstName   string
	LastName    string
	Email       string // u8sEMail; typically the UPN
	LoginName   string // user name for Basic auth and ?user=
	Password    string
	Token       string  // accepted as ?token= / x-uctoken
	Lines       []Line  // devices, e.g. desk phone and softphone
	Rights      *Rights // reported rights; nil: FullRights
}

// Line is one phone line (device) of a user.
type Line struct {
	URI        string // u8sLinePhoneNumber, e.g. "tel:+4989123456-10"
	Number     string // dialable u8sPhoneNumber, e.g. "+4989123456-10"
	Descriptor string // e.g. "Desk phone"
	DND        bool   // initial line Do-Not-Disturb
	BusyOnBusy bool   // read-only optionalParams.BusyOnBusy
	NoDND      bool   // line lacks the "DND settable" feature bit 2
}

// Absent states (AsnAbsentStateEnum).
const (
	AbsentNotAbsent    = 0
	AbsentOutOfOffice  = 1
	AbsentBusy         = 2
	AbsentDoNotDisturb = 3
	AbsentNotSet       = 4
)

// Presence values (low byte of iPresenceState, AsnPresenceStateEnum) and
// flags (high bits, AsnPresenceStateFlags).
const (
	PresenceUncontrolled     = 0
	PresenceAvailable        = 1
	PresenceBusy             = 2
	PresenceAbsent           = 3
	PresenceDoNotDisturb     = 4
	PresenceOutOfOrder       = 7
	PresenceMask             = 0xFF
	PresenceFlagConferencing = 0x00020000
	PresenceFlagRinging      = 0x01000000
	PresenceFlagCall         = 0x04000000
)

// Call states (EnumCallState / EAsnCallState).
const (
	CallUnknown      = 0
	CallDestroyed    = 1
	CallOffering     = 2
	CallDialing      = 4
	CallRingback     = 8
	CallBusy         = 16
	CallConnected    = 32
	CallConferenced  = 64
	CallHold         = 128
	CallDisconnected = 256
)

// Presence subscription flags (AsnPresenceSubscriptionFlags), also used as
// iChangedFlags of asnUpdatePresenceV2.
const (
	SubPresence      = 1
	SubData          = 2
	SubDataImage     = 4
	SubConfiguration = 8
	SubAbsentState   = 16
	SubNote          = 32
	SubAppointment   = 64
	SubPhoneLines    = 128
	SubPhoneCalls    = 256
	SubPhoneForwards = 512
	// subDefault is what the server assumes when the flags are omitted:
	// every bit documented as default-on (1 … 8192).
	subDefault = 16383
)

// Line open status (AsnCtiLineOpenStatus) values used by the simulator.
const (
	LineDisconnected = 0
	LineClosed       = 1
	LineOpen         = 2
)

// AbsentState is a user's manual presence as the simulator holds it.
type AbsentState struct {
	State        int       // AbsentNotAbsent … AbsentNotSet
	From, To     time.Time // validity window; zero means unbounded
	Reachability int       // AsnReachabilityEnum; 0 = normal
}

// UserState is a snapshot of one user for assertions.
type UserState struct {
	ContactID     string
	PresenceState int // computed iPresenceState
	Absent        AbsentState
	Watchers      int // sessions subscribed to this user's presence
	Lines         []LineState
}

// LineState is a snapshot of one line.
type LineState struct {
	URI        string
	DND        bool
	BusyOnBusy bool
	OpenStatus int
	Monitors   int // active asnCtiLineMonitorStart monitors
	Calls      []CallState
}

// CallState is a snapshot of one call.
type CallState struct {
	ConnectionID string
	LineURI      string
	State        int
	Outbound     bool
	Remote       string
}
