package main

import (
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
)

// The bridge's memory at office sizes (issue 9: 63 MB at 2,000 users
// today, 36 MB at 50; the target is ≤ 48 MB at 10,000). Both tests are by
// hand: they need minutes and, at 10,000 users, about 1 GB for the
// simulators.
//
//	go test -run TestSoakRSS -soak.rss 50,2000,10000 -timeout 30m .
//	go test -run TestSoakRSS -soak.rss 10000 -soak.gomemlimit 40MiB -timeout 30m .
//	go test -run TestSoakRSS -soak.rss 10000 -soak.env GODEBUG=gctrace=1 -soak.keeplog -timeout 30m .
//	go test -run TestSoakHeap -soak.heapprofile /tmp/heap.pprof -soak.heapusers 10000 -timeout 30m .
//	go tool pprof -top -sample_index=inuse_space -ignore 'graphsim|ucsim|presencebridge\.\(\*soakWorld\)' /tmp/heap.pprof
//
// TestSoakRSS runs the real binary (built without the race detector, whose
// shadow memory would swamp the figure) in poll mode against graphsim and
// ucsim, lets it sync, puts 1 % of the people in a phone call and 1 % on
// Teams do not disturb, waits two poll rounds and reads VmHWM and VmRSS
// from /proc. TestSoakHeap runs the same wiring in the test process (the
// binary has no profiling endpoint) and writes a heap profile once synced;
// the simulators live in the same heap, so leave them out with -ignore.

var (
	soakRSS        = flag.String("soak.rss", os.Getenv("PRESENCEBRIDGE_SOAK_RSS"), "soak: comma-separated office sizes to measure the bridge's memory at (TestSoakRSS)")
	soakGoMemLimit = flag.String("soak.gomemlimit", os.Getenv("PRESENCEBRIDGE_SOAK_GOMEMLIMIT"), "soak: GOMEMLIMIT for the bridge in TestSoakRSS")
	soakEnv        = flag.String("soak.env", os.Getenv("PRESENCEBRIDGE_SOAK_ENV"), "soak: more environment for the bridge in TestSoakRSS, space-separated K=V (e.g. GODEBUG=gctrace=1, GOGC=50)")
	soakKeepLog    = flag.Bool("soak.keeplog", false, "soak: keep the bridge's log of TestSoakRSS and print its path")
	soakHeapFile   = flag.String("soak.heapprofile", os.Getenv("PRESENCEBRIDGE_SOAK_HEAPPROFILE"), "soak: write a heap profile of the in-process bridge here (TestSoakHeap)")
	soakHeapUsers  = flag.Int("soak.heapusers", envInt("PRESENCEBRIDGE_SOAK_HEAPUSERS", 10000), "soak: office size of TestSoakHeap")
)

func TestSoakRSS(t *testing.T) {
	if *soakRSS == "" {
		t.Skip("by hand: -soak.rss 2000,10000")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory would swamp the figure; run without -race")
	}
	bin := buildBinary(t)
	for _, f := range strings.Split(*soakRSS, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("-soak.rss: %q is not an office size", f)
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			w := newSoakWorld(t, soakConfig{users: n, seed: 1}, rand.New(rand.NewPCG(1, 1)))
			if *soakKeepLog {
				defer t.Logf("soak: the bridge's log is in %s", w.dir)
			} else {
				defer os.RemoveAll(w.dir)
			}
			b := &bridgeProc{bin: bin, db: w.db, sock: w.sock, ca: w.ca, dir: w.dir}
			if *soakGoMemLimit != "" {
				b.extraEnv = []string{"GOMEMLIMIT=" + *soakGoMemLimit}
			}
			b.extraEnv = append(b.extraEnv, strings.Fields(*soakEnv)...)
			if err := b.start(); err != nil {
				t.Fatal(err)
			}
			defer b.kill()
			c := service.NewClient(w.sock)
			defer c.Close()
			start := time.Now()
			waitSynced(t, b, c, 10*time.Minute, "the first sync")
			synced := time.Since(start)
			for i, p := range w.people {
				switch i % 100 {
				case 0:
					id, err := w.uc.Ring(p.lines[0], "tel:+4989000")
					if err == nil {
						err = w.uc.PickUp(id)
					}
					if err != nil {
						t.Fatal(err)
					}
				case 50:
					if err := w.graph.SetDND(p.teamsID); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Two poll rounds: at the default share one request of 650
			// users per second.
			round := time.Duration((n+649)/650) * time.Second
			deadline := time.Now().Add(2*round + 5*time.Second)
			var hwm, rss int
			for time.Now().Before(deadline) {
				l, ok := b.running()
				if !ok {
					t.Fatal("the bridge exited")
				}
				h, r, err := procMemory(l.pid)
				if err != nil {
					t.Fatal(err)
				}
				hwm, rss = max(hwm, h), r
				time.Sleep(500 * time.Millisecond)
			}
			holds := 0
			if ov, err := c.Overview(context.Background()); err == nil {
				holds = ov.Engine.Holds
			}
			t.Logf("soak: FIGURE memory at %d users (GOMEMLIMIT %q): VmHWM %.1f MB, VmRSS %.1f MB; synced after %s, %d holds",
				n, *soakGoMemLimit, float64(hwm)/1024, float64(rss)/1024, synced.Round(time.Millisecond), holds)
			if how, _ := b.stop(30 * time.Second); how != "stopped" {
				t.Errorf("stop: %s", how)
			}
		})
	}
}

func waitSynced(t *testing.T, b *bridgeProc, c *service.Client, within time.Duration, what string) {
	t.Helper()
	var detail string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ok, _, d := synced(context.Background(), c)
		if ok {
			return
		}
		detail = d
		if _, running := b.running(); !running {
			lives := b.livesCopy()
			t.Fatalf("the bridge exited (%s) while waiting for %s:\n%s", lives[len(lives)-1].how, what, tailFile(lives[len(lives)-1].logPath, 30))
		}
	}
	t.Fatalf("timed out after %s waiting for %s: %s", within, what, detail)
}

func TestSoakHeap(t *testing.T) {
	if *soakHeapFile == "" {
		t.Skip("by hand: -soak.heapprofile FILE")
	}
	n := *soakHeapUsers
	// Every allocation of 4 KiB counts, not one per 512 KiB on average: the
	// bridge's own share of the heap is a few MB per site.
	runtime.MemProfileRate = 4096
	w := newSoakWorld(t, soakConfig{users: n, seed: 1}, rand.New(rand.NewPCG(1, 1)))
	defer os.RemoveAll(w.dir)
	ready := make(chan struct{})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- service.RunDaemon(ctx, service.DaemonOptions{DBPath: w.db, Socket: w.sock, Group: "", Version: "heap",
			Adapters: service.RealAdapters(service.AdapterOptions{TeamsHTTPClient: w.graph.Client()}),
			Ready:    func(service.Running) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon: %v", err)
	}
	c := service.NewClient(w.sock)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Minute)
	for ok := false; !ok; time.Sleep(200 * time.Millisecond) {
		if ok, _, _ = synced(ctx, c); time.Now().After(deadline) {
			t.Fatal("no sync within 10 minutes")
		}
	}
	// One more poll round, so that every user has been read and diffed.
	w.graph.TakeRequests()
	for reads := 0; reads < (n+649)/650; time.Sleep(200 * time.Millisecond) {
		for _, q := range w.graph.TakeRequests() {
			if _, op := graphTarget(q.Path); op == "getPresencesByUserId" {
				reads++
			}
		}
	}
	runtime.GC()
	f, err := os.Create(*soakHeapFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("soak: heap profile of the bridge at %d users in %s (the process: HeapInuse %.1f MB, simulators included)", n, *soakHeapFile, float64(ms.HeapInuse)/(1<<20))
	cancel()
	if err := <-done; err != nil {
		t.Errorf("daemon stop: %v", err)
	}
}
