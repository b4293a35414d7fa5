package teams_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
	"github.com/presencebridge/presencebridge/sync/teams"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

// bridge is the real engine with the real adapter against graphsim, the
// simulated phone system and the real store.
type bridge struct {
	t      testing.TB
	sim    *graphsim.Server
	client *teams.Client
	phone  *simoffice.Phone
	db     *store.DB
	e      *psync.Engine
	cancel context.CancelFunc
	done   chan error
}

func newBridge(t testing.TB, n int, tune func(*teams.Config)) *bridge {
	t.Helper()
	b := &bridge{t: t, sim: newSim(t, simOpts{users: n}), phone: simoffice.NewPhone(psync.RealClock{}), done: make(chan error, 1)}
	cfg := config(b.sim)
	cfg.MinPollInterval, cfg.PollShare = 20*time.Millisecond, 100
	if tune != nil {
		tune(&cfg)
	}
	b.client = newClient(t, cfg)
	b.db = openStore(t)
	us := users(n)
	for i := range us {
		us[i].TeamsID = userID(i)
		b.phone.AddUser(us[i].ID, "desk", "softphone")
	}
	var err error
	b.e, err = psync.NewEngine(psync.EngineConfig{
		Settings: psync.DefaultSettings(), Profiles: simoffice.Profiles(), Users: us,
		Teams: b.client, Phone: b.phone, Journal: b.db,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() { b.done <- b.e.Run(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := b.e.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
		<-b.done // the store closes after this (cleanups run last-in first-out)
	})
	b.eventually("synced", func() bool {
		st, err := b.e.Status(context.Background())
		return err == nil && st.Teams.Synced && st.Phone.Synced
	})
	return b
}

func (b *bridge) eventually(what string, f func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ourSession is the bridge's session of user i in graphsim, if any.
func (b *bridge) ourSession(i int) (graphsim.Session, bool) {
	ss, _ := b.sim.Sessions(userID(i))
	for _, s := range ss {
		if s.AppID == appID {
			return s, true
		}
	}
	return graphsim.Session{}, false
}

func (b *bridge) writes(i int) (sets, clears int) {
	for _, q := range b.sim.Requests() {
		if !strings.Contains(q.Path, userID(i)) {
			continue
		}
		switch {
		case strings.HasSuffix(q.Path, "/setPresence"):
			sets++
		case strings.HasSuffix(q.Path, "/clearPresence"):
			clears++
		}
	}
	return
}

func TestEngine_PhoneCallThroughGraph(t *testing.T) {
	b := newBridge(t, 2, nil)
	b.phone.Call("201", "desk", "c1", psync.CallConnected)
	b.eventually("Teams shows the call", func() bool {
		p, _ := b.sim.Presence(userID(0))
		return p.Availability == "Busy" && p.Activity == "InACall"
	})
	if s, ok := b.ourSession(0); !ok || s.ID != appID {
		t.Fatalf("session %+v", s)
	}
	// The echo of the bridge's own session must not reach the phone: once
	// the engine has read it back from Graph and settled, the phone is as
	// it was.
	b.eventually("the echo read back", func() bool {
		u, err := b.e.User(context.Background(), "201")
		return err == nil && u.Echo
	})
	if err := b.e.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := b.phone.State("201").Presence; p == psync.PhoneBusy || p == psync.PhoneDND {
		t.Fatalf("echo applied to the phone: %s", p)
	}
	b.phone.Call("201", "desk", "c1", psync.CallEnded)
	b.eventually("session cleared", func() bool { _, ok := b.ourSession(0); return !ok })
	b.eventually("no holds", func() bool { hs, _ := b.db.Holds(); return len(hs) == 0 })
	if sets, clears := b.writes(0); sets != 1 || clears != 1 {
		t.Fatalf("Graph writes for one call: %d sets, %d clears; want 1 and 1", sets, clears)
	}
}

func TestEngine_TeamsCallReachesThePhone(t *testing.T) {
	b := newBridge(t, 2, nil)
	if err := b.sim.StartTeamsCall(userID(1)); err != nil {
		t.Fatal(err)
	}
	b.eventually("phone busy", func() bool { return b.phone.State("202").Presence == psync.PhoneBusy })
	if err := b.sim.EndCall(userID(1)); err != nil {
		t.Fatal(err)
	}
	b.eventually("phone restored", func() bool { return b.phone.State("202").Presence == psync.PhoneNotSet })
}

// A Teams call that started while the bridge's session hid it is seen when
// the phone call ends: the read after clearPresence shows it.
func TestEngine_TeamsCallHiddenBehindSession(t *testing.T) {
	b := newBridge(t, 1, nil)
	b.phone.Call("201", "desk", "c1", psync.CallConnected)
	b.eventually("session", func() bool { _, ok := b.ourSession(0); return ok })
	if err := b.sim.StartTeamsCall(userID(0)); err != nil {
		t.Fatal(err)
	}
	b.phone.Call("201", "desk", "c1", psync.CallEnded)
	b.eventually("session cleared", func() bool { _, ok := b.ourSession(0); return !ok })
	b.eventually("the Teams call now drives the phone", func() bool { return b.phone.State("201").Presence == psync.PhoneBusy })
	if err := b.sim.EndCall(userID(0)); err != nil {
		t.Fatal(err)
	}
	b.eventually("phone restored", func() bool { return b.phone.State("201").Presence == psync.PhoneNotSet })
}

// Graph down for a while: the engine keeps the target and converges.
func TestEngine_ConvergesAfterGraphOutage(t *testing.T) {
	b := newBridge(t, 1, nil)
	remove := b.sim.InjectFault(graphsim.Fault{Path: "/v1.0/", Status: 500})
	b.phone.Call("201", "desk", "c1", psync.CallConnected)
	b.eventually("outage seen", func() bool {
		st, _ := b.e.Status(context.Background())
		return st.Stats.Failures > 0
	})
	remove()
	b.eventually("Teams shows the call after the outage", func() bool {
		p, _ := b.sim.Presence(userID(0))
		return p.Activity == "InACall"
	})
	b.phone.Call("201", "desk", "c1", psync.CallEnded)
	b.eventually("cleared", func() bool { _, ok := b.ourSession(0); return !ok })
}

// One phone call of 12 minutes: 1 set, a keep-alive every 5 minutes and 1
// clear, nothing redundant (graph-presence.md: a peer sends 4–5 for a call).
func TestEngine_GraphWritesPerCall(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	cfg := config(s)
	cfg.MinPollInterval, cfg.PollShare = 20*time.Millisecond, 100
	c := newClient(t, cfg)
	clock := psync.NewManualClock(time.Now())
	phone := simoffice.NewPhone(clock)
	phone.AddUser("201", "desk")
	us := users(1)
	us[0].TeamsID = userID(0)
	e, err := psync.NewEngine(psync.EngineConfig{Settings: psync.DefaultSettings(), Profiles: simoffice.Profiles(), Users: us,
		Teams: c, Phone: phone, Journal: openStore(t), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	b := &bridge{t: t, sim: s, e: e}
	b.eventually("synced", func() bool {
		st, err := e.Status(ctx)
		return err == nil && st.Teams.Synced && st.Phone.Synced
	})
	phone.Call("201", "desk", "c1", psync.CallConnected)
	b.eventually("set", func() bool { n, _ := b.writes(0); return n == 1 })
	idle := func() bool { st, err := e.Status(ctx); return err == nil && st.InFlight == 0 && st.Queued == 0 }
	for k := 1; k <= 2; k++ {
		// The keep-alive is due 5 minutes after the last write was
		// answered: let the engine see the answer before time moves.
		b.eventually("idle", idle)
		for range 10 { // 5 minutes in 30-second steps
			clock.Advance(30 * time.Second)
			time.Sleep(2 * time.Millisecond)
		}
		b.eventually("keep-alive", func() bool { n, _ := b.writes(0); return n == 1+k })
	}
	clock.Advance(2 * time.Minute)
	phone.Call("201", "desk", "c1", psync.CallEnded)
	b.eventually("clear", func() bool { _, n := b.writes(0); return n == 1 })
	time.Sleep(200 * time.Millisecond)
	if sets, clears := b.writes(0); sets != 3 || clears != 1 {
		t.Fatalf("12-minute call: %d sets (1 + 2 keep-alives expected), %d clears", sets, clears)
	}
}

// openStore opens a store in a temporary directory, closed after the test.
func openStore(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "pb.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
