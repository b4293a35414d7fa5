// Package simoffice is an in-process simulated office: a Teams tenant and a
// phone system that implement the engine's ports with the behaviour the
// engine relies on (Microsoft's presence aggregation with the bridge's
// session and its expiry; a phone system with presence, devices, line DND,
// calls and compare-and-set restores), and simulated people who use them.
// It backs `demo` and the engine's tests until the real adapters talk to
// their protocol simulators.
package simoffice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Gate lets tests make a side fail: the next N calls, or every call while
// down. A nil *Gate lets everything through.
type Gate struct {
	mu   sync.Mutex
	down bool
	next int
	err  error
	hook func() error // called before every port call; an error fails it
}

// FailNext makes the next n port calls fail with err.
func (g *Gate) FailNext(n int, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next, g.err = n, err
}

// SetDown makes every port call fail with psync.ErrUnavailable while down.
func (g *Gate) SetDown(down bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = down
}

// SetHook installs a function run before every port call (tests use it to
// stop the world at an exact step).
func (g *Gate) SetHook(f func() error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hook = f
}

func (g *Gate) check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hook != nil {
		if err := g.hook(); err != nil {
			return err
		}
	}
	if g.down {
		return psync.NotSent(fmt.Errorf("simulated outage: %w", psync.ErrUnavailable))
	}
	if g.next > 0 {
		g.next--
		return g.err
	}
	return nil
}

// session is one Graph presence session.
type session struct {
	avail, act string
	expires    time.Time // zero: no expiry (the user's own client)
}

type teamsUser struct {
	client    session  // the person's Teams client
	preferred *session // user-preferred state (wins over all sessions)
	bridge    *session // the bridge's session (setPresence)
	last      psync.TeamsPresence
}

// Teams is a simulated Teams tenant.
type Teams struct {
	Gate  Gate
	clock psync.Clock

	sendMu sync.Mutex // keeps events in the order they were made
	mu     sync.Mutex
	users  map[psync.UserID]*teamsUser
	out    chan<- psync.TeamsEvent
	seq    uint64
	sets   map[psync.UserID]int
	clears map[psync.UserID]int
}

// NewTeams returns a tenant in which every user's client shows Available.
func NewTeams(clock psync.Clock) *Teams {
	return &Teams{clock: clock, users: map[psync.UserID]*teamsUser{}, sets: map[psync.UserID]int{}, clears: map[psync.UserID]int{}}
}

func (t *Teams) user(id psync.UserID) *teamsUser {
	u, ok := t.users[id]
	if !ok {
		u = &teamsUser{client: session{avail: "Available", act: "Available"}}
		t.users[id] = u
	}
	return u
}

var rank = map[string]int{"donotdisturb": 5, "busy": 4, "available": 3, "berightback": 2, "away": 2, "offline": 1}

// aggregate follows Microsoft's documented order: a user-preferred state
// wins; otherwise DoNotDisturb > Busy > Available > Away among live sessions.
func (t *Teams) aggregate(u *teamsUser) (string, string) {
	if u.preferred != nil {
		return u.preferred.avail, u.preferred.act
	}
	best := u.client
	if b := u.bridge; b != nil && (b.expires.IsZero() || t.clock.Now().Before(b.expires)) {
		if rank[strings.ToLower(b.avail)] > rank[strings.ToLower(best.avail)] {
			best = *b
		}
	}
	return best.avail, best.act
}

// change recomputes a user's presence and returns the event to send, if any.
func (t *Teams) change(id psync.UserID) (psync.TeamsEvent, bool) {
	u := t.user(id)
	avail, act := t.aggregate(u)
	if avail == u.last.Availability && act == u.last.Activity {
		return psync.TeamsEvent{}, false
	}
	t.seq++
	u.last = psync.TeamsPresence{Availability: avail, Activity: act, Sequence: fmt.Sprintf("%016x", t.seq), Observed: t.clock.Now()}
	return psync.TeamsEvent{Kind: psync.TeamsPresenceChanged, User: id, Presence: u.last}, t.out != nil
}

func (t *Teams) update(id psync.UserID, f func(u *teamsUser)) {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	t.mu.Lock()
	f(t.user(id))
	ev, send := t.change(id)
	out := t.out
	t.mu.Unlock()
	if send {
		out <- ev
	}
}

// SetClient sets what the person's own Teams client shows, e.g.
// ("Busy", "InACall") for a Teams call, ("DoNotDisturb", "Presenting").
func (t *Teams) SetClient(id psync.UserID, availability, activity string) {
	t.update(id, func(u *teamsUser) { u.client = session{avail: availability, act: activity} })
}

// SetPreferred sets a user-preferred state; empty availability clears it.
func (t *Teams) SetPreferred(id psync.UserID, availability, activity string) {
	t.update(id, func(u *teamsUser) {
		if availability == "" {
			u.preferred = nil
			return
		}
		u.preferred = &session{avail: availability, act: activity}
	})
}

// Tick expires bridge sessions whose lease ran out.
func (t *Teams) Tick() {
	t.mu.Lock()
	var ids []psync.UserID
	now := t.clock.Now()
	for id, u := range t.users {
		if u.bridge != nil && !u.bridge.expires.IsZero() && !now.Before(u.bridge.expires) {
			u.bridge = nil
			ids = append(ids, id)
		}
	}
	t.mu.Unlock()
	for _, id := range ids {
		t.update(id, func(*teamsUser) {})
	}
}

// Presence returns what Teams shows for a user now.
func (t *Teams) Presence(id psync.UserID) psync.TeamsPresence {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.user(id).last
}

// BridgeSession returns the bridge's session activity ("" when none) and
// its expiry.
func (t *Teams) BridgeSession(id psync.UserID) (string, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.user(id)
	if u.bridge == nil || (!u.bridge.expires.IsZero() && !t.clock.Now().Before(u.bridge.expires)) {
		return "", time.Time{}
	}
	return u.bridge.act, u.bridge.expires
}

// Writes returns how many setPresence and clearPresence calls the bridge
// made for a user.
func (t *Teams) Writes(id psync.UserID) (sets, clears int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sets[id], t.clears[id]
}

// Run implements psync.Teams: the current presence of every user, then
// TeamsSynced, then changes as they happen.
func (t *Teams) Run(ctx context.Context, users []psync.User, events chan<- psync.TeamsEvent) error {
	t.sendMu.Lock()
	t.mu.Lock()
	t.out = events
	var initial []psync.TeamsEvent
	for _, u := range users {
		if ev, ok := t.change(u.ID); ok {
			initial = append(initial, ev)
		} else {
			initial = append(initial, psync.TeamsEvent{Kind: psync.TeamsPresenceChanged, User: u.ID, Presence: t.user(u.ID).last})
		}
	}
	t.mu.Unlock()
	events <- psync.TeamsEvent{Kind: psync.TeamsHealth, Healthy: true, Detail: "simulated tenant"}
	for _, ev := range initial {
		events <- ev
	}
	events <- psync.TeamsEvent{Kind: psync.TeamsSynced}
	t.sendMu.Unlock()
	<-ctx.Done()
	t.sendMu.Lock()
	t.mu.Lock()
	t.out = nil
	t.mu.Unlock()
	t.sendMu.Unlock()
	return nil
}

// SetPresence implements psync.Teams: only the combinations Graph accepts.
func (t *Teams) SetPresence(ctx context.Context, u psync.User, activity string, lease time.Duration) error {
	if err := t.Gate.check(); err != nil {
		return err
	}
	if err := psync.StillWanted(ctx); err != nil {
		return err // the gate held it: the call is checked again, as on the wire
	}
	if activity != psync.ActivityInACall && activity != psync.ActivityInAConferenceCall {
		return fmt.Errorf("setPresence Busy/%s: %w", activity, psync.ErrRejected)
	}
	if lease < 5*time.Minute || lease > 4*time.Hour {
		return fmt.Errorf("expirationDuration %s out of range: %w", lease, psync.ErrRejected)
	}
	t.update(u.ID, func(tu *teamsUser) {
		t.sets[u.ID]++
		tu.bridge = &session{avail: "Busy", act: activity, expires: t.clock.Now().Add(lease)}
	})
	return nil
}

// ClearPresence implements psync.Teams; a missing session is success (the
// adapter maps Graph's 404 the same way).
func (t *Teams) ClearPresence(ctx context.Context, u psync.User) (psync.TeamsPresence, error) {
	if err := t.Gate.check(); err != nil {
		return psync.TeamsPresence{}, err
	}
	if err := psync.StillWanted(ctx); err != nil {
		return psync.TeamsPresence{}, err
	}
	t.update(u.ID, func(tu *teamsUser) {
		t.clears[u.ID]++
		tu.bridge = nil
	})
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.user(u.ID).last
	p.Observed = t.clock.Now()
	return p, nil
}

type phoneUser struct {
	presence psync.PhonePresence
	until    time.Time // expiry of a presence set with a lease
	devices  []psync.Device
	calls    []psync.Call
	version  uint64
}

// Phone is a simulated phone system.
type Phone struct {
	Gate  Gate
	clock psync.Clock

	sendMu sync.Mutex
	mu     sync.Mutex
	users  map[psync.UserID]*phoneUser
	out    chan<- psync.PhoneEvent
	// lost: the connection to the phone system is down (see Lose): changes
	// happen but nobody is told; run are the users Run reports on.
	lost bool
	run  []psync.User
}

// NewPhone returns a phone system without users; AddUser adds them.
func NewPhone(clock psync.Clock) *Phone {
	return &Phone{clock: clock, users: map[psync.UserID]*phoneUser{}}
}

// AddUser adds a user with the given devices, all idle, and no presence
// picked by hand (not set).
func (p *Phone) AddUser(id psync.UserID, devices ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := &phoneUser{presence: psync.PhoneNotSet}
	for _, d := range devices {
		u.devices = append(u.devices, psync.Device{ID: d})
	}
	p.users[id] = u
}

func (p *Phone) update(id psync.UserID, f func(u *phoneUser) (psync.PhoneEvent, error)) error {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	u, ok := p.users[id]
	if !ok {
		p.mu.Unlock()
		return fmt.Errorf("no phone user %s: %w", id, psync.ErrRejected)
	}
	ev, err := f(u)
	out := p.out
	if p.lost {
		out = nil // nobody is told
	}
	if err == nil && ev.Kind != 0 {
		u.version++
		ev.User, ev.Version = id, u.version
	}
	p.mu.Unlock()
	if err == nil && ev.Kind != 0 && out != nil {
		out <- ev
	}
	return err
}

func (u *phoneUser) snapshot() psync.PhoneState {
	return psync.PhoneState{Presence: u.presence, PresenceUntil: u.until, Devices: append([]psync.Device(nil), u.devices...), Calls: append([]psync.Call(nil), u.calls...)}
}

// Call sets a call's state on a device (CallEnded hangs up).
func (p *Phone) Call(id psync.UserID, device, callID string, st psync.CallState) {
	_ = p.update(id, func(u *phoneUser) (psync.PhoneEvent, error) {
		c := psync.Call{ID: callID, Device: device, State: st}
		for i := range u.calls {
			if u.calls[i].ID == callID {
				if st == psync.CallEnded {
					u.calls = append(u.calls[:i], u.calls[i+1:]...)
				} else {
					u.calls[i] = c
				}
				return psync.PhoneEvent{Kind: psync.PhoneCallChanged, Call: c}, nil
			}
		}
		if st == psync.CallEnded {
			return psync.PhoneEvent{}, nil
		}
		u.calls = append(u.calls, c)
		return psync.PhoneEvent{Kind: psync.PhoneCallChanged, Call: c}, nil
	})
}

// SetPresenceByHand is the person picking a presence on the phone system.
func (p *Phone) SetPresenceByHand(id psync.UserID, pr psync.PhonePresence) {
	p.SetPresenceUntilByHand(id, pr, time.Time{})
}

// SetPresenceUntilByHand is the person picking a presence with an end time.
func (p *Phone) SetPresenceUntilByHand(id psync.UserID, pr psync.PhonePresence, until time.Time) {
	_ = p.update(id, func(u *phoneUser) (psync.PhoneEvent, error) {
		u.presence, u.until = pr, until
		return psync.PhoneEvent{Kind: psync.PhonePresenceChanged, Presence: pr, Until: until}, nil
	})
}

// ReportLate delivers a presence report that was read earlier and
// overtaken: it arrives with a new version but shows an older value, as a
// connector's read that raced a write of the bridge's does. The state on
// the simulated phone system is unchanged.
func (p *Phone) ReportLate(id psync.UserID, pr psync.PhonePresence, until time.Time) {
	_ = p.update(id, func(u *phoneUser) (psync.PhoneEvent, error) {
		return psync.PhoneEvent{Kind: psync.PhonePresenceChanged, Presence: pr, Until: until}, nil
	})
}

// SetDNDByHand is the person switching DND on one device.
func (p *Phone) SetDNDByHand(id psync.UserID, device string, on bool) {
	_ = p.update(id, func(u *phoneUser) (psync.PhoneEvent, error) {
		return setDND(u, device, on)
	})
}

func setDND(u *phoneUser, device string, on bool) (psync.PhoneEvent, error) {
	for i := range u.devices {
		if u.devices[i].ID == device {
			u.devices[i].DND = on
			return psync.PhoneEvent{Kind: psync.PhoneDeviceChanged, Device: u.devices[i]}, nil
		}
	}
	return psync.PhoneEvent{}, fmt.Errorf("no device %s: %w", device, psync.ErrRejected)
}

// State returns a user's state on the phone system.
func (p *Phone) State(id psync.UserID) psync.PhoneState {
	p.mu.Lock()
	defer p.mu.Unlock()
	if u, ok := p.users[id]; ok {
		return u.snapshot()
	}
	return psync.PhoneState{}
}

// Tick lets presences with an expired lease fall back to not set, as the
// UCServer's absent state does when its end time passes.
func (p *Phone) Tick() {
	p.mu.Lock()
	var ids []psync.UserID
	now := p.clock.Now()
	for id, u := range p.users {
		if !u.until.IsZero() && !now.Before(u.until) {
			ids = append(ids, id)
		}
	}
	p.mu.Unlock()
	for _, id := range ids {
		_ = p.update(id, func(u *phoneUser) (psync.PhoneEvent, error) {
			if u.until.IsZero() || now.Before(u.until) {
				return psync.PhoneEvent{}, nil
			}
			u.presence, u.until = psync.PhoneNotSet, time.Time{}
			return psync.PhoneEvent{Kind: psync.PhonePresenceChanged, Presence: u.presence}, nil
		})
	}
}

// Run implements psync.PhoneSystem: a snapshot per user, then PhoneSynced,
// then changes.
func (p *Phone) Run(ctx context.Context, users []psync.User, events chan<- psync.PhoneEvent) error {
	p.sendMu.Lock()
	p.mu.Lock()
	p.out, p.run = events, users
	p.mu.Unlock()
	p.sync(events)
	p.sendMu.Unlock()
	<-ctx.Done()
	p.sendMu.Lock()
	p.mu.Lock()
	p.out = nil
	p.mu.Unlock()
	p.sendMu.Unlock()
	return nil
}

// Lose drops the connection to the phone system (true) or brings it back
// (false), as a connector reports it: while it is lost, port calls fail
// without sending anything and changes made on the phone system reach
// nobody; when it is back, a snapshot of every user and synced follow.
func (p *Phone) Lose(lost bool) {
	p.Gate.SetDown(lost)
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	p.lost = lost
	out := p.out
	p.mu.Unlock()
	if out == nil {
		return
	}
	if lost {
		out <- psync.PhoneEvent{Kind: psync.PhoneHealth, Healthy: false, Detail: "simulated connection loss"}
		return
	}
	p.sync(out)
}

// sync reports health, a snapshot of every user and synced; sendMu held.
func (p *Phone) sync(events chan<- psync.PhoneEvent) {
	p.mu.Lock()
	users := p.run
	var initial []psync.PhoneEvent
	for _, usr := range users {
		u, ok := p.users[usr.ID]
		if !ok {
			continue
		}
		u.version++
		initial = append(initial, psync.PhoneEvent{Kind: psync.PhoneSnapshot, User: usr.ID, Version: u.version, State: u.snapshot()})
	}
	p.mu.Unlock()
	events <- psync.PhoneEvent{Kind: psync.PhoneHealth, Healthy: true, Detail: "simulated phone system"}
	for _, ev := range initial {
		events <- ev
	}
	events <- psync.PhoneEvent{Kind: psync.PhoneSynced}
}

// SetPresence implements psync.PhoneSystem: with own, only while the user
// still shows one of them (value and end time).
func (p *Phone) SetPresence(ctx context.Context, usr psync.User, set psync.PresenceMark, own []psync.PresenceMark) error {
	if err := p.Gate.check(); err != nil {
		return err
	}
	if err := psync.StillWanted(ctx); err != nil {
		return err
	}
	return p.update(usr.ID, func(u *phoneUser) (psync.PhoneEvent, error) {
		if len(own) > 0 && !u.shows(own) {
			return psync.PhoneEvent{}, fmt.Errorf("presence is %s (until %v), not the bridge's: %w", u.presence, u.until, psync.ErrChangedByUser)
		}
		u.presence, u.until = set.Presence, set.Until
		return psync.PhoneEvent{Kind: psync.PhonePresenceChanged, Presence: set.Presence, Until: set.Until}, nil
	})
}

// shows reports whether the user's presence is one of own, end time
// included (to the second, as a phone system keeps it).
func (u *phoneUser) shows(own []psync.PresenceMark) bool {
	for _, m := range own {
		if m.Presence == u.presence && m.Until.Truncate(time.Second).Equal(u.until.Truncate(time.Second)) {
			return true
		}
	}
	return false
}

// RestorePresence implements psync.PhoneSystem (compare and set).
func (p *Phone) RestorePresence(ctx context.Context, usr psync.User, own []psync.PresenceMark, restore psync.PresenceMark) error {
	if err := p.Gate.check(); err != nil {
		return err
	}
	if err := psync.StillWanted(ctx); err != nil {
		return err
	}
	return p.update(usr.ID, func(u *phoneUser) (psync.PhoneEvent, error) {
		switch {
		case u.shows([]psync.PresenceMark{restore}):
			return psync.PhoneEvent{}, nil // already there
		case !u.shows(own):
			return psync.PhoneEvent{}, fmt.Errorf("presence is %s, not the bridge's: %w", u.presence, psync.ErrChangedByUser)
		}
		u.presence, u.until = restore.Presence, restore.Until
		return psync.PhoneEvent{Kind: psync.PhonePresenceChanged, Presence: restore.Presence, Until: restore.Until}, nil
	})
}

// SetDeviceProtection implements psync.PhoneSystem.
func (p *Phone) SetDeviceProtection(ctx context.Context, usr psync.User, device string, on bool) error {
	if err := p.Gate.check(); err != nil {
		return err
	}
	if err := psync.StillWanted(ctx); err != nil {
		return err
	}
	return p.update(usr.ID, func(u *phoneUser) (psync.PhoneEvent, error) { return setDND(u, device, on) })
}

// RestoreDeviceProtection implements psync.PhoneSystem (compare and set).
func (p *Phone) RestoreDeviceProtection(ctx context.Context, usr psync.User, device string, expect, restore bool) error {
	if err := p.Gate.check(); err != nil {
		return err
	}
	if err := psync.StillWanted(ctx); err != nil {
		return err
	}
	return p.update(usr.ID, func(u *phoneUser) (psync.PhoneEvent, error) {
		for _, d := range u.devices {
			if d.ID == device && d.DND == restore {
				return psync.PhoneEvent{}, nil // already there
			}
			if d.ID == device && d.DND != expect {
				return psync.PhoneEvent{}, fmt.Errorf("device %s DND is %v: %w", device, d.DND, psync.ErrChangedByUser)
			}
		}
		return setDND(u, device, restore)
	})
}

// ErrStopped is what a stopped world answers (see Gate.SetHook).
var ErrStopped = errors.New("simulated process stopped")
