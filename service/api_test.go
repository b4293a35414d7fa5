package service_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
	psync "github.com/presencebridge/presencebridge/sync"
)

// raw does one request on a Unix socket and returns status and body.
func raw(t *testing.T, socket, method, path, body string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	defer c.CloseIdleConnections()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://pb"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestClient_StatusUsersHistory(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	c := service.NewClient(b.socket)
	defer c.Close()

	ov, err := c.Overview(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if ov.Version != "test" || ov.Mode != "foreground" || !ov.Engine.Teams.Healthy || !ov.Engine.Phone.Healthy || len(ov.Sides) != 2 {
		t.Fatalf("overview: %+v", ov)
	}
	if ov.Engine.Stats.TeamsEvents == 0 || ov.Engine.Stats.PhoneEvents == 0 {
		t.Fatalf("no events counted: %+v", ov.Engine.Stats)
	}

	// A phone call: the bridge sets Teams Busy / InACall for the user.
	b.office.Phone.Call("201", "desk", "c1", psync.CallConnected)
	waitFor(t, "Teams session of 201", func() bool { act, _ := b.office.Teams.BridgeSession("201"); return act != "" })
	var u psync.UserStatus
	waitFor(t, "the hold in the API", func() bool {
		u, err = c.User(ctx(t), "201")
		return err == nil && len(u.Holds) == 1
	})
	if h := u.Holds[0]; h.Kind != psync.HoldTeamsSession || h.Lease.IsZero() || u.Links.Chat == "" || !u.PhoneKnown || len(u.Phone.Calls) != 1 {
		t.Fatalf("user 201: %+v", u)
	}
	us, err := c.Users(ctx(t))
	if err != nil || len(us) != 4 || us[0].User.ID != "201" || us[0].User.UPN == "" {
		t.Fatalf("users: %v %+v", err, us)
	}
	if _, err := c.User(ctx(t), "999"); !errors.Is(err, service.ErrNotFound) || !strings.Contains(err.Error(), `no user "999"`) {
		t.Fatalf("unknown user: %v", err)
	}
	// An id with a slash travels escaped and is simply unknown.
	if _, err := c.User(ctx(t), "a/b"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("user a/b: %v", err)
	}

	b.office.Phone.Call("201", "desk", "c1", psync.CallEnded)
	waitFor(t, "the session cleared", func() bool { act, _ := b.office.Teams.BridgeSession("201"); return act == "" })
	var hist []psync.Decision
	has := func(o psync.Outcome) bool {
		for _, d := range hist {
			if d.Outcome == o && d.What == "session" {
				return true
			}
		}
		return false
	}
	waitFor(t, "history of 201 with the session set and released", func() bool {
		hist, err = c.History(ctx(t), "201", 50)
		return err == nil && has(psync.OutcomeApplied) && has(psync.OutcomeReleased)
	})
	for i, d := range hist {
		if d.User != "201" {
			t.Fatalf("history of 201 holds %s", d)
		}
		if i > 0 && d.At.After(hist[i-1].At) {
			t.Fatalf("history not newest first: %s before %s", hist[i-1], d)
		}
	}
	audit, err := c.Audit(ctx(t), 1)
	if err != nil || len(audit) != 1 {
		t.Fatalf("audit: %v %v", err, audit)
	}
	if _, err := c.Audit(ctx(t), service.MaxAuditLimit+1); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("audit limit: %v", err)
	}
	if code, body := raw(t, b.socket, "GET", "/v1/audit?limit=lots", ""); code != 400 || !strings.Contains(body, `"error"`) {
		t.Fatalf("bad limit: %d %s", code, body)
	}
	if code, body := raw(t, b.socket, "GET", "/v2/status", ""); code != 404 || !strings.Contains(body, "under /v1") {
		t.Fatalf("unknown path: %d %s", code, body)
	}
	if code, body := raw(t, b.socket, "POST", "/v1/users", "{}"); code != 405 || !strings.Contains(body, `"error"`) {
		t.Fatalf("wrong method: %d %s", code, body)
	}
	if code, body := raw(t, b.socket, "GET", "/v1/health", ""); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("health: %d %s", code, body)
	}
}

func TestControlAPI_ProfileChangeAppliesToEngine(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	c := service.NewClient(b.socket)
	defer c.Close()
	events, err := c.Events(ctx(t))
	if err != nil {
		t.Fatal(err)
	}

	// 201 is on the default profile: a Teams call makes the phone Busy.
	b.office.Teams.SetClient("201", "Busy", "InACall")
	waitFor(t, "phone presence busy", func() bool { return b.office.Phone.State("201").Presence == psync.PhoneBusy })

	p := psync.NewProfile(psync.DefaultProfileName)
	p.ApplyTeamsToPhone = false
	if err := c.PutProfile(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	// The running engine lets go at once: the phone is back to available
	// although the Teams call goes on.
	waitFor(t, "phone presence restored", func() bool { return b.office.Phone.State("201").Presence == psync.PhoneNotSet })
	waitFor(t, "the hold of 201 gone", func() bool {
		u, err := c.User(ctx(t), "201")
		return err == nil && len(u.Holds) == 0 && u.TeamsState == psync.TeamsInCall
	})
	sawEdit, sawRelease := false, false
	timeout := time.After(10 * time.Second)
	for !sawEdit || !sawRelease {
		select {
		case d := <-events:
			sawEdit = sawEdit || d.What == "profile default" && d.Outcome == psync.OutcomeObserved
			sawRelease = sawRelease || d.User == "201" && d.Outcome == psync.OutcomeReleased
		case <-timeout:
			t.Fatalf("stream: profile edit %v, release %v", sawEdit, sawRelease)
		}
	}
	ps, err := c.Profiles(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range ps {
		if got.Name == "default" && got.ApplyTeamsToPhone {
			t.Fatal("the stored profile did not change")
		}
	}

	// Bad profiles are refused and change nothing.
	for _, body := range []string{`{"name":"de fault"}`, `{"set_presence_in_teams":"yes"}`, `{"colour":"red"}`, `not json`, `{} {}`, ``} {
		code, resp := raw(t, b.socket, "PUT", "/v1/profiles/default", body)
		if code != 400 || !strings.Contains(resp, `"error"`) {
			t.Errorf("PUT %q: %d %s", body, code, resp)
		}
	}
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	if code, _ := raw(t, b.socket, "PUT", "/v1/profiles/x", big); code != 413 {
		t.Errorf("huge body: %d", code)
	}
	if err := c.PutProfile(ctx(t), psync.Profile{Name: "bad.name"}); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	after, _ := c.Profiles(ctx(t))
	if len(after) != len(ps) {
		t.Fatalf("profiles changed by refused requests: %v -> %v", ps, after)
	}
}

func TestControlAPI_AssignAndDeleteProfiles(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	c := service.NewClient(b.socket)
	defer c.Close()

	if err := c.AssignProfile(ctx(t), "201", "meetings"); err != nil {
		t.Fatal(err)
	}
	u, _ := c.User(ctx(t), "201")
	if u.Profile != "meetings" {
		t.Fatalf("engine has 201 on %q", u.Profile)
	}
	if err := c.AssignProfile(ctx(t), "201", "nope"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("unknown profile: %v", err)
	}
	if err := c.AssignProfile(ctx(t), "999", "meetings"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if code, body := raw(t, b.socket, "PUT", "/v1/users/201/profile", `{}`); code != 400 || !strings.Contains(body, `needs \"profile\"`) {
		t.Fatalf("no profile in body: %d %s", code, body)
	}
	u, _ = c.User(ctx(t), "201")
	if u.Profile != "meetings" {
		t.Fatalf("refused requests moved 201 to %q", u.Profile)
	}

	// 202 is on "protected": it cannot go while someone is on it.
	err := c.DeleteProfile(ctx(t), "protected")
	if !errors.Is(err, service.ErrConflict) || !strings.Contains(err.Error(), "202") {
		t.Fatalf("delete in use: %v", err)
	}
	if err := c.DeleteProfile(ctx(t), "default"); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("delete default: %v", err) // 203 is on it
	}
	if err := c.DeleteProfile(ctx(t), "ghost"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("delete unknown: %v", err)
	}
	spare := psync.NewProfile("spare")
	if err := c.PutProfile(ctx(t), spare); err != nil {
		t.Fatal(err)
	}
	if err := c.AssignProfile(ctx(t), "202", "spare"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteProfile(ctx(t), "spare"); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("delete spare in use: %v", err)
	}
	if err := c.AssignProfile(ctx(t), "202", ""); err != nil { // back to the default
		t.Fatal(err)
	}
	if u, _ := c.User(ctx(t), "202"); u.Profile != "default" {
		t.Fatalf("202 on %q", u.Profile)
	}
	if err := c.DeleteProfile(ctx(t), "spare"); err != nil {
		t.Fatal(err)
	}
	ps, _ := c.Profiles(ctx(t))
	for _, p := range ps {
		if p.Name == "spare" {
			t.Fatal("spare still listed")
		}
	}

	// What the API did is in the database after the stop.
	if _, err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	db := openStore(t, b.db)
	users, _ := db.Users()
	for _, u := range users {
		if u.ID == "201" && u.Profile != "meetings" || u.ID == "202" && u.Profile != "" {
			t.Fatalf("stored user %+v", u)
		}
	}
}

func TestControlAPI_SettingsValidatedAndSecretsWriteOnly(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	c := service.NewClient(b.socket)
	defer c.Close()

	if err := c.SetSetting(ctx(t), "teams.client_secret", "hunter2-secret"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSetting(ctx(t), "teams.lease", "15m"); err != nil {
		t.Fatal(err)
	}
	vs, err := c.Settings(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]psync.SettingValue{}
	for _, v := range vs {
		got[v.Key] = v
	}
	if s := got["teams.client_secret"]; s.Value != psync.Mask || !s.Set || !s.Secret {
		t.Fatalf("secret shown as %+v", s)
	}
	if got["teams.lease"].Value != "15m0s" {
		t.Fatalf("lease %+v", got["teams.lease"])
	}
	cases := []struct {
		key, value string
		want       error
		msg        string
	}{
		{"teams.lease", "2m", service.ErrInvalid, "out of range"},
		{"teams.lease", "soon", service.ErrInvalid, "not a duration"},
		{"teams.keepalive", "20m", service.ErrInvalid, "must be shorter"},
		{"teams.client_secret", psync.Mask, service.ErrInvalid, "mask"},
		{"teams.client_secret", "two\nlines", service.ErrInvalid, "line break"},
		{"teams.leese", "15m", service.ErrNotFound, "unknown setting"},
		{"phone.system", "freeswitch", service.ErrInvalid, "not one of"},
	}
	for _, tc := range cases {
		err := c.SetSetting(ctx(t), tc.key, tc.value)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("set %s=%q: %v, want %q", tc.key, tc.value, err, tc.msg)
		}
	}
	for _, body := range []string{`{"value":15}`, `{}`, `{"value":"15m","extra":1}`} {
		if code, resp := raw(t, b.socket, "PUT", "/v1/settings/teams.lease", body); code != 400 {
			t.Errorf("PUT %s: %d %s", body, code, resp)
		}
	}
	if err := c.UnsetSetting(ctx(t), "teams.nope"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("unset unknown: %v", err)
	}
	// Nothing of the refused requests reached the store.
	_, body := raw(t, b.socket, "GET", "/v1/settings", "")
	if !strings.Contains(body, `"15m0s"`) {
		t.Fatalf("lease changed by refused requests: %s", body)
	}
	if err := c.UnsetSetting(ctx(t), "teams.lease"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	db := openStore(t, b.db)
	stored, _ := db.Settings()
	if stored["teams.client_secret"] != "hunter2-secret" || stored["teams.lease"] != "" {
		t.Fatalf("stored settings: lease %q, secret kept %v", stored["teams.lease"], stored["teams.client_secret"] == "hunter2-secret")
	}
	if strings.Contains(b.logs.String(), "hunter2") {
		t.Fatal("the secret reached the log")
	}
	if !strings.Contains(b.logs.String(), "teams.client_secret") {
		t.Fatal("the change of the secret was not logged at all")
	}
	if strings.Contains(body, "hunter2") {
		t.Fatal("the secret was returned")
	}
}

func TestControlAPI_RefusedPeerChangesNothing(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("peer credentials (SO_PEERCRED) are checked on Linux")
	}
	// The allow-list names only a uid that is not ours (root in CI).
	other := uint32(os.Getuid()) + 4242
	b := startBridge(t, bridgeOpts{peers: &service.PeerPolicy{UIDs: []uint32{other}, GIDs: []uint32{other}}})
	c := service.NewClient(b.socket)
	defer c.Close()

	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/users", ""},
		{"GET", "/v1/status", ""},
		{"PUT", "/v1/settings/teams.lease", `{"value":"20m"}`},
		{"PUT", "/v1/users/201/profile", `{"profile":"meetings"}`},
		{"DELETE", "/v1/profiles/meetings", ""},
	} {
		code, body := raw(t, b.socket, r.method, r.path, r.body)
		if code != http.StatusForbidden || !strings.Contains(body, "may not use") {
			t.Errorf("%s %s: %d %s", r.method, r.path, code, body)
		}
	}
	if _, err := c.Users(ctx(t)); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("client: %v", err)
	}
	if !strings.Contains(b.logs.String(), "caller refused") {
		t.Fatalf("refusal not logged:\n%s", b.logs)
	}
	// In process, nothing changed.
	u, err := b.run.Local.User(ctx(t), "201")
	if err != nil || u.Profile != "default" {
		t.Fatalf("201: %v %q", err, u.Profile)
	}
	vs, _ := b.run.Local.Settings(ctx(t))
	for _, v := range vs {
		if v.Key == "teams.lease" && v.Set {
			t.Fatalf("lease set by a refused caller: %+v", v)
		}
	}
	ps, _ := b.run.Local.Profiles(ctx(t))
	if len(ps) != 3 {
		t.Fatalf("profiles: %v", ps)
	}
}

func TestControlAPI_SocketMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes")
	}
	b := startBridge(t, bridgeOpts{})
	fi, err := os.Stat(b.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v", fi.Mode())
	}
	di, _ := os.Stat(filepath.Dir(b.socket))
	if di.Mode().Perm() != 0o750 {
		t.Fatalf("socket directory mode %v", di.Mode())
	}
	// A second server on the same socket is refused, the first keeps it.
	if _, err := service.ListenControl(b.socket, "", nil); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Fatalf("second listener: %v", err)
	}
	if _, err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
	_, err = service.NewClient(b.socket).Overview(ctx(t))
	if !errors.Is(err, service.ErrNotRunning) || !strings.Contains(err.Error(), "is the service running?") {
		t.Fatalf("stopped service: %v", err)
	}
}

func TestControlAPI_SignIn(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	c := service.NewClient(b.socket)
	defer c.Close()
	_, err := c.StartSignIn(ctx(t), "svc@contoso.example")
	if !errors.Is(err, service.ErrNotConfigured) || !strings.Contains(err.Error(), "subscribe mode is not configured") {
		t.Fatalf("without subscribe mode: %v", err)
	}
	b2 := startBridge(t, bridgeOpts{signIn: true})
	c2 := service.NewClient(b2.socket)
	defer c2.Close()
	p, err := c2.StartSignIn(ctx(t), "svc@contoso.example")
	if err != nil || p.Code != "ABCD-EFGH" || p.Account != "svc@contoso.example" {
		t.Fatalf("sign-in: %v %+v", err, p)
	}
	if _, err := c2.StartSignIn(ctx(t), "not an account"); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("bad account: %v", err)
	}
}

func TestControlAPI_EventStreamFansOut(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	streams := make([]<-chan psync.Decision, 3)
	for i := range streams {
		c := service.NewClient(b.socket)
		defer c.Close()
		var err error
		if streams[i], err = c.Events(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	// Events returns once the server has subscribed (it flushes the
	// headers after subscribing), so nothing below can be missed.
	b.office.Phone.Call("202", "desk", "x", psync.CallConnected)
	for i, ch := range streams {
		select {
		case d := <-ch:
			if d.User != "202" || d.Side != psync.SideTeams {
				t.Fatalf("stream %d: %s", i, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d got nothing", i)
		}
	}
	// A stopping service ends the streams: the channels close.
	if _, err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	for i, ch := range streams {
		deadline := time.After(5 * time.Second)
	drain:
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					break drain
				}
			case <-deadline:
				t.Fatalf("stream %d still open after the stop", i)
			}
		}
	}
}

// TestControlAPI_UsersSince: the console's refresh over the socket gets
// everyone once, then only the user whose status changed, and the JSON
// is the documented one.
func TestControlAPI_UsersSince(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	c := service.NewClient(b.socket)
	defer c.Close()
	all, err := c.UsersSince(ctx(t), 0)
	if err != nil || !all.Full || all.Total != 4 || len(all.Users) != 4 {
		t.Fatalf("since 0: %v, full %v, total %d, %d users", err, all.Full, all.Total, len(all.Users))
	}
	b.office.Phone.Call("202", "desk", "c1", psync.CallConnected)
	var ch psync.UserChanges
	waitFor(t, "202's call as a change", func() bool {
		ch, err = c.UsersSince(ctx(t), all.Version)
		return err == nil && len(ch.Users) > 0 && len(ch.Users[0].Phone.Calls) == 1
	})
	if ch.Full || len(ch.Users) != 1 || ch.Users[0].User.ID != "202" || ch.Version <= all.Version {
		t.Fatalf("after 202's call: full %v, users %d (first %s), version %d", ch.Full, len(ch.Users), ch.Users[0].User.ID, ch.Version)
	}
	code, body := raw(t, b.socket, "GET", "/v1/users?since="+strconv.FormatUint(ch.Version, 10), "")
	if code != 200 || !strings.Contains(body, `"full":false`) || !strings.Contains(body, `"total":4`) || !strings.Contains(body, `"version":`) {
		t.Fatalf("raw since: %d %s", code, body)
	}
	if code, body := raw(t, b.socket, "GET", "/v1/users?since=soon", ""); code != 400 || !strings.Contains(body, "since must be") {
		t.Fatalf("bad since: %d %s", code, body)
	}
}
