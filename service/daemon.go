package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// AdapterEnv is what an AdapterFactory builds the sides from.
type AdapterEnv struct {
	DB       *store.DB         // for adapters that keep state (Graph subscriptions)
	Settings map[string]string // as stored, secrets in clear; never log them
	Parsed   psync.Settings
	Users    []psync.User
	Meter    psync.Meter // the daemon's Prometheus metrics
	Logger   *slog.Logger
}

// Adapters are the two sides the daemon runs the engine with.
type Adapters struct {
	Teams psync.Teams
	Phone psync.PhoneSystem
	// Reporters describe the sides for the dashboard; a side that
	// implements psync.Reporter is added by itself.
	Reporters []psync.Reporter
	// SignIn starts device-code sign-ins (subscribe mode); nil: taken from
	// Teams when it implements SignInStarter.
	SignIn SignInStarter
	// Close releases what the factory opened; called after the engine stops.
	Close func() error
}

// AdapterFactory builds the sides. main.go passes the real Graph and
// phone-system factory; tests pass simulated ones.
type AdapterFactory func(ctx context.Context, env AdapterEnv) (Adapters, error)

// DaemonOptions are the knobs of `presencebridge run`.
type DaemonOptions struct {
	DBPath             string
	Socket             string      // "" = DefaultSocket()
	Group              string      // admin group of the socket; "" = DefaultGroup
	Peers              *PeerPolicy // nil = DefaultPeerPolicy(Group)
	MetricsAddr        string      // "" = no metrics endpoint
	MetricsAllowRemote bool
	Logger             *slog.Logger
	Mode               string // "service" or "foreground"
	Version            string
	// Adapters builds the sides from the settings (RealAdapters first
	// checks with CheckRun that nothing they need is missing).
	Adapters AdapterFactory
	// Rebuild builds one side anew when its settings change while the
	// bridge runs (RealRebuilders); a side without one applies such
	// changes at the next start, and says so.
	Rebuild Rebuilders
	// LockWait bounds the wait for the database lock (default 500 ms): a
	// second instance fails at once rather than queueing behind the first.
	LockWait time.Duration
	// StopTimeout bounds a graceful stop (default 10 s).
	StopTimeout time.Duration
	// Ready is called once everything is up (service start, tests).
	Ready func(Running)
}

// Running is what a started daemon tells Ready.
type Running struct {
	Local   *Local
	Socket  string
	Metrics net.Addr // nil without a metrics endpoint
}

// RunDaemon runs the bridge until ctx ends, then stops it gracefully: the
// control API stops taking requests, the engine releases what it holds
// (sync/RULES.md §4) or hands it to the next start through the journal,
// the audit log is flushed and the database closed, all within StopTimeout.
func RunDaemon(ctx context.Context, o DaemonOptions) (err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Socket == "" {
		o.Socket = DefaultSocket()
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.LockWait <= 0 {
		o.LockWait = 500 * time.Millisecond
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.Mode == "" {
		o.Mode = "foreground"
	}
	log := o.Logger.With("component", "daemon")
	if o.DBPath == "" {
		return errors.New("no database path given")
	}
	if o.MetricsAddr != "" {
		// Checked before anything is opened, so a typo costs nothing.
		if err := CheckMetricsAddr(o.MetricsAddr, o.MetricsAllowRemote); err != nil {
			return err
		}
	}

	db, err := store.Open(o.DBPath, store.Options{Timeout: o.LockWait, Logger: o.Logger})
	if errors.Is(err, store.ErrInUse) {
		return fmt.Errorf("another presencebridge is already running on %s (%w); stop it first (presencebridge stop) or give this one another --db", o.DBPath, store.ErrInUse)
	}
	if err != nil {
		return err
	}
	dbOpen := true
	defer func() {
		if dbOpen {
			if cerr := db.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	if o.Adapters == nil {
		if err := CheckRun(db); err != nil {
			return err
		}
		return errors.New("started without adapters")
	}

	values, err := db.Settings()
	if err != nil {
		return err
	}
	settings, err := psync.ParseSettings(values)
	if err != nil {
		return fmt.Errorf("settings in %s: %w (fix with presencebridge config set)", o.DBPath, err)
	}
	profiles, err := db.Profiles()
	if err != nil {
		return err
	}
	users, err := db.Users()
	if err != nil {
		return err
	}
	if len(users) == 0 {
		log.Warn("no users configured: the bridge has nobody to keep in step (presencebridge config import users.yaml)")
	}

	metrics := NewMetrics()
	hub := NewHub()
	ad, err := o.Adapters(ctx, AdapterEnv{DB: db, Settings: values, Parsed: settings, Users: users, Meter: metrics, Logger: o.Logger})
	if err != nil {
		return fmt.Errorf("setting up the sides: %w", err)
	}
	if ad.Teams == nil || ad.Phone == nil {
		closeAdapters(ad, log)
		return errors.New("setting up the sides: the factory returned no Teams or no phone side")
	}
	// The engine runs with sides that can be replaced while it runs (live
	// settings, users added or removed).
	lt, lp := newLiveTeams(ad.Teams), newLivePhone(ad.Phone)
	live := newLiveSides(lt, lp, o.Rebuild, AdapterEnv{DB: db, Settings: values, Parsed: settings, Meter: metrics, Logger: o.Logger}, o.Logger)
	skipClose := false
	defer func() {
		if !skipClose {
			if err := live.Close(); err != nil {
				log.Warn("closing the sides", "err", err)
			}
			closeAdapters(ad, log)
		}
	}()
	reporters := slices.Clone(ad.Reporters)
	if _, ok := ad.Teams.(psync.Reporter); ok {
		reporters = append(reporters, lt)
	}
	if _, ok := ad.Phone.(psync.Reporter); ok {
		reporters = append(reporters, lp)
	}
	// Sign-ins go to whichever Teams adapter runs now, unless the factory
	// brought its own.
	signIn := ad.SignIn
	if _, teamsSigns := ad.Teams.(SignInStarter); teamsSigns && (signIn == nil || any(signIn) == any(ad.Teams)) {
		signIn = lt
	}

	engine, err := psync.NewEngine(psync.EngineConfig{
		Settings: settings, Profiles: profiles, Users: users,
		Teams: lt, Phone: lp, Journal: db, Logger: o.Logger,
		// Observe runs on the engine goroutine: both only count and hand on.
		Observe: func(d psync.Decision) { metrics.Decision(d); hub.Publish(d) },
	})
	if err != nil {
		return err
	}
	local, err := NewLocal(LocalConfig{Engine: engine, DB: db, Hub: hub, Reporters: reporters, SignIn: signIn, Live: live,
		Version: o.Version, Mode: o.Mode, Logger: o.Logger})
	if err != nil {
		return err
	}
	if err := metrics.Watch(engine, hub, reporters); err != nil {
		return err
	}
	policy := o.Peers
	if policy == nil {
		p, _ := DefaultPeerPolicy(o.Group)
		policy = &p
	}
	srv, err := NewServer(ServerConfig{Local: local, Policy: policy, Logger: o.Logger})
	if err != nil {
		return err
	}
	ln, err := ListenControl(o.Socket, o.Group, o.Logger)
	if err != nil {
		return err
	}
	var mln net.Listener
	if o.MetricsAddr != "" {
		if mln, err = ListenMetrics(o.MetricsAddr, o.MetricsAllowRemote); err != nil {
			ln.Close()
			return err
		}
	}

	// The engine must outlive ctx: it is stopped by Shutdown below, which
	// releases holds, rather than by cancellation, which keeps them.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	engineDone := make(chan error, 1)
	go func() { engineDone <- engine.Run(runCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	metricsDone := make(chan error, 1)
	if mln != nil {
		go func() { metricsDone <- ServeMetrics(runCtx, mln, metrics) }()
	} else {
		metricsDone <- nil
	}
	go local.Watch(runCtx)
	log.Info("presencebridge is running", "version", o.Version, "mode", o.Mode, "db", o.DBPath,
		"socket", o.Socket, "users", len(users), "metrics", o.MetricsAddr)
	if o.Ready != nil {
		r := Running{Local: local, Socket: o.Socket}
		if mln != nil {
			r.Metrics = mln.Addr()
		}
		o.Ready(r)
	}

	var runErr error
	engineEnded := false
	select {
	case <-ctx.Done():
		log.Info("stopping: releasing what the bridge holds", "within", o.StopTimeout)
	case runErr = <-engineDone:
		engineEnded = true
		if runErr == nil {
			runErr = errors.New("the engine stopped by itself")
		}
		log.Error("the engine stopped; shutting down", "err", runErr)
	case err := <-serveDone:
		runErr = fmt.Errorf("control API: %w", err)
		serveDone <- nil // the stop below waits for it once more
		log.Error("the control API stopped; shutting down", "err", err)
	}
	stuck := false
	err = errors.Join(runErr, stopDaemon(stopParts{
		log: log, timeout: o.StopTimeout, hub: hub, srv: srv, engine: engine,
		engineEnded: engineEnded, engineDone: engineDone, cancelRun: cancelRun,
		serveDone: serveDone, metricsDone: metricsDone, stuck: &stuck,
	}))
	if stuck {
		// The engine's workers may still call the sides and write the
		// journal: closing either under them would lose a release or record
		// a hold that is gone. The process exits; the OS drops the lock, and
		// the next start resolves what the journal holds.
		dbOpen = false
		skipClose = true
	}
	return err
}

type stopParts struct {
	log         *slog.Logger
	timeout     time.Duration
	hub         *Hub
	srv         *Server
	engine      *psync.Engine
	engineEnded bool
	engineDone  chan error
	cancelRun   context.CancelFunc
	serveDone   chan error
	metricsDone chan error
	stuck       *bool // set when the engine did not stop in time
}

// stopDaemon is the graceful stop, in order: intake, engine, flush.
func stopDaemon(p stopParts) error {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	// 1. No more admin requests; live streams end so they do not hold
	//    the server open.
	p.hub.Close()
	apiCtx, apiCancel := context.WithTimeout(ctx, time.Second)
	if err := p.srv.Shutdown(apiCtx); err != nil {
		p.log.Warn("control API: requests cut short by the stop", "err", err)
	}
	apiCancel()
	<-p.serveDone

	// 2. The engine stops taking events and releases its holds. A second
	//    is kept back for the flush.
	var stopErr error
	if !p.engineEnded {
		engCtx, engCancel := context.WithTimeout(ctx, max(p.timeout-time.Since(began)-time.Second, p.timeout/2))
		err := p.engine.Shutdown(engCtx)
		engCancel()
		switch {
		case errors.Is(err, psync.ErrHoldsKept):
			// A side is down: what could be released was; the rest is in
			// the journal and the next start resolves it. The stop itself
			// worked, so the process exits cleanly.
			p.log.Warn("stopped with holds kept for the next start (a side did not answer in time)", "err", err)
		case err != nil:
			stopErr = err
			p.log.Error("the engine did not stop cleanly; what it holds stays in the journal for the next start", "err", err)
		}
	}
	// 3. Run returns after its recorder has written the last audit
	//    entries and last-known state.
	p.cancelRun()
	if !p.engineEnded {
		select {
		case err := <-p.engineDone:
			if err != nil {
				stopErr = errors.Join(stopErr, err)
			}
		case <-ctx.Done():
			stopErr = errors.Join(stopErr, fmt.Errorf("the engine did not stop within %s", p.timeout))
			*p.stuck = true
		}
	}
	if err := <-p.metricsDone; err != nil {
		p.log.Warn("metrics endpoint", "err", err)
	}
	p.log.Info("stopped", "took", time.Since(began).Round(time.Millisecond))
	if stopErr != nil {
		return fmt.Errorf("stop: %w", stopErr)
	}
	return nil
}

func closeAdapters(ad Adapters, log *slog.Logger) {
	if ad.Close == nil {
		return
	}
	if err := ad.Close(); err != nil {
		log.Warn("closing the sides", "err", err)
	}
}
