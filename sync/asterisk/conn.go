package asterisk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	_ psync.PhoneSystem    = (*Conn)(nil)
	_ psync.Reporter       = (*Conn)(nil)
	_ psync.PhoneAbilities = (*Conn)(nil)
)

// Conn is the bridge's AMI connection to one Asterisk/FreePBX. Run watches
// the users; the PhoneSystem methods write through the connection Run
// keeps. All methods are safe for concurrent use.
type Conn struct {
	cfg   Config
	log   *slog.Logger
	meter psync.Meter

	life context.Context
	stop context.CancelFunc

	runMu   sync.Mutex
	running bool
	closed  bool
	runDone chan struct{}

	lmu  sync.Mutex
	live *client // the synced connection writes use; nil when down

	// mu guards the model. Lock order: a user's wmu, then mu.
	mu     sync.Mutex
	users  []*uState
	byID   map[psync.UserID]*uState
	byExt  map[string]*uState
	byDev  map[string]*uState // upper-cased device name
	cur    *client            // the connection whose events are applied
	emit   bool               // cur is synced: changes become events
	out    *outbox
	callNo uint64

	retry *psync.Backoff

	rmu sync.Mutex
	rep reportState
}

type reportState struct {
	connected  bool
	banner     string
	since      time.Time
	reconnects int
	users      int
	devices    int
	problems   []psync.Problem
}

// New checks cfg and builds a Conn; nothing connects before Run.
func New(cfg Config) (*Conn, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	c := &Conn{cfg: cfg, log: cfg.Logger.With("component", "asterisk"), meter: cfg.Meter,
		byID: map[psync.UserID]*uState{}, byExt: map[string]*uState{}, byDev: map[string]*uState{}}
	c.life, c.stop = context.WithCancel(context.Background())
	return c, nil
}

// Abilities implements psync.PhoneAbilities: protection always (FreePBX
// DND, or the custom state the dialplan checks), presence only when
// asterisk.presence is on.
func (c *Conn) Abilities() psync.PhoneAbility {
	if c.cfg.Presence {
		return psync.AbilityPresence | psync.AbilityProtection
	}
	return psync.AbilityProtection
}

// Close stops Run and waits for it.
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

// Run implements psync.PhoneSystem: it connects, logs in, reads every
// user's devices, DND and device states, sends a PhoneSnapshot per user and
// PhoneSynced, then the changes. On any loss it reconnects with backoff and
// starts over. It returns nil when ctx ends or Close is called.
func (c *Conn) Run(ctx context.Context, users []psync.User, events chan<- psync.PhoneEvent) error {
	if events == nil {
		return errors.New("asterisk: Run needs an events channel")
	}
	c.runMu.Lock()
	switch {
	case c.closed:
		c.runMu.Unlock()
		return errors.New("asterisk: Run after Close")
	case c.running:
		c.runMu.Unlock()
		return errors.New("asterisk: Run is already running")
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
	defer context.AfterFunc(c.life, cancel)()

	c.mu.Lock()
	c.setUsersLocked(users)
	out := newOutbox(outboxMin + 8*len(c.users))
	c.out = out
	c.mu.Unlock()
	var pump sync.WaitGroup
	pump.Go(func() { out.run(ctx, events) })

	failures := 0
	for ctx.Err() == nil {
		err, synced, lived := c.session(ctx)
		if ctx.Err() != nil {
			break
		}
		var wait time.Duration
		var le *loginError
		switch {
		case synced && lived >= c.cfg.ReconnectMin:
			failures = 0
		case errors.As(err, &le):
			failures++
			wait = c.cfg.ReconnectMax // retrying soon would only fill the PBX's log
		default:
			failures++
			wait = c.backoff(failures)
		}
		c.down(err, synced, wait)
		if !psync.Sleep(ctx, nil, wait) {
			break
		}
	}
	cancel()
	pump.Wait()
	c.mu.Lock()
	c.out, c.cur, c.emit = nil, nil, false
	c.mu.Unlock()
	c.rmu.Lock()
	c.rep.connected = false
	c.rmu.Unlock()
	return nil
}

func (c *Conn) backoff(n int) time.Duration {
	if c.retry == nil {
		c.retry = psync.NewBackoff(c.cfg.ReconnectMin, c.cfg.ReconnectMax, uint64(time.Now().UnixNano()))
	}
	return c.retry.Delay(n, nil)
}

func (c *Conn) setUsersLocked(users []psync.User) {
	c.users = nil
	clear(c.byID)
	clear(c.byExt)
	for _, u := range users {
		exts, ok := extensionsOf(u)
		if !ok {
			c.problem(fmt.Sprintf("user %s has no usable extension (%q)", u.ID, u.Extension), "set the user's extension to the FreePBX/Asterisk extension number")
			continue
		}
		us := newUState(u, exts)
		c.users = append(c.users, us)
		c.byID[u.ID] = us
		for _, e := range exts {
			c.byExt[e] = us
		}
	}
}

// session is one connection from dial to loss. synced says it got as far as
// the snapshots; lived is how long it was synced.
func (c *Conn) session(ctx context.Context) (err error, synced bool, lived time.Duration) {
	// Events count only from the connection being synced: a message an
	// old connection's reader had in hand when it closed is dropped.
	var self atomic.Pointer[client]
	cl, err := dial(ctx, c.cfg.Host, c.cfg.User, c.cfg.Secret, "call", c.cfg.Limits, c.cfg.ConnectTimeout, func(m Message) {
		if me := self.Load(); me != nil {
			c.onEvent(me, m)
		}
	})
	if err != nil {
		return err, false, 0
	}
	defer cl.close(errors.New("session ended"))
	c.mu.Lock()
	c.cur, c.emit = cl, false
	c.mu.Unlock()
	self.Store(cl)
	c.log.Info("AMI connected", "host", c.cfg.Host, "banner", cl.banner)
	var wg sync.WaitGroup
	defer wg.Wait()
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	wg.Go(func() { c.keepAlive(sctx, cl) })

	if err := c.resync(ctx, cl); err != nil {
		if cl.err() != nil {
			err = fmt.Errorf("%w (%v)", err, cl.err())
		}
		return err, false, 0
	}
	if c.cfg.Profile == ProfileAsterisk {
		wg.Go(func() { c.renewLeases(sctx, cl) })
	}
	start := time.Now()
	select {
	case <-cl.done:
		err = cl.err()
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.lmu.Lock()
	c.live = nil
	c.lmu.Unlock()
	return err, true, time.Since(start)
}

// keepAlive pings; a missed Pong drops the connection (TCP may not notice
// a dead peer for minutes).
func (c *Conn) keepAlive(ctx context.Context, cl *client) {
	t := time.NewTicker(c.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cl.done:
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.cfg.ActionTimeout)
		err := cl.ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			cl.close(fmt.Errorf("no Pong to a Ping within %s: %v", c.cfg.ActionTimeout, err))
			return
		}
	}
}

// readWindow is how many AstDB reads of a resync are in flight at once.
const readWindow = 16

// resync reads every user's devices, DND and presence, then the device
// states, and sends the snapshots and PhoneSynced. Events arriving
// meanwhile are applied to the model silently: the snapshots carry them.
func (c *Conn) resync(ctx context.Context, cl *client) error {
	c.mu.Lock()
	users := slices.Clone(c.users)
	c.mu.Unlock()
	work := make(chan *uState)
	var (
		wg    sync.WaitGroup
		emu   sync.Mutex
		first error
	)
	for range min(readWindow, len(users)) {
		wg.Go(func() {
			for u := range work {
				if err := c.readUser(ctx, cl, u); err != nil {
					emu.Lock()
					if first == nil {
						first = err
					}
					emu.Unlock()
				}
			}
		})
	}
	for _, u := range users {
		work <- u
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	c.mu.Lock()
	clear(c.byDev)
	ndev := 0
	for _, u := range c.users {
		for _, d := range u.devices {
			c.byDev[strings.ToUpper(d)] = u
			ndev++
		}
	}
	c.mu.Unlock()

	actx, cancel := context.WithTimeout(ctx, c.cfg.ActionTimeout+time.Duration(ndev)*time.Millisecond)
	defer cancel()
	if _, _, err := cl.list(actx, "DeviceStateList"); err != nil {
		var ae *amiError
		if errors.As(err, &ae) && ae.permission() {
			c.problem("DeviceStateList refused: "+ae.message, "add write class call to the manager.conf account:\n"+ManagerStanza(c.cfg.User))
			return fmt.Errorf("%w: %v; add write = %s to [%s] in manager.conf", psync.ErrRejected, err, neededWrite, c.cfg.User)
		}
		return err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if cl.err() != nil {
		return fmt.Errorf("%w: connection lost during the resync", psync.ErrUnavailable)
	}
	if c.cfg.Profile == ProfileAsterisk {
		ndev = c.pruneDevicesLocked()
	}
	c.rmu.Lock()
	if !c.rep.since.IsZero() {
		c.rep.reconnects++
	}
	c.rep.connected, c.rep.banner, c.rep.since = true, cl.banner, time.Now()
	c.rep.users, c.rep.devices = len(c.users), ndev
	c.rmu.Unlock()
	c.lmu.Lock()
	c.live = cl
	c.lmu.Unlock()
	c.emit = true
	c.pushLocked(psync.PhoneEvent{Kind: psync.PhoneHealth, Healthy: true, Detail: "connected to the AMI at " + c.cfg.Host + " (" + cl.banner + ")"})
	for _, u := range c.users {
		c.pushLocked(psync.PhoneEvent{Kind: psync.PhoneSnapshot, User: u.user.ID, Version: u.nextVersion(), State: u.snapshot()})
	}
	c.pushLocked(psync.PhoneEvent{Kind: psync.PhoneSynced})
	c.log.Info("synced", "users", len(c.users), "devices", ndev)
	return nil
}

// pruneDevicesLocked keeps, on profile asterisk, the candidate devices the
// PBX listed (PJSIP/<ext> when it listed neither), and returns how many
// devices are watched.
func (c *Conn) pruneDevicesLocked() int {
	n := 0
	for _, u := range c.users {
		var keep []string
		for _, d := range u.devices {
			if _, listed := u.state[d]; listed {
				keep = append(keep, d)
			} else {
				delete(c.byDev, strings.ToUpper(d))
			}
		}
		if len(keep) == 0 && len(u.exts) > 0 {
			keep = []string{"PJSIP/" + u.exts[0]}
			c.byDev[strings.ToUpper(keep[0])] = u
		}
		u.devices = keep
		n += len(keep)
	}
	return n
}

// readUser reads one user's devices, protection and presence.
func (c *Conn) readUser(ctx context.Context, cl *client, u *uState) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ActionTimeout)
	defer cancel()
	var devices []string
	fp := map[string][]string{}
	dnd := map[string]bool{}
	held := map[string][]string{}
	for _, ext := range u.exts {
		if c.cfg.Profile == ProfileFreePBX {
			v, ok, err := cl.dbGet(ctx, "AMPUSER", ext+"/device")
			if err != nil {
				return c.readErr(err, "DBGet AMPUSER/"+ext+"/device")
			}
			ids := []string{ext}
			if ok {
				ids = parseMarker(v)
			} else {
				c.problem("FreePBX knows no devices of extension "+ext+" (AMPUSER/"+ext+"/device is empty)", "check the user's extension; PJSIP/"+ext+" is watched meanwhile")
			}
			for _, id := range ids {
				if !validName(id) {
					continue
				}
				fp[ext] = append(fp[ext], id)
				dial, ok, err := cl.dbGet(ctx, "DEVICE", id+"/dial")
				if err != nil {
					return c.readErr(err, "DBGet DEVICE/"+id+"/dial")
				}
				dev := "PJSIP/" + id
				if ok && strings.Contains(dial, "/") && validName(strings.ReplaceAll(dial, "/", "")) {
					dev = dial
				}
				if !slices.Contains(devices, dev) {
					devices = append(devices, dev)
				}
			}
			v, ok, err = cl.dbGet(ctx, "DND", ext)
			if err != nil {
				return c.readErr(err, "DBGet DND/"+ext)
			}
			dnd[ext] = ok && v == "YES"
		} else {
			// PJSIP/<ext>, or chan_sip's SIP/<ext> where the PBX knows
			// that instead (decided after DeviceStateList, pruneDevices).
			for _, d := range []string{"PJSIP/" + ext, "SIP/" + ext} {
				if !slices.Contains(devices, d) {
					devices = append(devices, d)
				}
			}
			v, ok, err := cl.dbGet(ctx, "teams", ext+"/until")
			if err != nil {
				return c.readErr(err, "DBGet teams/"+ext+"/until")
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			dnd[ext] = ok && n > time.Now().Unix()
		}
		v, ok, err := cl.dbGet(ctx, "teams", ext+"/dnd")
		if err != nil {
			return c.readErr(err, "DBGet teams/"+ext+"/dnd")
		}
		if ok && dnd[ext] {
			held[ext] = parseMarker(v)
		}
	}
	pres := psync.PhoneNotSet
	if c.cfg.Presence && len(u.exts) > 0 {
		p, err := c.readPresence(ctx, cl, u.exts[0])
		if err != nil {
			return err
		}
		pres = p
	}
	c.mu.Lock()
	u.devices, u.fpDevs, u.presence = devices, fp, pres
	u.dnd = dnd
	// What the PBX holds of the bridge's (after a restart: what an earlier
	// run wrote) is the bridge's to renew and give back.
	u.held = held
	// DeviceStateList replays every state next: a device it does not list
	// any more has no call.
	clear(u.state)
	for d := range u.callID {
		if !slices.Contains(devices, d) {
			delete(u.callID, d)
			delete(u.conf, d)
		}
	}
	c.mu.Unlock()
	return nil
}

func (c *Conn) readPresence(ctx context.Context, cl *client, ext string) (psync.PhonePresence, error) {
	st, err := cl.getvar(ctx, "PRESENCE_STATE(CustomPresence:"+ext+",value)")
	if err != nil {
		return psync.PhoneUnknown, c.readErr(err, "Getvar PRESENCE_STATE")
	}
	sub, err := cl.getvar(ctx, "PRESENCE_STATE(CustomPresence:"+ext+",subtype)")
	if err != nil {
		return psync.PhoneUnknown, c.readErr(err, "Getvar PRESENCE_STATE")
	}
	return presenceOf(st, sub), nil
}

// readErr turns a refused read into a problem naming the class to add.
func (c *Conn) readErr(err error, what string) error {
	var ae *amiError
	if errors.As(err, &ae) && ae.permission() {
		c.problem(what+" refused: "+ae.message, "the manager.conf account needs:\n"+ManagerStanza(c.cfg.User))
		return fmt.Errorf("%w: %s: permission denied; add write = %s to [%s] in manager.conf", psync.ErrRejected, what, neededWrite, c.cfg.User)
	}
	return err
}

// onEvent applies one event on the reader goroutine, in wire order. List
// items of DeviceStateList come here too (the client streams them), so a
// live change is never overwritten by an older list item.
func (c *Conn) onEvent(from *client, m Message) {
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	if from != cur {
		return
	}
	switch ev := m.Get("Event"); {
	case strings.EqualFold(ev, "DeviceStateChange"):
		c.deviceState(m.Get("Device"), m.Get("State"))
	case strings.EqualFold(ev, "ConfbridgeJoin"), strings.EqualFold(ev, "MeetmeJoin"):
		c.conference(channelDevice(m.Get("Channel")))
	case strings.EqualFold(ev, "PresenceStateChange"):
		c.presenceState(m.Get("Presentity"), m.Get("Status"), m.Get("Subtype"))
	}
}

// deviceState applies a DeviceStateChange. Custom:DND<ext> (FreePBX) and
// Custom:teams<ext> (asterisk profile) are protection, never calls; every
// other custom state (DEVDND, hints' helpers) is ignored.
func (c *Conn) deviceState(dev, state string) {
	if dev == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rest, ok := cutPrefixFold(dev, "Custom:"); ok {
		var ext string
		switch {
		case c.cfg.Profile == ProfileFreePBX && hasPrefixFold(rest, "DND"):
			ext = rest[3:]
		default:
			// Custom:teams<ext> of the asterisk profile is a lamp only: the
			// lease end in AstDB is the protection (it may have run out
			// while the lamp still shows BUSY), read at every resync and
			// changed by the bridge's own writes.
			return
		}
		if u := c.byExt[ext]; u != nil {
			c.setDNDLocked(u, ext, strings.EqualFold(state, "BUSY"))
		}
		return
	}
	u := c.byDev[strings.ToUpper(dev)]
	if u == nil {
		return
	}
	for _, d := range u.devices {
		if strings.EqualFold(d, dev) {
			dev = d
			break
		}
	}
	before, had := u.call(dev)
	u.state[dev] = strings.ToUpper(state)
	_, now := callOf(state)
	switch {
	case now && u.callID[dev] == "":
		c.callNo++
		u.callID[dev] = dev + "#" + strconv.FormatUint(c.callNo, 10)
	case !now:
		delete(u.callID, dev)
		delete(u.conf, dev)
	}
	after, has := u.call(dev)
	switch {
	case has && (!had || after != before):
		c.changedLocked(u, psync.PhoneEvent{Kind: psync.PhoneCallChanged, Call: after})
	case had && !has:
		before.State = psync.CallEnded
		c.changedLocked(u, psync.PhoneEvent{Kind: psync.PhoneCallChanged, Call: before})
	}
}

// conference marks the device's call (or the call about to start: the join
// may come before the device state) a conference.
func (c *Conn) conference(dev string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.byDev[strings.ToUpper(dev)]
	if u == nil {
		return
	}
	for _, d := range u.devices {
		if strings.EqualFold(d, dev) {
			dev = d
		}
	}
	if u.conf[dev] {
		return
	}
	u.conf[dev] = true
	if call, ok := u.call(dev); ok {
		c.changedLocked(u, psync.PhoneEvent{Kind: psync.PhoneCallChanged, Call: call})
	}
}

func (c *Conn) presenceState(presentity, status, subtype string) {
	ext, ok := cutPrefixFold(presentity, "CustomPresence:")
	if !ok || !c.cfg.Presence {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.byExt[ext]
	if u == nil || len(u.exts) == 0 || u.exts[0] != ext {
		return
	}
	c.setPresenceLocked(u, presenceOf(status, subtype))
}

func (c *Conn) setPresenceLocked(u *uState, p psync.PhonePresence) {
	if u.presence == p {
		return
	}
	u.presence = p
	c.changedLocked(u, psync.PhoneEvent{Kind: psync.PhonePresenceChanged, Presence: p})
}

// setDNDLocked records an extension's protection; when the user's shown
// value changes, every device of theirs reports it.
func (c *Conn) setDNDLocked(u *uState, ext string, on bool) {
	was := u.anyDND()
	u.dnd[ext] = on
	if now := u.anyDND(); now != was {
		for _, d := range u.devices {
			c.changedLocked(u, psync.PhoneEvent{Kind: psync.PhoneDeviceChanged, Device: psync.Device{ID: d, DND: now, Name: d}})
		}
	}
}

// changedLocked sends a change once the connection is synced; before that
// the snapshot will carry it.
func (c *Conn) changedLocked(u *uState, ev psync.PhoneEvent) {
	if !c.emit || c.out == nil {
		return
	}
	ev.User = u.user.ID
	ev.Version = u.nextVersion()
	c.pushLocked(ev)
}

func (c *Conn) pushLocked(ev psync.PhoneEvent) {
	if c.out == nil {
		return
	}
	if !c.out.push(ev) {
		// The engine is far behind: rather than lose a change, drop the
		// connection; the reconnect sends everyone's snapshot.
		c.out.reset()
		c.emit = false
		if c.cur != nil {
			go c.cur.close(errors.New("the engine fell behind the AMI events; resyncing"))
		}
	}
}

func (c *Conn) down(err error, wasSynced bool, wait time.Duration) {
	if err == nil {
		err = errors.New("connection closed")
	}
	detail := "cannot connect to the AMI: " + err.Error()
	if wasSynced {
		detail = "AMI connection lost: " + err.Error()
	}
	if wait > 0 {
		detail += "; retrying in " + wait.Round(time.Millisecond).String()
	} else {
		detail += "; reconnecting now"
	}
	c.log.Warn("AMI down", "err", err, "retry_in", wait, "was_synced", wasSynced)
	var le *loginError
	switch {
	case errors.As(err, &le):
		c.problem(le.Error(), "check asterisk.user / asterisk.secret; the account needs:\n"+ManagerStanza(c.cfg.User))
	case wasSynced:
		c.problem(detail, "")
	default:
		c.problem(detail, "check asterisk.host and that the AMI is enabled (manager.conf [general] enabled = yes, port 5038)")
	}
	c.rmu.Lock()
	c.rep.connected = false
	c.rmu.Unlock()
	c.mu.Lock()
	c.emit, c.cur = false, nil
	c.pushLocked(psync.PhoneEvent{Kind: psync.PhoneHealth, Healthy: false, Detail: detail})
	c.mu.Unlock()
}

func (c *Conn) problem(what, fix string) {
	now := time.Now()
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

// Report implements psync.Reporter.
func (c *Conn) Report() psync.SideReport {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	name := "FreePBX (AMI)"
	if c.cfg.Profile == ProfileAsterisk {
		name = "Asterisk (AMI)"
	}
	r := psync.SideReport{Side: psync.SidePhone, Name: name, Mode: "ami", Endpoint: c.cfg.Host,
		Connected: c.rep.connected, Errors: slices.Clone(c.rep.problems)}
	if c.rep.banner != "" {
		r.Facts = append(r.Facts, psync.Fact{Label: "server", Value: c.rep.banner})
	}
	if !c.rep.since.IsZero() {
		r.Facts = append(r.Facts, psync.Fact{Label: "connected since", Value: c.rep.since.Format(time.RFC3339), Warn: !c.rep.connected})
	}
	r.Facts = append(r.Facts,
		psync.Fact{Label: "users", Value: strconv.Itoa(c.rep.users)},
		psync.Fact{Label: "devices watched", Value: strconv.Itoa(c.rep.devices)},
		psync.Fact{Label: "reconnects", Value: strconv.Itoa(c.rep.reconnects)},
		psync.Fact{Label: "profile", Value: c.cfg.Profile},
	)
	return r
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if hasPrefixFold(s, prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
