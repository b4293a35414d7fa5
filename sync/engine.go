package sync

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// EngineConfig is everything the engine is built from.
type EngineConfig struct {
	Settings Settings
	Profiles []Profile
	Users    []User
	Teams    Teams
	Phone    PhoneSystem
	Journal  Journal
	Clock    Clock        // nil: RealClock
	Logger   *slog.Logger // nil: discard
	// Workers is the number of concurrent calls per side (default 4). The
	// engine never has two calls in flight for the same user and slot.
	Workers int
	// Observe receives every decision on the engine goroutine; it must not
	// block (hand the decision to a buffered channel).
	Observe func(Decision)
	// Seed seeds the retry jitter (0: fixed seed).
	Seed uint64
	// CallTimeout bounds one call to a side (default 30s).
	CallTimeout time.Duration
}

// Engine keeps both sides in step. One goroutine (Run) owns all live state;
// adapters feed it events through channels, worker goroutines carry out its
// commands (write-ahead to the Journal, then the call to the side) and hand
// the results back.
type Engine struct {
	cfg   EngineConfig
	clock Clock
	log   *slog.Logger
	rng   *rand.Rand

	users    []*userRT
	byID     map[UserID]*userRT
	profiles map[string]*Profile

	teamsIn  chan TeamsEvent
	phoneIn  chan PhoneEvent
	results  chan result
	queries  chan func()
	shutdown chan chan error
	recs     chan any
	lanes    [3][]*lane // indexed by Side, then by worker

	wake     wakeHeap
	timer    Timer
	timerAt  time.Time
	dirty    map[*userRT]struct{}
	orphans  []Hold // holds of users no longer configured: kept, reported
	stopping bool
	stopDone chan error
	inflight int
	health   [3]SideHealth
	stats    Stats

	started chan struct{}
	dead    chan struct{}
}

// SideHealth is what a side last said about its connection.
type SideHealth struct {
	Known   bool
	Healthy bool
	Synced  bool
	Detail  string
	Since   time.Time
}

// Stats are counters for the console and metrics.
type Stats struct {
	TeamsEvents, PhoneEvents, Stale uint64
	Commands, Failures, Yields      uint64
	DroppedRecords                  uint64
}

// lane is one worker's queue. A user's commands for a side always take the
// same lane, so the journal sees them in the order they were decided (a
// "forget" never overtakes the next write-ahead of the same hold).
type lane struct {
	ch      chan *command
	backlog []*command
}

type slot uint8

const (
	slotTeams slot = iota
	slotPresence
	slotProtect
	nSlots
)

type slotState struct {
	busy     bool
	attempts int
	retryAt  time.Time
	rejected string // a target the side refused for good; not retried
}

// held is a hold plus what the engine knows about it at run time.
type held struct {
	Hold
	echoSeen  bool      // the side has shown the value the bridge set
	applied   bool      // the side confirmed the call (or showed the value)
	adopted   bool      // loaded from the journal at start, not yet compared
	refreshAt time.Time // keep-alive due (zero: now)
}

type userRT struct {
	idx  int
	user User
	prof *Profile

	teams      TeamsPresence
	teamsKnown bool
	teamsEcho  bool // the current Teams presence is the bridge's session coming back
	teamsCall  bool // a real Teams call is recognised and still reported
	alsoTeams  bool // "possibly also in Teams"
	overridden bool // a user-preferred Teams state hides the bridge's session

	phone      PhoneState
	phoneKnown bool
	phoneVer   uint64

	teamsHold *held
	presHold  *held
	devHolds  []*held

	yieldPres bool
	yieldDev  []string

	slots [nSlots]slotState

	lastChange time.Time
	lastSide   Side
}

type opKind uint8

const (
	opSetTeams opKind = iota + 1
	opClearTeams
	opSetPresence
	opRestorePresence
	opSetDevice
	opRestoreDevice
	opForget // delete a hold from the journal only (the user took over)
)

type command struct {
	u          *userRT // engine goroutine only; workers use the copies below
	slot       slot
	op         opKind
	user       User
	hold       Hold
	writeAhead bool
	lease      time.Duration
	decision   Decision
	after      TeamsPresence // written by the worker: Teams after a clear
}

type result struct {
	cmd *command
	err error
}

// NewEngine checks the configuration and builds an engine; Run starts it.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.Teams == nil || cfg.Phone == nil || cfg.Journal == nil {
		return nil, errors.New("engine: Teams, Phone and Journal are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.Settings == (Settings{}) {
		cfg.Settings = DefaultSettings()
	}
	e := &Engine{
		cfg:      cfg,
		clock:    cfg.Clock,
		log:      cfg.Logger.With("component", "engine"),
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
		byID:     make(map[UserID]*userRT, len(cfg.Users)),
		profiles: make(map[string]*Profile, len(cfg.Profiles)),
		teamsIn:  make(chan TeamsEvent, 4096),
		phoneIn:  make(chan PhoneEvent, 4096),
		results:  make(chan result, 1024),
		queries:  make(chan func()),
		shutdown: make(chan chan error),
		recs:     make(chan any, 8192),
		dirty:    make(map[*userRT]struct{}),
		started:  make(chan struct{}),
		dead:     make(chan struct{}),
	}
	for i := range cfg.Profiles {
		p := cfg.Profiles[i]
		if err := ValidateProfileName(p.Name); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		e.profiles[p.Name] = &p
	}
	if _, ok := e.profiles[cfg.Settings.DefaultProfile]; !ok {
		p := NewProfile(cfg.Settings.DefaultProfile)
		e.profiles[p.Name] = &p
	}
	for _, u := range cfg.Users {
		if err := u.Validate(); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		if _, dup := e.byID[u.ID]; dup {
			return nil, fmt.Errorf("engine: user %s is configured twice", u.ID)
		}
		name := u.Profile
		if name == "" {
			name = cfg.Settings.DefaultProfile
		}
		p, ok := e.profiles[name]
		if !ok {
			return nil, fmt.Errorf("engine: user %s is on profile %q, which does not exist", u.ID, name)
		}
		rt := &userRT{idx: len(e.users), user: u, prof: p}
		e.users = append(e.users, rt)
		e.byID[u.ID] = rt
	}
	for s := SideTeams; s <= SidePhone; s++ {
		for range cfg.Workers {
			e.lanes[s] = append(e.lanes[s], &lane{ch: make(chan *command, 64)})
		}
	}
	return e, nil
}

// Run loads the holds of an earlier run, starts the adapters and the
// workers, and runs the engine until ctx ends or Shutdown completes. When ctx
// ends without a Shutdown, nothing is released: holds stay in the journal for
// the next start, as after a crash.
func (e *Engine) Run(ctx context.Context) error {
	holds, err := e.cfg.Journal.Holds()
	if err != nil {
		return fmt.Errorf("engine: loading holds: %w", err)
	}
	e.adopt(holds)

	sideCtx, cancelSides := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSides()
	var workers, adapters sync.WaitGroup
	for s := SideTeams; s <= SidePhone; s++ {
		for _, l := range e.lanes[s] {
			workers.Go(func() { e.worker(sideCtx, l.ch) })
		}
	}
	recDone := make(chan struct{})
	go func() { defer close(recDone); e.recorder() }()
	users := make([]User, len(e.users))
	for i, u := range e.users {
		users[i] = u.user
	}
	adapters.Go(func() {
		if err := e.cfg.Teams.Run(sideCtx, users, e.teamsIn); err != nil && sideCtx.Err() == nil {
			e.log.Error("teams side stopped", "err", err)
		}
	})
	adapters.Go(func() {
		if err := e.cfg.Phone.Run(sideCtx, users, e.phoneIn); err != nil && sideCtx.Err() == nil {
			e.log.Error("phone side stopped", "err", err)
		}
	})
	e.timer = e.clock.NewTimer(time.Hour)
	e.timer.Stop()
	close(e.started)

	err = e.loop(ctx)

	close(e.dead)
	cancelSides()
	for s := SideTeams; s <= SidePhone; s++ {
		for _, l := range e.lanes[s] {
			close(l.ch)
		}
	}
	workers.Wait()
	adapters.Wait()
	e.flushDirty()
	close(e.recs)
	<-recDone
	return err
}

// Shutdown stops taking in events, releases everything the bridge holds and
// returns when all is released or ctx ends (what is left stays in the
// journal). Run returns after it.
func (e *Engine) Shutdown(ctx context.Context) error {
	select {
	case <-e.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan error, 1)
	select {
	case e.shutdown <- done:
	case <-e.dead:
		return errors.New("engine: not running")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PostTeams hands a Teams event to the engine (for adapters that are not
// started by Run, and for tests).
func (e *Engine) PostTeams(ctx context.Context, ev TeamsEvent) error {
	select {
	case e.teamsIn <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PostPhone hands a phone event to the engine.
func (e *Engine) PostPhone(ctx context.Context, ev PhoneEvent) error {
	select {
	case e.phoneIn <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) loop(ctx context.Context) error {
	for {
		if e.stopping && e.inflight == 0 && e.holdCount() == 0 {
			e.stopDone <- nil
			return nil
		}
		select {
		case ev := <-e.teamsIn:
			if !e.stopping {
				e.onTeams(ev)
			}
		case ev := <-e.phoneIn:
			if !e.stopping {
				e.onPhone(ev)
			}
		case r := <-e.results:
			e.onResult(r)
		case q := <-e.queries:
			q()
		case <-e.timer.C():
			e.timerAt = time.Time{}
			e.onTimer()
		case done := <-e.shutdown:
			e.stopping = true
			e.stopDone = done
			e.log.Info("shutting down: releasing holds", "holds", e.holdCount())
			for _, u := range e.users {
				e.reconcile(u)
			}
		case <-ctx.Done():
			if e.stopping {
				e.stopDone <- fmt.Errorf("engine: stopped with %d holds not released (kept for the next start)", e.holdCount())
			}
			return nil
		}
		e.armTimer()
		// Save last-known state once per burst, or every 1,000 users under
		// sustained load so it never starves.
		if len(e.dirty) >= 1000 || len(e.teamsIn) == 0 && len(e.phoneIn) == 0 && len(e.results) == 0 {
			e.flushDirty()
		}
	}
}

func (e *Engine) holdCount() int {
	n := 0
	for _, u := range e.users {
		if u.teamsHold != nil {
			n++
		}
		if u.presHold != nil {
			n++
		}
		n += len(u.devHolds)
	}
	return n
}

// adopt takes over the holds an earlier run left in the journal (§4.4):
// they are treated as imposed but unconfirmed, refreshed at once if still
// justified, released once the side that justified them has been seen.
func (e *Engine) adopt(holds []Hold) {
	for _, h := range holds {
		u, ok := e.byID[h.User]
		if !ok {
			e.orphans = append(e.orphans, h)
			e.log.Warn("hold of a user no longer configured is kept", "hold", h.Key().String())
			continue
		}
		hd := &held{Hold: h, adopted: true}
		switch h.Kind {
		case HoldTeamsSession:
			u.teamsHold = hd
		case HoldPhonePresence:
			u.presHold = hd
		case HoldDeviceProtection:
			u.devHolds = append(u.devHolds, hd)
		}
	}
	if len(holds) > 0 {
		e.log.Info("adopted holds of the previous run", "holds", len(holds), "orphans", len(e.orphans))
	}
}

// --- events -----------------------------------------------------------------

func (e *Engine) onTeams(ev TeamsEvent) {
	switch ev.Kind {
	case TeamsHealth:
		e.setHealth(SideTeams, ev.Healthy, ev.Detail, false)
		return
	case TeamsSynced:
		e.setHealth(SideTeams, true, e.health[SideTeams].Detail, true)
		return
	}
	u, ok := e.byID[ev.User]
	if !ok {
		return
	}
	e.stats.TeamsEvents++
	p := ev.Presence
	if p.Observed.IsZero() {
		p.Observed = e.clock.Now()
	}
	// Only a strictly older report is stale: the same report again (the
	// re-read after a clear) is looked at anew, because what it means
	// depends on whether the bridge's session is still there.
	if u.teamsKnown && u.teams.Newer(p) {
		e.stats.Stale++
		return
	}
	oldState := ClassifyTeams(u.teams)
	wasKnown := u.teamsKnown
	u.teams, u.teamsKnown = p, true
	e.markDirty(u)

	st := ClassifyTeams(p)
	avail := strings.ToLower(p.Availability)
	act := strings.ToLower(p.Activity)
	callish := avail == "busy" && (act == "inacall" || act == "inaconferencecall" || act == "busy")
	h := u.teamsHold
	// §4.2: while the bridge's session is active a Teams call is its echo,
	// unless a real Teams call was recognised before the session began.
	u.teamsEcho = h != nil && callish && !u.teamsCall
	u.alsoTeams = false
	if h != nil {
		switch {
		case callish && act == strings.ToLower(h.Set):
			h.echoSeen = true
			u.overridden = false
		case callish && act != "busy":
			u.alsoTeams = true // a call activity other than the one set
			h.echoSeen = true
			u.overridden = false
		case h.echoSeen && !u.slots[slotTeams].busy && (avail == "available" || avail == "availableidle" || avail == "away" || avail == "berightback" || avail == "offline"):
			u.overridden = true
		}
	} else {
		u.overridden = false
	}
	if st == TeamsInCall && !u.teamsEcho {
		u.teamsCall = true
	} else if st != TeamsInCall {
		u.teamsCall = false
	}
	if !wasKnown || oldState != st {
		_, text := TeamsChannel(st)
		_, oldText := TeamsChannel(oldState)
		if !wasKnown {
			oldText = "not seen"
		}
		reason := "Teams presence " + p.String()
		if u.teamsEcho {
			reason += ", the bridge's own session"
		}
		if u.overridden {
			reason += ", overridden by the user in Teams"
		}
		e.emit(Decision{At: p.Observed, User: u.user.ID, Name: u.user.Name(), Side: SideTeams, What: "channel", Old: oldText, New: text, Reason: reason, Rule: "§1 " + st.String(), Profile: u.prof.Name, Outcome: OutcomeObserved})
	}
	e.reconcile(u)
}

func (e *Engine) onPhone(ev PhoneEvent) {
	switch ev.Kind {
	case PhoneHealth:
		e.setHealth(SidePhone, ev.Healthy, ev.Detail, false)
		return
	case PhoneSynced:
		e.setHealth(SidePhone, true, e.health[SidePhone].Detail, true)
		return
	}
	u, ok := e.byID[ev.User]
	if !ok {
		return
	}
	e.stats.PhoneEvents++
	if ev.Version != 0 {
		if ev.Version <= u.phoneVer {
			e.stats.Stale++
			return
		}
		u.phoneVer = ev.Version
	}
	switch ev.Kind {
	case PhoneSnapshot:
		u.phone = ev.State.Clone()
		u.phoneKnown = true
	case PhonePresenceChanged:
		u.phone.Presence = ev.Presence
	case PhoneCallChanged:
		u.phone.setCall(ev.Call)
	case PhoneDeviceChanged:
		u.phone.setDeviceDND(ev.Device.ID, ev.Device.DND)
	default:
		return
	}
	e.markDirty(u)
	e.checkPhoneHolds(u)
	e.reconcile(u)
}

// checkPhoneHolds compares what the phone side now shows with what the
// bridge holds: the bridge's own value coming back confirms the hold; a
// different value after that confirmation is the user taking over (§4.1).
func (e *Engine) checkPhoneHolds(u *userRT) {
	if h := u.presHold; h != nil && h.adopted && u.phoneKnown {
		// A hold of the previous run: the held value means it is still in
		// place, the replaced value that its lease ran out; anything else
		// is the user's doing.
		h.adopted = false
		if cur := u.phone.Presence.String(); cur != h.Set && cur != h.Replaced && !u.slots[slotPresence].busy {
			e.yield(u, h, cur)
			u.presHold = nil
			u.yieldPres = true
		}
	}
	if h := u.presHold; h != nil {
		switch {
		case u.phone.Presence.String() == h.Set:
			h.echoSeen, h.applied = true, true
		case h.echoSeen && !u.slots[slotPresence].busy && u.phone.Presence != PhoneUnknown:
			e.yield(u, h, u.phone.Presence.String())
			u.presHold = nil
			u.yieldPres = true
		}
	}
	for i := 0; i < len(u.devHolds); i++ {
		h := u.devHolds[i]
		d := u.phone.device(h.Device)
		if d < 0 {
			continue
		}
		cur := onOff(u.phone.Devices[d].DND)
		h.adopted = false
		switch {
		case cur == h.Set:
			h.echoSeen, h.applied = true, true
		case h.echoSeen && !u.slots[slotProtect].busy:
			e.yield(u, h, cur)
			u.devHolds = append(u.devHolds[:i], u.devHolds[i+1:]...)
			u.yieldDev = append(u.yieldDev, h.Device)
			i--
		}
	}
}

// yield lets go of a hold the user has overridden (§4.1: the user wins).
// Only the journal needs to forget it; nothing is sent to the side.
func (e *Engine) yield(u *userRT, h *held, now string) {
	e.stats.Yields++
	d := e.decision(u, h.Hold, h.Set, now, OutcomeYielded)
	d.Reason = "changed by the user; the user wins"
	e.emit(d)
	e.dispatch(&command{u: u, op: opForget, user: u.user, hold: h.Hold, decision: d}, false)
}

func (e *Engine) setHealth(s Side, healthy bool, detail string, synced bool) {
	h := &e.health[s]
	if h.Healthy != healthy || !h.Known {
		h.Since = e.clock.Now()
	}
	h.Known, h.Healthy, h.Detail = true, healthy, detail
	if synced {
		h.Synced = true
	}
	if !healthy {
		h.Synced = false
	}
	e.log.Info("side health", "side", s, "healthy", healthy, "synced", h.Synced, "detail", detail)
}

// --- deciding ---------------------------------------------------------------

// reconcile compares what each side should show for u with what the bridge
// holds, and sends at most one command per slot. It is idempotent: calling it
// again with nothing changed sends nothing.
func (e *Engine) reconcile(u *userRT) {
	now := e.clock.Now()
	e.reconcileTeams(u, now)
	e.reconcilePresence(u, now)
	e.reconcileProtect(u, now)
}

func (e *Engine) ready(u *userRT, s slot, now time.Time) bool {
	st := &u.slots[s]
	if st.busy {
		return false
	}
	if !st.retryAt.IsZero() && now.Before(st.retryAt) {
		return false
	}
	return true
}

func (e *Engine) reconcileTeams(u *userRT, now time.Time) {
	if !e.ready(u, slotTeams, now) {
		return
	}
	h := u.teamsHold
	var want TeamsTarget
	if !e.stopping {
		if !u.phoneKnown {
			return // §4.6: decide nothing on a state not seen
		}
		want = TeamsTargetFor(u.phone, *u.prof)
	}
	st := &u.slots[slotTeams]
	if want.Activity == "" || want.Activity != st.rejected {
		st.rejected = ""
	}
	lease := e.cfg.Settings.TeamsLease
	switch {
	case want.Activity != "" && want.Activity == st.rejected:
		return
	case want.Activity != "" && (h == nil || h.Set != want.Activity):
		nh := Hold{User: u.user.ID, Kind: HoldTeamsSession, Set: want.Activity, Reason: want.Reason, Rule: want.Rule, Flag: string(want.Flag), Profile: u.prof.Name, Since: now, Lease: now.Add(lease)}
		old := "none"
		if h != nil {
			old = AvailabilityBusy + "/" + h.Set
			nh.Since = h.Since
		}
		u.teamsHold = &held{Hold: nh}
		d := e.decision(u, nh, old, AvailabilityBusy+"/"+nh.Set, "")
		e.dispatch(&command{u: u, slot: slotTeams, op: opSetTeams, user: u.user, hold: nh, writeAhead: true, lease: lease, decision: d}, true)
	case want.Activity == "" && h != nil:
		d := e.decision(u, h.Hold, AvailabilityBusy+"/"+h.Set, "cleared", "")
		d.Reason = e.releaseReason("no connected call any more")
		e.dispatch(&command{u: u, slot: slotTeams, op: opClearTeams, user: u.user, hold: h.Hold, decision: d}, true)
	case h != nil && !now.Before(h.refreshAt):
		nh := h.Hold
		nh.Lease = now.Add(lease)
		d := e.decision(u, nh, AvailabilityBusy+"/"+nh.Set, AvailabilityBusy+"/"+nh.Set, "")
		d.Reason = "keep-alive: " + nh.Reason
		e.dispatch(&command{u: u, slot: slotTeams, op: opSetTeams, user: u.user, hold: nh, writeAhead: true, lease: lease, decision: d}, true)
	}
}

func (e *Engine) phoneTarget(u *userRT) (PhoneTarget, bool) {
	if e.stopping {
		return PhoneTarget{}, true
	}
	if !u.teamsKnown {
		return PhoneTarget{}, false
	}
	return PhoneTargetFor(ClassifyTeams(u.teams), u.teamsEcho, *u.prof), true
}

func (e *Engine) reconcilePresence(u *userRT, now time.Time) {
	if !e.ready(u, slotPresence, now) {
		return
	}
	t, ok := e.phoneTarget(u)
	if !ok {
		return
	}
	want := t.Presence
	if u.yieldPres {
		if want != PhoneUnknown {
			return // the user took over for the rest of this reason
		}
		u.yieldPres = false
	}
	st := &u.slots[slotPresence]
	if want == PhoneUnknown || want.String() != st.rejected {
		st.rejected = ""
	}
	h := u.presHold
	lease := e.cfg.Settings.PhoneLease
	switch {
	case want != PhoneUnknown && want.String() == st.rejected:
		return
	case want != PhoneUnknown && h == nil:
		if !u.phoneKnown || u.phone.Presence == want {
			// Not seen yet, or the user already shows it: nothing to
			// impose, so nothing to restore later.
			return
		}
		nh := Hold{User: u.user.ID, Kind: HoldPhonePresence, Set: want.String(), Replaced: u.phone.Presence.String(), Reason: t.PresenceWhy.Reason, Rule: t.PresenceWhy.Rule, Flag: string(t.PresenceWhy.Flag), Profile: u.prof.Name, Since: now, Lease: now.Add(lease)}
		u.presHold = &held{Hold: nh}
		d := e.decision(u, nh, nh.Replaced, nh.Set, "")
		e.dispatch(&command{u: u, slot: slotPresence, op: opSetPresence, user: u.user, hold: nh, writeAhead: true, lease: lease, decision: d}, true)
	case want != PhoneUnknown && h.Set != want.String():
		nh := h.Hold
		old := nh.Set
		nh.Set, nh.Reason, nh.Rule, nh.Flag, nh.Lease = want.String(), t.PresenceWhy.Reason, t.PresenceWhy.Rule, string(t.PresenceWhy.Flag), now.Add(lease)
		u.presHold = &held{Hold: nh}
		d := e.decision(u, nh, old, nh.Set, "")
		e.dispatch(&command{u: u, slot: slotPresence, op: opSetPresence, user: u.user, hold: nh, writeAhead: true, lease: lease, decision: d}, true)
	case want == PhoneUnknown && h != nil:
		if h.echoSeen && u.phoneKnown && u.phone.Presence.String() != h.Set {
			e.yield(u, h, u.phone.Presence.String())
			u.presHold = nil
			return
		}
		d := e.decision(u, h.Hold, h.Set, h.Replaced, "")
		d.Reason = e.releaseReason("reason ended: " + h.Reason)
		e.dispatch(&command{u: u, slot: slotPresence, op: opRestorePresence, user: u.user, hold: h.Hold, decision: d}, true)
	case h != nil && !now.Before(h.refreshAt):
		nh := h.Hold
		nh.Lease = now.Add(lease)
		d := e.decision(u, nh, nh.Set, nh.Set, "")
		d.Reason = "lease refresh: " + nh.Reason
		e.dispatch(&command{u: u, slot: slotPresence, op: opSetPresence, user: u.user, hold: nh, writeAhead: true, lease: lease, decision: d}, true)
	}
}

func (e *Engine) reconcileProtect(u *userRT, now time.Time) {
	if !e.ready(u, slotProtect, now) {
		return
	}
	t, ok := e.phoneTarget(u)
	if !ok {
		return
	}
	if !t.Protect {
		u.yieldDev = u.yieldDev[:0]
		// Release what is no longer justified, one device per command.
		for i, h := range u.devHolds {
			if d := u.phone.device(h.Device); h.echoSeen && d >= 0 && onOff(u.phone.Devices[d].DND) != h.Set {
				e.yield(u, h, onOff(u.phone.Devices[d].DND))
				u.devHolds = append(u.devHolds[:i], u.devHolds[i+1:]...)
				e.reconcileProtect(u, now)
				return
			}
			d := e.decision(u, h.Hold, h.Set, h.Replaced, "")
			d.Reason = e.releaseReason("reason ended: " + h.Reason)
			e.dispatch(&command{u: u, slot: slotProtect, op: opRestoreDevice, user: u.user, hold: h.Hold, decision: d}, true)
			return
		}
		return
	}
	if !u.phoneKnown {
		return
	}
	for _, dev := range u.phone.Devices {
		if h := u.devHold(dev.ID); h != nil {
			// Line DND has no lease: a hold is re-sent only when it was
			// never confirmed (a failed call, or adopted after a restart
			// and found off).
			if !h.applied && !dev.DND {
				d := e.decision(u, h.Hold, "off", "on", "")
				e.dispatch(&command{u: u, slot: slotProtect, op: opSetDevice, user: u.user, hold: h.Hold, writeAhead: true, decision: d}, true)
				return
			}
			continue
		}
		if dev.DND || slices.Contains(u.yieldDev, dev.ID) {
			continue // protected by the user already, or the user took over
		}
		nh := Hold{User: u.user.ID, Kind: HoldDeviceProtection, Device: dev.ID, Set: "on", Replaced: "off", Reason: t.ProtectWhy.Reason, Rule: t.ProtectWhy.Rule, Flag: string(t.ProtectWhy.Flag), Profile: u.prof.Name, Since: now}
		u.devHolds = append(u.devHolds, &held{Hold: nh})
		d := e.decision(u, nh, "off", "on", "")
		e.dispatch(&command{u: u, slot: slotProtect, op: opSetDevice, user: u.user, hold: nh, writeAhead: true, decision: d}, true)
		return
	}
}

// releaseReason says why a hold is released: its own reason, or the stop.
func (e *Engine) releaseReason(why string) string {
	if e.stopping {
		return "bridge shutting down"
	}
	return why
}

func (u *userRT) devHold(id string) *held {
	for _, h := range u.devHolds {
		if h.Device == id {
			return h
		}
	}
	return nil
}

func (e *Engine) decision(u *userRT, h Hold, old, new string, outcome Outcome) Decision {
	what := "presence"
	switch h.Kind {
	case HoldTeamsSession:
		what = "session"
	case HoldDeviceProtection:
		what = "device " + h.Device
	}
	return Decision{User: u.user.ID, Name: u.user.Name(), Side: h.Side(), What: what, Old: old, New: new, Reason: h.Reason, Rule: h.Rule, Flag: h.Flag, Profile: u.prof.Name, Outcome: outcome}
}

// --- carrying out -------------------------------------------------------------

func (e *Engine) dispatch(c *command, occupy bool) {
	if occupy {
		c.u.slots[c.slot].busy = true
	}
	e.inflight++
	e.stats.Commands++
	l := e.lanes[c.hold.Side()][c.u.idx%len(e.lanes[c.hold.Side()])]
	if len(l.backlog) > 0 {
		l.backlog = append(l.backlog, c)
		return
	}
	select {
	case l.ch <- c:
	default:
		l.backlog = append(l.backlog, c)
	}
}

// pump moves backlogged commands into lanes that have room; the engine never
// blocks on a busy side.
func (e *Engine) pump() {
	for s := SideTeams; s <= SidePhone; s++ {
		for _, l := range e.lanes[s] {
		fill:
			for len(l.backlog) > 0 {
				select {
				case l.ch <- l.backlog[0]:
					l.backlog[0] = nil
					l.backlog = l.backlog[1:]
				default:
					break fill
				}
			}
		}
	}
}

// worker carries out commands: write-ahead first, then the side, then the
// journal's bookkeeping. It touches no engine state.
func (e *Engine) worker(ctx context.Context, cmds <-chan *command) {
	for c := range cmds {
		err := e.execute(ctx, c)
		select {
		case e.results <- result{cmd: c, err: err}:
		case <-e.dead:
		}
	}
}

func (e *Engine) execute(ctx context.Context, c *command) error {
	j := e.cfg.Journal
	if c.op == opForget {
		return j.DeleteHold(c.hold.Key())
	}
	if c.writeAhead {
		if err := j.PutHold(c.hold); err != nil {
			return fmt.Errorf("write-ahead: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	var err error
	switch c.op {
	case opSetTeams:
		err = e.cfg.Teams.SetPresence(ctx, c.user, c.hold.Set, c.lease)
	case opClearTeams:
		c.after, err = e.cfg.Teams.ClearPresence(ctx, c.user)
	case opSetPresence:
		p, _ := ParsePhonePresence(c.hold.Set)
		err = e.cfg.Phone.SetPresence(ctx, c.user, p, c.hold.Lease)
	case opRestorePresence:
		set, _ := ParsePhonePresence(c.hold.Set)
		rep, _ := ParsePhonePresence(c.hold.Replaced)
		err = e.cfg.Phone.RestorePresence(ctx, c.user, set, rep)
	case opSetDevice:
		err = e.cfg.Phone.SetDeviceProtection(ctx, c.user, c.hold.Device, c.hold.Set == "on")
	case opRestoreDevice:
		err = e.cfg.Phone.RestoreDeviceProtection(ctx, c.user, c.hold.Device, c.hold.Set == "on", c.hold.Replaced == "on")
	}
	release := c.op == opClearTeams || c.op == opRestorePresence || c.op == opRestoreDevice
	if release && (err == nil || errors.Is(err, ErrChangedByUser)) {
		if jerr := j.DeleteHold(c.hold.Key()); jerr != nil {
			return fmt.Errorf("released, but the journal kept the hold: %w", jerr)
		}
	}
	if c.op == opSetTeams || c.op == opSetPresence || c.op == opSetDevice {
		if errors.Is(err, ErrRejected) {
			// Nothing was imposed: the write-ahead record goes.
			if jerr := j.DeleteHold(c.hold.Key()); jerr != nil {
				e.log.Error("journal", "err", jerr)
			}
		}
	}
	return err
}

func (e *Engine) onResult(r result) {
	e.inflight--
	e.pump()
	c, u := r.cmd, r.cmd.u
	if c.op == opForget {
		if r.err != nil {
			e.log.Error("journal: forgetting a hold failed; it will be released at the next start", "hold", c.hold.Key().String(), "err", r.err)
		}
		return
	}
	now := e.clock.Now()
	st := &u.slots[c.slot]
	st.busy = false
	d := c.decision
	d.At = now
	release := c.op == opClearTeams || c.op == opRestorePresence || c.op == opRestoreDevice
	switch {
	case r.err == nil:
		st.attempts, st.retryAt = 0, time.Time{}
		if release {
			e.dropHold(u, c.hold)
			d.Outcome = OutcomeReleased
		} else {
			e.confirmHold(u, c.hold, now)
			d.Outcome = OutcomeApplied
		}
		u.lastChange, u.lastSide = now, c.hold.Side()
		if c.hold.Kind == HoldPhonePresence && c.op == opSetPresence {
			if p, err := ParsePhonePresence(c.hold.Set); err == nil {
				u.phone.Presence = p
			}
		}
		if c.hold.Kind == HoldDeviceProtection && c.op == opSetDevice {
			u.phone.setDeviceDND(c.hold.Device, true)
		}
		if c.op == opRestorePresence {
			if p, err := ParsePhonePresence(c.hold.Replaced); err == nil {
				u.phone.Presence = p
			}
		}
		if c.op == opRestoreDevice {
			u.phone.setDeviceDND(c.hold.Device, c.hold.Replaced == "on")
		}
	case release && errors.Is(r.err, ErrChangedByUser):
		st.attempts, st.retryAt = 0, time.Time{}
		e.dropHold(u, c.hold)
		d.Outcome, d.Reason = OutcomeYielded, "changed by the user meanwhile; left as the user set it"
		e.stats.Yields++
	case !release && errors.Is(r.err, ErrRejected):
		e.stats.Failures++
		st.attempts, st.retryAt = 0, time.Time{}
		st.rejected = c.hold.Set
		e.dropHold(u, c.hold)
		d.Outcome, d.Err = OutcomeFailed, r.err.Error()+" (not retried until the target changes)"
	default:
		e.stats.Failures++
		st.attempts++
		wait := e.backoff(st.attempts, r.err)
		st.retryAt = now.Add(wait)
		e.schedule(u, st.retryAt)
		d.Outcome, d.Err = OutcomeFailed, fmt.Sprintf("%v (retry %d in %s)", r.err, st.attempts, wait.Round(time.Millisecond))
	}
	e.emit(d)
	e.markDirty(u)
	if c.op == opClearTeams && r.err == nil && c.after.Availability != "" {
		// Judged now that the session is gone (§4.2); onTeams reconciles.
		e.onTeams(TeamsEvent{Kind: TeamsPresenceChanged, User: u.user.ID, Presence: c.after})
		return
	}
	e.reconcile(u)
}

// confirmHold marks the command's hold as applied and schedules its keep-alive.
func (e *Engine) confirmHold(u *userRT, h Hold, now time.Time) {
	var every time.Duration
	var hd *held
	switch h.Kind {
	case HoldTeamsSession:
		hd, every = u.teamsHold, e.cfg.Settings.TeamsKeepAlive
	case HoldPhonePresence:
		hd, every = u.presHold, e.cfg.Settings.PhoneKeepAlive
	case HoldDeviceProtection:
		hd = u.devHold(h.Device)
	}
	if hd == nil || hd.Set != h.Set {
		return // superseded while in flight; reconcile handles the newer one
	}
	hd.applied = true
	hd.Lease = h.Lease
	if every > 0 {
		hd.refreshAt = now.Add(every)
		e.schedule(u, hd.refreshAt)
	} else {
		hd.refreshAt = time.Time{}
	}
}

func (e *Engine) dropHold(u *userRT, h Hold) {
	switch h.Kind {
	case HoldTeamsSession:
		if u.teamsHold != nil && u.teamsHold.Set == h.Set {
			u.teamsHold = nil
		}
	case HoldPhonePresence:
		if u.presHold != nil && u.presHold.Set == h.Set {
			u.presHold = nil
		}
	case HoldDeviceProtection:
		for i, d := range u.devHolds {
			if d.Device == h.Device {
				u.devHolds = append(u.devHolds[:i], u.devHolds[i+1:]...)
				break
			}
		}
	}
}

// backoff doubles from retry.min to retry.max with ±20 % jitter; a side that
// says when to come back (429 Retry-After) is believed.
func (e *Engine) backoff(attempt int, err error) time.Duration {
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.Wait > 0 {
		return ra.Wait
	}
	d := e.cfg.Settings.RetryMin << min(attempt-1, 30)
	if d <= 0 || d > e.cfg.Settings.RetryMax {
		d = e.cfg.Settings.RetryMax
	}
	jitter := 0.8 + 0.4*e.rng.Float64()
	return time.Duration(float64(d) * jitter)
}

// --- timers -------------------------------------------------------------------

type wake struct {
	at time.Time
	u  *userRT
}

type wakeHeap []wake

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeHeap) Push(x any)        { *h = append(*h, x.(wake)) }
func (h *wakeHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}

func (e *Engine) schedule(u *userRT, at time.Time) {
	heap.Push(&e.wake, wake{at: at, u: u})
}

func (e *Engine) armTimer() {
	if len(e.wake) == 0 {
		return
	}
	next := e.wake[0].at
	if !e.timerAt.IsZero() && !next.Before(e.timerAt) {
		return
	}
	e.timer.Stop()
	e.timerAt = next
	e.timer.Reset(max(next.Sub(e.clock.Now()), 0))
}

func (e *Engine) onTimer() {
	now := e.clock.Now()
	for len(e.wake) > 0 && !e.wake[0].at.After(now) {
		w := heap.Pop(&e.wake).(wake)
		e.reconcile(w.u)
	}
}

// --- records -----------------------------------------------------------------

func (e *Engine) emit(d Decision) {
	if d.At.IsZero() {
		d.At = e.clock.Now()
	}
	if e.cfg.Observe != nil {
		e.cfg.Observe(d)
	}
	select {
	case e.recs <- d:
	default:
		e.stats.DroppedRecords++
	}
}

func (e *Engine) markDirty(u *userRT) { e.dirty[u] = struct{}{} }

// flushDirty hands the last-known state of changed users to the recorder;
// under load it runs once per burst, so bursts are saved as one batch.
func (e *Engine) flushDirty() {
	if len(e.dirty) == 0 {
		return
	}
	batch := make([]LastKnown, 0, len(e.dirty))
	for u := range e.dirty {
		lk := LastKnown{User: u.user.ID}
		if u.teamsKnown {
			t := u.teams
			lk.Teams = &t
		}
		if u.phoneKnown {
			p := u.phone.Clone()
			lk.Phone = &p
		}
		batch = append(batch, lk)
	}
	select {
	case e.recs <- batch:
		clear(e.dirty)
	default: // the recorder is behind: keep them dirty for the next flush
	}
}

// recorder writes audit entries and last-known state in batches, off the
// engine goroutine.
func (e *Engine) recorder() {
	var audit []Decision
	var known []LastKnown
	write := func() {
		if len(audit) > 0 {
			if err := e.cfg.Journal.AppendAudit(audit); err != nil {
				e.log.Error("audit log", "err", err)
			}
			audit = audit[:0]
		}
		if len(known) > 0 {
			if err := e.cfg.Journal.SaveLastKnown(known); err != nil {
				e.log.Error("saving last-known presence", "err", err)
			}
			known = known[:0]
		}
	}
	add := func(r any) {
		switch r := r.(type) {
		case Decision:
			audit = append(audit, r)
		case []LastKnown:
			known = append(known, r...)
		}
	}
	for r := range e.recs {
		add(r)
	drain:
		for len(audit) < 512 {
			select {
			case r, ok := <-e.recs:
				if !ok {
					break drain
				}
				add(r)
			default:
				break drain
			}
		}
		write()
	}
	write()
}

// --- queries ------------------------------------------------------------------

// UserStatus is a user as the engine sees it now, for the console and API.
type UserStatus struct {
	User        User
	Profile     string
	Teams       TeamsPresence
	TeamsKnown  bool
	TeamsState  TeamsState
	Colour      Colour
	Text        string
	Echo        bool // the Teams state is the bridge's own session
	AlsoInTeams bool // "possibly also in Teams"
	Overridden  bool // "overridden by the user in Teams"
	Phone       PhoneState
	PhoneKnown  bool
	Holds       []HoldStatus
	LastChange  time.Time
	LastSide    Side
	Links       DeepLinks
}

// HoldStatus is a hold and whether the side has confirmed it.
type HoldStatus struct {
	Hold
	Confirmed    bool // the side has shown the value back
	HeldByBridge bool // no expiry on the other side: restored on shutdown/start
}

// Status is the engine as a whole.
type Status struct {
	Teams, Phone SideHealth
	Stats        Stats
	Holds        int
	Orphans      []Hold
	Stopping     bool
	InFlight     int // commands sent to a side and not answered yet
	Queued       int // events and results waiting for the engine
}

func (e *Engine) query(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case e.queries <- func() { f(); close(done) }:
	case <-e.dead:
		return errors.New("engine: not running")
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done
	return nil
}

// Users returns every user's status, in configuration order.
func (e *Engine) Users(ctx context.Context) ([]UserStatus, error) {
	var out []UserStatus
	err := e.query(ctx, func() {
		out = make([]UserStatus, 0, len(e.users))
		for _, u := range e.users {
			out = append(out, u.status())
		}
	})
	return out, err
}

// User returns one user's status.
func (e *Engine) User(ctx context.Context, id UserID) (UserStatus, error) {
	var out UserStatus
	found := false
	err := e.query(ctx, func() {
		if u, ok := e.byID[id]; ok {
			out, found = u.status(), true
		}
	})
	if err == nil && !found {
		err = fmt.Errorf("no user %q", id)
	}
	return out, err
}

// Status returns the health of both sides and the engine's counters.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	var s Status
	err := e.query(ctx, func() {
		s = Status{Teams: e.health[SideTeams], Phone: e.health[SidePhone], Stats: e.stats, Holds: e.holdCount(), Orphans: append([]Hold(nil), e.orphans...), Stopping: e.stopping,
			InFlight: e.inflight, Queued: len(e.teamsIn) + len(e.phoneIn) + len(e.results)}
	})
	return s, err
}

func (u *userRT) status() UserStatus {
	st := ClassifyTeams(u.teams)
	col, text := TeamsChannel(st)
	s := UserStatus{
		User: u.user, Profile: u.prof.Name,
		Teams: u.teams, TeamsKnown: u.teamsKnown, TeamsState: st, Colour: col, Text: text,
		Echo: u.teamsEcho, AlsoInTeams: u.alsoTeams, Overridden: u.overridden,
		Phone: u.phone.Clone(), PhoneKnown: u.phoneKnown,
		LastChange: u.lastChange, LastSide: u.lastSide,
		Links: LinksFor(u.user.UPN),
	}
	add := func(h *held) {
		if h != nil {
			s.Holds = append(s.Holds, HoldStatus{Hold: h.Hold, Confirmed: h.echoSeen, HeldByBridge: h.Lease.IsZero()})
		}
	}
	add(u.teamsHold)
	add(u.presHold)
	for _, h := range u.devHolds {
		add(h)
	}
	return s
}

// --- small helpers --------------------------------------------------------------

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// PutProfile adds a profile or replaces the one of the same name. Users on
// it are re-evaluated at once: a flag switched off releases what it caused,
// a flag switched on applies from now.
func (e *Engine) PutProfile(ctx context.Context, p Profile) error {
	if err := ValidateProfileName(p.Name); err != nil {
		return err
	}
	return e.query(ctx, func() {
		if cur, ok := e.profiles[p.Name]; ok {
			*cur = p // users point at it
		} else {
			np := p
			e.profiles[p.Name] = &np
		}
		e.emit(Decision{At: e.clock.Now(), What: "profile " + p.Name, New: "changed", Reason: "edited by the admin", Outcome: OutcomeObserved})
		for _, u := range e.users {
			if u.prof.Name == p.Name && !e.stopping {
				e.reconcile(u)
			}
		}
	})
}

// AssignProfile moves a user to another existing profile and re-evaluates them.
func (e *Engine) AssignProfile(ctx context.Context, id UserID, profile string) error {
	var err error
	qerr := e.query(ctx, func() {
		u, ok := e.byID[id]
		if !ok {
			err = fmt.Errorf("no user %q", id)
			return
		}
		if profile == "" {
			profile = e.cfg.Settings.DefaultProfile
		}
		p, ok := e.profiles[profile]
		if !ok {
			err = fmt.Errorf("no profile %q", profile)
			return
		}
		old := u.prof.Name
		u.prof = p
		u.user.Profile = profile
		e.emit(Decision{At: e.clock.Now(), User: u.user.ID, Name: u.user.Name(), What: "profile", Old: old, New: profile, Reason: "assigned by the admin", Profile: profile, Outcome: OutcomeObserved})
		if !e.stopping {
			e.reconcile(u)
		}
	})
	if qerr != nil {
		return qerr
	}
	return err
}

// Profiles returns the profiles the engine runs with, sorted by name.
func (e *Engine) Profiles(ctx context.Context) ([]Profile, error) {
	var out []Profile
	err := e.query(ctx, func() {
		for _, p := range e.profiles {
			out = append(out, *p)
		}
	})
	slices.SortFunc(out, func(a, b Profile) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}
