package teams_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
	"github.com/presencebridge/presencebridge/sync/teams/webhook"
)

const (
	serviceUPN = "svc-presence@contoso.example"
	serviceID  = "05050505-0000-4000-8000-000000000005"
)

// memPersistence is the store as the adapter sees it, in memory, so that
// a "restart" can hand it to a new client.
type memPersistence struct {
	mu     sync.Mutex
	subs   map[string]teams.Subscription
	caches map[string][]byte
	cert   []byte
}

func newMemPersistence() *memPersistence {
	return &memPersistence{subs: map[string]teams.Subscription{}, caches: map[string][]byte{}}
}

func (m *memPersistence) Subscriptions() ([]teams.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []teams.Subscription
	for _, s := range m.subs {
		out = append(out, s)
	}
	return out, nil
}
func (m *memPersistence) PutSubscription(s teams.Subscription) error {
	m.mu.Lock()
	m.subs[s.ID] = s
	m.mu.Unlock()
	return nil
}
func (m *memPersistence) DeleteSubscription(id string) error {
	m.mu.Lock()
	delete(m.subs, id)
	m.mu.Unlock()
	return nil
}
func (m *memPersistence) TokenCache(a string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.caches[a], nil
}
func (m *memPersistence) PutTokenCache(a string, d []byte) error {
	m.mu.Lock()
	m.caches[a] = d
	m.mu.Unlock()
	return nil
}
func (m *memPersistence) EncryptionCert() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cert, nil
}
func (m *memPersistence) PutEncryptionCert(p []byte) error {
	m.mu.Lock()
	m.cert = p
	m.mu.Unlock()
	return nil
}

var serverCert = sync.OnceValue(func() *webhook.ServerCert {
	c, err := webhook.NewServerCert("127.0.0.1")
	if err != nil {
		panic(err)
	}
	return c
})

// subSim is a tenant where the app may also sign in service accounts.
func subSim(t testing.TB, n int, tune func(*graphsim.Options)) *graphsim.Server {
	return newSim(t, simOpts{users: n, mutate: func(o *graphsim.Options) {
		o.Apps[0].PublicClient = true
		o.Apps[0].DelegatedScopes = []string{"Presence.Read.All"}
		o.Users = append(o.Users, graphsim.User{ID: serviceID, UserPrincipalName: serviceUPN, DisplayName: "Presence service"})
		o.NotificationClient = serverCert().Client()
		if tune != nil {
			tune(o)
		}
	}})
}

// subConfig listens for the webhook on addr; a restart passes the address
// of the run before, as a real bridge keeps its public URL.
func subConfig(t testing.TB, s *graphsim.Server, p *memPersistence, addr ...string) teams.Config {
	t.Helper()
	at := "127.0.0.1:0"
	if len(addr) > 0 {
		at = addr[0]
	}
	var ln net.Listener
	var err error
	for range 50 { // the previous run's listener may take a moment to go
		if ln, err = net.Listen("tcp", at); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(s)
	cfg.Mode, cfg.ServiceAccounts, cfg.Store = "subscribe", []string{serviceUPN}, p
	cfg.WebhookListener, cfg.WebhookCert = ln, &serverCert().TLS
	cfg.MinPollInterval, cfg.PollShare = 20*time.Millisecond, 100
	cfg.SubscriptionCheck = 100 * time.Millisecond
	return cfg
}

// signIn runs the device-code flow as the admin would.
func signIn(t testing.TB, s *graphsim.Server, c *teams.Client) {
	t.Helper()
	p, err := c.StartSignIn(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Account != serviceUPN || p.Code == "" || !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("prompt %+v", p)
	}
	if err := s.ApproveDeviceCode(p.Code, serviceID); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSubscribe_SignInThenNotifications(t *testing.T) {
	s := subSim(t, 3, nil)
	p := newMemPersistence()
	c := newClient(t, subConfig(t, s, p))
	defer c.Close()
	r := run(t, c, users(3))
	r.synced() // the first full read does not wait for the sign-in
	if facts := c.Report().Facts; !strings.Contains(factText(facts), "subscription "+serviceUPN+": none") {
		t.Fatalf("before sign-in: %s", factText(facts))
	}
	signIn(t, s, c)
	waitFor(t, "subscription", func() bool { return len(s.Subscriptions()) == 1 })
	sub := s.Subscriptions()[0]
	if !sub.IncludeResourceData || len(sub.UserIDs) != 3 || sub.CreatorID != serviceID || sub.ExpirationDateTime.Sub(time.Now()) > time.Hour {
		t.Fatalf("subscription %+v", sub)
	}
	if caches, _ := p.TokenCache(serviceUPN); len(caches) == 0 {
		t.Fatal("the sign-in was not kept")
	}
	start := time.Now()
	if err := s.StartTeamsCall(userID(2)); err != nil {
		t.Fatal(err)
	}
	r.next("call by notification", presenceOf("203", "Busy", "InACall"))
	t.Logf("Teams change → engine event: %s", time.Since(start))
	if st := c.Report(); !strings.Contains(factText(st.Facts), "1 accepted") {
		t.Fatalf("report %s", factText(st.Facts))
	}
	// Reauthorization asked by Graph is answered.
	if err := s.RequireReauthorization(sub.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reauthorize", func() bool {
		for _, q := range s.Requests() {
			if strings.HasSuffix(q.Path, "/reauthorize") && q.Status < 300 {
				return true
			}
		}
		return false
	})
}

func factText(fs []psync.Fact) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Label + ": " + f.Value + "\n")
	}
	return b.String()
}

func TestSubscribe_ReusedAfterRestartNeverDuplicated(t *testing.T) {
	s := subSim(t, 2, nil)
	p := newMemPersistence()
	cfg1 := subConfig(t, s, p)
	addr := cfg1.WebhookListener.Addr().String()
	c1 := newClient(t, cfg1)
	r1 := run(t, c1, users(2))
	r1.synced()
	signIn(t, s, c1)
	// Wait until the client has recorded it, not only Graph: stopping in
	// between leaves a subscription the next run must find by its 409.
	waitFor(t, "subscription recorded", func() bool { ps, _ := p.Subscriptions(); return len(ps) == 1 })
	first := s.Subscriptions()[0].ID
	r1.stop()
	c1.Close()

	// Restart: same store, new process state. No sign-in, no new subscription.
	s.ResetRequests()
	c2 := newClient(t, subConfig(t, s, p, addr))
	defer c2.Close()
	r2 := run(t, c2, users(2))
	r2.synced()
	time.Sleep(300 * time.Millisecond) // several subscription checks
	if subs := s.Subscriptions(); len(subs) != 1 || subs[0].ID != first {
		t.Fatalf("after restart: %+v", subs)
	}
	for _, q := range s.Requests() {
		if q.Method == "POST" && strings.HasSuffix(q.Path, "/subscriptions") {
			t.Fatalf("a subscription was created again: %+v", q)
		}
	}
	// The reused subscription still delivers to the new process.
	if err := s.SetDND(userID(0)); err != nil {
		t.Fatal(err)
	}
	r2.next("DND by notification", presenceOf("201", "DoNotDisturb", "DoNotDisturb"))

	// Users changed: the old subscription is replaced, not added to.
	r2.stop()
	c2.Close()
	c3 := newClient(t, subConfig(t, s, p, addr))
	defer c3.Close()
	r3 := run(t, c3, users(1))
	r3.synced()
	waitFor(t, "replaced", func() bool {
		subs := s.Subscriptions()
		return len(subs) == 1 && subs[0].ID != first && len(subs[0].UserIDs) == 1
	})
}

func TestSubscribe_RenewsBeforeExpiry(t *testing.T) {
	s := subSim(t, 1, nil)
	p := newMemPersistence()
	cfg1 := subConfig(t, s, p)
	addr := cfg1.WebhookListener.Addr().String()
	c1 := newClient(t, cfg1)
	r1 := run(t, c1, users(1))
	r1.synced()
	signIn(t, s, c1)
	waitFor(t, "subscription recorded", func() bool { ps, _ := p.Subscriptions(); return len(ps) == 1 })
	r1.stop()
	c1.Close()
	// Make the kept record say it expires in 5 minutes: the next run renews.
	subs, _ := p.Subscriptions()
	subs[0].Expires = time.Now().Add(5 * time.Minute)
	p.PutSubscription(subs[0])
	s.ResetRequests()
	c2 := newClient(t, subConfig(t, s, p, addr))
	defer c2.Close()
	r2 := run(t, c2, users(1))
	r2.synced()
	waitFor(t, "renewed", func() bool {
		for _, q := range s.Requests() {
			if q.Method == "PATCH" && strings.Contains(q.Path, "/subscriptions/") && q.Status == 200 {
				return true
			}
		}
		return false
	})
	waitFor(t, "record moved", func() bool {
		subs, _ := p.Subscriptions()
		return len(subs) == 1 && time.Until(subs[0].Expires) > 50*time.Minute
	})
}

func TestSubscribe_LostSignInIsReportedLoudly(t *testing.T) {
	s := subSim(t, 1, func(o *graphsim.Options) { o.AccessTokenLifetime = time.Minute })
	p := newMemPersistence()
	c1 := newClient(t, subConfig(t, s, p))
	r1 := run(t, c1, users(1))
	r1.synced()
	signIn(t, s, c1)
	waitFor(t, "subscription recorded", func() bool { ps, _ := p.Subscriptions(); return len(ps) == 1 })
	r1.stop()
	c1.Close()
	if err := s.RevokeRefreshTokens(serviceID); err != nil {
		t.Fatal(err)
	}
	// Forget the subscription so the next run must use the sign-in.
	subs, _ := p.Subscriptions()
	p.DeleteSubscription(subs[0].ID)
	c2 := newClient(t, subConfig(t, s, p))
	defer c2.Close()
	r2 := run(t, c2, users(1))
	r2.synced()
	waitFor(t, "sign-in problem reported", func() bool {
		rep := c2.Report()
		return strings.Contains(factText(rep.Facts), "could not be refreshed") && len(rep.Errors) > 0 && strings.Contains(rep.Errors[0].What, "sign it in again")
	})
}

// The store lost the record (a crash between Graph's answer and the save):
// Graph's 409 leads the next run to the stray, which is replaced.
func TestSubscribe_LostRecordNeverDuplicates(t *testing.T) {
	s := subSim(t, 2, nil)
	p := newMemPersistence()
	cfg1 := subConfig(t, s, p)
	addr := cfg1.WebhookListener.Addr().String()
	c1 := newClient(t, cfg1)
	r1 := run(t, c1, users(2))
	r1.synced()
	signIn(t, s, c1)
	waitFor(t, "subscription recorded", func() bool { ps, _ := p.Subscriptions(); return len(ps) == 1 })
	r1.stop()
	c1.Close()
	ps, _ := p.Subscriptions()
	p.DeleteSubscription(ps[0].ID)

	c2 := newClient(t, subConfig(t, s, p, addr))
	defer c2.Close()
	r2 := run(t, c2, users(2))
	r2.synced()
	waitFor(t, "replaced", func() bool {
		subs := s.Subscriptions()
		return len(subs) == 1 && subs[0].ID != ps[0].ID
	})
	if err := s.StartTeamsCall(userID(1)); err != nil {
		t.Fatal(err)
	}
	r2.next("call by notification", presenceOf("202", "Busy", "InACall"))
}
