package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The engine starts each side's Run once and keeps calling the same side
// for writes. Settings that change how a side connects (credentials, URLs,
// the Teams mode) and changes to the user list must apply while the bridge
// runs, without releasing what it holds. So the daemon hands the engine a
// stable side that wraps the real adapter and can replace it: the running
// adapter's Run is stopped, the new one started on the same event channel,
// and writes go to whichever adapter is current. To the engine this looks
// like a reconnect: the new adapter reports every user again, and the
// engine judges its holds against that report as it does after an outage.

// sideRunner is what a switcher needs of an adapter.
type sideRunner[E any] interface {
	Run(ctx context.Context, users []psync.User, events chan<- E) error
}

// switcher runs the current adapter of one side and replaces it on demand.
type switcher[A sideRunner[E], E any] struct {
	mu      sync.Mutex
	cur     A
	users   []psync.User
	users0  bool          // users was set by Swap/Watch before Run started
	changed chan struct{} // closed and renewed when cur or users change
	running bool
	stopped chan struct{} // closed when the current Run has returned
	// stamp, when set, marks each event with the run it comes from (see
	// livePhone); runs counts the adapter runs.
	stamp func(ev E, run uint64) E
	runs  uint64
	// swapped, when set, is the event sent before a replacement adapter
	// runs (see livePhone); swap says one is due.
	swapped func() E
	swap    bool
}

func newSwitcher[A sideRunner[E], E any](a A) *switcher[A, E] {
	return &switcher[A, E]{cur: a, changed: make(chan struct{})}
}

// current is the adapter writes go to now.
func (s *switcher[A, E]) current() A {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Run runs the current adapter until ctx ends, restarting it (or its
// replacement) whenever Swap or Watch changes what should run.
func (s *switcher[A, E]) Run(ctx context.Context, users []psync.User, events chan<- E) error {
	s.mu.Lock()
	if !s.users0 {
		s.users = users
	}
	s.running = true
	s.mu.Unlock()
	for {
		s.mu.Lock()
		cur, us, changed := s.cur, s.users, s.changed
		s.stopped = make(chan struct{})
		stopped := s.stopped
		notice := s.swap && s.swapped != nil
		s.swap = false
		s.mu.Unlock()
		if notice {
			select {
			case events <- s.swapped():
			case <-ctx.Done():
			}
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		out, drained := s.forward(ctx, events)
		go func() { err := cur.Run(runCtx, us, out); drained(); done <- err }()
		var err error
		select {
		case <-changed:
			cancel()
			<-done
		case err = <-done:
			// The adapter gave up by itself (it logs why): wait for a
			// replacement, or the end.
			cancel()
			close(stopped)
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return err
			}
		case <-ctx.Done():
			cancel()
			err = <-done
			close(stopped)
			return err
		}
		close(stopped)
	}
}

// Swap makes next the adapter that runs and takes the writes, and returns
// the one it replaced once that one's Run has stopped (the caller closes
// it). It waits at most wait for the old Run to end.
func (s *switcher[A, E]) Swap(next A, wait time.Duration) A {
	s.mu.Lock()
	old := s.cur
	s.cur, s.swap = next, true
	stopped := s.kickLocked()
	s.mu.Unlock()
	s.waitStopped(stopped, wait)
	return old
}

// Watch restarts the running adapter with a new user list.
func (s *switcher[A, E]) Watch(users []psync.User, wait time.Duration) {
	s.mu.Lock()
	s.users, s.users0 = users, true
	stopped := s.kickLocked()
	s.mu.Unlock()
	s.waitStopped(stopped, wait)
}

// forward gives the adapter run its event channel: events itself, or, with
// stamp, a channel whose events are stamped with this run and passed on in
// order. drained (called once the run has returned) waits until all its
// events are passed on, so a later run's never overtake them.
func (s *switcher[A, E]) forward(ctx context.Context, events chan<- E) (out chan<- E, drained func()) {
	if s.stamp == nil {
		return events, func() {}
	}
	s.runs++
	run := s.runs
	in := make(chan E, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range in {
			select {
			case events <- s.stamp(ev, run):
			case <-ctx.Done(): // the engine is gone: drop the rest
			}
		}
	}()
	return in, func() { close(in); <-done }
}

func (s *switcher[A, E]) kickLocked() chan struct{} {
	close(s.changed)
	s.changed = make(chan struct{})
	if !s.running {
		return nil
	}
	return s.stopped
}

func (s *switcher[A, E]) waitStopped(stopped chan struct{}, wait time.Duration) {
	if stopped == nil {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
	}
}

// report is the current adapter's own report, when it has one.
func report(a any) (psync.SideReport, bool) {
	if r, ok := a.(psync.Reporter); ok {
		return r.Report(), true
	}
	return psync.SideReport{}, false
}

// liveTeams is the Teams side the engine runs with: the current Graph
// adapter, replaceable while the bridge runs.
type liveTeams struct {
	*switcher[psync.Teams, psync.TeamsEvent]
}

func newLiveTeams(t psync.Teams) *liveTeams {
	return &liveTeams{switcher: newSwitcher[psync.Teams, psync.TeamsEvent](t)}
}

func (l *liveTeams) SetPresence(ctx context.Context, u psync.User, activity string, lease time.Duration) error {
	return l.current().SetPresence(ctx, u, activity, lease)
}

func (l *liveTeams) ClearPresence(ctx context.Context, u psync.User) (psync.TeamsPresence, error) {
	return l.current().ClearPresence(ctx, u)
}

// Report implements psync.Reporter for the current adapter.
func (l *liveTeams) Report() psync.SideReport {
	if r, ok := report(l.current()); ok {
		return r
	}
	return psync.SideReport{Side: psync.SideTeams, Name: "Microsoft Graph"}
}

// StartSignIn implements SignInStarter when the current adapter does.
func (l *liveTeams) StartSignIn(ctx context.Context, account string) (psync.SignInPrompt, error) {
	if s, ok := l.current().(SignInStarter); ok {
		return s.StartSignIn(ctx, account)
	}
	return psync.SignInPrompt{}, ErrNotConfigured
}

// livePhone is the phone side the engine runs with: the current connector,
// replaceable while the bridge runs.
type livePhone struct {
	*switcher[psync.PhoneSystem, psync.PhoneEvent]
}

func newLivePhone(p psync.PhoneSystem) *livePhone {
	sw := newSwitcher[psync.PhoneSystem, psync.PhoneEvent](p)
	sw.stamp = stampPhoneRun
	sw.swapped = phoneRebuilt
	return &livePhone{switcher: sw}
}

// stampPhoneRun puts the run an event comes from above its version. A new
// connector (after a settings change) counts its versions from 1 again; the
// engine, which drops a user's events not newer than the last it saw,
// would otherwise ignore the new connector's reports of everyone until its
// counts caught up, the snapshots that follow the change included.
func stampPhoneRun(ev psync.PhoneEvent, run uint64) psync.PhoneEvent {
	if ev.Version != 0 {
		ev.Version = run<<40 | ev.Version&(1<<40-1)
	}
	return ev
}

// phoneRebuilt tells the engine that a new connector takes over: what the
// old one held only in its own memory (a proxy busy entry it refreshed, a
// publication's entity-tag) is not the new one's, so the engine treats
// it as a reconnect: it reads everyone again and writes its protections
// once more.
func phoneRebuilt() psync.PhoneEvent {
	return psync.PhoneEvent{Kind: psync.PhoneHealth, Healthy: false,
		Detail: "the phone connector was rebuilt with the new settings: reading the phone system again"}
}

func (l *livePhone) SetPresence(ctx context.Context, u psync.User, set psync.PresenceMark, own []psync.PresenceMark) error {
	return l.current().SetPresence(ctx, u, set, own)
}

func (l *livePhone) RestorePresence(ctx context.Context, u psync.User, own []psync.PresenceMark, restore psync.PresenceMark) error {
	return l.current().RestorePresence(ctx, u, own, restore)
}

func (l *livePhone) SetDeviceProtection(ctx context.Context, u psync.User, device string, on bool) error {
	return l.current().SetDeviceProtection(ctx, u, device, on)
}

func (l *livePhone) RestoreDeviceProtection(ctx context.Context, u psync.User, device string, expect, restore bool) error {
	return l.current().RestoreDeviceProtection(ctx, u, device, expect, restore)
}

// Abilities are the current connector's.
func (l *livePhone) Abilities() psync.PhoneAbility { return psync.AbilitiesOf(l.current()) }

// Report implements psync.Reporter for the current connector.
func (l *livePhone) Report() psync.SideReport {
	if r, ok := report(l.current()); ok {
		return r
	}
	return psync.SideReport{Side: psync.SidePhone, Name: "phone system"}
}

// sideOfSetting says which side a setting configures: the Teams adapter,
// the phone connector, or neither (the engine's own settings, which
// psync.Engine.SetSettings applies).
func sideOfSetting(key string) psync.Side {
	switch {
	case key == "teams.lease" || key == "teams.keepalive":
		return 0
	case strings.HasPrefix(key, "teams."):
		return psync.SideTeams
	case isPhoneSetting(key):
		return psync.SidePhone
	}
	return 0
}

// liveSides applies the settings of the sides while the bridge runs: a side
// whose settings changed is built anew and swapped in; a changed user list
// restarts both sides' watching.
type liveSides struct {
	teams   *liveTeams
	phone   *livePhone
	rebuild Rebuilders
	env     AdapterEnv // the base: database, meter, logger
	log     *slog.Logger

	mu      sync.Mutex
	applied map[string]string // the settings the running sides were built from
	pending map[string]string // settings stored but not in effect, and why
}

// swapWait bounds the wait for a side's Run to end when it is replaced.
const swapWait = 10 * time.Second

func newLiveSides(t *liveTeams, p *livePhone, rb Rebuilders, env AdapterEnv, log *slog.Logger) *liveSides {
	return &liveSides{teams: t, phone: p, rebuild: rb, env: env, log: log.With("component", "live"),
		applied: maps.Clone(env.Settings), pending: map[string]string{}}
}

// Pending reports, per side setting stored but not in effect, why not.
func (l *liveSides) Pending() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.pending)
}

// Apply brings the sides in line with the stored settings next. A side
// whose settings did not change is left alone. Building a side can fail
// (a certificate file that does not exist): then the running side stays,
// the error names the setting, and the caller puts the store back.
func (l *liveSides) Apply(ctx context.Context, next map[string]string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	changed := map[psync.Side][]string{}
	for _, k := range slices.Sorted(maps.Keys(unionKeys(l.applied, next))) {
		if side := sideOfSetting(k); side != 0 && l.applied[k] != next[k] {
			changed[side] = append(changed[side], k)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	env := l.env
	env.Settings = next
	var newTeams psync.Teams
	var newPhone psync.PhoneSystem
	var err error
	if keys := changed[psync.SideTeams]; len(keys) > 0 {
		if l.rebuild.Teams == nil {
			l.markPending(keys, "applies at the next start (presencebridge restart)")
		} else if newTeams, err = l.rebuild.Teams(ctx, env); err != nil {
			return fmt.Errorf("%s: the Teams side cannot be built with it (the running one stays): %w", strings.Join(keys, ", "), err)
		}
	}
	if keys := changed[psync.SidePhone]; len(keys) > 0 {
		if l.rebuild.Phone == nil {
			l.markPending(keys, "applies at the next start (presencebridge restart)")
		} else if newPhone, err = l.rebuild.Phone(ctx, env); err != nil {
			closeSide(newTeams)
			return fmt.Errorf("%s: the phone side cannot be built with it (the running one stays): %w", strings.Join(keys, ", "), err)
		}
	}
	if newTeams != nil {
		old := l.teams.Swap(newTeams, swapWait)
		if err := closeSide(old); err != nil {
			l.log.Warn("closing the replaced Teams side", "err", err)
		}
		l.take(next, changed[psync.SideTeams])
		l.log.Info("Teams side rebuilt with the new settings; holds kept", "settings", changed[psync.SideTeams])
	}
	if newPhone != nil {
		old := l.phone.Swap(newPhone, swapWait)
		if err := closeSide(old); err != nil {
			l.log.Warn("closing the replaced phone side", "err", err)
		}
		l.take(next, changed[psync.SidePhone])
		l.log.Info("phone side rebuilt with the new settings; holds kept", "settings", changed[psync.SidePhone])
	}
	return nil
}

func (l *liveSides) markPending(keys []string, why string) {
	for _, k := range keys {
		l.pending[k] = why
	}
}

// take records keys of next as in effect.
func (l *liveSides) take(next map[string]string, keys []string) {
	for _, k := range keys {
		if v, ok := next[k]; ok {
			l.applied[k] = v
		} else {
			delete(l.applied, k)
		}
		delete(l.pending, k)
	}
}

// Watch restarts both sides' watching with a new user list (users added
// or removed while the bridge runs).
func (l *liveSides) Watch(users []psync.User) {
	l.teams.Watch(users, swapWait)
	l.phone.Watch(users, swapWait)
}

// Close closes the sides that run now.
func (l *liveSides) Close() error {
	return errors.Join(closeSide(l.teams.current()), closeSide(l.phone.current()))
}

func unionKeys(a, b map[string]string) map[string]struct{} {
	out := make(map[string]struct{}, len(a)+len(b))
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}
