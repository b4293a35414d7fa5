package teams_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

func percentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}

// Requests per full poll round: the target is ⌈N/650⌉.
func BenchmarkPoll_RequestsPerRound(b *testing.B) {
	for _, n := range []int{50, 650, 10000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			s := newSim(b, simOpts{users: n})
			us := users(n)
			for i := range us {
				us[i].TeamsID = userID(i)
			}
			var reqs int
			for b.Loop() {
				// A request the previous client cancelled may still be
				// logged by the simulator: let it land before counting.
				time.Sleep(50 * time.Millisecond)
				s.ResetRequests()
				from := time.Now()
				cfg := config(s)
				cfg.MinPollInterval, cfg.PollShare = 100*time.Millisecond, 100
				r := run(b, newClient(b, cfg), us)
				r.synced()
				to := time.Now()
				r.stop()
				// Count this client's first round only: a request of the
				// previous client may still land after the reset.
				for _, q := range s.Requests() {
					if strings.HasSuffix(q.Path, "/getPresencesByUserId") && q.Status == 200 && !q.Time.Before(from) && !q.Time.After(to) {
						reqs++
					}
				}
			}
			b.ReportMetric(float64(reqs)/float64(b.N), "requests/round")
			b.ReportMetric(float64((n+649)/650), "target")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// A Teams change → the engine event, in poll mode with 650 users and the
// default budget share (2 %: one request per second). Target p99 ≤ 2.5 s.
func BenchmarkPoll_ChangeToEvent650(b *testing.B) {
	s := newSim(b, simOpts{users: 650})
	us := users(650)
	for i := range us {
		us[i].TeamsID = userID(i)
	}
	r := run(b, newClient(b, config(s)), us)
	r.synced()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		u := i % 650
		start := time.Now()
		if i%2 == 1 {
			s.StartTeamsCall(userID(u))
		} else {
			s.EndCall(userID(u - 1))
			u--
		}
		want := psync.UserID(fmt.Sprint(201 + u))
		r.next("change", func(ev psync.TeamsEvent) bool { return ev.Kind == psync.TeamsPresenceChanged && ev.User == want })
		lat = append(lat, time.Since(start))
	}
	percentiles(b, lat)
}

// A phone call → setPresence arriving at Graph: the engine, the write-ahead
// to the real store (bbolt, fsync) and the adapter. Target p99 ≤ 5 ms.
func BenchmarkEngine_PhoneEventToSetPresence(b *testing.B) {
	const n = 50
	s := newSim(b, simOpts{users: n})
	cfg := config(s)
	// "On the wire": the moment the adapter's transport sends the request.
	sent := make(chan time.Time, 16)
	// The product's own client keeps 16 idle connections per host (the
	// default 2 would close some and pay TLS handshakes on later calls).
	tr := s.Client().Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = 16
	cfg.HTTPClient = &http.Client{Transport: wireTap{inner: tr, suffix: "/setPresence", sent: sent}}
	c := newClient(b, cfg)
	phone := simoffice.NewPhone(psync.RealClock{})
	db := openStore(b)
	us := users(n)
	for i := range us {
		us[i].TeamsID = userID(i)
		phone.AddUser(us[i].ID, "desk")
	}
	tj := &timedJournal{Journal: db}
	e, err := psync.NewEngine(psync.EngineConfig{Settings: psync.DefaultSettings(), Profiles: simoffice.Profiles(), Users: us, Teams: c, Phone: phone, Journal: tj})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	for {
		st, err := e.Status(ctx)
		if err == nil && st.Teams.Synced && st.Phone.Synced {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = 0
	holds := func() int { st, _ := e.Status(ctx); return st.Holds }
	var lat []time.Duration
	i := 0
	for b.Loop() {
		id := us[i%n].ID
		i++
		start := time.Now()
		phone.Call(id, "desk", "c", psync.CallConnected)
		select {
		case at := <-sent:
			lat = append(lat, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatal("no setPresence")
		}
		phone.Call(id, "desk", "c", psync.CallEnded)
		for holds() != 0 {
			time.Sleep(time.Millisecond)
		}
	}
	percentiles(b, lat)
	slices.Sort(tj.put)
	b.ReportMetric(float64(tj.put[len(tj.put)*99/100].Microseconds()), "writeahead-p99-µs")
}

// wireTap tells when a request whose path ends in suffix leaves the client.
type wireTap struct {
	inner  http.RoundTripper
	suffix string
	sent   chan<- time.Time
}

func (w wireTap) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, w.suffix) {
		select {
		case w.sent <- time.Now():
		default:
		}
	}
	return w.inner.RoundTrip(r)
}

// A Teams change → the engine event in subscribe mode: graphsim delivers a
// rich notification to the webhook, which decrypts and verifies it. Target
// p99 ≤ 20 ms after the notification arrives (here measured from the
// change itself, so the delivery is included).
func BenchmarkSubscribe_ChangeToEvent(b *testing.B) {
	s := subSim(b, 20, nil)
	c := newClient(b, subConfig(b, s, newMemPersistence()))
	defer c.Close()
	r := run(b, c, users(20))
	r.synced()
	signIn(b, s, c)
	waitFor(b, "subscription", func() bool { return len(s.Subscriptions()) == 1 })
	time.Sleep(100 * time.Millisecond)
	var lat []time.Duration
	i := 0
	for b.Loop() {
		u := i % 20
		want := psync.UserID(fmt.Sprint(201 + u))
		start := time.Now()
		if i/20%2 == 0 {
			s.StartTeamsCall(userID(u))
			r.next("call", presenceOf(want, "Busy", "InACall"))
		} else {
			s.EndCall(userID(u))
			r.next("end", presenceOf(want, "Available", "Available"))
		}
		lat = append(lat, time.Since(start))
		i++
	}
	percentiles(b, lat)
}
