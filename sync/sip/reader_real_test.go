package sip

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/kamailiotest"
)

// These tests run the connector against a real Kamailio (presence server
// and dialog tracking) with sipp callers and a sipp callee on loopback.
// Calls go caller → Kamailio → sipp UAS, and Kamailio's pua_dialoginfo
// turns them into the dialog NOTIFYs the connector reads.

var realAnna = psync.User{ID: "anna", UPN: "anna@contoso.com", Extension: "201"}

// realSetup starts a sipp callee and a Kamailio relaying calls to it.
func realSetup(t *testing.T, opts kamailiotest.Options) *kamailiotest.Kamailio {
	t.Helper()
	kamailiotest.Require(t)
	t.Parallel()
	if opts.UAS == "" {
		opts.UAS = kamailiotest.UAS(t).Addr()
	}
	k := kamailiotest.Start(t, opts)
	t.Logf("kamailio up in %v at %s", k.StartTook, k.SIPAddr())
	return k
}

// realConfig is a connector config for k with timeouts short enough for a
// test but not shorter than a loaded machine needs.
func realConfig(k *kamailiotest.Kamailio) Config {
	return Config{Server: k.SIPAddr(), Domain: "127.0.0.1", Listen: "127.0.0.1:0",
		RequestTimeout: 3 * time.Second, RetryMin: 200 * time.Millisecond, RetryMax: 2 * time.Second,
		NotifyTimeout: 5 * time.Second}
}

// callView follows a connector's events as the engine would: a snapshot
// replaces a user's calls, a PhoneCallChanged updates or (CallEnded)
// removes one.
type callView struct {
	t      *testing.T
	events chan psync.PhoneEvent
	cancel context.CancelFunc
	done   chan error
	conn   *Conn

	calls     map[psync.UserID]map[string]psync.Call
	snapshots map[psync.UserID]int
	presence  map[psync.UserID]psync.PhonePresence // from PhonePresenceChanged
	synced    int
	health    []psync.PhoneEvent
	log       []string
}

func runReal(t *testing.T, cfg Config, users ...psync.User) *callView {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	v := &callView{t: t, events: make(chan psync.PhoneEvent, 1024), cancel: cancel, done: make(chan error, 1), conn: c,
		calls: map[psync.UserID]map[string]psync.Call{}, snapshots: map[psync.UserID]int{}, presence: map[psync.UserID]psync.PhonePresence{}}
	go func() { v.done <- c.Run(ctx, users, v.events) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-v.done:
		case <-time.After(15 * time.Second):
			t.Error("Run did not return within 15 s of its context ending")
		}
		if t.Failed() {
			t.Logf("events:\n%s", strings.Join(v.log, "\n"))
		}
	})
	return v
}

func (v *callView) apply(ev psync.PhoneEvent) {
	v.log = append(v.log, fmt.Sprintf("  %s kind=%d user=%s v=%d call=%+v calls=%+v healthy=%v detail=%q",
		time.Now().Format("15:04:05.000"), ev.Kind, ev.User, ev.Version, ev.Call, ev.State.Calls, ev.Healthy, ev.Detail))
	switch ev.Kind {
	case psync.PhoneSnapshot:
		m := map[string]psync.Call{}
		for _, c := range ev.State.Calls {
			m[c.ID] = c
		}
		v.calls[ev.User] = m
		v.snapshots[ev.User]++
	case psync.PhoneCallChanged:
		m := v.calls[ev.User]
		if m == nil {
			m = map[string]psync.Call{}
			v.calls[ev.User] = m
		}
		if ev.Call.State == psync.CallEnded {
			delete(m, ev.Call.ID)
		} else {
			m[ev.Call.ID] = ev.Call
		}
	case psync.PhonePresenceChanged:
		v.presence[ev.User] = ev.Presence
	case psync.PhoneSynced:
		v.synced++
	case psync.PhoneHealth:
		v.health = append(v.health, ev)
	}
}

// until applies events until cond holds on the view, failing after d.
func (v *callView) until(d time.Duration, what string, cond func() bool) {
	v.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	// the ticker re-checks conditions that depend on time, not events
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case ev := <-v.events:
			v.apply(ev)
		case <-tick.C:
		case <-deadline.C:
			v.t.Fatalf("no %s within %v", what, d)
		}
	}
}

// userCalls lists u's live calls, sorted by device.
func (v *callView) userCalls(u psync.UserID) []psync.Call {
	var out []psync.Call
	for _, c := range v.calls[u] {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out
}

func (v *callView) connectedOn(u psync.UserID, devs ...string) bool {
	calls := v.userCalls(u)
	if len(calls) != len(devs) {
		return false
	}
	for i, c := range calls {
		if c.Device != devs[i] || c.State != psync.CallConnected {
			return false
		}
	}
	return true
}

func (v *callView) noCall(u psync.UserID) bool { return len(v.calls[u]) == 0 }

// kamailioRequests counts the requests Kamailio logged (its request_route
// logs "REQ <method> <ruri> ..." at debug 2) whose line has every word.
func kamailioRequests(t *testing.T, k *kamailiotest.Kamailio, words ...string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.Dir(), "kamailio.log"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
lines:
	for _, line := range strings.Split(string(b), "\n") {
		for _, w := range words {
			if !strings.Contains(line, w) {
				continue lines
			}
		}
		n++
	}
	return n
}

func TestSIPReal_CallAnsweredThenHungUp(t *testing.T) {
	k := realSetup(t, kamailiotest.Options{})
	v := runReal(t, realConfig(k), realAnna)
	v.until(10*time.Second, "PhoneSynced", func() bool { return v.synced > 0 })
	if !v.noCall("anna") {
		t.Fatalf("calls before any call: %+v", v.userCalls("anna"))
	}
	call := k.StartCall(t, "300", "201", 2*time.Second)
	began := time.Now()
	v.until(10*time.Second, "connected call on 201", func() bool { return v.connectedOn("anna", "201") })
	t.Logf("answered call seen %v after the caller started", time.Since(began))
	if c := v.userCalls("anna")[0]; !strings.HasPrefix(c.ID, "201/") {
		t.Fatalf("call id %q: want 201/<dialog id>", c.ID)
	}
	v.until(15*time.Second, "call gone after hang-up", func() bool { return v.noCall("anna") })
	if code := call.Wait(t); code != 200 {
		t.Fatalf("call answered %d, want 200", code)
	}
	t.Logf("call took %v; events: %d", call.Took, len(v.log))
}

func TestSIPReal_TwoExtensionsOneUser(t *testing.T) {
	k := realSetup(t, kamailiotest.Options{})
	u := realAnna
	u.Extension = "201, 202"
	v := runReal(t, realConfig(k), u)
	v.until(10*time.Second, "PhoneSynced", func() bool { return v.synced > 0 })

	long := k.StartCall(t, "300", "201", 6*time.Second)
	short := k.StartCall(t, "301", "202", 2*time.Second)
	v.until(10*time.Second, "connected calls on 201 and 202", func() bool { return v.connectedOn("anna", "201", "202") })
	// 202 hangs up first: the user still has 201's call.
	v.until(15*time.Second, "only 201's call left", func() bool { return v.connectedOn("anna", "201") })
	if code := short.Wait(t); code != 200 {
		t.Fatalf("call to 202 answered %d", code)
	}
	if !v.connectedOn("anna", "201") {
		t.Fatalf("after 202 hung up: calls %+v, want 201's", v.userCalls("anna"))
	}
	v.until(15*time.Second, "no call after both hung up", func() bool { return v.noCall("anna") })
	if code := long.Wait(t); code != 200 {
		t.Fatalf("call to 201 answered %d", code)
	}
}

func TestSIPReal_Digest(t *testing.T) {
	acct := &kamailiotest.Credentials{User: "bridge", Password: "s3cret-pw"}
	k := realSetup(t, kamailiotest.Options{Auth: acct})

	t.Run("right password", func(t *testing.T) {
		cfg := realConfig(k)
		cfg.User, cfg.Password = acct.User, acct.Password
		v := runReal(t, cfg, realAnna)
		v.until(10*time.Second, "PhoneSynced", func() bool { return v.synced > 0 })
		for _, h := range v.health {
			if !h.Healthy {
				t.Fatalf("unhealthy with the right password: %q", h.Detail)
			}
		}
		// challenged: the initial SUBSCRIBE reached Kamailio twice, the
		// second time with credentials
		if n := kamailioRequests(t, k, "REQ SUBSCRIBE sip:201@"); n < 2 {
			t.Fatalf("Kamailio saw %d initial SUBSCRIBEs for 201, want the challenged one and the answer (2)", n)
		}
		call := k.StartCall(t, "300", "201", time.Second)
		v.until(10*time.Second, "connected call on 201", func() bool { return v.connectedOn("anna", "201") })
		v.until(15*time.Second, "call gone", func() bool { return v.noCall("anna") })
		if code := call.Wait(t); code != 200 {
			t.Fatalf("call answered %d", code)
		}
	})

	for _, tc := range []struct{ name, user, password, want string }{
		{"wrong password", acct.User, "wrong", "sip.password"},
		{"no credentials", "", "", "sip.password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := realConfig(k)
			cfg.User, cfg.Password = tc.user, tc.password
			v := runReal(t, cfg, realAnna)
			v.until(15*time.Second, "PhoneHealth false", func() bool { return len(v.health) > 0 })
			h := v.health[0]
			if h.Healthy || !strings.Contains(h.Detail, tc.want) || !strings.Contains(h.Detail, "407") {
				t.Fatalf("health %v %q: want false naming %s and the 407", h.Healthy, h.Detail, tc.want)
			}
			if strings.Contains(h.Detail, "wrong") && tc.password == "wrong" {
				t.Fatalf("the detail carries the password: %q", h.Detail)
			}
			if v.synced != 0 {
				t.Fatal("PhoneSynced without any subscription")
			}
			t.Logf("detail: %s", h.Detail)
		})
	}
}

// A server that grants less than asked: the connector refreshes inside
// the granted time, in the same dialog, so calls keep being seen well
// after the first grant ran out (Kamailio drops an expired subscription
// at its next clean-up, every 5 s here).
func TestSIPReal_RefreshShortMaxExpires(t *testing.T) {
	testRefresh(t, 4*time.Second)
}

// The case from the field: max_expires 60. About 70 s; -short skips it.
func TestSIPReal_RefreshMaxExpires60(t *testing.T) {
	if testing.Short() {
		t.Skip("70 s; runs without -short")
	}
	testRefresh(t, 60*time.Second)
}

func testRefresh(t *testing.T, max time.Duration) {
	k := realSetup(t, kamailiotest.Options{MaxExpires: max})
	v := runReal(t, realConfig(k), realAnna)
	v.until(10*time.Second, "PhoneSynced", func() bool { return v.synced > 0 })
	start := time.Now()
	// Past the first grant and Kamailio's clean-up after it: an unrefreshed
	// subscription is gone by then. Short grants wait two periods.
	wait := max + 6*time.Second
	if max < 10*time.Second {
		wait = 2*max + 6*time.Second
	}
	// The events keep flowing meanwhile: nothing may arrive but nothing
	// may block either.
	v.until(wait+5*time.Second, "the wait to pass", func() bool { return time.Since(start) >= wait })
	snaps := v.snapshots["anna"]
	call := k.StartCall(t, "300", "201", time.Second)
	v.until(10*time.Second, "connected call after "+wait.String(), func() bool { return v.connectedOn("anna", "201") })
	v.until(15*time.Second, "call gone", func() bool { return v.noCall("anna") })
	call.Wait(t)
	initial := kamailioRequests(t, k, "REQ SUBSCRIBE sip:201@")
	refreshes := kamailioRequests(t, k, "REQ SUBSCRIBE sip:127.0.0.1:")
	t.Logf("max_expires %v: over %v, %d initial SUBSCRIBE(s), %d in-dialog refreshes; snapshots for the user %d (1 = no resubscription)",
		max, time.Since(start).Round(time.Second), initial, refreshes, v.snapshots["anna"])
	if want := int(wait / max); refreshes < want {
		t.Fatalf("%d in-dialog refreshes in %v with max_expires %v, want at least %d", refreshes, wait, max, want)
	}
	if initial != 1 || snaps != 1 {
		t.Errorf("the subscription was started again (%d initial SUBSCRIBEs, %d snapshots) instead of refreshed", initial, snaps)
	}
}

// Kamailio restarted mid-call loses every subscription and dialog: the
// connector must find out (its next refresh gets 481), subscribe again and
// take the fresh full state, so that no call is left hanging on the user.
func TestSIPReal_KamailioRestartMidCall(t *testing.T) {
	k := realSetup(t, kamailiotest.Options{MaxExpires: 6 * time.Second})
	v := runReal(t, realConfig(k), realAnna)
	v.until(10*time.Second, "PhoneSynced", func() bool { return v.synced > 0 })

	before := k.StartCall(t, "300", "201", 10*time.Second)
	v.until(10*time.Second, "connected call on 201", func() bool { return v.connectedOn("anna", "201") })
	snaps := v.snapshots["anna"]
	k.Restart(t)
	restarted := time.Now()
	t.Logf("kamailio restarted in %v", k.StartTook)
	v.until(20*time.Second, "a fresh snapshot after the restart", func() bool { return v.snapshots["anna"] > snaps })
	t.Logf("resubscribed and resynced %v after the restart", time.Since(restarted).Round(time.Millisecond))
	// The call from before the restart ends (the proxy forgot it; its BYE
	// still passes by the Route headers): it must be gone from the user.
	v.until(20*time.Second, "the call from before the restart gone", func() bool { return v.noCall("anna") })
	if code := before.Wait(t); code != 200 {
		t.Fatalf("call across the restart answered %d", code)
	}
	after := k.StartCall(t, "302", "201", time.Second)
	v.until(10*time.Second, "connected call after the restart", func() bool { return v.connectedOn("anna", "201") })
	v.until(15*time.Second, "call after the restart gone", func() bool { return v.noCall("anna") })
	if code := after.Wait(t); code != 200 {
		t.Fatalf("call after the restart answered %d", code)
	}
	if !v.noCall("anna") {
		t.Fatalf("calls left on the user: %+v", v.userCalls("anna"))
	}
}

// probeETag sends, on the connector's own SIP stack, a body-less refresh
// PUBLISH for ext under etag and returns Kamailio's answer: 200 while
// Kamailio holds that publication, 412 once it is gone. (Kamailio 5.6's
// presence.presentity_list shows only its memory cache, empty with the
// default publ_cache, so the wire is asked instead.)
func probeETag(t *testing.T, c *Conn, ext, etag string) int {
	t.Helper()
	st, err := c.running()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := st.request(ctx, c.publishRequest(ext, etag, 30, nil))
	if err != nil {
		t.Fatalf("probe PUBLISH: %v", err)
	}
	return res.StatusCode
}

func TestSIPReal_PublishWriter(t *testing.T) {
	k := realSetup(t, kamailiotest.Options{})
	cfg := realConfig(k)
	cfg.Writer = WriterPublish
	v := runReal(t, cfg, realAnna)
	v.until(10*time.Second, "PhoneSynced", func() bool { return v.synced > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	until := time.Now().Add(time.Minute).Truncate(time.Second)
	busy := psync.PresenceMark{Presence: psync.PhoneBusy, Until: until}
	if err := v.conn.SetPresence(ctx, realAnna, busy, nil); err != nil {
		t.Fatalf("SetPresence busy: %v", err)
	}
	changed := func(p psync.PhonePresence) func() bool {
		return func() bool { return v.presence["anna"] == p }
	}
	v.conn.mu.Lock()
	etag := ""
	if p := v.conn.pubs["anna"]; p != nil {
		etag = p.etag
	}
	v.conn.mu.Unlock()
	if etag == "" {
		t.Fatal("SetPresence returned without an entity-tag from Kamailio")
	}
	if !strings.HasPrefix(etag, "a.") {
		t.Errorf("SIP-ETag %q does not look like Kamailio's (a.<time>.<pid>.<n>.<n>)", etag)
	}
	v.until(5*time.Second, "PhonePresenceChanged busy", changed(psync.PhoneBusy))
	t.Logf("published busy: SIP-ETag %s", etag)

	if err := v.conn.RestorePresence(ctx, realAnna, []psync.PresenceMark{busy}, psync.PresenceMark{Presence: psync.PhoneNotSet}); err != nil {
		t.Fatalf("RestorePresence: %v", err)
	}
	if code := probeETag(t, v.conn, "201", etag); code != 412 {
		t.Fatalf("a refresh of the removed publication answered %d, want 412: Kamailio still holds it", code)
	}
	v.until(5*time.Second, "presence not set", changed(psync.PhoneNotSet))
	if n := kamailioRequests(t, k, "REQ PUBLISH sip:201@", "event=presence"); n != 3 {
		t.Errorf("Kamailio saw %d presence PUBLISHes for 201, want 3 (publish, remove, the probe)", n)
	}
}
