package ucserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The engine's ports, checked at compile time.
var (
	_ psync.PhoneSystem = (*Conn)(nil)
	_ psync.Reporter    = (*Conn)(nil)
)

// Conn is the connection of the bridge's service account to one UCServer.
// Run watches the users; the PhoneSystem methods change absent state and
// line DND through the session Run keeps. All methods are safe for
// concurrent use.
type Conn struct {
	cfg     Config
	log     *slog.Logger
	meter   psync.Meter
	clock   psync.Clock
	http    *http.Client
	secrets []string

	life context.Context // ended by Close
	stop context.CancelFunc

	runMu   sync.Mutex
	running bool
	closed  bool
	runDone chan struct{}

	smu  sync.Mutex
	live *session // the synced session the PhoneSystem methods use; nil when down

	// mu guards the model of the watched users. Lock order: mu, then the
	// outbox's own lock.
	mu    sync.Mutex
	users map[string]*uState // folded contact id
	order []*uState
	lines map[string]*lState // line URI of the current session
	xrefs map[string]*lState // monitor cross-ref id of the current session
	sess  *session           // the session whose events are applied
	out   *outbox
	// resyncs counts outbox overflows (queue replaced by snapshots).
	resyncs int

	retry *psync.Backoff // Run's goroutine only

	rmu        sync.Mutex
	rep        reportState
	dropped    atomic.Int64
	unanswered atomic.Int64 // server invokes dropped without a reject

	// afterTake, when set (tests only, before Run), runs on the reader
	// goroutine between taking a pending invoke and applying its result.
	afterTake func(op int)
	outboxMax int // tests only: the outbox bound (0: by the number of users)
}

type reportState struct {
	connected  bool
	session    string // shortened
	since      time.Time
	subscribed int
	users      int
	monitored  int
	lines      int
	reconnects int
	lastEvent  time.Time
	problems   []psync.Problem
}

// New checks cfg and builds a Conn; nothing connects before Run.
func New(cfg Config) (*Conn, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	c := &Conn{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "ucserver"),
		meter: cfg.Meter,
		clock: cfg.Clock,
		http:  cfg.httpClient(),
		users: map[string]*uState{},
		lines: map[string]*lState{},
		xrefs: map[string]*lState{},
	}
	for _, s := range []string{cfg.Password, cfg.LoginToken} {
		if s != "" {
			c.secrets = append(c.secrets, s)
		}
	}
	if cfg.User != "" && cfg.Password != "" {
		c.secrets = append(c.secrets, basicSecret(cfg.User, cfg.Password))
	}
	c.life, c.stop = context.WithCancel(context.Background())
	return c, nil
}

// Close stops Run (if running) and waits for it. Calls after Close fail
// with psync.ErrUnavailable.
func (c *Conn) Close() error {
	c.runMu.Lock()
	c.closed = true
	done := c.runDone
	c.runMu.Unlock()
	c.stop()
	if done != nil {
		<-done
	}
	return nil
}

// stableAfter: a session that lived this long before it dropped is
// reconnected at once; a shorter one counts as a failed attempt, so a server
// that drops every session right away is not hammered.
func (c *Conn) stableAfter() time.Duration { return c.cfg.ReconnectMin }

// Run implements psync.PhoneSystem. It connects, subscribes every user's
// presence, monitors every line of theirs, sends a PhoneSnapshot per user
// and PhoneSynced, then the changes. When the connection drops it
// reconnects with backoff in a new session and starts over, so that nothing
// that changed meanwhile is lost. It returns nil when ctx ends or Close is
// called.
func (c *Conn) Run(ctx context.Context, users []psync.User, events chan<- psync.PhoneEvent) error {
	if events == nil {
		return errors.New("ucserver: Run needs an events channel")
	}
	c.runMu.Lock()
	switch {
	case c.closed:
		c.runMu.Unlock()
		return errors.New("ucserver: Run after Close")
	case c.running:
		c.runMu.Unlock()
		return errors.New("ucserver: Run is already running")
	}
	c.running = true
	c.runDone = make(chan struct{})
	done := c.runDone
	c.runMu.Unlock()
	defer func() {
		c.runMu.Lock()
		c.running = false
		c.runMu.Unlock()
		close(done)
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnClose := context.AfterFunc(c.life, cancel)
	defer stopOnClose()

	c.mu.Lock()
	c.setUsersLocked(users)
	max := c.outboxMax
	if max == 0 {
		max = outboxMin + 4*len(c.order)
	}
	out := newOutbox(max)
	c.out = out
	c.mu.Unlock()
	var pump sync.WaitGroup
	pump.Go(func() { out.run(ctx, events) })

	failures := 0
	for ctx.Err() == nil {
		err, synced, lived := c.runSession(ctx)
		if ctx.Err() != nil {
			break
		}
		var wait time.Duration
		var le *loginError
		switch {
		case synced && lived >= c.stableAfter():
			failures = 0 // a healthy session dropped: reconnect at once
		case errors.As(err, &le) && le.auth():
			failures++
			wait = c.cfg.ReconnectMax // retrying soon would only lock the account
		default:
			failures++
			wait = c.backoff(failures)
		}
		c.down(err, synced, wait)
		if !c.sleep(ctx, wait) {
			break
		}
	}
	cancel()
	pump.Wait()
	c.mu.Lock()
	c.out = nil
	c.sess = nil
	c.mu.Unlock()
	c.rmu.Lock()
	c.rep.connected = false
	c.rep.session = ""
	c.rmu.Unlock()
	c.meter.Subscriptions(psync.SidePhone, 0, time.Time{})
	return nil
}

// backoff is the bridge's one retry schedule, from ReconnectMin to
// ReconnectMax with jitter, on the configured clock.
func (c *Conn) backoff(failures int) time.Duration {
	if c.retry == nil {
		c.retry = psync.NewBackoff(c.cfg.ReconnectMin, c.cfg.ReconnectMax, uint64(time.Now().UnixNano()))
	}
	return c.retry.Delay(failures, nil)
}

func (c *Conn) sleep(ctx context.Context, d time.Duration) bool { return psync.Sleep(ctx, c.clock, d) }

// runSession is one session from login to its end. synced says it got as
// far as sending the snapshots; lived is how long it was synced.
func (c *Conn) runSession(ctx context.Context) (err error, synced bool, lived time.Duration) {
	s, err := c.dial(ctx, c.onEvent)
	if err != nil {
		return err, false, 0
	}
	defer s.close()
	c.log.Info("session open", "session", shortID(s.id), "endpoint", c.cfg.endpoint())
	s.wg.Go(func() { c.keepAlive(s) })

	if err := c.syncSession(ctx, s); err != nil {
		if s.ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, s.cause())
		}
		return err, false, 0
	}
	start := c.clock.Now()
	select {
	case <-s.ctx.Done():
		err = s.cause()
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.smu.Lock()
	c.live = nil
	c.smu.Unlock()
	return err, true, c.clock.Now().Sub(start)
}

// down reports a lost or failed connection: a PhoneHealth event, the log,
// the report and, for things an admin can fix, a problem.
func (c *Conn) down(err error, wasSynced bool, wait time.Duration) {
	if err == nil {
		err = errors.New("connection closed")
	}
	msg := c.scrub(err).Error()
	var detail string
	if wasSynced {
		detail = "UCServer connection lost: " + msg
	} else {
		detail = "cannot connect to the UCServer: " + msg
	}
	if wait > 0 {
		detail += "; retrying in " + wait.Round(time.Millisecond).String()
	} else {
		detail += "; reconnecting now"
	}
	c.log.Warn("UCServer down", "err", msg, "retry_in", wait, "was_synced", wasSynced)
	c.rmu.Lock()
	c.rep.connected = false
	c.rep.session = ""
	c.rep.subscribed, c.rep.monitored = 0, 0 // they went with the session
	c.rmu.Unlock()
	c.meter.Subscriptions(psync.SidePhone, 0, time.Time{})
	var le *loginError
	switch {
	case errors.As(err, &le):
		c.problem("login refused: "+msg, le.fix())
	case wasSynced:
		c.problem(detail, "")
	default:
		c.problem("cannot connect: "+msg, "check ucserver.url and that the UCServer web service is reachable (ports 7224/7225)")
	}
	c.mu.Lock()
	if c.out != nil {
		c.pushLocked(psync.PhoneEvent{Kind: psync.PhoneHealth, Healthy: false, Detail: detail})
	}
	c.mu.Unlock()
}

// keepAlive sends asnTransportKeepAlive every KeepAlive.
//
// Guess (brief §6.2): the server's session timeout is not published; the
// estos sample's 5 s interval with 1706 (not the legacy 100) keeps a session
// alive.
//
// A socket that
// received nothing for three intervals is probed with asnCheckConnection;
// no answer means the connection is dead even if TCP has not noticed.
func (c *Conn) keepAlive(s *session) {
	t := c.clock.NewTimer(c.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C():
		}
		if err := s.event(opTransportKeepAlive, nullDummy{}); err != nil {
			return // write already ended the session
		}
		idle := c.clock.Now().Sub(time.Unix(0, s.lastRx.Load()))
		if idle >= 3*c.cfg.KeepAlive {
			err := s.invoke(s.ctx, opCheckConnection, struct{}{}, nil)
			if errors.Is(err, psync.ErrUnavailable) && s.ctx.Err() == nil {
				s.fail(fmt.Errorf("no answer from the UCServer for %s", idle.Round(time.Millisecond)))
				return
			}
		}
		t.Reset(c.cfg.KeepAlive)
	}
}

// subscribeChunk bounds one asnGetAndSubscribePresenceV2; the brief does
// not name a limit, and a few hundred ids keep frames small.
const subscribeChunk = 500

// monitorWindow is how many asnCtiLineMonitorStart invokes are in flight
// at once (the server answers out of order; ids correlate).
const monitorWindow = 64

// syncSession subscribes and monitors everything, then sends the snapshots
// and PhoneSynced. Events arriving meanwhile are applied to the model
// silently: the snapshot carries them.
func (c *Conn) syncSession(ctx context.Context, s *session) error {
	c.mu.Lock()
	c.sess = s
	c.lines = map[string]*lState{}
	c.xrefs = map[string]*lState{}
	ids := make([]string, 0, len(c.order))
	for _, u := range c.order {
		u.resetSession()
		ids = append(ids, string(u.user.ID))
	}
	c.mu.Unlock()

	for i := 0; i < len(ids); i += subscribeChunk {
		chunk := ids[i:min(i+subscribeChunk, len(ids))]
		arg := subscribeArg{
			ContactIDs: chunk, EventFlagsToSubscribe: subscribeFlags, ContactDetailsFilter: subscribeFlags,
			// A service account must not start a rights challenge on
			// every user's desktop (brief §3.2); the admin grants rights.
			DontRequestPermissions: true,
		}
		// A large chunk takes the server longer than one small operation:
		// the timeout grows with the number of contacts asked for.
		timeout := c.cfg.InvokeTimeout + time.Duration(len(chunk))*subscribePerContact
		if err := s.invokeWithin(ctx, timeout, opGetAndSubscribePresenceV2, arg, c.applySubscribe(s)); err != nil {
			var oe *opError
			if errors.As(err, &oe) {
				c.problem("presence subscription refused: "+err.Error(), "give the service account the right to see the users' presence (global or group rights)")
			}
			return err
		}
	}

	// Guess (brief §6.5): typeofLines 1 ("own lines and lines with special
	// rights") is what a service account may monitor; 2/3 list the
	// system's lines and may need more rights.
	if err := s.invoke(ctx, opCtiEnumPhoneLines, enumLinesArg{TypeOfLines: 1, AttachChangeNotify: 1}, nil); err != nil {
		if errors.Is(err, psync.ErrUnavailable) {
			return err
		}
		c.log.Warn("line enumeration refused; lines come from presence only", "err", err)
	}

	c.mu.Lock()
	var todo []string
	for _, u := range c.order {
		for _, l := range u.lines {
			if !l.monitored && !l.pending {
				l.pending = true
				todo = append(todo, l.uri)
			}
		}
	}
	c.mu.Unlock()
	var (
		wg     sync.WaitGroup
		failMu sync.Mutex
		failed []string
		lost   error
	)
	// A fixed set of workers, not a goroutine per line: at 10,000 users the
	// goroutines of 20,000 lines stayed allocated (Go keeps goroutine
	// structures for reuse) and made most of the bridge's memory.
	work := make(chan string)
	for range min(monitorWindow, len(todo)) {
		wg.Go(func() {
			for uri := range work {
				if err := c.monitor(ctx, s, uri); err != nil {
					failMu.Lock()
					// Only a gone session (or Run ending) loses the sync; a
					// line whose monitor does not answer in time is one
					// failed line: presence still covers its calls.
					if s.ctx.Err() != nil || ctx.Err() != nil {
						lost = err
					} else {
						failed = append(failed, uri+": "+err.Error())
					}
					failMu.Unlock()
				}
			}
		})
	}
	for _, uri := range todo {
		work <- uri
	}
	close(work)
	wg.Wait()
	if lost != nil {
		return lost
	}
	if s.ctx.Err() != nil {
		return fmt.Errorf("%w: session ended during the subscription", psync.ErrUnavailable)
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		c.problem(fmt.Sprintf("%d of %d lines cannot be monitored (first: %s); their calls come from presence, without per-device detail", len(failed), len(todo), failed[0]),
			"give the service account CTI rights (monitor, do-not-disturb) on these lines")
	}

	// From here on every change is an event; the snapshots come first. The
	// report is brought up to date before the engine hears of it.
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.ctx.Err() != nil {
		return fmt.Errorf("%w: session ended during the subscription", psync.ErrUnavailable)
	}
	var unknown []string
	subscribed, monitored, nlines := 0, 0, 0
	for _, u := range c.order {
		if !u.known {
			unknown = append(unknown, string(u.user.ID))
			continue
		}
		subscribed++
		for _, l := range u.lines {
			nlines++
			if l.monitored {
				monitored++
			}
		}
	}
	total := len(c.order)
	if len(unknown) > 0 {
		show := unknown[:min(len(unknown), 5)]
		c.problem(fmt.Sprintf("%d of %d users are not known to the UCServer: %s", len(unknown), total, strings.Join(show, ", ")),
			"check the users' contact ids (e.g. sip:name@domain) against the UCServer, or the service account's rights to see them")
		c.log.Warn("users not known to the UCServer", "count", len(unknown), "first", show)
	}
	now := c.clock.Now()
	c.rmu.Lock()
	if !c.rep.since.IsZero() {
		c.rep.reconnects++
	}
	c.rep.since = now
	c.rep.connected = true
	c.rep.session = shortID(s.id)
	c.rep.subscribed, c.rep.users = subscribed, total
	c.rep.monitored, c.rep.lines = monitored, nlines
	c.rmu.Unlock()
	c.meter.Subscriptions(psync.SidePhone, subscribed+monitored, time.Time{})

	// Writes are accepted from the moment the engine can know of the
	// session.
	c.smu.Lock()
	c.live = s
	c.smu.Unlock()
	c.pushLocked(psync.PhoneEvent{Kind: psync.PhoneHealth, Healthy: true, Detail: "connected to " + c.cfg.endpoint() + ", session " + shortID(s.id)})
	// Every watched user gets a snapshot, also one the server did not list:
	// whatever the engine still holds of an earlier session (a call that
	// ended meanwhile) must not outlive it.
	for _, u := range c.order {
		if !u.known {
			c.forgetLocked(u)
		}
		c.snapshotLocked(u)
	}
	c.pushLocked(psync.PhoneEvent{Kind: psync.PhoneSynced})
	c.log.Info("synced", "session", shortID(s.id), "users", subscribed, "of", total, "lines", nlines, "monitored", monitored)
	return nil
}

// subscribePerContact is how much longer a subscribe chunk may take per
// contact in it.
const subscribePerContact = 20 * time.Millisecond

// monitor starts the line monitor of one line and applies its snapshot. At
// most monitorWindow monitor starts of a session are in flight at once.
func (c *Conn) monitor(ctx context.Context, s *session, uri string) error {
	select {
	case s.monSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w: %w", opName(opCtiLineMonitorStart), psync.ErrUnavailable, ctx.Err())
	case <-s.ctx.Done():
		return fmt.Errorf("%s: %w: session ended: %v", opName(opCtiLineMonitorStart), psync.ErrUnavailable, s.cause())
	}
	defer func() { <-s.monSem }()
	err := s.invoke(ctx, opCtiLineMonitorStart, lineArg{LineURI: uri}, c.applyMonitor(s, uri))
	if err != nil {
		c.mu.Lock()
		if l := c.lines[uri]; l != nil && c.sess == s {
			l.pending = false
		}
		c.mu.Unlock()
	}
	return err
}

// problem records something the admin should know, newest first, at most
// ten; a repeat only moves the time.
func (c *Conn) problem(what, fix string) {
	what = c.scrub(errors.New(what)).Error()
	now := c.clock.Now()
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.rep.problems) > 0 && c.rep.problems[0].What == what {
		c.rep.problems[0].At = now
		return
	}
	c.rep.problems = slices.Insert(c.rep.problems, 0, psync.Problem{At: now, What: what, Fix: fix})
	if len(c.rep.problems) > 10 {
		c.rep.problems = c.rep.problems[:10]
	}
}

func (c *Conn) countDropped() { c.dropped.Add(1) }

// Report implements psync.Reporter.
func (c *Conn) Report() psync.SideReport {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	r := psync.SideReport{
		Side: psync.SidePhone, Name: "estos UCServer", Mode: "websocket",
		Endpoint: c.cfg.endpoint(), Connected: c.rep.connected,
		Errors: slices.Clone(c.rep.problems),
	}
	session := c.rep.session
	if session == "" {
		session = "none"
	}
	r.Facts = append(r.Facts, psync.Fact{Label: "session", Value: session, Warn: !c.rep.connected})
	if !c.rep.since.IsZero() {
		label := "connected since"
		if !c.rep.connected {
			label = "last connected"
		}
		r.Facts = append(r.Facts, psync.Fact{Label: label, Value: c.rep.since.Format(time.RFC3339)})
	}
	r.Facts = append(r.Facts,
		psync.Fact{Label: "subscribed users", Value: fmt.Sprintf("%d of %d", c.rep.subscribed, c.rep.users), Warn: c.rep.subscribed < c.rep.users},
		psync.Fact{Label: "monitored lines", Value: fmt.Sprintf("%d of %d", c.rep.monitored, c.rep.lines), Warn: c.rep.monitored < c.rep.lines},
		psync.Fact{Label: "reconnects", Value: strconv.Itoa(c.rep.reconnects)},
		psync.Fact{Label: "keep-alive", Value: "every " + c.cfg.KeepAlive.String()},
	)
	if !c.rep.lastEvent.IsZero() {
		r.Facts = append(r.Facts, psync.Fact{Label: "last event", Value: c.rep.lastEvent.Format(time.RFC3339)})
	}
	if n := c.dropped.Load(); n > 0 {
		r.Facts = append(r.Facts, psync.Fact{Label: "frames dropped", Value: strconv.FormatInt(n, 10), Warn: true})
	}
	if n := c.unanswered.Load(); n > 0 {
		r.Facts = append(r.Facts, psync.Fact{Label: "server requests not answered", Value: strconv.FormatInt(n, 10), Warn: true})
	}
	return r
}

// outbox keeps the engine-bound events in order without ever blocking the
// socket reader on the engine. It is bounded: a user's snapshot supersedes
// that user's events still queued, and a queue that reaches max anyway is
// replaced by a fresh snapshot of every user (Conn.pushLocked).
type outbox struct {
	mu   sync.Mutex
	q    []psync.PhoneEvent
	per  map[psync.UserID]int // queued events per user
	max  int
	wake chan struct{}
}

// outboxMin is the smallest outbox bound; Run adds room per user.
const outboxMin = 1024

func newOutbox(max int) *outbox {
	return &outbox{wake: make(chan struct{}, 1), per: map[psync.UserID]int{}, max: max}
}

// push queues ev; false means the queue is full and ev was not queued.
func (o *outbox) push(ev psync.PhoneEvent) bool {
	o.mu.Lock()
	if ev.Kind == psync.PhoneSnapshot && o.per[ev.User] > 0 {
		o.q = slices.DeleteFunc(o.q, func(x psync.PhoneEvent) bool { return x.User == ev.User })
		delete(o.per, ev.User)
	}
	if len(o.q) >= o.max {
		o.mu.Unlock()
		return false
	}
	o.q = append(o.q, ev)
	if ev.User != "" {
		o.per[ev.User]++
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return true
}

// reset empties the queue and returns the last health event and whether a
// PhoneSynced was queued.
func (o *outbox) reset() (health *psync.PhoneEvent, synced bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.q {
		switch o.q[i].Kind {
		case psync.PhoneHealth:
			health = &o.q[i]
		case psync.PhoneSynced:
			synced = true
		}
	}
	o.q = nil
	clear(o.per)
	return health, synced
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.q)
}

func (o *outbox) run(ctx context.Context, events chan<- psync.PhoneEvent) {
	for {
		o.mu.Lock()
		batch := o.q
		o.q = nil
		clear(o.per)
		o.mu.Unlock()
		for _, ev := range batch {
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-o.wake:
		case <-ctx.Done():
			return
		}
	}
}
