package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// SignInStarter is implemented by a Teams adapter that can sign in service
// accounts with the device-code flow (subscribe mode). The daemon finds it
// on the Teams side or takes it from Adapters.SignIn.
type SignInStarter interface {
	StartSignIn(ctx context.Context, account string) (psync.SignInPrompt, error)
}

// LocalConfig is what a Local is built from.
type LocalConfig struct {
	Engine    *psync.Engine
	DB        *store.DB
	Hub       *Hub // the hub the engine's Observe publishes to
	Reporters []psync.Reporter
	SignIn    SignInStarter  // nil: subscribe mode is not configured
	Sides     AdapterOptions // what doctor and import-group reach the sides with
	Doctor    DoctorFunc     // nil: RealDoctor(Sides)
	Live      liveApplier    // the running sides, for live settings and users
	Version   string
	Mode      string    // "service", "foreground", "demo"
	Started   time.Time // zero: now
	Logger    *slog.Logger
	Now       func() time.Time // nil: time.Now
}

// Local answers the console's and the control API's questions in process,
// over a running engine and its open database: the live view (overview,
// users, events, sign-in) here, and every change through its Admin, whose
// methods it has.
type Local struct {
	*Admin
	cfg  LocalConfig
	log  *slog.Logger
	now  func() time.Time
	rate rateWindow
}

// NewLocal checks the configuration and returns a Local.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if cfg.Engine == nil || cfg.DB == nil || cfg.Hub == nil {
		return nil, errors.New("service: Local needs an engine, a database and a hub")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Started.IsZero() {
		cfg.Started = cfg.Now()
	}
	admin, err := NewAdmin(AdminConfig{DB: cfg.DB, Engine: cfg.Engine, Sides: cfg.Sides, Doctor: cfg.Doctor, Live: cfg.Live, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Local{Admin: admin, cfg: cfg, log: cfg.Logger.With("component", "control"), now: cfg.Now}, nil
}

// Watch samples the engine's event counters every few seconds until ctx
// ends, so that Overview's event rate covers the last minute even when
// nobody asks for a while.
func (l *Local) Watch(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		l.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *Local) sample(ctx context.Context) (psync.Status, float64, error) {
	st, err := l.cfg.Engine.Status(ctx)
	if err != nil {
		return st, 0, notRunning(ctx, err)
	}
	rate := l.rate.add(l.now(), st.Stats.TeamsEvents+st.Stats.PhoneEvents)
	return st, rate, nil
}

// notRunning turns an engine query failure into what the admin is told.
func notRunning(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &adminError{kind: ErrUnavailable, msg: fmt.Sprintf("the bridge engine is not running (%v)", err), cause: err}
}

// Overview implements tui.Controller.
func (l *Local) Overview(ctx context.Context) (psync.Overview, error) {
	st, rate, err := l.sample(ctx)
	if err != nil {
		return psync.Overview{}, err
	}
	ov := psync.Overview{Version: l.cfg.Version, Started: l.cfg.Started, Mode: l.cfg.Mode, Engine: st, EventRate: rate}
	for _, r := range l.cfg.Reporters {
		ov.Sides = append(ov.Sides, r.Report())
	}
	return ov, nil
}

// Users implements tui.Controller.
func (l *Local) Users(ctx context.Context) ([]psync.UserStatus, error) {
	us, err := l.cfg.Engine.Users(ctx)
	if err != nil {
		return nil, notRunning(ctx, err)
	}
	return us, nil
}

// User implements tui.Controller.
func (l *Local) User(ctx context.Context, id psync.UserID) (psync.UserStatus, error) {
	u, err := l.cfg.Engine.User(ctx, id)
	if err == nil {
		return u, nil
	}
	if _, known, uerr := l.engineUser(ctx, id); uerr != nil {
		return u, uerr
	} else if !known {
		return u, errorf(ErrNotFound, "no user %q", id)
	}
	return u, notRunning(ctx, err)
}

// engineUser finds a user among those the engine runs with.
func (l *Local) engineUser(ctx context.Context, id psync.UserID) (psync.UserStatus, bool, error) {
	us, err := l.cfg.Engine.Users(ctx)
	if err != nil {
		return psync.UserStatus{}, false, notRunning(ctx, err)
	}
	for _, u := range us {
		if u.User.ID == id {
			return u, true, nil
		}
	}
	return psync.UserStatus{}, false, nil
}

// StartSignIn implements tui.Controller.
func (l *Local) StartSignIn(ctx context.Context, account string) (psync.SignInPrompt, error) {
	account = strings.TrimSpace(account)
	if account == "" || len(account) > 256 || !strings.Contains(account, "@") || strings.IndexFunc(account, unicode.IsControl) >= 0 {
		return psync.SignInPrompt{}, errorf(ErrInvalid, "account %q is not a user principal name (name@tenant.example)", clip(account))
	}
	if l.cfg.SignIn == nil {
		return psync.SignInPrompt{}, errorf(ErrNotConfigured,
			"subscribe mode is not configured: this bridge's Teams side has no service-account sign-in")
	}
	p, err := l.cfg.SignIn.StartSignIn(ctx, account)
	if err != nil {
		return psync.SignInPrompt{}, err
	}
	l.log.Info("device-code sign-in started", "account", account)
	return p, nil
}

// Events implements tui.Controller: decisions as they happen, until ctx
// ends. A consumer that falls far behind misses decisions rather than
// slowing the engine.
func (l *Local) Events(ctx context.Context) (<-chan psync.Decision, error) {
	ch, cancel := l.cfg.Hub.Subscribe()
	go func() {
		<-ctx.Done()
		if n := cancel(); n > 0 {
			l.log.Warn("event stream was too slow and missed decisions", "dropped", n)
		}
	}()
	return ch, nil
}

// rateWindow turns a monotonic event counter into events per second over
// the last minute.
type rateWindow struct {
	mu      sync.Mutex
	samples []rateSample
}

type rateSample struct {
	at    time.Time
	count uint64
}

// rateSpan is the window the rate is taken over.
const rateSpan = time.Minute

func (w *rateWindow) add(now time.Time, count uint64) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.samples); n > 0 && count < w.samples[n-1].count {
		// One Local serves one engine, whose counters only grow: a lower
		// count is a concurrent sample that lost the race to the lock.
		count = w.samples[n-1].count
	}
	w.samples = append(w.samples, rateSample{now, count})
	// Keep the newest sample at least rateSpan old as the base, and
	// nothing older.
	cut := 0
	for i, s := range w.samples {
		if now.Sub(s.at) >= rateSpan {
			cut = i
		}
	}
	w.samples = w.samples[cut:]
	if len(w.samples) > 4096 { // asked very often: thin out the middle
		w.samples = append(w.samples[:1], w.samples[len(w.samples)-2048:]...)
	}
	base := w.samples[0]
	secs := now.Sub(base.at).Seconds()
	if secs <= 0 {
		return 0
	}
	// The base may be a little older than a minute (samples come every
	// few seconds): the rate is then over that slightly longer span.
	return float64(count-base.count) / secs
}
