package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// The engine lives in several files, one per concern:
//
//	engine.go     the type, its construction, Run, Shutdown and the loop
//	hold.go       what the bridge holds: typed values, the stored record, adoption
//	observe.go    events from both sides, and what they say about the holds
//	reconcile.go  deciding: what each side should show, and the one command to get there
//	execute.go    carrying out: lanes, workers, the journal and the sides, results
//	timers.go     keep-alives and retries on the injected clock
//	records.go    the audit log and last-known state, off the engine goroutine
//	queries.go    what the console and the API read
//	admin.go      live changes by the admin: users, profiles, settings

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
	cfg     EngineConfig
	clock   Clock
	log     *slog.Logger
	backoff *Backoff

	users    []*userRT
	byID     map[UserID]*userRT
	profiles map[string]*Profile
	nextIdx  int

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
	settlers []chan struct{}
	held     atomic.Int64 // holds right now, for Shutdown's report

	started chan struct{}
	dead    chan struct{}
}

// SideHealth is what a side last said about its connection.
type SideHealth struct {
	Known   bool      `json:"known"`
	Healthy bool      `json:"healthy"`
	Synced  bool      `json:"synced"`
	Detail  string    `json:"detail"`
	Since   time.Time `json:"since"` // null: never reported
}

// Stats are counters for the console and metrics.
type Stats struct {
	TeamsEvents uint64 `json:"teams_events"`
	PhoneEvents uint64 `json:"phone_events"`
	Stale       uint64 `json:"stale"`
	Commands    uint64 `json:"commands"`
	Failures    uint64 `json:"failures"`
	Yields      uint64 `json:"yields"`
	// Superseded: commands not sent because the target had changed by the
	// time they could go.
	Superseded     uint64 `json:"superseded"`
	DroppedRecords uint64 `json:"dropped_records"`
}

// slot is one of the three things the bridge may impose on a user; it never
// has more than one command in flight per user and slot.
type slot uint8

const (
	slotTeams slot = iota
	slotPresence
	slotProtect
	nSlots
)

type slotState struct {
	busy      bool
	attempts  int
	retryAt   time.Time
	throttled bool   // retryAt is the side's own Retry-After
	rejected  uint32 // the want code the side refused for good; 0: none
}

type userRT struct {
	idx  int // stable for the user's life: picks the lane of their commands
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

	yieldPres   bool
	phoneStale  bool // the phone side was lost since this user's last snapshot
	yieldDev    []string
	rejectedDev []string // devices whose protection the side refused for good

	slots [nSlots]slotState
	// want is what each slot wants now (see wantCode), published for the
	// workers: a command that waited is sent only if it still serves it.
	want [nSlots]atomic.Uint32

	// leaving: the admin removes the user; everything is released first.
	leaving   bool
	leaveDone []chan error

	lastChange time.Time
	lastSide   Side
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
		backoff:  NewBackoff(cfg.Settings.RetryMin, cfg.Settings.RetryMax, cfg.Seed),
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
		if _, dup := e.byID[u.ID]; dup {
			return nil, fmt.Errorf("engine: user %s is configured twice", u.ID)
		}
		if _, err := e.addUser(u); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	for s := SideTeams; s <= SidePhone; s++ {
		for range cfg.Workers {
			e.lanes[s] = append(e.lanes[s], &lane{ch: make(chan *command, 64)})
		}
	}
	return e, nil
}

// addUser checks u and makes it live (engine goroutine, or before Run).
func (e *Engine) addUser(u User) (*userRT, error) {
	if err := u.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	p, err := e.profileOf(u)
	if err != nil {
		return nil, err
	}
	rt := &userRT{idx: e.nextIdx, user: u, prof: p}
	e.nextIdx++
	e.users = append(e.users, rt)
	e.byID[u.ID] = rt
	return rt, nil
}

// profileOf is the profile a user is on: their own, else the default.
func (e *Engine) profileOf(u User) (*Profile, error) {
	name := u.Profile
	if name == "" {
		name = e.cfg.Settings.DefaultProfile
	}
	p, ok := e.profiles[name]
	if !ok {
		return nil, fmt.Errorf("user %s is on profile %q, which does not exist: %w", u.ID, name, ErrNotFound)
	}
	return p, nil
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

// ErrHoldsKept says a stop (or the removal of a user) ended before
// everything the bridge holds was released: the rest stays in the journal
// and is resolved at the next start. It is an expected outcome when a side
// is down, not a failure of the stop.
var ErrHoldsKept = errors.New("not everything was released; the rest is kept for the next start")

// Shutdown stops taking in events, releases everything the bridge holds and
// returns when all is released, or when ctx ends: then it returns an error
// wrapping ErrHoldsKept that says how many holds stay in the journal. Run
// returns after it.
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
		return fmt.Errorf("%w: %d hold(s) still held when the stop deadline came (%v)", ErrHoldsKept, e.held.Load(), ctx.Err())
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

// Settle returns once the engine has nothing left to do without new input:
// no event waiting, no command in flight or queued, no result unread. With
// sides that report the effect of a call before the call returns (the
// simulated office does) and a manual clock, a test that calls Settle after
// each step sees every consequence of the step, and nothing races it.
func (e *Engine) Settle(ctx context.Context) error {
	ch := make(chan struct{})
	if err := e.query(ctx, func() {
		if e.idle() {
			close(ch)
			return
		}
		e.settlers = append(e.settlers, ch)
	}); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-e.dead:
		return errors.New("engine: not running")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idle: nothing queued, nothing in flight, and no keep-alive or retry due
// (a timer that has fired but not been taken yet is work too).
func (e *Engine) idle() bool {
	return e.inflight == 0 && len(e.teamsIn) == 0 && len(e.phoneIn) == 0 && len(e.results) == 0 &&
		(len(e.wake) == 0 || e.wake[0].at.After(e.clock.Now()))
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
			return nil
		}
		e.armTimer()
		if e.stopping {
			e.held.Store(int64(e.holdCount())) // what Shutdown reports at its deadline
		}
		// Save last-known state once per burst, or every 1,000 users under
		// sustained load so it never starves.
		quiet := len(e.teamsIn) == 0 && len(e.phoneIn) == 0 && len(e.results) == 0
		if len(e.dirty) >= 1000 || quiet {
			e.flushDirty()
		}
		if quiet && len(e.settlers) > 0 && e.idle() {
			for _, ch := range e.settlers {
				close(ch)
			}
			e.settlers = e.settlers[:0]
		}
	}
}

func (e *Engine) holdCount() int {
	n := 0
	for _, u := range e.users {
		n += u.holdCount()
	}
	return n
}

func (u *userRT) holdCount() int {
	n := len(u.devHolds)
	if u.teamsHold != nil {
		n++
	}
	if u.presHold != nil {
		n++
	}
	return n
}
