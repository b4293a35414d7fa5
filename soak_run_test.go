package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// graphWrite is one setPresence or clearPresence as graphsim received it.
type graphWrite struct {
	at       time.Time
	user     string // lower-case object id
	clear    bool
	activity string
	status   int
}

// interval is a stretch of time in which something disturbed the bridge.
type interval struct {
	from, to time.Time
	why      string
}

// soakRecorder takes the simulators' logs while the soak runs, and keeps
// the timeline of disturbances.
type soakRecorder struct {
	w *soakWorld

	mu         sync.Mutex
	writes     []graphWrite
	graphErrs  []graphWrite // every Graph answer ≥ 400 (a fault or throttling)
	reads      int
	presence   []graphsim.PresenceChange
	changes    []ucsim.Change
	disturbed  []interval
	ready      []interval // when the bridge said both sides were synced
	readySince time.Time  // since when it says so now (zero: it does not)
}

func (r *soakRecorder) take() {
	reqs := r.w.graph.TakeRequests()
	pres := r.w.graph.TakePresenceChanges()
	chs := r.w.uc.TakeChanges()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range reqs {
		user, op := graphTarget(q.Path)
		switch op {
		case "setPresence", "clearPresence":
			gw := graphWrite{at: q.Time, user: user, clear: op == "clearPresence", status: q.Status}
			if m, ok := q.JSON.(map[string]any); ok {
				gw.activity, _ = m["activity"].(string)
			}
			r.writes = append(r.writes, gw)
		case "getPresencesByUserId":
			r.reads++
		}
		if q.Status >= 400 && !(op == "clearPresence" && q.Status == http.StatusNotFound) {
			r.graphErrs = append(r.graphErrs, graphWrite{at: q.Time, user: user, status: q.Status})
		}
	}
	r.presence = append(r.presence, pres...)
	r.changes = append(r.changes, chs...)
}

// graphTarget finds the user and the operation in a Graph request path.
func graphTarget(path string) (user, op string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	op = parts[len(parts)-1]
	for i, p := range parts[:len(parts)-1] {
		if p == "users" || p == "presences" {
			user = strings.ToLower(parts[i+1])
			break
		}
	}
	return user, op
}

func (r *soakRecorder) disturb(from, to time.Time, why string) {
	r.mu.Lock()
	r.disturbed = append(r.disturbed, interval{from, to, why})
	r.mu.Unlock()
}

// clean reports whether nothing disturbed the bridge from margin before
// from to margin after to: no fault, no Graph error, and the bridge said
// both sides were synced throughout.
func (r *soakRecorder) clean(from, to time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, b := from.Add(-soakCleanMargin), to.Add(soakCleanMargin)
	for _, d := range r.disturbed {
		if d.from.Before(b) && a.Before(d.to) {
			return false
		}
	}
	for _, e := range r.graphErrs {
		if e.at.Before(b) && a.Before(e.at.Add(3*time.Second)) {
			return false
		}
	}
	for _, rd := range r.ready {
		if !rd.from.After(a) && !rd.to.Before(b) {
			return true
		}
	}
	return !r.readySince.IsZero() && !r.readySince.After(a) && !time.Now().Before(b)
}

// chaosStep is one scheduled thing the chaos does.
type chaosStep struct {
	at   time.Duration
	what string
	do   func()
}

// chaosPlan draws the kills and faults of a run from the seed.
func chaosPlan(rng *rand.Rand, cfg soakConfig, w *soakWorld, b *bridgeProc, rec *soakRecorder) []chaosStep {
	var steps []chaosStep
	d := cfg.chaos() - 3*time.Second
	// Kills: lives of random length (some end while the bridge is still
	// starting), each followed by a gap of 0–5 s, scaled to fill the run.
	if cfg.kills > 0 {
		alive := make([]float64, cfg.kills)
		gaps := make([]time.Duration, cfg.kills)
		var sumAlive float64
		var sumGaps time.Duration
		for i := range cfg.kills {
			alive[i] = 0.1 + 1.9*rng.Float64()
			sumAlive += alive[i]
			gaps[i] = time.Duration(rng.Int64N(int64(5 * time.Second)))
			sumGaps += gaps[i]
		}
		budget := d - sumGaps
		if budget < time.Duration(cfg.kills)*500*time.Millisecond {
			budget = time.Duration(cfg.kills) * 500 * time.Millisecond
		}
		at := time.Duration(0)
		for i := range cfg.kills {
			at += time.Duration(alive[i] / sumAlive * float64(budget))
			gap := gaps[i]
			var killed time.Time
			steps = append(steps, chaosStep{at, fmt.Sprintf("kill -9 (restart in %s)", gap.Round(time.Millisecond)), func() {
				killed = time.Now()
				b.kill()
			}}, chaosStep{at + gap, "restart", func() {
				if _, ok := b.running(); ok {
					return
				}
				if err := b.start(); err != nil {
					w.t.Errorf("soak: restart: %v", err)
				}
				rec.disturb(killed, time.Now(), "kill -9")
			}})
			at += gap
		}
	}
	every := func(mean time.Duration) int { return max(1, int(d/mean)) }
	for range every(15 * time.Second) {
		steps = append(steps, chaosStep{time.Duration(rng.Int64N(int64(d))), "UCServer sockets dropped", func() {
			now := time.Now()
			w.uc.DropSockets()
			rec.disturb(now, now.Add(time.Second), "UCServer sockets dropped")
		}})
	}
	for range every(40 * time.Second) {
		at := time.Duration(rng.Int64N(int64(d)))
		dur := 3*time.Second + time.Duration(rng.Int64N(int64(7*time.Second)))
		status := []int{http.StatusBadGateway, http.StatusServiceUnavailable}[rng.IntN(2)]
		var from time.Time
		steps = append(steps, chaosStep{at, fmt.Sprintf("UCServer outage for %s (createsession %d)", dur.Round(time.Millisecond), status), func() {
			from = time.Now()
			w.uc.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{Status: status})
			w.uc.DropSockets()
		}}, chaosStep{at + dur, "UCServer back", func() {
			w.uc.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{})
			rec.disturb(from, time.Now(), "UCServer outage")
		}})
	}
	graphFault := func(at, dur time.Duration, what string, f graphsim.Fault) {
		var remove func()
		var from time.Time
		steps = append(steps, chaosStep{at, what, func() {
			from = time.Now()
			remove = w.graph.InjectFault(f)
		}}, chaosStep{at + dur, "Graph fault ends", func() {
			remove()
			rec.disturb(from, time.Now().Add(f.RetryAfter), what)
		}})
	}
	for range every(40 * time.Second) {
		dur := 2*time.Second + time.Duration(rng.Int64N(int64(4*time.Second)))
		ra := time.Duration(1+rng.IntN(5)) * time.Second
		graphFault(time.Duration(rng.Int64N(int64(d))), dur, fmt.Sprintf("Graph 429 for %s, Retry-After %s", dur.Round(time.Millisecond), ra),
			graphsim.Fault{Path: "/v1.0/", Status: http.StatusTooManyRequests, RetryAfter: ra, Rate: []float64{1, 0.5}[rng.IntN(2)]})
	}
	for range every(30 * time.Second) {
		dur := time.Second + time.Duration(rng.Int64N(int64(3*time.Second)))
		status := []int{500, 502, 503, 504}[rng.IntN(4)]
		rate := 0.3 + 0.7*rng.Float64()
		graphFault(time.Duration(rng.Int64N(int64(d))), dur, fmt.Sprintf("Graph %d burst for %s at %.0f%%", status, dur.Round(time.Millisecond), rate*100),
			graphsim.Fault{Path: "/v1.0/", Status: status, Rate: rate, NoRetryAfter: true})
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	return steps
}

// soakResult is what a run leaves for the checks and the figures.
type soakResult struct {
	w           *soakWorld
	rec         *soakRecorder
	lives       []life
	actions     map[string]int
	chaos       []string
	chaosEnd    time.Time // the office stopped, faults cleared
	sidesBack   time.Duration
	converged   time.Duration // after sidesBack; negative: never
	mismatches  []mismatch
	stopHow     string
	stopTook    time.Duration
	holdsLeft   []psync.Hold
	audit       map[psync.UserID][]psync.Decision
	hwm, rss    int
	holdsBridge int
	raceWindow  time.Duration // the bridge's own reaction time in this run
}

func runSoak(t *testing.T, cfg soakConfig) {
	wallStart := time.Now()
	bin := buildBinary(t)
	worldRNG := rand.New(rand.NewPCG(cfg.seed, 1))
	w := newSoakWorld(t, cfg, worldRNG)
	passed := false
	defer func() {
		if passed && !cfg.keep {
			os.RemoveAll(w.dir)
			return
		}
		t.Logf("soak: database, bridge logs and CA kept in %s", w.dir)
	}()
	w.setInitialChoices(worldRNG, time.Now())

	rec := &soakRecorder{w: w}
	collectCtx, stopCollect := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Go(func() {
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-collectCtx.Done():
				return
			case <-tk.C:
				rec.take()
			}
		}
	})
	defer func() { stopCollect(); bg.Wait() }()

	b := &bridgeProc{bin: bin, db: w.db, sock: w.sock, ca: w.ca, dir: w.dir}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	defer b.kill() // on a failed check the process must not outlive the test
	client := service.NewClient(w.sock)
	defer client.Close()
	waitSynced := func(what string, within time.Duration) (time.Duration, string) {
		start := time.Now()
		var detail string
		for time.Since(start) < within {
			ok, _, d := synced(context.Background(), client)
			if ok {
				return time.Since(start), d
			}
			detail = d
			if _, running := b.running(); !running {
				lives := b.livesCopy()
				last := lives[len(lives)-1]
				t.Fatalf("soak: the bridge exited (%s) while waiting for %s:\n%s", last.how, what, tailFile(last.logPath, 30))
			}
			time.Sleep(100 * time.Millisecond)
		}
		return -1, detail
	}
	if took, detail := waitSynced("the first sync", 60*time.Second); took < 0 {
		t.Fatalf("soak: the bridge did not sync within 60 s: %s", detail)
	} else {
		t.Logf("soak: first sync after %s", took.Round(time.Millisecond))
	}

	// The monitor: when did the bridge say both sides were synced?
	monCtx, stopMon := context.WithCancel(context.Background())
	var mon sync.WaitGroup
	mon.Go(func() {
		for monCtx.Err() == nil {
			ok, _, _ := synced(monCtx, client)
			now := time.Now()
			rec.mu.Lock()
			switch {
			case ok && rec.readySince.IsZero():
				rec.readySince = now
			case !ok && !rec.readySince.IsZero():
				rec.ready = append(rec.ready, interval{rec.readySince, now, "synced"})
				rec.readySince = time.Time{}
			}
			rec.mu.Unlock()
			select {
			case <-monCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		rec.mu.Lock()
		if !rec.readySince.IsZero() {
			rec.ready = append(rec.ready, interval{rec.readySince, time.Now(), "synced"})
			rec.readySince = time.Time{}
		}
		rec.mu.Unlock()
	})

	// The office and the chaos, side by side.
	w.start = time.Now()
	end := w.start.Add(cfg.duration)
	res := &soakResult{w: w, rec: rec, actions: map[string]int{}}
	var run sync.WaitGroup
	run.Go(func() {
		rng := rand.New(rand.NewPCG(cfg.seed, 2))
		gap := time.Duration(float64(time.Second) / cfg.rate)
		for next := time.Now(); next.Before(end); next = next.Add(gap) {
			time.Sleep(time.Until(next))
			p := w.people[rng.IntN(len(w.people))]
			onCall := false
			if rng.IntN(2) == 0 {
				// Half the time someone on the phone acts: calls move on
				// within seconds, so many start and end between faults.
				var busy []*person
				for _, q := range w.people {
					if len(q.calls) > 0 {
						busy = append(busy, q)
					}
				}
				if len(busy) > 0 {
					p, onCall = busy[rng.IntN(len(busy))], true
				}
			}
			now := time.Now()
			name, err := w.act(p, rng, now, end.Add(-3*time.Second), onCall)
			if err != nil {
				t.Errorf("soak: %s %s: %v", p.contact, name, err)
			}
			res.actions[name]++
		}
	})
	run.Go(func() {
		rng := rand.New(rand.NewPCG(cfg.seed, 3))
		for _, st := range chaosPlan(rng, cfg, w, b, rec) {
			time.Sleep(time.Until(w.start.Add(st.at)))
			res.chaos = append(res.chaos, fmt.Sprintf("%+8.3fs %s", time.Since(w.start).Seconds(), st.what))
			st.do()
		}
	})
	run.Wait()

	// The end: no more kills and faults, everyone idle, both sides back.
	if _, ok := b.running(); !ok {
		if err := b.start(); err != nil {
			t.Fatal(err)
		}
	}
	w.graph.ClearFaults()
	w.uc.ClearFaults()
	for _, p := range w.people {
		if err := w.idle(p); err != nil {
			t.Errorf("soak: %s goes idle: %v", p.contact, err)
		}
	}
	res.chaosEnd = time.Now()
	rec.disturb(res.chaosEnd.Add(-time.Millisecond), res.chaosEnd, "end of the run")
	var detail string
	res.sidesBack, detail = waitSynced("both sides after the faults", 120*time.Second)
	if res.sidesBack < 0 {
		t.Errorf("soak: the bridge did not report both sides synced within 120 s after the faults ended: %s", detail)
	}
	// Converged: every value as the person chose it, except what a race
	// the protocol permits lost.
	backAt := time.Now()
	res.converged = -1
	res.lives = b.livesCopy()
	rec.take()
	res.raceWindow = res.reactionWindow()
	for {
		rec.take()
		res.lives = b.livesCopy()
		res.mismatches = w.mismatches(time.Now())
		open := 0
		for i := range res.mismatches {
			if res.diagnose(&res.mismatches[i]); res.mismatches[i].tolerID == "" {
				open++
			}
		}
		if open == 0 {
			res.converged = time.Since(backAt)
			break
		}
		if time.Since(backAt) > cfg.settle {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	_, res.holdsBridge, _ = synced(context.Background(), client)
	if l, ok := b.running(); ok {
		res.hwm, res.rss, _ = procMemory(l.pid)
	}
	stopMon()
	mon.Wait()

	// A graceful stop with nothing to release.
	res.stopHow, res.stopTook = b.stop(20 * time.Second)
	stopCollect()
	bg.Wait()
	rec.take()
	res.lives = b.livesCopy()
	db, err := store.Open(w.db, store.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("soak: opening the database after the stop: %v", err)
	}
	res.holdsLeft, _ = db.Holds()
	res.audit = map[psync.UserID][]psync.Decision{}
	for _, m := range res.mismatches {
		id := psync.UserID(m.p.contact)
		if _, ok := res.audit[id]; !ok {
			res.audit[id], _ = db.Audit(0, id)
		}
	}
	if err := db.Check(); err != nil {
		t.Errorf("soak: the database is damaged: %v", err)
	}
	db.Close()

	passed = report(t, res) && !t.Failed()
	if !passed || cfg.keep {
		if err := res.dumpLogs(); err != nil {
			t.Logf("soak: writing the simulators' logs: %v", err)
		}
	}
	t.Logf("soak: wall time %s", time.Since(wallStart).Round(time.Second))
}
