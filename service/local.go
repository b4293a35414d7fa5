package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
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
	SignIn    SignInStarter // nil: subscribe mode is not configured
	Version   string
	Mode      string    // "service", "foreground", "demo"
	Started   time.Time // zero: now
	Logger    *slog.Logger
	Now       func() time.Time // nil: time.Now
}

// Local answers the console's and the control API's questions in process,
// over a running engine and its open database. Changes go to the store
// first (so they survive a restart) and then to the engine (so they apply
// at once); when the engine refuses, the store is put back.
type Local struct {
	cfg  LocalConfig
	log  *slog.Logger
	now  func() time.Time
	rate rateWindow

	// writeMu serialises changes, so two admins editing at once cannot
	// leave the store and the engine disagreeing.
	writeMu sync.Mutex
}

// Limits of the audit queries: enough for any screen, bounded so one
// request cannot make the service decode a ten-million-entry log.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10_000
)

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
	return &Local{cfg: cfg, log: cfg.Logger.With("component", "control"), now: cfg.Now}, nil
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
		return st, 0, engineErr(ctx, err)
	}
	rate := l.rate.add(l.now(), st.Stats.TeamsEvents+st.Stats.PhoneEvents)
	return st, rate, nil
}

// engineErr turns an engine query failure into what the admin is told.
func engineErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return statusErr(http.StatusServiceUnavailable, "the bridge engine is not running (%v)", err)
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
		return nil, engineErr(ctx, err)
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
		return u, statusErr(http.StatusNotFound, "no user %q", id)
	}
	return u, engineErr(ctx, err)
}

// engineUser finds a user among those the engine runs with.
func (l *Local) engineUser(ctx context.Context, id psync.UserID) (psync.UserStatus, bool, error) {
	us, err := l.cfg.Engine.Users(ctx)
	if err != nil {
		return psync.UserStatus{}, false, engineErr(ctx, err)
	}
	for _, u := range us {
		if u.User.ID == id {
			return u, true, nil
		}
	}
	return psync.UserStatus{}, false, nil
}

func auditLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultAuditLimit, nil
	case limit < 0 || limit > MaxAuditLimit:
		return 0, statusErr(http.StatusBadRequest, "limit must be between 1 and %d, not %d", MaxAuditLimit, limit)
	}
	return limit, nil
}

// History implements tui.Controller: the user's audit entries, newest first.
func (l *Local) History(ctx context.Context, id psync.UserID, limit int) ([]psync.Decision, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return nil, err
	}
	if _, known, err := l.engineUser(ctx, id); err != nil {
		return nil, err
	} else if !known {
		return nil, statusErr(http.StatusNotFound, "no user %q", id)
	}
	ds, err := l.cfg.DB.Audit(limit, id)
	if err != nil {
		return nil, err
	}
	slices.Reverse(ds) // the store answers oldest first
	return ds, nil
}

// Audit implements tui.Controller: everyone's audit entries, newest first.
func (l *Local) Audit(ctx context.Context, limit int) ([]psync.Decision, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return nil, err
	}
	ds, err := l.cfg.DB.Audit(limit, "")
	if err != nil {
		return nil, err
	}
	slices.Reverse(ds)
	return ds, nil
}

// Profiles implements tui.Controller. The store is the record: the
// engine cannot forget a deleted profile until it restarts.
func (l *Local) Profiles(ctx context.Context) ([]psync.Profile, error) {
	ps, err := l.cfg.DB.Profiles()
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ps, func(a, b psync.Profile) int { return strings.Compare(a.Name, b.Name) })
	return ps, nil
}

// PutProfile implements tui.Controller: stored, then applied to the users
// on it at once.
func (l *Local) PutProfile(ctx context.Context, p psync.Profile) error {
	if err := psync.ValidateProfileName(p.Name); err != nil {
		return invalid(err)
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	old, oldErr := l.cfg.DB.Profile(p.Name)
	if oldErr != nil && !errors.Is(oldErr, store.ErrNotFound) {
		return oldErr
	}
	if err := l.cfg.DB.PutProfile(p); err != nil {
		return err
	}
	if err := l.cfg.Engine.PutProfile(ctx, p); err != nil {
		// Put the store back so that it says what the engine runs with.
		var undo error
		if oldErr == nil {
			undo = l.cfg.DB.PutProfile(old)
		} else {
			undo = l.cfg.DB.DeleteProfile(p.Name)
		}
		if undo != nil {
			l.log.Error("profile change half applied: stored, not running", "profile", p.Name, "err", undo)
		}
		return engineErr(ctx, err)
	}
	l.log.Info("profile changed", "profile", p.Name)
	return nil
}

// DeleteProfile implements tui.Controller: refused while the default or
// while any user is on it.
func (l *Local) DeleteProfile(ctx context.Context, name string) error {
	if err := psync.ValidateProfileName(name); err != nil {
		return invalid(err)
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if _, err := l.cfg.DB.Profile(name); errors.Is(err, store.ErrNotFound) {
		return statusErr(http.StatusNotFound, "no profile %q", name)
	} else if err != nil {
		return err
	}
	us, err := l.cfg.Engine.Users(ctx)
	if err != nil {
		return engineErr(ctx, err)
	}
	var on []string
	for _, u := range us {
		if u.Profile == name {
			on = append(on, string(u.User.ID))
		}
	}
	if len(on) > 0 {
		return statusErr(http.StatusConflict, "profile %q is in use by %d users (%s); move them to another profile first", name, len(on), short(on))
	}
	if err := l.cfg.DB.DeleteProfile(name); err != nil {
		// What is left are the store's own refusals: the default profile,
		// users stored on it.
		return statusErr(http.StatusConflict, "%s", strings.TrimPrefix(err.Error(), "store: "))
	}
	l.log.Info("profile deleted", "profile", name)
	return nil
}

func short(ids []string) string {
	if len(ids) <= 10 {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:10], ", "), len(ids)-10)
}

// AssignProfile implements tui.Controller ("" = the default profile).
func (l *Local) AssignProfile(ctx context.Context, id psync.UserID, profile string) error {
	if profile != "" {
		if err := psync.ValidateProfileName(profile); err != nil {
			return invalid(err)
		}
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if profile != "" {
		if _, err := l.cfg.DB.Profile(profile); errors.Is(err, store.ErrNotFound) {
			return statusErr(http.StatusNotFound, "no profile %q", profile)
		} else if err != nil {
			return err
		}
	}
	if _, known, err := l.engineUser(ctx, id); err != nil {
		return err
	} else if !known {
		return statusErr(http.StatusNotFound, "no user %q", id)
	}
	stored, err := l.cfg.DB.Users()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(stored, func(u psync.User) bool { return u.ID == id })
	if i < 0 {
		return statusErr(http.StatusConflict, "user %q runs in the engine but is not in the database %s", id, l.cfg.DB.Path())
	}
	old, next := stored[i], stored[i]
	next.Profile = profile
	if err := l.cfg.DB.PutUser(next); err != nil {
		return invalid(err)
	}
	if err := l.cfg.Engine.AssignProfile(ctx, id, profile); err != nil {
		if undo := l.cfg.DB.PutUser(old); undo != nil {
			l.log.Error("profile assignment half applied: stored, not running", "user", id, "err", undo)
		}
		return engineErr(ctx, err)
	}
	l.log.Info("profile assigned", "user", id, "profile", profile)
	return nil
}

// Settings implements tui.Controller: every setting, secrets masked.
func (l *Local) Settings(ctx context.Context) ([]psync.SettingValue, error) {
	stored, err := l.cfg.DB.Settings()
	if err != nil {
		return nil, err
	}
	return psync.SettingValues(stored), nil
}

// SetSetting implements tui.Controller. The value is checked by the
// setting's own rules and then by the rules that span settings; a secret
// is never logged or echoed. Settings the engine reads apply at its next
// start (presencebridge restart).
func (l *Local) SetSetting(ctx context.Context, key, value string) error {
	spec, err := psync.LookupSetting(key)
	if err != nil {
		return statusErr(http.StatusNotFound, "%v", err)
	}
	if _, err := spec.Normalize(value); err != nil {
		return invalid(err)
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.cfg.DB.SetSetting(key, value); err != nil {
		return statusErr(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "store: "))
	}
	l.log.Info("setting changed", "key", key, "secret", spec.Kind == psync.KindSecret)
	return nil
}

// UnsetSetting implements tui.Controller.
func (l *Local) UnsetSetting(ctx context.Context, key string) error {
	if _, err := psync.LookupSetting(key); err != nil {
		return statusErr(http.StatusNotFound, "%v", err)
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.cfg.DB.UnsetSetting(key); err != nil {
		return statusErr(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "store: "))
	}
	l.log.Info("setting reset to its default", "key", key)
	return nil
}

// StartSignIn implements tui.Controller.
func (l *Local) StartSignIn(ctx context.Context, account string) (psync.SignInPrompt, error) {
	account = strings.TrimSpace(account)
	if account == "" || len(account) > 256 || !strings.Contains(account, "@") || strings.IndexFunc(account, unicode.IsControl) >= 0 {
		return psync.SignInPrompt{}, statusErr(http.StatusBadRequest, "account %q is not a user principal name (name@tenant.example)", clip(account))
	}
	if l.cfg.SignIn == nil {
		return psync.SignInPrompt{}, statusErr(http.StatusNotImplemented,
			"subscribe mode is not configured: this bridge's Teams side has no service-account sign-in")
	}
	p, err := l.cfg.SignIn.StartSignIn(ctx, account)
	if err != nil {
		return psync.SignInPrompt{}, err
	}
	l.log.Info("device-code sign-in started", "account", account)
	return p, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
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
