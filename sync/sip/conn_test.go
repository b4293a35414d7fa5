package sip

import (
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/sipsim"
)

var anna = psync.User{ID: "anna", Extension: "201, 221", UPN: "anna@contoso.com"}
var ben = psync.User{ID: "ben", Extension: "202"}

func TestConn_CallLifecycle(t *testing.T) {
	for _, style := range []sipsim.Style{sipsim.StyleKamailio, sipsim.StyleAsterisk, sipsim.StylePartial} {
		t.Run(style.String(), func(t *testing.T) {
			sim := startSim(t, sipsim.Options{Extensions: []string{"201", "221", "202"}, Style: style})
			r := runConn(t, testConfig(sim), []psync.User{anna, ben})
			snaps := map[psync.UserID]psync.PhoneState{}
			r.waitFor(10*time.Second, "PhoneSynced", func(ev psync.PhoneEvent) bool {
				if ev.Kind == psync.PhoneSnapshot {
					snaps[ev.User] = ev.State
				}
				return ev.Kind == psync.PhoneSynced
			})
			if s := snaps["anna"]; len(s.Devices) != 2 || s.Devices[0].ID != "201" || s.Devices[1].ID != "221" || len(s.Calls) != 0 || s.Presence != psync.PhoneNotSet {
				t.Fatalf("anna's snapshot: %+v", s)
			}
			if s := snaps["ben"]; len(s.Devices) != 1 {
				t.Fatalf("ben's snapshot: %+v", s)
			}

			// A call on anna's second extension.
			id := sim.StartCall("221")
			r.waitFor(5*time.Second, "ringing", callIs("anna", "221", psync.CallRinging))
			if err := sim.Answer(id); err != nil {
				t.Fatal(err)
			}
			r.waitFor(5*time.Second, "connected", callIs("anna", "221", psync.CallConnected))
			if err := sim.Hold(id, true); err != nil {
				t.Fatal(err)
			}
			r.waitFor(5*time.Second, "held", callIs("anna", "221", psync.CallHeld))
			if err := sim.Hold(id, false); err != nil {
				t.Fatal(err)
			}
			r.waitFor(5*time.Second, "connected again", callIs("anna", "221", psync.CallConnected))
			// A second call on her first extension at the same time.
			id2 := sim.StartCall("201")
			if err := sim.Answer(id2); err != nil {
				t.Fatal(err)
			}
			r.waitFor(5*time.Second, "connected on 201", callIs("anna", "201", psync.CallConnected))
			if err := sim.EndCall(id); err != nil {
				t.Fatal(err)
			}
			r.waitFor(5*time.Second, "hang-up on 221", callIs("anna", "221", psync.CallEnded))
			if err := sim.EndCall(id2); err != nil {
				t.Fatal(err)
			}
			r.waitFor(5*time.Second, "hang-up on 201", callIs("anna", "201", psync.CallEnded))

			// Versions rise per user.
			last := map[psync.UserID]uint64{}
			for _, ev := range r.seen {
				if ev.User == "" {
					continue
				}
				if ev.Version <= last[ev.User] {
					t.Fatalf("version of %s went from %d to %d", ev.User, last[ev.User], ev.Version)
				}
				last[ev.User] = ev.Version
			}
			for _, ev := range r.seen {
				if ev.User == "ben" && ev.Kind == psync.PhoneCallChanged {
					t.Fatalf("ben got anna's call: %+v", ev)
				}
			}
		})
	}
}

func TestConn_Conference(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}})
	r := runConn(t, testConfig(sim), []psync.User{ben})
	r.waitSynced()
	id := sim.StartCall("202")
	_ = sim.Answer(id)
	r.waitFor(5*time.Second, "connected", callIs("ben", "202", psync.CallConnected))
	if err := sim.Conference(id); err != nil {
		t.Fatal(err)
	}
	ev := r.waitFor(5*time.Second, "conference", func(ev psync.PhoneEvent) bool {
		return ev.Kind == psync.PhoneCallChanged && ev.Call.Conference
	})
	if ev.Call.Device != "202" {
		t.Fatalf("%+v", ev)
	}
}

func TestConn_DigestAndShutdownUnsubscribes(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}, User: "bridge", Password: "s3cret"})
	cfg := testConfig(sim)
	cfg.User, cfg.Password, cfg.Register = "bridge", "s3cret", true
	r := runConn(t, cfg, []psync.User{ben})
	r.waitSynced()
	if regs := sim.Registrations(); len(regs) != 1 || !strings.Contains(regs[0].AOR, "bridge@") {
		t.Fatalf("registrations %+v", regs)
	}
	if st := sim.Stats(); st.Challenges == 0 {
		t.Fatalf("no 407 challenge was answered: %+v", st)
	}
	if n := len(sim.Subscriptions("202")); n != 1 {
		t.Fatalf("%d subscriptions", n)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// The un-SUBSCRIBE ended the subscription, not its expiry (an hour),
	// and the final NOTIFY was answered before the socket closed.
	eventually(t, 3*time.Second, "the subscription ended", func() bool { return len(sim.Subscriptions("")) == 0 })
	if st := sim.Stats(); st.NotifyFailures != 0 {
		t.Fatalf("the final NOTIFY went unanswered: %+v", st)
	}
	if regs := sim.Registrations(); len(regs) != 0 {
		t.Fatalf("still registered after shutdown: %+v", regs)
	}
}

func TestConn_WrongPasswordIsUnhealthy(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}, User: "bridge", Password: "s3cret"})
	cfg := testConfig(sim)
	cfg.User, cfg.Password = "bridge", "wrong"
	r := runConn(t, cfg, []psync.User{ben})
	ev := r.waitFor(10*time.Second, "unhealthy", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneHealth && !ev.Healthy })
	if !contains(ev.Detail, "sip.password") {
		t.Fatalf("detail names no fix: %q", ev.Detail)
	}
}

func TestConn_RefreshBeforeGrantedExpiry(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}, MaxExpires: 2})
	r := runConn(t, testConfig(sim), []psync.User{ben})
	r.waitSynced()
	// Granted 2 s: refreshed at 1.6 s, again and again; the subscription
	// never lapses (a lapse ends it with a NOTIFY terminated).
	eventually(t, 8*time.Second, "three refreshes", func() bool {
		subs := sim.Subscriptions("202")
		return len(subs) == 1 && subs[0].Refreshed >= 3
	})
	if st := sim.Stats(); st.SubscriptionsEnded != 0 {
		t.Fatalf("a subscription lapsed: %+v", st)
	}
	// Calls still come through on the refreshed dialog.
	id := sim.StartCall("202")
	_ = sim.Answer(id)
	r.waitFor(5*time.Second, "connected", callIs("ben", "202", psync.CallConnected))
}

func TestConn_ServerRestartResubscribesAndResyncs(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"201", "221", "202"}, MaxExpires: 2})
	r := runConn(t, testConfig(sim), []psync.User{anna, ben})
	r.waitSynced()
	first := sim.Subscriptions("202")[0].CallID

	// Subscriptions forgotten without a word: the next refresh gets 481.
	sim.Restart()
	id := sim.StartCall("202")
	_ = sim.Answer(id)
	// The call made while the bridge was not subscribed arrives with the
	// resync (a snapshot of ben with the call in it).
	r.waitFor(10*time.Second, "resync with the call", func(ev psync.PhoneEvent) bool {
		return ev.User == "ben" && ev.Kind == psync.PhoneSnapshot && len(ev.State.Calls) == 1 && ev.State.Calls[0].State == psync.CallConnected
	})
	eventually(t, 5*time.Second, "new subscription", func() bool {
		subs := sim.Subscriptions("202")
		return len(subs) == 1 && subs[0].CallID != first
	})
	_ = sim.EndCall(id)
	r.waitFor(5*time.Second, "hang-up after the restart", callIs("ben", "202", psync.CallEnded))
}

func TestConn_ServerDownAndBack(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}, MaxExpires: 2})
	r := runConn(t, testConfig(sim), []psync.User{ben})
	r.waitSynced()
	sim.Kill()
	ev := r.waitFor(15*time.Second, "unhealthy", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneHealth && !ev.Healthy })
	if !contains(ev.Detail, "sip.server") {
		t.Fatalf("detail names no fix: %q", ev.Detail)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	r.waitFor(15*time.Second, "resynced", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneSynced })
	r.waitFor(5*time.Second, "healthy", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneHealth && ev.Healthy })
}

func TestConn_RefusedExtensionDoesNotBlockSync(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"201", "202"}}) // 221 unknown: 404
	r := runConn(t, testConfig(sim), []psync.User{anna, ben})
	r.waitSynced()
	id := sim.StartCall("202")
	_ = sim.Answer(id)
	r.waitFor(5*time.Second, "connected", callIs("ben", "202", psync.CallConnected))
}

func contains(s, sub string) bool { return len(sub) == 0 || indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestConn_TCP(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}, User: "bridge", Password: "s3cret", MaxExpires: 2})
	cfg := testConfig(sim)
	cfg.Transport, cfg.User, cfg.Password = "tcp", "bridge", "s3cret"
	r := runConn(t, cfg, []psync.User{ben})
	r.waitSynced()
	if tp := sim.Subscriptions("202")[0].Transport; tp != "TCP" {
		t.Fatalf("subscribed over %s", tp)
	}
	eventually(t, 5*time.Second, "a refresh over TCP", func() bool {
		s := sim.Subscriptions("202")
		return len(s) == 1 && s[0].Refreshed >= 1
	})
	id := sim.StartCall("202")
	_ = sim.Answer(id)
	r.waitFor(5*time.Second, "connected", callIs("ben", "202", psync.CallConnected))
	_ = sim.EndCall(id)
	r.waitFor(5*time.Second, "ended", callIs("ben", "202", psync.CallEnded))
}

// A server that accepts the SUBSCRIBE but whose NOTIFYs never arrive (a
// firewall in front of sip.listen) is reported with that fix, and the
// bridge keeps trying until they do.
func TestConn_NoNotifyIsUnhealthyUntilTheyCome(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}})
	sim.DropNotifies(true)
	cfg := testConfig(sim)
	cfg.NotifyTimeout = 300 * time.Millisecond
	r := runConn(t, cfg, []psync.User{ben})
	ev := r.waitFor(10*time.Second, "unhealthy", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneHealth && !ev.Healthy })
	if !strings.Contains(ev.Detail, "sip.listen") {
		t.Fatalf("detail names no fix: %q", ev.Detail)
	}
	sim.DropNotifies(false)
	r.waitSynced()
	r.waitFor(5*time.Second, "healthy", func(ev psync.PhoneEvent) bool { return ev.Kind == psync.PhoneHealth && ev.Healthy })
}
