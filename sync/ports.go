package sync

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The ports below are what adapters implement. They are shaped by the three
// technologies they must fit:
//
//   - Graph (graph-presence.md): presence arrives by polling or
//     notifications, carries a sequenceNumber, and the bridge owns exactly one
//     session per user that it sets with an expirationDuration and clears.
//   - UCServer (ucserver-protocol.md): a session-based event stream of
//     presence, lines and calls; the absent state has an expiry (stTimeTo),
//     line DND has none; reconnecting means a full re-subscribe, so the
//     adapter reports a full snapshot per user after every (re)subscribe.
//   - SIP (sip-presence.md): dialog-info NOTIFYs with a per-subscription
//     version (the adapter turns it into a per-user monotonic Version), PIDF
//     PUBLISH with Expires, busy-on-busy through a PBX-specific channel.
//
// Adapters translate library errors into the errors of this file, wrapped
// with %w.

// TeamsEventKind says what a TeamsEvent carries.
type TeamsEventKind uint8

// Teams event kinds.
const (
	// TeamsPresenceChanged: a user's presence (only changes need be sent).
	TeamsPresenceChanged TeamsEventKind = iota + 1
	// TeamsSynced: every watched user's presence has been read once.
	TeamsSynced
	// TeamsHealth: the connection to Graph changed (Healthy, Detail).
	TeamsHealth
)

// TeamsEvent is what the Teams side tells the engine.
type TeamsEvent struct {
	Kind     TeamsEventKind
	User     UserID
	Presence TeamsPresence
	Healthy  bool
	Detail   string
}

// Teams is the Microsoft Teams side (Graph).
type Teams interface {
	// Run watches the users' presence and sends events until ctx ends.
	Run(ctx context.Context, users []User, events chan<- TeamsEvent) error
	// SetPresence sets (or keeps alive) the bridge's session for the user:
	// Busy with the given activity, expiring after lease.
	SetPresence(ctx context.Context, u User, activity string, lease time.Duration) error
	// ClearPresence ends the bridge's session; a session that is already
	// gone is success. It returns the user's presence as Teams shows it
	// after the clear (zero if it could not be read): a Teams call hidden
	// behind the bridge's session is recognised only by such a report
	// (RULES.md §4.2), and it must be judged without the session.
	ClearPresence(ctx context.Context, u User) (TeamsPresence, error)
}

// PhoneEventKind says what a PhoneEvent carries.
type PhoneEventKind uint8

// Phone event kinds.
const (
	// PhoneSnapshot: the user's full state (after a (re)subscribe).
	PhoneSnapshot PhoneEventKind = iota + 1
	// PhonePresenceChanged: the user's presence (Presence).
	PhonePresenceChanged
	// PhoneCallChanged: one call changed (Call; CallEnded removes it).
	PhoneCallChanged
	// PhoneDeviceChanged: one device's DND changed (Device).
	PhoneDeviceChanged
	// PhoneSynced: every watched user has had a snapshot.
	PhoneSynced
	// PhoneHealth: the connection to the phone system changed.
	PhoneHealth
)

// PhoneEvent is what the phone side tells the engine.
type PhoneEvent struct {
	Kind PhoneEventKind
	User UserID
	// Version orders a user's events: an event with a Version not above the
	// last one seen is stale and dropped. 0 means unversioned (always taken).
	Version  uint64
	State    PhoneState
	Presence PhonePresence
	// Until is the end time of Presence (PhonePresenceChanged), where the
	// phone system keeps one.
	Until   time.Time
	Call    Call
	Device  Device
	Healthy bool
	Detail  string
}

// PresenceMark is a phone presence the bridge wrote, with the end time it
// carried (zero: none). Where the phone system keeps end times (the
// UCServer's stTimeTo), the end time tells the bridge's value from the same
// value set again by the person.
type PresenceMark struct {
	Presence PhonePresence
	Until    time.Time
}

// PhoneSystem is the phone-system side (UCServer, SIP PBX).
type PhoneSystem interface {
	// Run watches the users and sends events until ctx ends. After every
	// (re)connect it sends a PhoneSnapshot per user, then PhoneSynced.
	Run(ctx context.Context, users []User, events chan<- PhoneEvent) error
	// SetPresence sets the user's presence to set.Presence until
	// set.Until (where the phone system has an expiry). With own empty it
	// writes over whatever is there: the bridge imposes, and has recorded
	// the value it replaces. Otherwise it refreshes or changes a value the
	// bridge already holds: it writes only if the side still shows one of
	// own (end times compared where the side keeps them) and returns
	// ErrChangedByUser, changing nothing, if not.
	SetPresence(ctx context.Context, u User, set PresenceMark, own []PresenceMark) error
	// RestorePresence sets restore (with its end time, where the phone
	// system keeps one) only if the side still shows one of own (the
	// values the bridge may have left there). If it already shows restore,
	// nothing needs doing and it returns nil. Otherwise it changes nothing
	// and returns ErrChangedByUser.
	RestorePresence(ctx context.Context, u User, own []PresenceMark, restore PresenceMark) error
	// SetDeviceProtection turns call protection (line DND) on one device
	// on or off.
	SetDeviceProtection(ctx context.Context, u User, device string, on bool) error
	// RestoreDeviceProtection sets restore only if the device's protection
	// is still expect (nil if it already is restore); otherwise
	// ErrChangedByUser.
	RestoreDeviceProtection(ctx context.Context, u User, device string, expect, restore bool) error
}

// PhoneAbility is a set of writes a phone connector can make.
type PhoneAbility uint8

// Phone abilities.
const (
	// AbilityPresence: SetPresence and RestorePresence change what the
	// phone system shows.
	AbilityPresence PhoneAbility = 1 << iota
	// AbilityProtection: SetDeviceProtection keeps calls off a device.
	AbilityProtection

	// AbilityAll is what a connector that says nothing can do.
	AbilityAll = AbilityPresence | AbilityProtection
)

// PhoneAbilities is implemented by connectors that cannot make every write
// (a SIP proxy that only reads calls, a presence server that shows busy but
// cannot refuse calls). The engine plans no write a connector cannot make,
// so a profile's rule the phone system cannot carry out is not retried as
// a failure for every Teams call.
type PhoneAbilities interface {
	Abilities() PhoneAbility
}

// AbilitiesOf returns what p can write: all of it unless p says otherwise.
func AbilitiesOf(p PhoneSystem) PhoneAbility {
	if a, ok := p.(PhoneAbilities); ok {
		return a.Abilities()
	}
	return AbilityAll
}

// LastKnown is the last-known state of one user on both sides, saved so the
// console has something to show after a restart (marked as not live).
type LastKnown struct {
	User  UserID
	Teams *TeamsPresence // nil: unchanged since the last save
	Phone *PhoneState    // nil: unchanged since the last save
}

// Journal is the durable memory the engine relies on (the store).
// PutHold is the write-ahead: it must be durable when it returns. The engine
// calls the Journal from its worker goroutines, never from its loop.
type Journal interface {
	PutHold(h Hold) error
	DeleteHold(k HoldKey) error
	Holds() ([]Hold, error)
	SaveLastKnown(batch []LastKnown) error
	AppendAudit(batch []Decision) error
}

// Errors adapters return (wrapped with %w).
var (
	// ErrChangedByUser: a restore found a value the bridge did not set.
	ErrChangedByUser = errors.New("changed by the user meanwhile")
	// ErrRejected: the other side refused the request for good (bad
	// request, unknown user, missing permission); retrying the same thing
	// will not help.
	ErrRejected = errors.New("rejected")
	// ErrUnavailable: the other side cannot be reached now.
	ErrUnavailable = errors.New("unavailable")
	// ErrSuperseded: a command was not sent because, by the time it could
	// go, the bridge no longer wanted it (the call it was for had ended).
	// Adapters return it from StillWanted; nothing was sent.
	ErrSuperseded = errors.New("superseded before it was sent")
)

// NotSentError marks a failure that certainly sent nothing to the side (no
// connection to send on): the engine knows the side still shows what it
// showed. Its text is its cause's.
type NotSentError struct{ Err error }

func (e *NotSentError) Error() string { return e.Err.Error() }
func (e *NotSentError) Unwrap() error { return e.Err }

// NotSent marks err as a failure that sent nothing.
func NotSent(err error) error { return &NotSentError{Err: err} }

type stillWantedKey struct{}

// WithStillWanted returns a context that carries the engine's check that a
// command is still wanted. Adapters that wait before they send (a request
// budget, a short Retry-After, a queue) call StillWanted right before the
// request goes on the wire.
func WithStillWanted(ctx context.Context, wanted func() bool) context.Context {
	return context.WithValue(ctx, stillWantedKey{}, wanted)
}

// HasStillWanted reports whether ctx carries the engine's check (a command's
// context does; an adapter's own reads do not).
func HasStillWanted(ctx context.Context) bool {
	_, ok := ctx.Value(stillWantedKey{}).(func() bool)
	return ok
}

// StillWanted returns ErrSuperseded when the command ctx was made for is no
// longer wanted, and nil otherwise (also when ctx carries no check).
func StillWanted(ctx context.Context) error {
	if f, ok := ctx.Value(stillWantedKey{}).(func() bool); ok && !f() {
		return ErrSuperseded
	}
	return nil
}

// RetryAfterError is a throttling answer: try again after Wait.
type RetryAfterError struct {
	Wait time.Duration
	Err  error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("throttled, retry after %s: %v", e.Wait, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }
