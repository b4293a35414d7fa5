package sync_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

// memJournal is an in-memory Journal for engine tests (the store has its
// own tests; the crash tests use the real one).
type memJournal struct {
	mu     sync.Mutex
	holds  map[psync.HoldKey]psync.Hold
	audit  []psync.Decision
	known  map[psync.UserID]psync.LastKnown
	failPu error
}

func newMemJournal(holds ...psync.Hold) *memJournal {
	j := &memJournal{holds: map[psync.HoldKey]psync.Hold{}, known: map[psync.UserID]psync.LastKnown{}}
	for _, h := range holds {
		j.holds[h.Key()] = h
	}
	return j
}

func (j *memJournal) PutHold(h psync.Hold) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failPu != nil {
		return j.failPu
	}
	j.holds[h.Key()] = h
	return nil
}

func (j *memJournal) DeleteHold(k psync.HoldKey) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.holds, k)
	return nil
}

func (j *memJournal) Holds() ([]psync.Hold, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Collect(maps.Values(j.holds)), nil
}

func (j *memJournal) SaveLastKnown(b []psync.LastKnown) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, lk := range b {
		j.known[lk.User] = lk
	}
	return nil
}

func (j *memJournal) AppendAudit(b []psync.Decision) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.audit = append(j.audit, b...)
	return nil
}

func (j *memJournal) hold(k psync.HoldKey) (psync.Hold, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	h, ok := j.holds[k]
	return h, ok
}

func (j *memJournal) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.holds)
}

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

type harness struct {
	t      *testing.T
	clock  *psync.ManualClock
	teams  *simoffice.Teams
	phone  *simoffice.Phone
	j      *memJournal
	e      *psync.Engine
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	log    []psync.Decision
	// side, when set, is the phone side the engine sees instead of phone
	// itself (a connector that cannot make every write).
	side psync.PhoneSystem
}

// Users of the engine tests: 201 on the default profile, 202 protected.
func testUsers() []psync.User {
	return []psync.User{
		{ID: "201", UPN: "anna@contoso.example", DisplayName: "Anna", TeamsID: "t-201"},
		{ID: "202", UPN: "ben@contoso.example", DisplayName: "Ben", TeamsID: "t-202", Profile: "protected"},
	}
}

func newHarness(t *testing.T, j *memJournal) *harness {
	t.Helper()
	h := &harness{t: t, clock: psync.NewManualClock(t0), j: j, done: make(chan error, 1)}
	if h.j == nil {
		h.j = newMemJournal()
	}
	h.teams = simoffice.NewTeams(h.clock)
	h.phone = simoffice.NewPhone(h.clock)
	h.phone.AddUser("201", "desk", "softphone")
	h.phone.AddUser("202", "desk", "softphone")
	h.start()
	return h
}

func (h *harness) start() {
	h.t.Helper()
	var side psync.PhoneSystem = h.phone
	if h.side != nil {
		side = h.side
	}
	e, err := psync.NewEngine(psync.EngineConfig{
		Profiles: simoffice.Profiles(), Users: testUsers(),
		Teams: h.teams, Phone: side, Journal: h.j, Clock: h.clock,
		Observe: func(d psync.Decision) { h.mu.Lock(); h.log = append(h.log, d); h.mu.Unlock() },
	})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.e, h.cancel, h.done = e, cancel, make(chan error, 1)
	go func() { h.done <- e.Run(ctx) }()
	h.t.Cleanup(h.stop)
	h.waitSynced()
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.cancel = nil
}

func (h *harness) waitSynced() {
	h.eventually("both sides synced", func() bool {
		st, err := h.e.Status(context.Background())
		return err == nil && st.Teams.Synced && st.Phone.Synced
	})
}

// eventually waits for cond, which looks at the engine or the sides; the
// engine works on other goroutines, so the test waits for its effects.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for: %s\ndecisions:\n%s", what, h.decisions())
		}
		time.Sleep(time.Millisecond)
	}
}

// settle waits until the engine has nothing left to do: the simulated
// sides report every effect before a call returns, so after settle the
// test sees all consequences of its last step.
func (h *harness) settle() {
	h.t.Helper()
	waitIdle(h.t, h.e)
}

// waitIdle is Engine.Settle with a deadline.
func waitIdle(t *testing.T, e *psync.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Settle(ctx); err != nil {
		t.Fatalf("engine did not settle: %v", err)
	}
}

func (h *harness) decisions() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := ""
	for _, d := range h.log {
		s += d.String() + "\n"
	}
	return s
}

func (h *harness) user(id psync.UserID) psync.UserStatus {
	h.t.Helper()
	u, err := h.e.User(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

func (h *harness) session(id psync.UserID) string {
	a, _ := h.teams.BridgeSession(id)
	return a
}

func (h *harness) presence(id psync.UserID) psync.PhonePresence { return h.phone.State(id).Presence }

func (h *harness) dnd(id psync.UserID) map[string]bool {
	out := map[string]bool{}
	for _, d := range h.phone.State(id).Devices {
		out[d.ID] = d.DND
	}
	return out
}

func TestEngine_PhoneCallSetsTeams(t *testing.T) {
	h := newHarness(t, nil)
	h.phone.Call("201", "desk", "c1", psync.CallRinging)
	h.settle()
	if s := h.session("201"); s != "" {
		t.Fatalf("ringing set a session: %s", s)
	}
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	h.eventually("Busy/InACall", func() bool { return h.session("201") == psync.ActivityInACall })
	if _, ok := h.j.hold(psync.HoldKey{User: "201", Kind: psync.HoldTeamsSession}); !ok {
		t.Fatal("no hold in the journal while the session is set")
	}
	h.phone.Call("201", "desk", "c1", psync.CallHeld)
	h.settle()
	h.phone.Call("201", "desk", "c1", psync.CallConference)
	h.eventually("Busy/InAConferenceCall", func() bool { return h.session("201") == psync.ActivityInAConferenceCall })
	h.phone.Call("201", "desk", "c1", psync.CallEnded)
	h.eventually("session cleared", func() bool { return h.session("201") == "" })
	h.eventually("hold gone", func() bool { return h.j.count() == 0 })
	sets, clears := h.teams.Writes("201")
	if sets != 2 || clears != 1 {
		t.Fatalf("writes: %d sets, %d clears; want 2 (call, conference) and 1\n%s", sets, clears, h.decisions())
	}
	// The echo of the bridge's own session changed nothing on the phone.
	if p := h.presence("201"); p != psync.PhoneNotSet {
		t.Fatalf("phone presence %s after the bridge's own session", p)
	}
}

func TestEngine_KeepAlive(t *testing.T) {
	h := newHarness(t, nil)
	h.phone.Call("201", "softphone", "c1", psync.CallConnected)
	h.eventually("session", func() bool { return h.session("201") != "" })
	h.settle()
	_, exp1 := h.teams.BridgeSession("201")
	if want := t0.Add(10 * time.Minute); !exp1.Equal(want) {
		t.Fatalf("lease %s, want %s", exp1, want)
	}
	for i := 1; i <= 3; i++ {
		h.clock.Advance(5 * time.Minute)
		h.eventually("keep-alive", func() bool { s, _ := h.teams.Writes("201"); return s == 1+i })
		h.teams.Tick()
		if h.session("201") == "" {
			t.Fatalf("session lapsed after keep-alive %d", i)
		}
	}
	h.settle()
	hd, _ := h.j.hold(psync.HoldKey{User: "201", Kind: psync.HoldTeamsSession})
	if want := t0.Add(25 * time.Minute); !hd.Lease.Equal(want) {
		t.Fatalf("journal lease %s, want %s", hd.Lease, want)
	}
	h.phone.Call("201", "softphone", "c1", psync.CallEnded)
	h.eventually("cleared", func() bool { return h.session("201") == "" })
	sets, clears := h.teams.Writes("201")
	if sets != 4 || clears != 1 {
		t.Fatalf("writes %d/%d: want 1 set + 3 keep-alives + 1 clear", sets, clears)
	}
}

func TestEngine_TeamsCallSetsPhoneAndRestores(t *testing.T) {
	h := newHarness(t, nil)
	h.teams.SetClient("201", "Busy", "InACall")
	h.eventually("phone busy", func() bool { return h.presence("201") == psync.PhoneBusy })
	h.teams.SetClient("201", "Available", "Available")
	h.eventually("phone restored", func() bool { return h.presence("201") == psync.PhoneNotSet })
	h.eventually("hold gone", func() bool { return h.j.count() == 0 })
	if d := h.dnd("201"); d["desk"] || d["softphone"] {
		t.Fatalf("default profile protected devices: %v", d)
	}
}

func TestEngine_ProtectedProfile(t *testing.T) {
	h := newHarness(t, nil)
	h.phone.SetDNDByHand("202", "softphone", true) // the user's own DND stays theirs
	h.teams.SetClient("202", "Busy", "InAConferenceCall")
	h.eventually("DND presence and every device protected", func() bool {
		d := h.dnd("202")
		return h.presence("202") == psync.PhoneDND && d["desk"] && d["softphone"]
	})
	u := h.user("202")
	var heldByBridge int
	for _, hs := range u.Holds {
		if hs.HeldByBridge {
			heldByBridge++
		}
	}
	if heldByBridge != 1 { // the desk line; the softphone was the user's
		t.Fatalf("holds %+v", u.Holds)
	}
	h.teams.SetClient("202", "DoNotDisturb", "Presenting")
	h.settle()
	h.teams.SetClient("202", "Available", "Available")
	h.eventually("restored", func() bool {
		d := h.dnd("202")
		return h.presence("202") == psync.PhoneNotSet && !d["desk"] && d["softphone"]
	})
	h.eventually("no holds", func() bool { return h.j.count() == 0 })
}

// protectOnly is a phone side that keeps calls off devices but cannot
// change the presence (a SIP proxy's busy table).
type protectOnly struct{ *simoffice.Phone }

func (protectOnly) Abilities() psync.PhoneAbility { return psync.AbilityProtection }

func TestEngine_NoWritesTheConnectorCannotMake(t *testing.T) {
	h := &harness{t: t, clock: psync.NewManualClock(t0), j: newMemJournal(), done: make(chan error, 1)}
	h.teams = simoffice.NewTeams(h.clock)
	h.phone = simoffice.NewPhone(h.clock)
	h.phone.AddUser("201", "desk", "softphone")
	h.phone.AddUser("202", "desk", "softphone")
	h.side = protectOnly{h.phone}
	h.start()
	h.teams.SetClient("202", "Busy", "InACall")
	h.eventually("every device protected", func() bool {
		d := h.dnd("202")
		return d["desk"] && d["softphone"]
	})
	h.settle()
	if p := h.presence("202"); p != psync.PhoneNotSet {
		t.Fatalf("presence %v written by a connector without the ability", p)
	}
	h.mu.Lock()
	for _, d := range h.log {
		if d.Side == psync.SidePhone && d.What == "presence" {
			h.mu.Unlock()
			t.Fatalf("a presence write was planned: %s", d)
		}
	}
	h.mu.Unlock()
	h.teams.SetClient("202", "Available", "Available")
	h.eventually("protection released", func() bool {
		d := h.dnd("202")
		return !d["desk"] && !d["softphone"] && h.j.count() == 0
	})
}

func TestEngine_UserChangeWins(t *testing.T) {
	h := newHarness(t, nil)
	h.teams.SetClient("202", "Busy", "InACall")
	h.eventually("imposed", func() bool { return h.presence("202") == psync.PhoneDND && h.dnd("202")["desk"] })
	h.settle()
	h.phone.SetPresenceByHand("202", psync.PhoneAway)
	h.phone.SetDNDByHand("202", "desk", false)
	// The softphone's DND is still the bridge's.
	h.eventually("yielded", func() bool { return h.j.count() == 1 })
	h.settle()
	if p := h.presence("202"); p != psync.PhoneAway {
		t.Fatalf("bridge re-imposed: %s", p)
	}
	if h.dnd("202")["desk"] {
		t.Fatal("bridge re-imposed desk DND")
	}
	h.teams.SetClient("202", "Available", "Available")
	h.eventually("softphone restored", func() bool { return !h.dnd("202")["softphone"] && h.j.count() == 0 })
	h.settle()
	if p := h.presence("202"); p != psync.PhoneAway {
		t.Fatalf("bridge restored over the user's change: %s", p)
	}
}

func TestEngine_RestoreOnlyIfUnchanged(t *testing.T) {
	// The user changes the presence while the bridge's restore is on its
	// way: the phone system's compare-and-set refuses, the user wins.
	h := newHarness(t, nil)
	h.teams.SetClient("201", "Busy", "InACall")
	h.eventually("busy", func() bool { return h.presence("201") == psync.PhoneBusy })
	h.settle()
	var once sync.Once
	h.phone.Gate.SetHook(func() error {
		once.Do(func() { go h.phone.SetPresenceByHand("201", psync.PhoneDND) })
		time.Sleep(20 * time.Millisecond) // let the person act first
		return nil
	})
	h.teams.SetClient("201", "Available", "Available")
	h.eventually("hold dropped", func() bool { return h.j.count() == 0 })
	h.phone.Gate.SetHook(nil)
	h.settle()
	if p := h.presence("201"); p != psync.PhoneDND {
		t.Fatalf("presence %s, the user's DND was overwritten", p)
	}
}

func TestEngine_EchoAndTeamsCallDuringPhoneCall(t *testing.T) {
	h := newHarness(t, nil)
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	h.eventually("session", func() bool { return h.teams.Presence("201").Activity == psync.ActivityInACall })
	h.settle()
	if u := h.user("201"); !u.Echo || u.Text != "In call" {
		t.Fatalf("echo %v, text %q", u.Echo, u.Text)
	}
	if p := h.presence("201"); p != psync.PhoneNotSet {
		t.Fatalf("echo made the phone %s", p)
	}
	// A Teams call during the phone call cannot be told apart...
	h.teams.SetClient("201", "Busy", "InACall")
	h.settle()
	if p := h.presence("201"); p != psync.PhoneNotSet {
		t.Fatalf("phone %s during the bridge's session", p)
	}
	// ...until the phone call ends and Teams still reports a call.
	h.phone.Call("201", "desk", "c1", psync.CallEnded)
	h.eventually("Teams call recognised", func() bool { return h.presence("201") == psync.PhoneBusy })
	h.teams.SetClient("201", "Available", "Available")
	h.eventually("restored", func() bool { return h.presence("201") == psync.PhoneNotSet })
}

func TestEngine_TeamsCallThenPhoneCall(t *testing.T) {
	// A Teams call recognised before the bridge's session began keeps
	// counting while Teams reports a call.
	h := newHarness(t, nil)
	h.teams.SetClient("201", "Busy", "InACall")
	h.eventually("busy", func() bool { return h.presence("201") == psync.PhoneBusy })
	h.phone.Call("201", "softphone", "c1", psync.CallConnected)
	h.eventually("session", func() bool { return h.session("201") != "" })
	h.settle()
	if p := h.presence("201"); p != psync.PhoneBusy {
		t.Fatalf("Teams call forgotten when the session began: %s", p)
	}
}

func TestEngine_OverriddenInTeams(t *testing.T) {
	h := newHarness(t, nil)
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	h.eventually("session seen", func() bool { return h.user("201").Echo })
	h.teams.SetPreferred("201", "Away", "Away")
	h.eventually("overridden", func() bool { return h.user("201").Overridden })
	h.settle()
	if s, _ := h.teams.Writes("201"); s != 1 {
		t.Fatalf("bridge fought the user: %d sets", s)
	}
	if h.session("201") == "" {
		t.Fatal("bridge dropped its session")
	}
}

func TestEngine_OrderingDropsStale(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	newer := psync.TeamsPresence{Availability: "Busy", Activity: "InACall", Sequence: "ffff0000000000aa"}
	older := psync.TeamsPresence{Availability: "Available", Activity: "Available", Sequence: "ffff000000000001"}
	_ = h.e.PostTeams(ctx, psync.TeamsEvent{Kind: psync.TeamsPresenceChanged, User: "201", Presence: newer})
	_ = h.e.PostTeams(ctx, psync.TeamsEvent{Kind: psync.TeamsPresenceChanged, User: "201", Presence: older})
	h.eventually("busy", func() bool { return h.presence("201") == psync.PhoneBusy })
	h.settle()
	if u := h.user("201"); u.Teams.Sequence != newer.Sequence {
		t.Fatalf("older update overwrote newer: %+v", u.Teams)
	}
	// A phone event with an old version is dropped too.
	_ = h.e.PostPhone(ctx, psync.PhoneEvent{Kind: psync.PhoneCallChanged, User: "201", Version: 1, Call: psync.Call{ID: "x", Device: "desk", State: psync.CallConnected}})
	h.settle()
	if h.session("201") != "" {
		t.Fatal("stale phone event acted on")
	}
	st, _ := h.e.Status(ctx)
	if st.Stats.Stale < 2 {
		t.Fatalf("stale count %d", st.Stats.Stale)
	}
}

// A burst of changes while the first write waits to go out (for a request
// budget, a Retry-After, a busy side): the waiting write is checked right
// before it is sent, finds it is no longer wanted, and only the latest
// target is written (RULES.md §4.5).
func TestEngine_CoalescesBursts(t *testing.T) {
	h := newHarness(t, nil)
	release, entered := make(chan struct{}), make(chan struct{})
	var first sync.Once
	h.teams.Gate.SetHook(func() error {
		first.Do(func() { close(entered); <-release }) // hold the first write before the wire
		return nil
	})
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	<-entered
	before, _ := h.e.Status(context.Background())
	for i := range 20 {
		st := psync.CallHeld
		if i%2 == 0 {
			st = psync.CallConference
		}
		h.phone.Call("201", "desk", "c1", st)
	}
	h.phone.Call("201", "desk", "c1", psync.CallConference)
	// The whole burst reaches the engine while the first call is held: on
	// a loaded machine the phone side's events can lag behind the script.
	h.eventually("burst seen", func() bool {
		st, _ := h.e.Status(context.Background())
		return st.Stats.PhoneEvents >= before.Stats.PhoneEvents+21 && st.Queued == 0
	})
	close(release)
	h.settle()
	if got := h.session("201"); got != psync.ActivityInAConferenceCall {
		t.Fatalf("session %q, want the latest target %s", got, psync.ActivityInAConferenceCall)
	}
	if s, _ := h.teams.Writes("201"); s != 1 {
		t.Fatalf("%d setPresence calls for a burst of 22 changes; want 1 (the latest)\n%s", s, h.decisions())
	}
	if st, _ := h.e.Status(context.Background()); st.Stats.Superseded != 1 {
		t.Fatalf("superseded %d, want the first write", st.Stats.Superseded)
	}
}

func TestEngine_RetryAndConverge(t *testing.T) {
	h := newHarness(t, nil)
	h.teams.Gate.SetDown(true)
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	h.eventually("failure seen", func() bool { st, _ := h.e.Status(context.Background()); return st.Stats.Failures >= 1 })
	// The hold is written ahead even though Teams is down.
	if _, ok := h.j.hold(psync.HoldKey{User: "201", Kind: psync.HoldTeamsSession}); !ok {
		t.Fatal("no write-ahead hold")
	}
	h.clock.Advance(1500 * time.Millisecond) // first backoff: 1s ±20 %
	h.eventually("second failure", func() bool { st, _ := h.e.Status(context.Background()); return st.Stats.Failures >= 2 })
	h.teams.Gate.SetDown(false)
	h.clock.Advance(3 * time.Second) // second backoff: 2s ±20 %
	h.eventually("converged", func() bool { return h.session("201") == psync.ActivityInACall })

	// Throttling: Retry-After is believed.
	h.teams.Gate.FailNext(1, &psync.RetryAfterError{Wait: 30 * time.Second, Err: psync.ErrUnavailable})
	h.phone.Call("201", "desk", "c1", psync.CallEnded)
	h.eventually("throttled", func() bool { st, _ := h.e.Status(context.Background()); return st.Stats.Failures >= 3 })
	h.clock.Advance(29 * time.Second)
	h.settle()
	if h.session("201") == "" {
		t.Fatal("retried before Retry-After")
	}
	h.clock.Advance(time.Second)
	h.eventually("cleared", func() bool { return h.session("201") == "" })
}

func TestEngine_RejectedIsNotRetried(t *testing.T) {
	h := newHarness(t, nil)
	h.teams.Gate.FailNext(1, fmt.Errorf("400 bad request: %w", psync.ErrRejected))
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	h.eventually("failure", func() bool { st, _ := h.e.Status(context.Background()); return st.Stats.Failures == 1 })
	h.clock.Advance(time.Hour)
	h.settle()
	if h.session("201") != "" || h.j.count() != 0 {
		t.Fatal("rejected target retried or hold kept")
	}
	// A new target is tried again.
	h.phone.Call("201", "desk", "c1", psync.CallConference)
	h.eventually("conference", func() bool { return h.session("201") == psync.ActivityInAConferenceCall })
}

func TestEngine_WriteAheadFailureSendsNothing(t *testing.T) {
	h := newHarness(t, nil)
	h.j.mu.Lock()
	h.j.failPu = errors.New("disk full")
	h.j.mu.Unlock()
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	h.eventually("failure", func() bool { st, _ := h.e.Status(context.Background()); return st.Stats.Failures >= 1 })
	if s, _ := h.teams.Writes("201"); s != 0 {
		t.Fatal("side changed without a write-ahead record")
	}
	h.j.mu.Lock()
	h.j.failPu = nil
	h.j.mu.Unlock()
	h.clock.Advance(2 * time.Second)
	h.eventually("applied after the journal recovered", func() bool { return h.session("201") != "" })
}

func TestEngine_ShutdownReleasesEverything(t *testing.T) {
	h := newHarness(t, nil)
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	h.teams.SetClient("202", "Busy", "InACall")
	h.eventually("all imposed", func() bool {
		return h.session("201") != "" && h.presence("202") == psync.PhoneDND && h.dnd("202")["softphone"]
	})
	h.settle()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	h.stop()
	if h.session("201") != "" || h.presence("202") != psync.PhoneNotSet || h.dnd("202")["desk"] || h.dnd("202")["softphone"] {
		t.Fatalf("not released: session %q, presence %s, dnd %v", h.session("201"), h.presence("202"), h.dnd("202"))
	}
	if n := h.j.count(); n != 0 {
		t.Fatalf("%d holds left in the journal", n)
	}
}

func TestEngine_ShutdownWithSideDownKeepsHolds(t *testing.T) {
	h := newHarness(t, nil)
	h.phone.Call("201", "desk", "c1", psync.CallConnected)
	h.eventually("session", func() bool { return h.session("201") != "" })
	h.settle()
	h.teams.Gate.SetDown(true)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := h.e.Shutdown(ctx); !errors.Is(err, psync.ErrHoldsKept) {
		t.Fatalf("shutdown with Teams down: %v, want ErrHoldsKept", err)
	}
	h.stop()
	if h.j.count() != 1 {
		t.Fatalf("hold lost: %d in journal", h.j.count())
	}
}

func TestEngine_AdoptsHoldsOfPreviousRun(t *testing.T) {
	// A previous run left: a Teams session for 201 (no call any more), DND
	// on 202's phone presence and desk line (no Teams call any more), and
	// a hold for a user no longer configured.
	j := newMemJournal(
		psync.Hold{User: "201", Kind: psync.HoldTeamsSession, Set: psync.ActivityInACall, Since: t0, Lease: t0.Add(10 * time.Minute)},
		psync.Hold{User: "202", Kind: psync.HoldPhonePresence, Set: "dnd", Replaced: "available", Since: t0, Lease: t0.Add(10 * time.Minute)},
		psync.Hold{User: "202", Kind: psync.HoldDeviceProtection, Device: "desk", Set: "on", Replaced: "off", Since: t0},
		psync.Hold{User: "999", Kind: psync.HoldTeamsSession, Set: psync.ActivityInACall, Since: t0},
	)
	clock := psync.NewManualClock(t0)
	teams := simoffice.NewTeams(clock)
	phone := simoffice.NewPhone(clock)
	phone.AddUser("201", "desk")
	phone.AddUser("202", "desk", "softphone")
	// The world as the crash left it.
	_ = teams.SetPresence(context.Background(), psync.User{ID: "201"}, psync.ActivityInACall, 10*time.Minute)
	_ = phone.SetPresence(context.Background(), psync.User{ID: "202"}, psync.PresenceMark{Presence: psync.PhoneDND, Until: t0.Add(10 * time.Minute)}, nil)
	_ = phone.SetDeviceProtection(context.Background(), psync.User{ID: "202"}, "desk", true)

	h := &harness{t: t, clock: clock, teams: teams, phone: phone, j: j}
	h.start()
	h.eventually("released", func() bool {
		return h.session("201") == "" && h.presence("202") == psync.PhoneAvailable && !h.dnd("202")["desk"]
	})
	h.eventually("journal keeps only the orphan", func() bool { return j.count() == 1 })
	st, _ := h.e.Status(context.Background())
	if len(st.Orphans) != 1 {
		t.Fatalf("orphans %v", st.Orphans)
	}
}

func TestNewEngine_BadConfig(t *testing.T) {
	clock := psync.NewManualClock(t0)
	base := psync.EngineConfig{Teams: simoffice.NewTeams(clock), Phone: simoffice.NewPhone(clock), Journal: newMemJournal(), Clock: clock}
	cases := map[string]func(c *psync.EngineConfig){
		"no sides":        func(c *psync.EngineConfig) { c.Teams = nil },
		"unknown profile": func(c *psync.EngineConfig) { c.Users = []psync.User{{ID: "1", Profile: "nope"}} },
		"duplicate user":  func(c *psync.EngineConfig) { c.Users = []psync.User{{ID: "1"}, {ID: "1"}} },
		"empty user id":   func(c *psync.EngineConfig) { c.Users = []psync.User{{ID: " "}} },
		"bad profile":     func(c *psync.EngineConfig) { c.Profiles = []psync.Profile{{Name: "a b"}} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := base
			mutate(&c)
			if _, err := psync.NewEngine(c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestEngine_ProfileChangesApplyLive(t *testing.T) {
	h := newHarness(t, nil)
	h.teams.SetClient("201", "Busy", "InACall")
	h.eventually("phone busy", func() bool { return h.presence("201") == psync.PhoneBusy })
	if d := h.dnd("201"); d["desk"] || d["softphone"] {
		t.Fatalf("default profile protected devices: %v", d)
	}
	ctx := context.Background()
	if err := h.e.AssignProfile(ctx, "201", "protected"); err != nil {
		t.Fatal(err)
	}
	h.eventually("devices protected after the move", func() bool { d := h.dnd("201"); return d["desk"] && d["softphone"] })
	if got := h.user("201").Profile; got != "protected" {
		t.Fatalf("profile %q", got)
	}

	p := simoffice.Profiles()[1]
	if p.Name != "protected" {
		t.Fatalf("profile order changed: %s", p.Name)
	}
	p.CrossDeviceBusyOnBusy = false
	if err := h.e.PutProfile(ctx, p); err != nil {
		t.Fatal(err)
	}
	h.eventually("protection released when the flag goes off", func() bool { d := h.dnd("201"); return !d["desk"] && !d["softphone"] })

	if err := h.e.AssignProfile(ctx, "201", "nope"); err == nil {
		t.Fatal("unknown profile accepted")
	}
	if err := h.e.AssignProfile(ctx, "999", "default"); err == nil {
		t.Fatal("unknown user accepted")
	}
	if err := h.e.PutProfile(ctx, psync.Profile{Name: "bad name!"}); err == nil {
		t.Fatal("bad profile name accepted")
	}
	ps, err := h.e.Profiles(ctx)
	if err != nil || len(ps) != 3 {
		t.Fatalf("profiles %v %v", ps, err)
	}
	h.teams.SetClient("201", "Available", "Available")
	h.eventually("no holds", func() bool { return h.j.count() == 0 })
}

// countingPhone counts the protection writes the engine makes.
type countingPhone struct {
	*simoffice.Phone
	mu  sync.Mutex
	set map[string]int // "user/device" → SetDeviceProtection(on) calls
}

func (c *countingPhone) SetDeviceProtection(ctx context.Context, u psync.User, device string, on bool) error {
	if on {
		c.mu.Lock()
		c.set[string(u.ID)+"/"+device]++
		c.mu.Unlock()
	}
	return c.Phone.SetDeviceProtection(ctx, u, device, on)
}

func (c *countingPhone) sets(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set[key]
}

// A protection adopted from the previous run, still wanted (the Teams call
// goes on) and shown on the device, is written again once: where it is an
// entry with a lifetime (a SIP proxy's busy table) only a write of this run
// keeps it alive. The same after the phone side was lost and is back.
func TestEngine_AdoptedProtectionIsWrittenAgain(t *testing.T) {
	j := newMemJournal(psync.Hold{User: "202", Kind: psync.HoldDeviceProtection, Device: "desk", Set: "on", Replaced: "off", Since: t0})
	clock := psync.NewManualClock(t0)
	teams := simoffice.NewTeams(clock)
	phone := simoffice.NewPhone(clock)
	phone.AddUser("201", "desk")
	phone.AddUser("202", "desk")
	_ = phone.SetDeviceProtection(context.Background(), psync.User{ID: "202"}, "desk", true)
	teams.SetClient("202", "Busy", "InACall")
	cp := &countingPhone{Phone: phone, set: map[string]int{}}
	h := &harness{t: t, clock: clock, teams: teams, phone: phone, j: j, side: cp}
	h.start()
	h.eventually("the adopted protection written again", func() bool { return cp.sets("202/desk") == 1 })
	h.settle()
	if n := cp.sets("202/desk"); n != 1 {
		t.Fatalf("%d writes of the adopted protection, want 1", n)
	}
	phone.Lose(true)
	h.settle()
	phone.Lose(false)
	h.eventually("written again after the phone side was back", func() bool { return cp.sets("202/desk") == 2 })
	h.settle()
	if !h.dnd("202")["desk"] {
		t.Fatalf("desk %v", h.dnd("202"))
	}
}
