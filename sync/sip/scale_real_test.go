package sip

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/kamailiotest"
)

// TestSIPReal_Scale500 subscribes 500 extensions on one real Kamailio and
// measures the time to PhoneSynced, then the refresh load under a short
// max_expires: SUBSCRIBEs per second reaching Kamailio and the CPU time of
// this process and of Kamailio over the window. Only with PB_SIP_SCALE=1
// (about 90 s); PB_SIP_SCALE_EXTS, PB_SIP_SCALE_MAX (max_expires) and
// PB_SIP_SCALE_WINDOW change the defaults 500, 10s and 60s.
func TestSIPReal_Scale500(t *testing.T) {
	if os.Getenv("PB_SIP_SCALE") != "1" {
		t.Skip("set PB_SIP_SCALE=1 to run the 500-extension measurement")
	}
	kamailiotest.Require(t)
	n := envInt(t, "PB_SIP_SCALE_EXTS", 500)
	maxExp := envDuration(t, "PB_SIP_SCALE_MAX", 10*time.Second)
	window := envDuration(t, "PB_SIP_SCALE_WINDOW", time.Minute)

	k := kamailiotest.Start(t, kamailiotest.Options{MaxExpires: maxExp, UAS: kamailiotest.UAS(t).Addr()})
	users := make([]psync.User, n)
	for i := range users {
		users[i] = psync.User{ID: psync.UserID(fmt.Sprintf("u%d", i)), Extension: strconv.Itoa(10000 + i)}
	}
	cfg := realConfig(k)
	cfg.Expires = 10 * time.Minute // asked; Kamailio grants maxExp
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan psync.PhoneEvent, 4096)
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- c.Run(ctx, users, events) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("Run did not return within 60 s of its context ending")
		}
	}()

	synced := time.Duration(0)
	snapshots, unhealthy := 0, []string{}
	take := func(ev psync.PhoneEvent) {
		switch ev.Kind {
		case psync.PhoneSnapshot:
			snapshots++
		case psync.PhoneSynced:
			if synced == 0 {
				synced = time.Since(began)
			}
		case psync.PhoneHealth:
			if !ev.Healthy {
				unhealthy = append(unhealthy, ev.Detail)
			}
		}
	}
	deadline := time.After(2 * time.Minute)
	for synced == 0 {
		select {
		case ev := <-events:
			take(ev)
		case <-deadline:
			t.Fatalf("no PhoneSynced for %d extensions within 2 min (%d snapshots; unhealthy %q)", n, snapshots, unhealthy)
		}
	}
	initial := kamailioRequests(t, k, "REQ SUBSCRIBE sip:1", "@127.0.0.1 from")
	t.Logf("%d extensions: PhoneSynced after %v (Kamailio started in %v); %d initial SUBSCRIBEs", n, synced.Round(time.Millisecond), k.StartTook, initial)
	snapsAtSync := snapshots

	kpids := kamailioPIDs(t, k)
	selfCPU0, kamCPU0 := selfCPU(t), procCPU(kpids)
	refreshed0 := kamailioRequests(t, k, "REQ SUBSCRIBE sip:127.0.0.1:")
	start := time.Now()
	end := time.After(window)
wait:
	for {
		select {
		case ev := <-events:
			take(ev)
		case <-end:
			break wait
		}
	}
	el := time.Since(start)
	selfUsed, kamUsed := selfCPU(t)-selfCPU0, procCPU(kpids)-kamCPU0
	refreshes := kamailioRequests(t, k, "REQ SUBSCRIBE sip:127.0.0.1:") - refreshed0
	resubscribed := kamailioRequests(t, k, "REQ SUBSCRIBE sip:1", "@127.0.0.1 from") - initial
	rate := float64(refreshes) / el.Seconds()
	t.Logf("max_expires %v over %v: %d in-dialog refreshes (%.1f SUBSCRIBE/s; expected about %.1f/s at 80%% of the grant), %d new subscriptions, %d snapshots since sync",
		maxExp, el.Round(time.Millisecond), refreshes, rate, float64(n)/(maxExp.Seconds()*0.8), resubscribed, snapshots-snapsAtSync)
	t.Logf("CPU over the window: this process %v (%.1f%% of one core), Kamailio (%d processes) %v (%.1f%% of one core)",
		selfUsed.Round(time.Millisecond), 100*selfUsed.Seconds()/el.Seconds(), len(kpids), kamUsed.Round(time.Millisecond), 100*kamUsed.Seconds()/el.Seconds())
	if len(unhealthy) > 0 {
		t.Errorf("unhealthy during the run: %q", unhealthy)
	}
	if want := int(float64(n) * el.Seconds() / maxExp.Seconds()); refreshes < want {
		t.Errorf("%d refreshes in %v for %d subscriptions granted %v: want at least %d", refreshes, el, n, maxExp, want)
	}
	if resubscribed > 0 || snapshots > snapsAtSync {
		t.Errorf("%d subscriptions were started again (%d snapshots) instead of refreshed", resubscribed, snapshots-snapsAtSync)
	}
}

func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	s := os.Getenv(key)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s %q: want a positive number", key, s)
	}
	return v
}

func envDuration(t *testing.T, key string, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(key)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s %q: want a duration such as 10s", key, s)
	}
	return v
}

// kamailioPIDs are Kamailio's main process (its pid file) and its
// children (by the parent pid in /proc/<pid>/stat). Empty where /proc is
// missing.
func kamailioPIDs(t *testing.T, k *kamailiotest.Kamailio) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.Dir(), "run", "kamailio.pid"))
	if err != nil {
		t.Logf("no Kamailio pid file: %v", err)
		return nil
	}
	main, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	pids := []int{main}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(pid); len(f) > 1 && f[1] == strconv.Itoa(main) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat is /proc/<pid>/stat from the state field on (after the
// command name, which may hold spaces).
func procStat(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// procCPU sums utime+stime of the processes (clock ticks of 1/100 s,
// Linux's USER_HZ).
func procCPU(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		f := procStat(pid)
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
