package asterisk_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/asterisk"
	"github.com/presencebridge/presencebridge/sync/asterisk/amisim"
)

const (
	testUser   = "bridge"
	testSecret = "s3cret-for-tests"
)

// startSim starts a simulator with the bridge's least-privilege account,
// extension 201 (devices 201 and 211) and 202.
func startSim(t testing.TB, accounts ...map[string]amisim.Account) *amisim.Server {
	t.Helper()
	acc := map[string]amisim.Account{testUser: {Secret: testSecret, Read: "call", Write: "system,call"}}
	for _, a := range accounts {
		for k, v := range a {
			acc[k] = v
		}
	}
	sim := amisim.New(amisim.Options{Accounts: acc})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sim.AddExtension("201", "201", "211")
	sim.AddExtension("202")
	return sim
}

var (
	anna = psync.User{ID: "anna", Extension: "201"}
	ben  = psync.User{ID: "ben", Extension: "202"}
)

func testConfig(sim *amisim.Server) asterisk.Config {
	return asterisk.Config{
		Host: sim.Addr(), User: testUser, Secret: testSecret,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		ActionTimeout: 2 * time.Second, ConnectTimeout: 2 * time.Second,
	}
}

// watcher folds the connector's events the way the engine does and checks
// that every user's versions only grow.
type watcher struct {
	t      testing.TB
	mu     sync.Mutex
	state  map[psync.UserID]psync.PhoneState
	ver    map[psync.UserID]uint64
	all    []psync.PhoneEvent
	synced int
	health []psync.PhoneEvent
	bad    []string
	change chan struct{}
}

func newWatcher(t testing.TB) *watcher {
	return &watcher{t: t, state: map[psync.UserID]psync.PhoneState{}, ver: map[psync.UserID]uint64{}, change: make(chan struct{}, 1)}
}

func (w *watcher) apply(ev psync.PhoneEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all = append(w.all, ev)
	if ev.User != "" {
		if ev.Version <= w.ver[ev.User] {
			w.bad = append(w.bad, fmt.Sprintf("user %s: version %d after %d", ev.User, ev.Version, w.ver[ev.User]))
		}
		w.ver[ev.User] = ev.Version
	}
	s := w.state[ev.User]
	switch ev.Kind {
	case psync.PhoneSnapshot:
		w.state[ev.User] = ev.State.Clone()
		return
	case psync.PhoneSynced:
		w.synced++
	case psync.PhoneHealth:
		w.health = append(w.health, ev)
	case psync.PhonePresenceChanged:
		s.Presence = ev.Presence
	case psync.PhoneDeviceChanged:
		for i := range s.Devices {
			if s.Devices[i].ID == ev.Device.ID {
				s.Devices[i].DND = ev.Device.DND
			}
		}
	case psync.PhoneCallChanged:
		s.Calls = slices.DeleteFunc(s.Calls, func(c psync.Call) bool { return c.ID == ev.Call.ID })
		if ev.Call.State != psync.CallEnded {
			s.Calls = append(s.Calls, ev.Call)
		}
	}
	if ev.User != "" {
		w.state[ev.User] = s
	}
}

// run starts Run with a pump into the watcher and stops it at cleanup.
func (w *watcher) run(c *asterisk.Conn, users ...psync.User) {
	ch := make(chan psync.PhoneEvent)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, users, ch)
	}()
	go func() {
		for {
			select {
			case ev := <-ch:
				w.apply(ev)
				select {
				case w.change <- struct{}{}:
				default:
				}
			case <-done:
				return
			}
		}
	}()
	w.t.Cleanup(func() {
		cancel()
		<-done
		c.Close()
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.bad) > 0 {
			w.t.Errorf("versions went backwards: %v", w.bad)
		}
	})
}

// waitFor waits until cond (called under the watcher's lock) holds.
func (w *watcher) waitFor(what string, cond func(w *watcher) bool) {
	w.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		ok := cond(w)
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w.change:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			w.mu.Lock()
			defer w.mu.Unlock()
			w.t.Fatalf("timed out waiting for %s; state %+v; last events %v", what, w.state, tail(w.all, 8))
		}
	}
}

func tail(evs []psync.PhoneEvent, n int) []psync.PhoneEvent {
	if len(evs) > n {
		return evs[len(evs)-n:]
	}
	return evs
}

func (w *watcher) user(id psync.UserID) psync.PhoneState { return w.state[id] }

func (w *watcher) calls(id psync.UserID) []psync.Call { return w.state[id].Calls }

// dnd reports whether every device of the user shows DND on (and there are
// devices).
func (w *watcher) dnd(id psync.UserID, on bool) bool {
	d := w.state[id].Devices
	if len(d) == 0 {
		return false
	}
	for _, x := range d {
		if x.DND != on {
			return false
		}
	}
	return true
}

func (w *watcher) healthDetails() string {
	var s []string
	for _, h := range w.health {
		s = append(s, fmt.Sprintf("%v:%s", h.Healthy, h.Detail))
	}
	return strings.Join(s, " | ")
}

// connect builds a Conn, runs it and waits for the first PhoneSynced.
func connect(t testing.TB, cfg asterisk.Config, users ...psync.User) (*asterisk.Conn, *watcher) {
	t.Helper()
	c, err := asterisk.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := newWatcher(t)
	w.run(c, users...)
	w.waitFor("first sync", func(w *watcher) bool { return w.synced >= 1 })
	return c, w
}

// waitSim waits for a condition on the simulator.
func waitSim(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
