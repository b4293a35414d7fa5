package teams_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

func TestClient_PollSendsOnlyChanges(t *testing.T) {
	s := newSim(t, simOpts{users: 3})
	cfg := config(s)
	cfg.MinPollInterval, cfg.PollShare = 50*time.Millisecond, 100
	c := newClient(t, cfg)
	r := run(t, c, users(3))
	for i := range 3 { // first read: everyone once
		id := psync.UserID(users(3)[i].ID)
		r.next("initial presence", func(ev psync.TeamsEvent) bool { return ev.Kind == psync.TeamsPresenceChanged && ev.User == id })
	}
	r.synced()
	if err := s.StartTeamsCall(userID(1)); err != nil {
		t.Fatal(err)
	}
	ev := r.next("call", presenceOf("202", "Busy", "InACall"))
	if ev.Presence.Sequence == "" {
		t.Error("no sequence number")
	}
	// Several more rounds: nothing changed, so nothing is sent. The rounds
	// are counted in graphsim's own request log, not waited for by time.
	reads := func() int {
		n := 0
		for _, q := range s.Requests() {
			if strings.HasSuffix(q.Path, "/getPresencesByUserId") {
				n++
			}
		}
		return n
	}
	for before := reads(); reads() < before+3; {
		select {
		case ev := <-r.events:
			if ev.Kind == psync.TeamsPresenceChanged {
				t.Fatalf("unchanged presence sent again: %+v", ev)
			}
		case <-time.After(5 * time.Millisecond):
		}
	}
	select {
	case ev := <-r.events:
		if ev.Kind == psync.TeamsPresenceChanged {
			t.Fatalf("unchanged presence sent again: %+v", ev)
		}
	default:
	}
	if err := s.EndCall(userID(1)); err != nil {
		t.Fatal(err)
	}
	r.next("call over", presenceOf("202", "Available", "Available"))
	rep := c.Report()
	if !rep.Connected || rep.Facts[0].Until.IsZero() {
		t.Fatalf("report %+v", rep)
	}
}

func TestClient_PollChunksOf650(t *testing.T) {
	s := newSim(t, simOpts{users: 1400})
	cfg := config(s)
	cfg.MinPollInterval, cfg.PollShare = time.Millisecond, 100
	c := newClient(t, cfg)
	us := users(1400)
	for i := range us {
		us[i].TeamsID = userID(i) // configured ids: no lookups
	}
	r := run(t, c, us)
	r.synced()
	var n int
	for _, q := range s.Requests() {
		if strings.HasSuffix(q.Path, "/getPresencesByUserId") {
			n++
			ids, _ := q.JSON.(map[string]any)["ids"].([]any)
			if len(ids) > 650 {
				t.Fatalf("a request with %d ids", len(ids))
			}
			if q.Status != 200 {
				t.Fatalf("status %d", q.Status)
			}
		}
	}
	if n != 3 {
		t.Fatalf("%d requests for one round of 1,400 users, want 3", n)
	}
}

func TestClient_SetAndClearPresence(t *testing.T) {
	s := newSim(t, simOpts{users: 2})
	c := newClient(t, config(s))
	ctx := context.Background()
	u := users(2)[0]
	if err := c.SetPresence(ctx, u, "InACall", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	ss, err := s.Sessions(userID(0))
	if err != nil {
		t.Fatal(err)
	}
	var ours *graphsim.Session
	for i := range ss {
		if ss[i].AppID == appID {
			ours = &ss[i]
		}
	}
	if ours == nil || ours.ID != appID || ours.Availability != "Busy" || ours.Activity != "InACall" {
		t.Fatalf("sessions %+v", ss)
	}
	if got := ours.ExpiresAt.Sub(ours.SetAt); got != 10*time.Minute {
		t.Fatalf("lease %s", got)
	}
	p, err := c.ClearPresence(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if p.Availability != "Available" {
		t.Fatalf("after clear %+v", p)
	}
	// Already gone: Graph answers 404, which is success.
	if _, err := c.ClearPresence(ctx, u); err != nil {
		t.Fatalf("second clear: %v", err)
	}
	var clears []int
	for _, q := range s.Requests() {
		if strings.HasSuffix(q.Path, "/clearPresence") {
			clears = append(clears, q.Status)
		}
		if q.Method == "POST" && strings.Contains(q.Path, "/presence/") && !q.Gzip {
			t.Errorf("%s went out uncompressed", q.Path)
		}
	}
	if len(clears) != 2 || clears[1] != 404 {
		t.Fatalf("clear statuses %v", clears)
	}
	if err := c.SetPresence(ctx, u, "Presenting", 10*time.Minute); !errors.Is(err, psync.ErrRejected) {
		t.Fatalf("Busy/Presenting: %v", err)
	}
	if err := c.SetPresence(ctx, psync.User{ID: "x", UPN: "nobody@contoso.example"}, "InACall", 10*time.Minute); !errors.Is(err, psync.ErrRejected) {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestClient_ThrottlingHonoursRetryAfter(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	c := newClient(t, config(s))
	ctx := context.Background()
	u := users(1)[0]
	// A short Retry-After is waited out inside the call, with the same body.
	s.InjectFault(graphsim.Fault{Method: "POST", Path: "/v1.0/users/", Status: 429, RetryAfter: time.Second, Count: 1})
	start := time.Now()
	if err := c.SetPresence(ctx, u, "InACall", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("Retry-After not honoured: %s", took)
	}
	// A long one goes back to the engine as RetryAfterError, and every
	// request waits: the budget is shared.
	s.InjectFault(graphsim.Fault{Method: "POST", Path: "/v1.0/users/", Status: 429, RetryAfter: 30 * time.Second, Count: 1})
	err := c.SetPresence(ctx, u, "InACall", 10*time.Minute)
	var ra *psync.RetryAfterError
	if !errors.As(err, &ra) || ra.Wait != 30*time.Second {
		t.Fatalf("long Retry-After: %v", err)
	}
	if th := c.Report().Throttled; time.Until(th) < 25*time.Second {
		t.Fatalf("throttled until %v", th)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.ClearPresence(short, u); err == nil {
		t.Fatal("a request went out while Graph said to wait")
	}
}

func TestClient_ServerErrorsAreUnavailable(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	c := newClient(t, config(s))
	s.InjectFault(graphsim.Fault{Path: "/v1.0/", Status: 500})
	err := c.SetPresence(context.Background(), users(1)[0], "InACall", 10*time.Minute)
	if !errors.Is(err, psync.ErrUnavailable) {
		t.Fatalf("500: %v", err)
	}
}

func TestClient_CertificateAuth(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	cfg := config(s)
	_, pemBytes := appCert()
	cfg.ClientSecret, cfg.Certificate = "", pemBytes
	c := newClient(t, cfg)
	if err := c.SetPresence(context.Background(), users(1)[0], "InAConferenceCall", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestClient_WrongSecretSaysWhatToFix(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	cfg := config(s)
	cfg.ClientSecret = "wrong"
	c := newClient(t, cfg)
	err := c.SetPresence(context.Background(), users(1)[0], "InACall", 5*time.Minute)
	if !errors.Is(err, psync.ErrUnavailable) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong secret: %v", err)
	}
	rep := c.Report()
	if len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0].Fix, "teams.client_secret") {
		t.Fatalf("report %+v", rep.Errors)
	}
	// The authority's description, without the quoting of its JSON answer
	// and without what differs in every answer (trace id, timestamp): the
	// same wrong secret is the same error each time the bridge retries.
	_ = c.SetPresence(context.Background(), users(1)[0], "InACall", 5*time.Minute)
	rep = c.Report()
	what := rep.Errors[0].What
	if strings.Contains(what, `\r\n`) || strings.Contains(what, "Trace ID") || strings.HasSuffix(what, `",`) || !strings.Contains(what, "AADSTS7000215: ") {
		t.Fatalf("the sign-in error as reported: %q", what)
	}
	if len(rep.Errors) < 2 || rep.Errors[1].What != what {
		t.Fatalf("the second failure reads differently: %q, then %q", what, rep.Errors[1].What)
	}
}

func TestClient_ResolveUsers(t *testing.T) {
	s := newSim(t, simOpts{users: 2, roles: []string{"Presence.ReadWrite.All", "User.Read.All", "GroupMember.Read.All"}, mutate: func(o *graphsim.Options) {
		o.Users = append(o.Users, graphsim.User{ID: "0d0d0d0d-0000-4000-8000-00000000000d", UserPrincipalName: "gone@contoso.example", Disabled: true})
		o.Groups = []graphsim.Group{{ID: "0e0e0e0e-0000-4000-8000-00000000000e", DisplayName: "Office", Members: []string{userID(0), userID(1)}}}
	}})
	c := newClient(t, config(s))
	us := append(users(2), psync.User{ID: "9", UPN: "nobody@contoso.example"}, psync.User{ID: "10", UPN: "gone@contoso.example"}, psync.User{ID: "11"})
	ok, probs, err := c.ResolveUsers(context.Background(), us)
	if err != nil {
		t.Fatal(err)
	}
	if len(ok) != 2 || ok[0].TeamsID != userID(0) || ok[1].DisplayName != "User 202" {
		t.Fatalf("resolved %+v", ok)
	}
	want := map[psync.UserID]string{"9": "unknown", "10": "disabled", "11": "no UPN"}
	if len(probs) != 3 {
		t.Fatalf("problems %v", probs)
	}
	for _, p := range probs {
		if !strings.Contains(p.Reason, want[p.User]) {
			t.Errorf("%s: %s", p.User, p.Reason)
		}
	}
	if rep := c.Report(); len(rep.Errors) != 3 || !strings.Contains(rep.Errors[0].What, "not followed in Teams") {
		t.Fatalf("unknown users not in the report: %+v", rep.Errors)
	}
	members, err := c.GroupMembers(context.Background(), "0e0e0e0e-0000-4000-8000-00000000000e")
	if err != nil || len(members) != 2 || members[1].TeamsID != userID(1) {
		t.Fatalf("members %+v %v", members, err)
	}
}

func TestConfigFromSettings(t *testing.T) {
	if _, err := teams.ConfigFromSettings(map[string]string{}); err == nil || !strings.Contains(err.Error(), "teams.tenant_id") {
		t.Fatalf("empty: %v", err)
	}
	base := map[string]string{"teams.tenant_id": tenantID, "teams.client_id": appID, "teams.client_secret": secret}
	c, err := teams.ConfigFromSettings(base)
	if err != nil || c.Mode != "poll" || c.PollShare != 2 || c.GraphURL != "https://graph.microsoft.com/v1.0" {
		t.Fatalf("%+v %v", c, err)
	}
	bad := map[string]string{"teams.mode": "subscribe"}
	for k, v := range base {
		bad[k] = v
	}
	if _, err := teams.ConfigFromSettings(bad); err == nil || !strings.Contains(err.Error(), "teams.service_accounts") || !strings.Contains(err.Error(), "teams.webhook_url") {
		t.Fatalf("subscribe without accounts: %v", err)
	}
	bad["teams.service_accounts"], bad["teams.webhook_url"] = "svc@contoso.example", "http://bridge.example/notify"
	if _, err := teams.ConfigFromSettings(bad); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("http webhook: %v", err)
	}
	base["teams.graph_url"] = "ftp://graph.example"
	if _, err := teams.ConfigFromSettings(base); err == nil {
		t.Fatal("ftp Graph URL accepted")
	}
}
