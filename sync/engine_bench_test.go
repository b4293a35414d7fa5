package sync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// benchSide implements both ports and measures, for the first command after
// each event, the time from the event going in to the side being called.
type benchSide struct {
	in  []atomic.Int64 // per user: when the last command-worthy event went in
	mu  sync.Mutex
	lat []time.Duration
	idx map[psync.UserID]int
}

func (s *benchSide) out(u psync.User) {
	now := time.Now().UnixNano()
	if t := s.in[s.idx[u.ID]].Swap(0); t != 0 {
		s.mu.Lock()
		s.lat = append(s.lat, time.Duration(now-t))
		s.mu.Unlock()
	}
}

func (s *benchSide) Run(ctx context.Context, _ []psync.User, _ chan<- psync.TeamsEvent) error {
	<-ctx.Done()
	return nil
}
func (s *benchSide) SetPresence(_ context.Context, u psync.User, _ string, _ time.Duration) error {
	s.out(u)
	return nil
}
func (s *benchSide) ClearPresence(_ context.Context, u psync.User) (psync.TeamsPresence, error) {
	s.out(u)
	return psync.TeamsPresence{}, nil
}

type benchPhone struct{ *benchSide }

func (p benchPhone) Run(ctx context.Context, _ []psync.User, _ chan<- psync.PhoneEvent) error {
	<-ctx.Done()
	return nil
}
func (p benchPhone) SetPresence(_ context.Context, u psync.User, _ psync.PresenceMark, _ []psync.PresenceMark) error {
	p.out(u)
	return nil
}
func (p benchPhone) RestorePresence(_ context.Context, u psync.User, _ []psync.PresenceMark, _ psync.PresenceMark) error {
	p.out(u)
	return nil
}
func (p benchPhone) SetDeviceProtection(_ context.Context, u psync.User, _ string, _ bool) error {
	p.out(u)
	return nil
}
func (p benchPhone) RestoreDeviceProtection(_ context.Context, u psync.User, _ string, _, _ bool) error {
	p.out(u)
	return nil
}

// BenchmarkEngine_MixedStream runs 10,000 users with a mixed stream of
// events paced at 1,000 events/s (one per benchmark iteration) and reports
// the decision latency (event in -> command out, write-ahead to an
// in-memory journal included), allocations per event and heap per user.
func BenchmarkEngine_MixedStream(b *testing.B) {
	const nUsers = 10_000
	users := make([]psync.User, nUsers)
	side := &benchSide{in: make([]atomic.Int64, nUsers), idx: make(map[psync.UserID]int, nUsers)}
	for i := range users {
		id := psync.UserID(fmt.Sprintf("%05d", i))
		users[i] = psync.User{ID: id, UPN: fmt.Sprintf("u%05d@contoso.example", i), DisplayName: fmt.Sprintf("User %d", i), TeamsID: fmt.Sprintf("t-%05d", i)}
		if i%4 == 1 {
			users[i].Profile = "protected"
		}
		side.idx[id] = i
	}
	ctx := context.Background()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e, err := psync.NewEngine(psync.EngineConfig{
		Profiles: benchProfiles(), Users: users,
		Teams: side, Phone: benchPhone{side}, Journal: newMemJournal(),
	})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	// Both sides report every user once, as after a start.
	ver := make([]uint64, nUsers)
	seq := 0
	for i, u := range users {
		ver[i]++
		_ = e.PostPhone(ctx, psync.PhoneEvent{Kind: psync.PhoneSnapshot, User: u.ID, Version: ver[i], State: psync.PhoneState{Presence: psync.PhoneAvailable, Devices: []psync.Device{{ID: "desk"}, {ID: "softphone"}}}})
		seq++
		_ = e.PostTeams(ctx, psync.TeamsEvent{Kind: psync.TeamsPresenceChanged, User: u.ID, Presence: psync.TeamsPresence{Availability: "Available", Activity: "Available", Sequence: fmt.Sprintf("%016x", seq)}})
	}
	if _, err := e.Users(ctx); err != nil { // waits for the loop to take them all
		b.Fatal(err)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heapPerUser := float64(after.HeapAlloc-before.HeapAlloc) / nUsers

	rng := rand.New(rand.NewPCG(1, 2))
	inCall := make([]bool, nUsers)
	inTeams := make([]bool, nUsers)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		u := rng.IntN(nUsers)
		id := users[u].ID
		switch k := i % 10; {
		case k < 4: // phone call starts or ends: a Teams write follows
			st := psync.CallConnected
			if inCall[u] {
				st = psync.CallEnded
			}
			inCall[u] = !inCall[u]
			ver[u]++
			side.in[u].Store(time.Now().UnixNano())
			_ = e.PostPhone(ctx, psync.PhoneEvent{Kind: psync.PhoneCallChanged, User: id, Version: ver[u], Call: psync.Call{ID: "c", Device: "desk", State: st}})
		case k < 7: // Teams call starts or ends: a phone write follows
			p := psync.TeamsPresence{Availability: "Busy", Activity: "InACall"}
			if inTeams[u] || inCall[u] {
				p = psync.TeamsPresence{Availability: "Available", Activity: "Available"}
				inTeams[u] = false
			} else {
				inTeams[u] = true
			}
			seq++
			p.Sequence = fmt.Sprintf("%016x", seq)
			side.in[u].Store(time.Now().UnixNano())
			_ = e.PostTeams(ctx, psync.TeamsEvent{Kind: psync.TeamsPresenceChanged, User: id, Presence: p})
		case k < 9: // ringing: decides nothing
			ver[u]++
			_ = e.PostPhone(ctx, psync.PhoneEvent{Kind: psync.PhoneCallChanged, User: id, Version: ver[u], Call: psync.Call{ID: "r", Device: "softphone", State: psync.CallRinging}})
		default: // manual phone presence: decides nothing
			ver[u]++
			_ = e.PostPhone(ctx, psync.PhoneEvent{Kind: psync.PhonePresenceChanged, User: id, Version: ver[u], Presence: psync.PhoneAway})
		}
	}
	if _, err := e.Users(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	time.Sleep(50 * time.Millisecond) // let the last commands reach the sides
	side.mu.Lock()
	lat := slices.Clone(side.lat)
	side.mu.Unlock()
	if len(lat) == 0 {
		b.Fatal("no command measured")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/event")
	b.ReportMetric(heapPerUser, "heap-B/user")
	b.ReportMetric(float64(len(lat)), "commands")
}

func benchProfiles() []psync.Profile {
	prot := psync.NewProfile("protected")
	prot.CrossDeviceBusyOnBusy = true
	return []psync.Profile{psync.NewProfile(psync.DefaultProfileName), prot}
}
