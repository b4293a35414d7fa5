package sync_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

// world is the outside that survives the bridge: Teams, the phone system
// and the people, on one clock. The step counter stops the bridge's
// "process" after a given number of steps (journal writes and side calls):
// from then on every write and call it makes fails without effect, as if
// the process had died at that instant.
type world struct {
	clock *psync.ManualClock
	teams *simoffice.Teams
	phone *simoffice.Phone
	steps atomic.Int64
	limit atomic.Int64 // steps allowed; -1 = no limit
}

var errDead = errors.New("process killed")

func (w *world) step() error {
	n := w.steps.Add(1)
	if l := w.limit.Load(); l >= 0 && n > l {
		return errDead
	}
	return nil
}

// deadJournal is the store as seen by a process that may die.
type deadJournal struct {
	db *store.DB
	w  *world
}

func (j deadJournal) PutHold(h psync.Hold) error {
	if err := j.w.step(); err != nil {
		return err
	}
	return j.db.PutHold(h)
}

func (j deadJournal) DeleteHold(k psync.HoldKey) error {
	if err := j.w.step(); err != nil {
		return err
	}
	return j.db.DeleteHold(k)
}

func (j deadJournal) Holds() ([]psync.Hold, error) { return j.db.Holds() }

func (j deadJournal) SaveLastKnown(b []psync.LastKnown) error {
	if l := j.w.limit.Load(); l >= 0 && j.w.steps.Load() >= l {
		return errDead
	}
	return j.db.SaveLastKnown(b)
}

func (j deadJournal) AppendAudit(b []psync.Decision) error {
	if l := j.w.limit.Load(); l >= 0 && j.w.steps.Load() >= l {
		return errDead
	}
	return j.db.AppendAudit(b)
}

type bridge struct {
	e      *psync.Engine
	cancel context.CancelFunc
	done   chan error
	db     *store.DB
}

func startBridge(t *testing.T, w *world, path string) *bridge {
	t.Helper()
	db, err := store.Open(path, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	users := testUsers()
	e, err := psync.NewEngine(psync.EngineConfig{Profiles: simoffice.Profiles(), Users: users, Teams: w.teams, Phone: w.phone, Journal: deadJournal{db, w}, Clock: w.clock,
		Observe: func(d psync.Decision) { t.Log(d.String()) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &bridge{e: e, cancel: cancel, done: make(chan error, 1), db: db}
	go func() { b.done <- e.Run(ctx) }()
	return b
}

// kill stops the bridge without a shutdown and closes its store.
func (b *bridge) kill(t *testing.T) {
	b.cancel()
	if err := <-b.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := b.db.Check(); err != nil {
		t.Errorf("store check: %v", err)
	}
	if err := b.db.Close(); err != nil {
		t.Error(err)
	}
}

// idle waits until both sides are connected (the simulated sides drop
// what people do before that) and the bridge has settled.
func (b *bridge) idle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := b.e.Status(context.Background())
		if err == nil && st.Teams.Synced && st.Phone.Synced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sides never synced: %+v %v", st, err)
		}
		time.Sleep(time.Millisecond)
	}
	waitIdle(t, b.e)
}

// crashScript is what people do. Each act is followed by the bridge
// settling (when it is alive).
var crashScript = []struct {
	name string
	act  func(w *world)
}{
	{"201 answers a call", func(w *world) { w.phone.Call("201", "desk", "c1", psync.CallConnected) }},
	{"202 starts a Teams call", func(w *world) { w.teams.SetClient("202", "Busy", "InACall") }},
	{"201 makes it a conference", func(w *world) { w.phone.Call("201", "desk", "c1", psync.CallConference) }},
	{"five minutes pass (keep-alives)", func(w *world) { w.clock.Advance(5 * time.Minute) }},
	{"202 ends the Teams call", func(w *world) { w.teams.SetClient("202", "Available", "Available") }},
	{"201 hangs up", func(w *world) { w.phone.Call("201", "desk", "c1", psync.CallEnded) }},
	{"202 presents", func(w *world) { w.teams.SetClient("202", "DoNotDisturb", "Presenting") }},
	{"201 answers again", func(w *world) { w.phone.Call("201", "softphone", "c2", psync.CallConnected) }},
}

func newWorld() *world {
	w := &world{clock: psync.NewManualClock(t0)}
	w.teams = simoffice.NewTeams(w.clock)
	w.phone = simoffice.NewPhone(w.clock)
	w.phone.AddUser("201", "desk", "softphone")
	w.phone.AddUser("202", "desk", "softphone")
	w.limit.Store(-1)
	w.teams.Gate.SetHook(w.step)
	w.phone.Gate.SetHook(w.step)
	return w
}

// checkConverged asserts RULES.md §4.4 against the live world and
// the store: every Teams session matches a live phone call, every phone
// protection a live Teams call, and every hold in the store matches what
// is imposed.
func checkConverged(t *testing.T, w *world, db *store.DB) {
	t.Helper()
	// 201 (default profile): a Teams session iff a connected call.
	var wantSession string
	for _, c := range w.phone.State("201").Calls {
		switch c.State {
		case psync.CallConference:
			wantSession = psync.ActivityInAConferenceCall
		case psync.CallConnected, psync.CallHeld:
			if wantSession == "" {
				wantSession = psync.ActivityInACall
			}
		}
	}
	if got, _ := w.teams.BridgeSession("201"); got != wantSession {
		t.Errorf("201 Teams session %q, want %q", got, wantSession)
	}
	// 202 (protected): DND presence and every device iff a Teams call or
	// presenting.
	teams202 := psync.ClassifyTeams(w.teams.Presence("202"))
	busy := teams202 == psync.TeamsInCall || teams202 == psync.TeamsPresenting
	ph := w.phone.State("202")
	if (ph.Presence == psync.PhoneDND) != busy {
		t.Errorf("202 phone presence %s while Teams is %s", ph.Presence, teams202)
	}
	for _, d := range ph.Devices {
		if d.DND != busy {
			t.Errorf("202 device %s DND %v while Teams is %s", d.ID, d.DND, teams202)
		}
	}
	holds, err := db.Holds()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range holds {
		got[h.Key().String()] = h.Set
	}
	want := map[string]string{}
	if wantSession != "" {
		want["201/teams-session"] = wantSession
	}
	if busy {
		want["202/phone-presence"] = "dnd"
		want["202/device-protection/desk"] = "on"
		want["202/device-protection/softphone"] = "on"
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("holds in the store %v, want %v", got, want)
	}
}

// TestCrashRecovery runs the script once to count the bridge's steps, then
// once per step with the bridge killed right after it, restarted on the
// same database, and checked against §4.4 after the rest of the script ran
// while it was down.
func TestCrashRecovery(t *testing.T) {
	total := runCrashScript(t, -1)
	if total < 20 {
		t.Fatalf("the script took only %d steps", total)
	}
	for limit := int64(0); limit <= total; limit++ {
		t.Run(fmt.Sprintf("killed after step %d of %d", limit, total), func(t *testing.T) {
			runCrashScript(t, limit)
		})
	}
}

func runCrashScript(t *testing.T, limit int64) int64 {
	t.Helper()
	w := newWorld()
	path := filepath.Join(t.TempDir(), "state.db")
	b := startBridge(t, w, path)
	// Something the store must not lose.
	if err := b.db.SetSetting("teams.lease", "15m"); err != nil {
		t.Fatal(err)
	}
	b.idle(t)
	w.limit.Store(limit)
	alive := true
	for _, s := range crashScript {
		s.act(w)
		if !alive {
			continue
		}
		b.idle(t)
		if limit >= 0 && w.steps.Load() > limit {
			b.kill(t) // the world goes on without the bridge
			alive = false
		}
	}
	steps := w.steps.Load()
	if alive {
		b.idle(t)
		if limit < 0 {
			checkConverged(t, w, b.db)
			b.kill(t)
			return steps
		}
		b.kill(t)
	}
	w.limit.Store(-1)
	// Leases that ran out while the bridge was down lapse in the world.
	w.teams.Tick()
	w.phone.Tick()
	b = startBridge(t, w, path)
	b.idle(t)
	checkConverged(t, w, b.db)
	if v, err := b.db.Settings(); err != nil || v["teams.lease"] != "15m0s" {
		t.Errorf("setting lost across the crash: %v %v", v, err)
	}
	// A graceful stop then releases everything.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.e.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	b.kill(t)
	if s, _ := w.teams.BridgeSession("201"); s != "" {
		t.Errorf("session left after shutdown: %s", s)
	}
	if ph := w.phone.State("202"); ph.Presence != psync.PhoneNotSet || ph.Devices[0].DND || ph.Devices[1].DND {
		t.Errorf("202 left protected after shutdown: %+v", ph)
	}
	return steps
}
