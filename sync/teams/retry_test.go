package teams_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

// kiota-http-go builds its default middleware list from a map, so the
// order is random per process and a retried POST could go out uncompressed
// but labelled gzip (graph-presence.md §6). The adapter fixes the order.
// Because the bug depended on the process, the check runs in 8 processes.
func TestClient_RetriedPostKeepsItsBody(t *testing.T) {
	if os.Getenv("PB_RETRY_CHILD") == "1" {
		retriedPostOnce(t)
		return
	}
	const procs = 8
	var wg sync.WaitGroup
	errs := make([]string, procs)
	sem := make(chan struct{}, 4)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.Command(os.Args[0], "-test.run=^TestClient_RetriedPostKeepsItsBody$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "PB_RETRY_CHILD=1")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS") {
				errs[i] = string(out)
			}
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("process %d:\n%s", i, e)
		}
	}
}

func retriedPostOnce(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	c := newClient(t, config(s))
	s.InjectFault(graphsim.Fault{Method: "POST", Path: "/v1.0/users/", Status: 503, RetryAfter: time.Second, Count: 1})
	if err := c.SetPresence(context.Background(), users(1)[0], "InACall", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	var sets []graphsim.Request
	for _, q := range s.Requests() {
		if strings.HasSuffix(q.Path, "/setPresence") {
			sets = append(sets, q)
		}
	}
	if len(sets) != 2 || sets[0].Status != 503 || sets[1].Status != 200 || !sets[1].Gzip {
		t.Fatalf("setPresence requests: %+v", sets)
	}
	if act, _ := sets[1].JSON.(map[string]any)["activity"].(string); act != "InACall" {
		t.Fatalf("retried body %s", sets[1].Body)
	}
}
