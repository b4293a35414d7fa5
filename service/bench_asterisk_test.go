package service

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/asterisk"
	"github.com/presencebridge/presencebridge/sync/asterisk/amisim"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

// BenchmarkAsteriskBothWays measures both directions with every real part
// in one process: amisim as FreePBX, the Asterisk connector, the engine
// with the store's write-ahead journal (fsync included) and the Graph
// adapter (built as the service builds it) against graphsim, in poll mode.
//
//   - device → Teams: from the moment amisim queues the DeviceStateChange
//     of an answered call on the connector's socket to the setPresence
//     leaving the Graph adapter's HTTP client;
//   - Teams → DND: from the Teams call starting in graphsim to amisim
//     reading the DBPut DND/<ext> YES off the socket (Teams is read in
//     poll mode: most of it is the wait for the next read), and from the
//     engine taking the Teams event to the same DBPut (the bridge's own
//     part).
//
// Run with -benchtime=1x (each iteration is 30 calls of each kind).
func BenchmarkAsteriskBothWays(b *testing.B) {
	const rounds = 30
	sim := amisim.New(amisim.Options{Accounts: map[string]amisim.Account{"bridge": {Secret: "bench-secret", Read: "call", Write: "system,call"}}})
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sim.Close() })
	sim.AddExtension("201", "201")
	seen := &teamsSeen{}
	prof := psync.NewProfile("protected")
	prof.CrossDeviceBusyOnBusy = true // FreePBX DND during a Teams call
	br := startBenchBridge(b, map[string]string{
		"phone.system": "asterisk", "asterisk.host": sim.Addr(), "asterisk.user": "bridge", "asterisk.secret": "bench-secret",
	}, prof, seen.observe)
	if _, ok := br.phone.(*asterisk.Conn); !ok {
		b.Fatalf("phone.system asterisk built a %T", br.phone)
	}
	g, teamsID, sent, engine := br.graph, br.teamsID, br.sent, br.engine
	// settled: nothing held and nothing in flight, so a measurement does
	// not wait behind the previous round's clear.
	settled := func() bool {
		st, err := engine.Status(context.Background())
		return err == nil && st.Holds == 0 && st.InFlight == 0
	}

	var taken []graphsim.Request
	writes := func(suffix string) []graphsim.Request {
		taken = append(taken, g.TakeRequests()...)
		var out []graphsim.Request
		for _, q := range taken {
			if q.Method == "POST" && strings.HasSuffix(q.Path, suffix) {
				out = append(out, q)
			}
		}
		return out
	}
	dndWrites := func(val string) []time.Time {
		var out []time.Time
		for _, a := range sim.Actions() {
			if a.Name == "DBPut" && a.Fields["family"] == "DND" && a.Fields["key"] == "201" && a.Fields["val"] == val {
				out = append(out, a.At)
			}
		}
		return out
	}
	waitUntil := func(what string, cond func() bool) {
		b.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("no %s within 15 s", what)
			}
		}
	}
	var toTeams, toDND, engineToDND []time.Duration
	b.ResetTimer()
	for range b.N {
		toTeams, toDND, engineToDND = toTeams[:0], toDND[:0], engineToDND[:0]
		for i := range rounds {
			sets, clears := len(writes("/setPresence")), len(writes("/clearPresence"))
			onWire := sent.count()
			sim.StartCall("PJSIP/201")
			began := time.Now()
			sim.Answer("PJSIP/201")
			waitUntil("setPresence", func() bool { return len(writes("/setPresence")) > sets && sent.count() > onWire })
			toTeams = append(toTeams, sent.nth(onWire).Sub(began))
			sim.End("PJSIP/201")
			waitUntil("clearPresence", func() bool { return len(writes("/clearPresence")) > clears && settled() })
			if s, c := len(writes("/setPresence"))-sets, len(writes("/clearPresence"))-clears; s != 1 || c != 1 {
				b.Fatalf("call %d: %d setPresence, %d clearPresence, want 1 and 1", i+1, s, c)
			}

			puts := len(dndWrites("YES"))
			teamsBegan := time.Now()
			if err := g.StartTeamsCall(teamsID); err != nil {
				b.Fatal(err)
			}
			waitUntil("DND written", func() bool { return len(dndWrites("YES")) > puts })
			at := dndWrites("YES")[puts]
			toDND = append(toDND, at.Sub(teamsBegan))
			if ev := seen.after(teamsBegan); !ev.IsZero() {
				engineToDND = append(engineToDND, at.Sub(ev))
			}
			if err := g.EndCall(teamsID); err != nil {
				b.Fatal(err)
			}
			waitUntil("DND cleared", func() bool { v, ok := sim.DB("DND", "201"); return (!ok || v == "") && settled() })
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	report := func(name string, lat []time.Duration) {
		if len(lat) == 0 {
			b.Fatalf("%s: nothing measured", name)
		}
		slices.Sort(lat)
		b.ReportMetric(ms(lat[len(lat)/2]), name+"-p50-ms")
		b.ReportMetric(ms(lat[(len(lat)*99+99)/100-1]), name+"-p99-ms")
	}
	report("event-to-setPresence", toTeams)
	report("teams-to-DND", toDND)
	report("engine-to-DND", engineToDND)
}

// teamsSeen records when the engine took each Teams call (its observed
// decision), for the bridge's own part of Teams → DND.
type teamsSeen struct {
	mu sync.Mutex
	at []time.Time
}

func (s *teamsSeen) observe(d psync.Decision) {
	if d.Side == psync.SideTeams && d.Outcome == psync.OutcomeObserved && strings.Contains(d.New, "call") {
		s.mu.Lock()
		s.at = append(s.at, time.Now())
		s.mu.Unlock()
	}
}

func (s *teamsSeen) after(t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.at {
		if !at.Before(t) {
			return at
		}
	}
	return time.Time{}
}
