package teams

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	msgraph "github.com/microsoftgraph/msgraph-sdk-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams/webhook"
)

// Subscribe mode (graph-presence.md §3): presence subscriptions are
// delegated-only, one per app per service account, at most 650 users and
// 60 minutes each. So every service account carries one subscription of at
// most 650 users; subscriptions are kept in the store and reused after a
// restart, renewed before they expire and recreated when Graph dropped
// them. Notifications arrive at the webhook; a slow full read catches what
// Graph never reports as missed.

const (
	subscriptionLife = 59 * time.Minute // under Graph's 60-minute cap
	renewBefore      = 10 * time.Minute
)

// subscriber is the subscribe-mode state of a Client.
type subscriber struct {
	c        *Client
	accounts []*account
	graphs   []*msgraph.GraphServiceClient // per account, delegated
	cert     *webhook.EncryptionCert
	rcv      *webhook.Receiver
	notify   string // notificationUrl
	life     string // lifecycleNotificationUrl

	mu     sync.Mutex
	subs   map[string]*Subscription // by account (lower case)
	wanted map[string][]string      // object ids each account should carry
	kick   chan struct{}            // re-check subscriptions now
}

// newSubscriber prepares subscribe mode: the service accounts, the
// encryption certificate (kept in the store) and the webhook receiver.
func newSubscriber(c *Client) (*subscriber, error) {
	cfg := &c.cfg
	if cfg.Store == nil {
		return nil, errors.New("teams: subscribe mode needs the store (subscriptions, sign-ins)")
	}
	s := &subscriber{c: c, subs: make(map[string]*Subscription), wanted: make(map[string][]string), kick: make(chan struct{}, 1)}
	scope, host, err := graphScope(cfg.GraphURL)
	if err != nil {
		return nil, err
	}
	for _, upn := range cfg.ServiceAccounts {
		a, err := newAccount(cfg, upn, c.hc)
		if err != nil {
			return nil, err
		}
		g, err := newGraphClient(a, strings.TrimSuffix(scope, ".default")+"Presence.Read.All", host, cfg.GraphURL, c.hc, c.budget)
		if err != nil {
			return nil, err
		}
		s.accounts = append(s.accounts, a)
		s.graphs = append(s.graphs, g)
	}
	pemBytes, err := cfg.Store.EncryptionCert()
	if err != nil {
		return nil, err
	}
	if pemBytes != nil {
		s.cert, err = webhook.ParseEncryptionCertPEM(pemBytes)
		if err != nil || time.Until(s.cert.Cert.NotAfter) < 30*24*time.Hour {
			c.log.Warn("notification certificate unusable or about to expire: making a new one", "err", err)
			s.cert = nil
		}
	}
	if s.cert == nil {
		if s.cert, err = webhook.NewEncryptionCert("presencebridge-" + time.Now().UTC().Format("20060102")); err != nil {
			return nil, err
		}
		pemBytes, err = s.cert.MarshalPEM()
		if err == nil {
			err = cfg.Store.PutEncryptionCert(pemBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("teams: keep the notification certificate: %w", err)
		}
	}
	s.rcv, err = webhook.New(webhook.Config{
		Lookup: s.clientState, EncryptionKey: webhook.CertSet(s.cert),
		ClientID: cfg.ClientID, TenantID: cfg.TenantID, HTTPClient: c.hc, Now: cfg.Now, Logger: c.log,
		MetadataURL: strings.TrimSuffix(cfg.AuthorityURL, "/") + "/" + cfg.TenantID + "/.well-known/openid-configuration",
	})
	if err != nil {
		return nil, err
	}
	// Subscriptions of an earlier run, reused if Graph still has them.
	saved, err := cfg.Store.Subscriptions()
	if err != nil {
		return nil, err
	}
	for i := range saved {
		sub := saved[i]
		s.subs[strings.ToLower(sub.Account)] = &sub
	}
	return s, nil
}

// clientState is the webhook's lookup: the secret of a known subscription.
func (s *subscriber) clientState(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if sub.ID == id {
			return sub.ClientState, true
		}
	}
	return "", false
}

// listen serves the webhook: on the configured listener or address, with
// TLS when a certificate is configured, plain HTTP behind a TLS proxy else.
func (s *subscriber) listen(ctx context.Context) (func(), error) {
	cfg := &s.c.cfg
	ln := cfg.WebhookListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.WebhookListen); err != nil {
			return nil, fmt.Errorf("teams: webhook listener on %s: %w", cfg.WebhookListen, err)
		}
	}
	base := strings.TrimSuffix(cfg.WebhookURL, "/")
	if base == "" {
		base = "https://" + ln.Addr().String()
	}
	s.notify, s.life = base+webhook.NotifyPath, base+webhook.LifecyclePath
	cert := cfg.WebhookCert
	if cert == nil && cfg.WebhookTLSCert != "" {
		c, err := loadKeyPair(cfg.WebhookTLSCert, cfg.WebhookTLSKey)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("teams.webhook_tls_cert/key: %w", err)
		}
		cert = &c
	}
	var ep *webhook.Endpoint
	if cert != nil {
		ep = s.rcv.ServeTLS(ln, *cert)
	} else {
		// Behind a TLS proxy: the same limits on connections, streams and bodies.
		ep = s.rcv.Serve(ln)
	}
	return func() { ep.Close() }, nil
}

// subscribe runs subscribe mode until ctx ends.
func (r *runner) subscribe(watched []psync.User) error {
	s := r.c.subs
	stop, err := s.listen(r.ctx)
	if err != nil {
		r.health(false, err.Error())
		return err
	}
	defer stop()
	go s.rcv.Run(r.ctx)

	// Share the users out: one subscription of at most 650 per account.
	ids := make([]string, 0, len(watched))
	for _, u := range watched {
		ids = append(ids, lower(u.TeamsID))
	}
	s.mu.Lock()
	for i, a := range s.accounts {
		lo, hi := min(i*maxUsersPerSubscribe, len(ids)), min((i+1)*maxUsersPerSubscribe, len(ids))
		s.wanted[strings.ToLower(a.upn)] = slices.Clone(ids[lo:hi])
	}
	s.mu.Unlock()
	if extra := len(ids) - len(s.accounts)*maxUsersPerSubscribe; extra > 0 {
		r.c.problem(fmt.Errorf("%d users exceed the %d that %d service account(s) can watch: they are only read every %s", extra, len(s.accounts)*maxUsersPerSubscribe, len(s.accounts), r.c.cfg.CatchUp))
	}

	s.ensureAll(r.ctx)
	// A full read now also covers notifications that arrived before a new
	// subscription's id was known.
	if err := r.poll(watched, true); err != nil {
		return err
	}
	catchUp := time.NewTicker(r.c.cfg.CatchUp)
	defer catchUp.Stop()
	check := time.NewTicker(r.c.cfg.SubscriptionCheck)
	defer check.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return nil
		case ev, ok := <-s.rcv.Events():
			if !ok {
				return nil
			}
			r.onNotification(ev)
		case <-catchUp.C:
			r.poll(watched, true)
		case <-check.C:
			s.ensureAll(r.ctx)
		case <-s.kick:
			s.ensureAll(r.ctx)
		}
	}
}

// onNotification turns a webhook event into engine events.
func (r *runner) onNotification(ev webhook.Event) {
	s := r.c.subs
	switch ev.Kind {
	case webhook.Presence:
		tp := psync.TeamsPresence{Availability: ev.Availability, Activity: ev.Activity, Sequence: ev.Sequence, Observed: r.c.cfg.Now()}
		if out, ok := r.c.acceptPresence(ev.UserID, tp); ok {
			r.send(out)
		}
	case webhook.Changed:
		// Basic notifications carry no state: read it.
		if err := r.readChunk([]string{ev.UserID}); err != nil {
			r.c.log.Warn("presence after a notification not read", "user", ev.UserID, "err", err)
		}
	case webhook.Lifecycle:
		r.c.log.Info("subscription lifecycle event", "subscription", ev.SubscriptionID, "event", ev.Lifecycle)
		switch ev.Lifecycle {
		case webhook.LifecycleReauthorizationRequired:
			s.reauthorize(r.ctx, ev.SubscriptionID)
		case webhook.LifecycleMissed:
			r.poll(r.watched, true)
		default: // subscriptionRemoved and anything new: check them all
			s.forget(ev.SubscriptionID)
			s.ensureAll(r.ctx)
		}
	}
}

// byID finds the account (index) and record of a subscription.
func (s *subscriber) byID(id string) (int, *Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range s.accounts {
		if sub := s.subs[strings.ToLower(a.upn)]; sub != nil && sub.ID == id {
			return i, sub
		}
	}
	return -1, nil
}

func (s *subscriber) forget(id string) {
	if i, _ := s.byID(id); i >= 0 {
		s.mu.Lock()
		delete(s.subs, strings.ToLower(s.accounts[i].upn))
		s.mu.Unlock()
		_ = s.c.cfg.Store.DeleteSubscription(id)
	}
}

// reauthorize answers reauthorizationRequired: Graph wants fresh proof
// of the delegated sign-in before it goes on delivering.
func (s *subscriber) reauthorize(ctx context.Context, id string) {
	i, _ := s.byID(id)
	if i < 0 {
		return
	}
	err := s.c.call("reauthorizeSubscription", func() error {
		return s.graphs[i].Subscriptions().BySubscriptionId(id).Reauthorize().Post(ctx, nil)
	})
	if err != nil {
		s.c.log.Warn("reauthorize failed: renewing instead", "subscription", id, "err", err)
		s.renew(ctx, i)
	}
}

// ensureAll makes every account's subscription exist, carry its users
// and live long enough.
func (s *subscriber) ensureAll(ctx context.Context) {
	for i := range s.accounts {
		if ctx.Err() != nil {
			return
		}
		s.ensure(ctx, i)
	}
	s.meter()
}

func (s *subscriber) meter() {
	s.mu.Lock()
	n, earliest := 0, time.Time{}
	for _, sub := range s.subs {
		n++
		if earliest.IsZero() || sub.Expires.Before(earliest) {
			earliest = sub.Expires
		}
	}
	s.mu.Unlock()
	s.c.meter.Subscriptions(psync.SideTeams, n, earliest)
}

func (s *subscriber) ensure(ctx context.Context, i int) {
	a := s.accounts[i]
	key := strings.ToLower(a.upn)
	s.mu.Lock()
	want := s.wanted[key]
	sub := s.subs[key]
	s.mu.Unlock()
	now := s.c.cfg.Now()
	switch {
	case len(want) == 0 && sub == nil:
		return
	case len(want) == 0:
		s.remove(ctx, i, sub)
		return
	case sub != nil && (!sameSet(sub.UserIDs, want) || sub.NotifyURL != s.notify):
		// The users or the webhook URL changed: recreate rather than
		// PATCH (Graph documents no resource change).
		s.remove(ctx, i, sub)
		sub = nil
	case sub != nil && sub.Expires.Sub(now) > renewBefore:
		if sub.checked {
			return
		}
		// From an earlier run: reuse it if Graph still has it.
		err := s.c.call("getSubscription", func() error {
			_, err := s.graphs[i].Subscriptions().BySubscriptionId(sub.ID).Get(ctx, nil)
			return err
		})
		if err == nil {
			s.mu.Lock()
			sub.checked = true
			s.mu.Unlock()
			s.c.log.Info("subscription reused", "account", a.upn, "subscription", sub.ID, "expires", sub.Expires)
			return
		}
		if statusOf(err) != http.StatusNotFound {
			return // try again at the next check
		}
		s.forget(sub.ID)
		sub = nil
	case sub != nil:
		if s.renew(ctx, i) {
			return
		}
		sub = nil
	}
	s.create(ctx, i, want)
}

// renew moves a subscription's expiry; false when Graph no longer has it.
func (s *subscriber) renew(ctx context.Context, i int) bool {
	key := strings.ToLower(s.accounts[i].upn)
	s.mu.Lock()
	sub := s.subs[key]
	s.mu.Unlock()
	if sub == nil {
		return false
	}
	exp := s.c.cfg.Now().Add(subscriptionLife).UTC()
	body := models.NewSubscription()
	body.SetExpirationDateTime(&exp)
	err := s.c.call("renewSubscription", func() error {
		_, err := s.graphs[i].Subscriptions().BySubscriptionId(sub.ID).Patch(ctx, body, nil)
		return err
	})
	if statusOf(err) == http.StatusNotFound {
		s.forget(sub.ID)
		return false
	}
	if err != nil {
		return true // kept: retried at the next check, well before it expires
	}
	s.mu.Lock()
	sub.Expires, sub.checked = exp, true
	cp := *sub
	s.mu.Unlock()
	if err := s.c.cfg.Store.PutSubscription(cp); err != nil {
		s.c.problem(err)
	}
	return true
}

func (s *subscriber) remove(ctx context.Context, i int, sub *Subscription) {
	err := s.c.call("deleteSubscription", func() error {
		return s.graphs[i].Subscriptions().BySubscriptionId(sub.ID).Delete(ctx, nil)
	})
	if err == nil || statusOf(err) == http.StatusNotFound {
		s.forget(sub.ID)
	}
}

// create makes the account's subscription. A 409 means Graph already has
// one of this app for this account (a record lost, or made elsewhere): it
// is deleted and the creation tried once more.
func (s *subscriber) create(ctx context.Context, i int, ids []string) {
	a := s.accounts[i]
	state := randomState()
	exp := s.c.cfg.Now().Add(subscriptionLife).UTC()
	quoted := make([]string, len(ids))
	for k, id := range ids {
		quoted[k] = "'" + id + "'"
	}
	body := models.NewSubscription()
	body.SetChangeType(ptr("updated"))
	body.SetNotificationUrl(ptr(s.notify))
	body.SetLifecycleNotificationUrl(ptr(s.life))
	body.SetResource(ptr("/communications/presences?$filter=id in (" + strings.Join(quoted, ",") + ")"))
	body.SetExpirationDateTime(&exp)
	body.SetClientState(ptr(state))
	body.SetIncludeResourceData(ptr(true))
	body.SetEncryptionCertificate(ptr(s.cert.Base64()))
	body.SetEncryptionCertificateId(ptr(s.cert.ID))

	// Register the state first: Graph validates and may notify before the
	// POST returns; the id is filled in below.
	pending := &Subscription{Account: a.upn, ClientState: state, UserIDs: ids, NotifyURL: s.notify, Expires: exp, Created: s.c.cfg.Now(), checked: true}
	for attempt := 0; attempt < 2; attempt++ {
		var got models.Subscriptionable
		err := s.c.call("createSubscription", func() error {
			var err error
			got, err = s.graphs[i].Subscriptions().Post(ctx, body, nil)
			return err
		})
		if statusOf(err) == http.StatusConflict && attempt == 0 {
			s.dropStrays(ctx, i)
			continue
		}
		if err != nil {
			if errors.Is(err, ErrNotSignedIn) || strings.Contains(err.Error(), "sign") {
				s.c.log.Error("presence subscription needs a signed-in service account", "account", a.upn, "err", err)
			}
			return
		}
		pending.ID = deref(got.GetId())
		if e := got.GetExpirationDateTime(); e != nil {
			pending.Expires = *e
		}
		s.mu.Lock()
		s.subs[strings.ToLower(a.upn)] = pending
		s.mu.Unlock()
		if err := s.c.cfg.Store.PutSubscription(*pending); err != nil {
			s.c.problem(err)
		}
		s.c.log.Info("subscription created", "account", a.upn, "subscription", pending.ID, "users", len(ids), "expires", pending.Expires)
		return
	}
}

// dropStrays deletes the account's presence subscriptions Graph lists.
func (s *subscriber) dropStrays(ctx context.Context, i int) {
	var list models.SubscriptionCollectionResponseable
	if err := s.c.call("listSubscriptions", func() error {
		var err error
		list, err = s.graphs[i].Subscriptions().Get(ctx, nil)
		return err
	}); err != nil {
		return
	}
	for _, sub := range list.GetValue() {
		if strings.Contains(strings.ToLower(deref(sub.GetResource())), "communications/presences") {
			id := deref(sub.GetId())
			s.c.log.Warn("deleting a presence subscription this bridge does not know", "account", s.accounts[i].upn, "subscription", id)
			_ = s.c.call("deleteSubscription", func() error {
				return s.graphs[i].Subscriptions().BySubscriptionId(id).Delete(ctx, nil)
			})
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func randomState() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// StartSignIn starts the device-code sign-in of a service account ("" =
// the first one that is not signed in) and returns what the admin needs.
func (c *Client) StartSignIn(ctx context.Context, upn string) (psync.SignInPrompt, error) {
	return c.StartSignInWait(ctx, upn, nil)
}

// StartSignInWait is StartSignIn that also calls done (if not nil) with
// the outcome once the admin has entered the code or it expired.
func (c *Client) StartSignInWait(ctx context.Context, upn string, done func(error)) (psync.SignInPrompt, error) {
	if c.subs == nil {
		return psync.SignInPrompt{}, errors.New("teams: sign-ins are for subscribe mode (teams.mode = subscribe)")
	}
	var a *account
	for _, x := range c.subs.accounts {
		if strings.EqualFold(x.upn, upn) {
			a = x
		}
	}
	if upn == "" {
		for _, x := range c.subs.accounts {
			if _, ok := x.msalAccount(ctx); !ok {
				a = x
				break
			}
		}
		if a == nil && len(c.subs.accounts) > 0 {
			a = c.subs.accounts[0]
		}
	}
	if a == nil {
		return psync.SignInPrompt{}, fmt.Errorf("teams: %q is not one of teams.service_accounts", upn)
	}
	return a.startSignIn(c.bg, func(err error) {
		if done != nil {
			defer done(err)
		}
		if err != nil {
			c.problem(err)
			c.log.Error("service account sign-in failed", "account", a.upn, "err", err)
			return
		}
		c.log.Info("service account signed in", "account", a.upn)
		select {
		case c.subs.kick <- struct{}{}:
		default:
		}
	})
}

// facts are the subscribe-mode lines of the report.
func (s *subscriber) facts() []psync.Fact {
	var out []psync.Fact
	s.mu.Lock()
	for _, a := range s.accounts {
		sub := s.subs[strings.ToLower(a.upn)]
		if sub == nil || sub.ID == "" {
			out = append(out, psync.Fact{Label: "subscription " + a.upn, Value: "none", Warn: len(s.wanted[strings.ToLower(a.upn)]) > 0})
			continue
		}
		out = append(out, psync.Fact{Label: "subscription " + a.upn, Value: fmt.Sprintf("%d users", len(sub.UserIDs)), Until: sub.Expires})
	}
	s.mu.Unlock()
	for _, a := range s.accounts {
		exp, err, prompt := a.state()
		switch {
		case prompt != nil:
			out = append(out, psync.Fact{Label: "sign-in " + a.upn, Value: "enter " + prompt.Code + " at " + prompt.URL, Until: prompt.Expires, Warn: true})
		case err != nil:
			out = append(out, psync.Fact{Label: "sign-in " + a.upn, Value: err.Error(), Warn: true})
		case !exp.IsZero():
			out = append(out, psync.Fact{Label: "sign-in " + a.upn, Value: "token valid", Until: exp})
		}
	}
	st := s.rcv.Stats()
	var ignored uint64
	for _, n := range st.Ignored {
		ignored += n
	}
	out = append(out, psync.Fact{Label: "notifications", Value: fmt.Sprintf("%d accepted, %d ignored", st.Accepted, ignored), Warn: ignored > 0})
	return out
}
