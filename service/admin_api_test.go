package service_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// The same admin rules answer through the socket: same kinds, same words.
func TestClient_AdminRulesThroughTheSocket(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	c := service.NewClient(b.socket)
	defer c.Close()
	ctx := ctx(t)

	d, err := c.Database(ctx)
	if err != nil || d.Path != b.db || !d.BridgeRunning {
		t.Fatalf("database: %+v %v", d, err)
	}
	offline, _ := offlineAdmin(t)
	for _, call := range []struct {
		name string
		do   func(service.AdminAPI) error
	}{
		{"flag of an unknown profile", func(a service.AdminAPI) error {
			return a.Set(ctx, "profile.defualt.set_presence_in_teams", "false")
		}},
		{"client id", func(a service.AdminAPI) error { return a.Set(ctx, "teams.client_id", "nope") }},
		{"unknown setting", func(a service.AdminAPI) error { _, err := a.Get(ctx, "teams.leese"); return err }},
		{"unknown user", func(a service.AdminAPI) error { _, err := a.ConfiguredUser(ctx, "999"); return err }},
		{"profile exists", func(a service.AdminAPI) error { return a.AddProfile(ctx, psync.NewProfile("meetings")) }},
		{"masked import", func(a service.AdminAPI) error {
			_, err := a.Import(ctx, strings.NewReader("settings:\n  ucserver.password: '********'\n"), store.ImportOptions{})
			return err
		}},
	} {
		local, remote := call.do(offline), call.do(c)
		if local == nil || remote == nil || local.Error() != remote.Error() {
			t.Errorf("%s: in process %v, through the socket %v", call.name, local, remote)
			continue
		}
		for _, kind := range []error{service.ErrNotFound, service.ErrInvalid, service.ErrConflict, service.ErrHoldsKept} {
			if errors.Is(local, kind) != errors.Is(remote, kind) {
				t.Errorf("%s: kinds differ on %v: %v / %v", call.name, kind, local, remote)
			}
		}
	}

	if err := c.Set(ctx, "profile.meetings.cross_device_busy_on_busy", "on"); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "profile.meetings.cross_device_busy_on_busy"); err != nil || v != "true" {
		t.Fatalf("get: %q %v", v, err)
	}
	if err := c.Set(ctx, "user.201.profile", "meetings"); err != nil {
		t.Fatal(err)
	}
	// The running engine has 201 on it at once.
	if u, err := c.User(ctx, "201"); err != nil || u.Profile != "meetings" {
		t.Fatalf("engine: %q %v", u.Profile, err)
	}
	if err := c.Set(ctx, "teams.client_secret", "hunter2-secret"); err != nil {
		t.Fatal(err)
	}
	var yaml bytes.Buffer
	if err := c.Export(ctx, &yaml); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(yaml.String(), "hunter2") || !strings.Contains(yaml.String(), "teams.client_secret: '********'") {
		t.Fatalf("export:\n%s", yaml.String())
	}
	// An export imports back unchanged: nothing to do.
	ch, err := c.Import(ctx, bytes.NewReader(yaml.Bytes()), store.ImportOptions{})
	if err != nil || !ch.Empty() {
		t.Fatalf("re-import: %+v %v", ch, err)
	}
	ch, err = c.Import(ctx, strings.NewReader("settings:\n  teams.lease: 15m\n"), store.ImportOptions{Merge: true, DryRun: true})
	if err != nil || len(ch.Settings) != 1 || ch.Settings[0].Name != "teams.lease" {
		t.Fatalf("dry run: %+v %v", ch, err)
	}
	if v, _ := c.Get(ctx, "teams.lease"); v != "10m" {
		t.Fatalf("the dry run wrote: %q", v)
	}
	us, err := c.ConfiguredUsers(ctx)
	if err != nil || len(us) != 4 || us[0].ID != "201" || us[0].Profile != "meetings" {
		t.Fatalf("configured users: %+v %v", us, err)
	}
	if code, body := raw(t, b.socket, "GET", "/v1/config/teams.leese", ""); code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("error body: %d %s", code, body)
	}
	if code, body := raw(t, b.socket, "PATCH", "/v1/config/teams.lease", "{}"); code != 405 || !strings.Contains(body, `"error"`) {
		t.Fatalf("wrong method: %d %s", code, body)
	}
}

// The doctor streams its checks through the socket as they complete.
func TestClient_DoctorStreams(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	c := service.NewClient(b.socket)
	defer c.Close()
	var got []psync.Check
	err := c.Doctor(ctx(t), func(ch psync.Check) { got = append(got, ch) })
	if err != nil {
		t.Fatal(err)
	}
	// The simulated office has no Teams or phone settings: the doctor says so.
	sides := map[psync.Side]psync.Check{}
	for _, ch := range got {
		if _, seen := sides[ch.Side]; !seen {
			sides[ch.Side] = ch
		}
	}
	if tc, pc := sides[psync.SideTeams], sides[psync.SidePhone]; !tc.Failed() || tc.Name != "settings" || !strings.Contains(tc.Detail, "teams.tenant_id") ||
		!pc.Failed() || !strings.Contains(pc.Detail, "phone.system is not set") {
		t.Fatalf("checks: %+v", got)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Doctor(cancelled, func(psync.Check) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
