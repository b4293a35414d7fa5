package sip

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"sync"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// busyTable is the Kamailio htable the front proxy checks before it routes
// a call (busy-on-busy, sip-presence.md §6.1). kamailioRPC (kamailio.go)
// implements it over jsonrpcs; tests use a fake.
type busyTable interface {
	SetBusy(ctx context.Context, ext string, ttl time.Duration) error
	ClearBusy(ctx context.Context, ext string) error
	Busy(ctx context.Context, ext string) (bool, error)
}

// Conn is the SIP phone-system connector (psync.PhoneSystem).
type Conn struct {
	cfg  Config
	busy busyTable // writer kamailio; nil otherwise
	// busyMu orders the writes to the busy table (set, clear, refresh).
	busyMu sync.Mutex
	// pubMu orders the PUBLISHes: each depends on the entity-tag the one
	// before it got.
	pubMu sync.Mutex

	mu    sync.Mutex
	st    *stack // the running stack; nil outside Run
	subs  map[string]*subscription
	seq   uint64
	exts  map[string]psync.UserID // watched extensions of the current Run
	pubs  map[psync.UserID]*publication
	prot  map[string]bool // extensions whose busy entry the bridge holds
	notes chan note
	done  chan struct{} // closed when Run's loop stops taking notes

	rep report
}

var _ psync.PhoneSystem = (*Conn)(nil)

// New builds a connector; nothing is sent before Run.
func New(cfg Config) (*Conn, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	c := &Conn{cfg: cfg, subs: map[string]*subscription{}, pubs: map[psync.UserID]*publication{}, prot: map[string]bool{}}
	if cfg.Writer == WriterKamailio {
		c.busy = cfg.busy
		if c.busy == nil {
			if c.busy, err = newBusyTable(cfg); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// note is what the subscription side tells the Run loop.
type note struct {
	kind  noteKind
	ext   string
	seq   uint64 // order of noteCalls, assigned under Conn.mu
	sub   string // Call-ID of the subscription that produced it
	calls []psync.Call
	err   error
	user  psync.UserID     // noteEvent
	event psync.PhoneEvent // noteEvent: a writer's confirmed change
}

type noteKind uint8

const (
	noteCalls noteKind = iota + 1 // an extension's calls (full list)
	noteDown                      // a subscription ended or failed
	noteEvent                     // a write the bridge made (presence, DND)
)

// post hands a note to the Run loop; after Run ended it is dropped.
func (c *Conn) post(n note) {
	c.mu.Lock()
	ch, done := c.notes, c.done
	c.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- n:
	case <-done:
	}
}

// extState is the Run loop's view of one extension.
type extState struct {
	user  psync.UserID
	sub   string // subscription whose calls these are
	seq   uint64
	ready bool // the current subscription has delivered state
	tried bool // at least one attempt ended (ready or failed)
	err   error
	calls []psync.Call
}

// Run subscribes every extension of the users and reports their calls
// until ctx ends; then it un-SUBSCRIBEs and returns.
func (c *Conn) Run(ctx context.Context, users []psync.User, events chan<- psync.PhoneEvent) error {
	exts, err := Extensions(users, c.cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", psync.ErrRejected, err)
	}
	st, err := startStack(c.cfg, c.onNotify)
	if err != nil {
		return err
	}
	notes := make(chan note, 64)
	done := make(chan struct{})
	c.mu.Lock()
	c.st, c.exts, c.notes, c.done = st, exts, notes, done
	c.mu.Unlock()

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if c.cfg.Register {
		first := make(chan struct{})
		wg.Add(1)
		go func() { defer wg.Done(); c.registerLoop(runCtx, st, first) }()
		select {
		case <-first:
		case <-ctx.Done():
		}
	}
	names := make([]string, 0, len(exts))
	for ext := range exts {
		names = append(names, ext)
	}
	sort.Strings(names)
	for _, ext := range names {
		wg.Add(1)
		go func() { defer wg.Done(); c.subLoop(runCtx, st, ext, seedOf(ext)) }()
	}
	if c.busy != nil {
		wg.Add(1)
		go func() { defer wg.Done(); c.refreshBusy(runCtx) }()
	}
	if c.cfg.Writer != WriterNone {
		wg.Add(1)
		go func() { defer wg.Done(); c.refreshPublications(runCtx) }()
	}

	loopErr := c.loop(ctx, users, exts, notes, events)

	cancel()
	// The subscription loops un-SUBSCRIBE on their way out; the loop
	// keeps draining notes meanwhile so none of them blocks.
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
drain:
	for {
		select {
		case <-notes:
		case <-stopped:
			break drain
		}
	}
	c.mu.Lock()
	close(done)
	c.st, c.notes = nil, nil
	c.mu.Unlock()
	st.close()
	return loopErr
}

func seedOf(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// loop owns the per-user view: it turns subscription notes into events.
func (c *Conn) loop(ctx context.Context, users []psync.User, exts map[string]psync.UserID, notes <-chan note, events chan<- psync.PhoneEvent) error {
	state := map[string]*extState{}
	byUser := map[psync.UserID][]string{}
	for ext, u := range exts {
		state[ext] = &extState{user: u}
		byUser[u] = append(byUser[u], ext)
	}
	for u := range byUser {
		sort.Strings(byUser[u])
	}
	version := map[psync.UserID]uint64{}
	synced, healthy := false, true
	send := func(ev psync.PhoneEvent) bool {
		if ev.User != "" {
			version[ev.User]++
			ev.Version = version[ev.User]
		}
		select {
		case events <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	snapshot := func(u psync.UserID) bool {
		return send(psync.PhoneEvent{Kind: psync.PhoneSnapshot, User: u, State: c.userState(ctx, u, byUser[u], state)})
	}
	// settled: every extension has had its first attempt; up: how many
	// have state now.
	count := func() (settled bool, up int, lastErr error) {
		settled = true
		for _, e := range state {
			if !e.tried {
				settled = false
			}
			if e.ready {
				up++
			} else if e.err != nil {
				lastErr = e.err
			}
		}
		return
	}
	syncAll := func() bool {
		for _, u := range users {
			if !snapshot(u.ID) {
				return false
			}
		}
		return send(psync.PhoneEvent{Kind: psync.PhoneSynced})
	}
	if len(state) == 0 {
		// Nobody has an extension: there is nothing to wait for.
		if !syncAll() {
			return nil
		}
		synced = true
	}
	for {
		var n note
		select {
		case <-ctx.Done():
			return nil
		case n = <-notes:
		}
		if n.kind == noteEvent {
			if !send(n.event) {
				return nil
			}
			continue
		}
		e := state[n.ext]
		if e == nil {
			continue
		}
		switch n.kind {
		case noteDown:
			e.ready, e.tried, e.err = false, true, n.err
		case noteCalls:
			if n.seq <= e.seq {
				continue // an older NOTIFY overtaken by a newer one
			}
			e.seq, e.tried, e.err = n.seq, true, nil
			fresh := !e.ready || n.sub != e.sub
			old := e.calls
			e.ready, e.sub, e.calls = true, n.sub, n.calls
			if synced && healthy {
				if fresh {
					// A (re)subscription brings full state: the user's
					// snapshot is resent rather than guessed as changes.
					if !snapshot(e.user) {
						return nil
					}
				} else {
					for _, ch := range callChanges(old, n.calls) {
						if !send(psync.PhoneEvent{Kind: psync.PhoneCallChanged, User: e.user, Call: ch}) {
							return nil
						}
					}
				}
			}
		}
		settled, up, lastErr := count()
		if settled {
			c.noteSubscriptions(up, len(state), lastErr)
		}
		switch {
		case settled && up == 0 && healthy:
			healthy = false
			detail := "no dialog subscription is up"
			if lastErr != nil {
				detail += ": " + lastErr.Error()
			}
			if !send(psync.PhoneEvent{Kind: psync.PhoneHealth, Healthy: false, Detail: detail}) {
				return nil
			}
		case settled && up > 0 && (!synced || !healthy):
			// First state, or back after every subscription was lost
			// (a server restart): everything is read again.
			wasUnhealthy := !healthy
			synced, healthy = true, true
			if !syncAll() {
				return nil
			}
			if wasUnhealthy && !send(psync.PhoneEvent{Kind: psync.PhoneHealth, Healthy: true, Detail: "dialog subscriptions are up again"}) {
				return nil
			}
		}
	}
}

// userState is one user's full state: devices are their extensions.
func (c *Conn) userState(ctx context.Context, u psync.UserID, exts []string, state map[string]*extState) psync.PhoneState {
	ps := psync.PhoneState{Presence: psync.PhoneNotSet}
	c.mu.Lock()
	if p := c.pubs[u]; p != nil && p.live(time.Now()) {
		ps.Presence, ps.PresenceUntil = p.presence, p.until
	}
	c.mu.Unlock()
	for _, ext := range exts {
		ps.Devices = append(ps.Devices, psync.Device{ID: ext, Name: "ext " + ext, DND: c.deviceDND(ctx, ext)})
		ps.Calls = append(ps.Calls, state[ext].calls...)
	}
	return ps
}

// callChanges lists what turns old into new: changed or new calls, and
// CallEnded for the ones gone.
func callChanges(old, new []psync.Call) []psync.Call {
	var out []psync.Call
	for _, n := range new {
		i := slices.IndexFunc(old, func(o psync.Call) bool { return o.ID == n.ID })
		if i < 0 || old[i] != n {
			out = append(out, n)
		}
	}
	for _, o := range old {
		if !slices.ContainsFunc(new, func(n psync.Call) bool { return n.ID == o.ID }) {
			out = append(out, psync.Call{ID: o.ID, Device: o.Device, State: psync.CallEnded})
		}
	}
	return out
}

// running returns the live stack, or a not-sent error for writes made
// while Run is not running.
func (c *Conn) running() (*stack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil {
		return nil, psync.NotSent(fmt.Errorf("sip: %w: the connector is not running", psync.ErrUnavailable))
	}
	return c.st, nil
}

// userExtensions returns the extensions of u in the current Run, sorted.
func (c *Conn) userExtensions(u psync.UserID) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for ext, owner := range c.exts {
		if owner == u {
			out = append(out, ext)
		}
	}
	sort.Strings(out)
	return out
}

var _ psync.PhoneAbilities = (*Conn)(nil)

// Abilities says which writes sip.writer allows: none reads only; publish
// writes presence; kamailio writes presence and call protection.
func (c *Conn) Abilities() psync.PhoneAbility {
	switch c.cfg.Writer {
	case WriterPublish:
		return psync.AbilityPresence
	case WriterKamailio:
		return psync.AbilityPresence | psync.AbilityProtection
	}
	return 0
}

var errReadOnly = errors.New("sip.writer is none: the bridge only reads calls; set sip.writer publish or kamailio to write")
