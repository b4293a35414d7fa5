package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Live changes by the admin: profiles, users and settings apply to the
// running engine at once, without a restart and without releasing what the
// bridge holds (except what a change makes unjustified). The caller (the
// admin rules in service/) stores the change; the engine applies it.

// Errors of the admin changes, wrapped with %w so callers test them with
// errors.Is whatever the message.
var (
	// ErrNotFound: no such user or profile.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a value does not validate.
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the change conflicts with the state (a profile in use,
	// a name taken).
	ErrConflict = errors.New("conflict")
)

// PutProfile adds a profile or replaces the one of the same name. Users on
// it are re-evaluated at once: a flag switched off releases what it caused,
// a flag switched on applies from now.
func (e *Engine) PutProfile(ctx context.Context, p Profile) error {
	if err := ValidateProfileName(p.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
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
			err = fmt.Errorf("no user %q: %w", id, ErrNotFound)
			return
		}
		name := profile
		if name == "" {
			name = e.cfg.Settings.DefaultProfile
		}
		p, ok := e.profiles[name]
		if !ok {
			err = fmt.Errorf("no profile %q: %w", name, ErrNotFound)
			return
		}
		old := u.prof.Name
		u.prof = p
		u.user.Profile = profile
		e.emit(Decision{At: e.clock.Now(), User: u.user.ID, Name: u.user.Name(), What: "profile", Old: old, New: name, Reason: "assigned by the admin", Profile: name, Outcome: OutcomeObserved})
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

// DeleteProfile removes a profile nobody is on. The default profile cannot
// go (default_profile names it).
func (e *Engine) DeleteProfile(ctx context.Context, name string) error {
	var err error
	qerr := e.query(ctx, func() {
		if _, ok := e.profiles[name]; !ok {
			err = fmt.Errorf("no profile %q: %w", name, ErrNotFound)
			return
		}
		if name == e.cfg.Settings.DefaultProfile {
			err = fmt.Errorf("profile %q is the default profile (default_profile): %w", name, ErrConflict)
			return
		}
		if n := e.usersOn(name); n > 0 {
			err = fmt.Errorf("profile %q has %d user(s); assign them to another profile first: %w", name, n, ErrConflict)
			return
		}
		delete(e.profiles, name)
		e.emit(Decision{At: e.clock.Now(), What: "profile " + name, Old: "existed", New: "deleted", Reason: "deleted by the admin", Outcome: OutcomeObserved})
	})
	if qerr != nil {
		return qerr
	}
	return err
}

// RenameProfile gives a profile a new name; its users move with it. The
// default profile is renamed by changing default_profile, not here.
func (e *Engine) RenameProfile(ctx context.Context, old, new string) error {
	if err := ValidateProfileName(new); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var err error
	qerr := e.query(ctx, func() {
		p, ok := e.profiles[old]
		switch {
		case !ok:
			err = fmt.Errorf("no profile %q: %w", old, ErrNotFound)
			return
		case old == new:
			return
		case e.profiles[new] != nil:
			err = fmt.Errorf("a profile %q exists already: %w", new, ErrConflict)
			return
		case old == e.cfg.Settings.DefaultProfile:
			err = fmt.Errorf("profile %q is the default profile: rename it by setting default_profile to a copy: %w", old, ErrConflict)
			return
		}
		delete(e.profiles, old)
		p.Name = new
		e.profiles[new] = p
		for _, u := range e.users {
			if u.user.Profile == old {
				u.user.Profile = new
			}
		}
		e.emit(Decision{At: e.clock.Now(), What: "profile " + old, Old: old, New: new, Reason: "renamed by the admin", Outcome: OutcomeObserved})
	})
	if qerr != nil {
		return qerr
	}
	return err
}

func (e *Engine) usersOn(profile string) int {
	n := 0
	for _, u := range e.users {
		if u.prof.Name == profile {
			n++
		}
	}
	return n
}

// PutUser adds a user, or changes one (name, extension, UPN, Teams id,
// profile). A new user is unknown on both sides until the adapters watch
// them: the service restarts the adapters with the new list.
func (e *Engine) PutUser(ctx context.Context, u User) error {
	if err := u.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var err error
	qerr := e.query(ctx, func() {
		if e.stopping {
			err = errors.New("engine: stopping")
			return
		}
		rt, ok := e.byID[u.ID]
		if !ok {
			if rt, err = e.addUser(u); err == nil {
				e.emit(Decision{At: e.clock.Now(), User: u.ID, Name: u.Name(), What: "user", Old: "none", New: "added", Reason: "added by the admin", Profile: rt.prof.Name, Outcome: OutcomeObserved})
			}
			return
		}
		if rt.leaving {
			err = fmt.Errorf("user %s is being removed: %w", u.ID, ErrConflict)
			return
		}
		p, perr := e.profileOf(u)
		if perr != nil {
			err = perr
			return
		}
		old := rt.user
		rt.user, rt.prof = u, p
		e.emit(Decision{At: e.clock.Now(), User: u.ID, Name: u.Name(), What: "user", Old: old.Name(), New: u.Name(), Reason: "changed by the admin", Profile: p.Name, Outcome: OutcomeObserved})
		e.reconcile(rt)
	})
	if qerr != nil {
		return qerr
	}
	return err
}

// RemoveUser releases everything the bridge holds for a user (as a stop
// does), then forgets them. If that cannot finish before ctx ends (a side
// is down), the user stays as they were and the error wraps ErrHoldsKept.
func (e *Engine) RemoveUser(ctx context.Context, id UserID) error {
	done := make(chan error, 1)
	var err error
	qerr := e.query(ctx, func() {
		u, ok := e.byID[id]
		if !ok {
			err = fmt.Errorf("no user %q: %w", id, ErrNotFound)
			return
		}
		if e.stopping {
			err = errors.New("engine: stopping")
			return
		}
		u.leaving = true
		u.leaveDone = append(u.leaveDone, done)
		e.reconcile(u)
		e.afterResult(u)
	})
	if qerr != nil {
		return qerr
	}
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Give up: the user stays, and what is still held is kept.
	held := 0
	_ = e.query(context.WithoutCancel(ctx), func() {
		u, ok := e.byID[id]
		if !ok || !u.leaving {
			return // finished in the meantime
		}
		held = u.holdCount()
		u.leaving = false
		u.leaveDone = slices.DeleteFunc(u.leaveDone, func(c chan error) bool { return c == done })
		e.reconcile(u)
	})
	select {
	case err := <-done:
		return err
	default:
	}
	return fmt.Errorf("user %s: %w: %d hold(s) not released in time (%v); the user stays", id, ErrHoldsKept, held, ctx.Err())
}

// afterResult finishes a removal once the user has nothing held and
// nothing in flight.
func (e *Engine) afterResult(u *userRT) {
	if !u.leaving || u.holdCount() > 0 {
		return
	}
	for s := range nSlots {
		if u.slots[s].busy {
			return
		}
	}
	delete(e.byID, u.user.ID)
	e.users = slices.DeleteFunc(e.users, func(x *userRT) bool { return x == u })
	delete(e.dirty, u)
	e.emit(Decision{At: e.clock.Now(), User: u.user.ID, Name: u.user.Name(), What: "user", Old: "configured", New: "removed", Reason: "removed by the admin; nothing held any more", Profile: u.prof.Name, Outcome: OutcomeObserved})
	for _, c := range u.leaveDone {
		c <- nil
	}
	u.leaveDone = nil
}

// SetSettings applies new settings to the running engine: leases,
// keep-alives and retry times apply from the next write (a keep-alive due
// later than the new interval allows is brought forward); a new default
// profile applies to the users that name none.
func (e *Engine) SetSettings(ctx context.Context, s Settings) error {
	if err := s.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var err error
	qerr := e.query(ctx, func() {
		def, ok := e.profiles[s.DefaultProfile]
		if !ok {
			err = fmt.Errorf("default_profile %q: no such profile: %w", s.DefaultProfile, ErrNotFound)
			return
		}
		old := e.cfg.Settings
		e.cfg.Settings = s
		e.backoff.Min, e.backoff.Max = s.RetryMin, s.RetryMax
		now := e.clock.Now()
		for _, u := range e.users {
			if u.user.Profile == "" && u.prof != def {
				u.prof = def
			}
			bring := func(h *held, every time.Duration) {
				if h != nil && !h.refreshAt.IsZero() && h.refreshAt.After(now.Add(every)) {
					h.refreshAt = now.Add(every)
					e.schedule(u, h.refreshAt)
				}
			}
			bring(u.teamsHold, s.TeamsKeepAlive)
			bring(u.presHold, s.PhoneKeepAlive)
			for sl := range nSlots {
				if st := &u.slots[sl]; !st.throttled && st.retryAt.After(now.Add(s.RetryMax)) {
					st.retryAt = now.Add(s.RetryMax)
					e.schedule(u, st.retryAt)
				}
			}
			if !e.stopping {
				e.reconcile(u)
			}
		}
		if old != s {
			e.emit(Decision{At: now, What: "settings", New: "changed", Reason: "applied live: " + settingsDiff(old, s), Outcome: OutcomeObserved})
		}
	})
	if qerr != nil {
		return qerr
	}
	return err
}

// Settings returns the settings the engine runs with now.
func (e *Engine) Settings(ctx context.Context) (Settings, error) {
	var s Settings
	err := e.query(ctx, func() { s = e.cfg.Settings })
	return s, err
}

func settingsDiff(a, b Settings) string {
	var out []string
	add := func(key string, x, y any) {
		if x != y {
			out = append(out, fmt.Sprintf("%s %v → %v", key, x, y))
		}
	}
	add("default_profile", a.DefaultProfile, b.DefaultProfile)
	add("teams.lease", a.TeamsLease, b.TeamsLease)
	add("teams.keepalive", a.TeamsKeepAlive, b.TeamsKeepAlive)
	add("phone.lease", a.PhoneLease, b.PhoneLease)
	add("phone.keepalive", a.PhoneKeepAlive, b.PhoneKeepAlive)
	add("retry.min", a.RetryMin, b.RetryMin)
	add("retry.max", a.RetryMax, b.RetryMax)
	add("audit.limit", a.AuditLimit, b.AuditLimit)
	return strings.Join(out, ", ")
}
