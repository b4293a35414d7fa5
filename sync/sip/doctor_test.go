package sip

import (
	"context"
	"strings"
	"testing"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/sipsim"
)

func runDoctor(t *testing.T, cfg Config, users []psync.User) map[string]psync.Check {
	t.Helper()
	got := map[string]psync.Check{}
	Doctor(context.Background(), cfg, users, func(c psync.Check) {
		if c.Side != psync.SidePhone {
			t.Errorf("check %s on side %v", c.Name, c.Side)
		}
		if !c.OK && !c.Skipped && c.Fix == "" {
			t.Errorf("failed check %s has no fix: %q", c.Name, c.Detail)
		}
		if strings.Contains(c.Detail+c.Fix, "s3cret") {
			t.Errorf("check %s shows the password", c.Name)
		}
		got[c.Name] = c
	})
	return got
}

func TestDoctor_AllGood(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"201", "221", "202"}, User: "bridge", Password: "s3cret", MaxExpires: 60})
	cfg := testConfig(sim)
	cfg.User, cfg.Password, cfg.Register = "bridge", "s3cret", true
	got := runDoctor(t, cfg, []psync.User{anna, ben})
	for _, name := range []string{"settings", "reach", "register", "subscribe", "extensions anna", "extensions ben"} {
		if c, ok := got[name]; !ok || !c.OK {
			t.Fatalf("%s: %+v (all: %+v)", name, c, got)
		}
	}
	if d := got["subscribe"].Detail; !strings.Contains(d, "granted 1m0s") || !strings.Contains(d, "first NOTIFY") || !strings.Contains(d, "credentials of bridge accepted") {
		t.Fatalf("subscribe detail: %q", d)
	}
	if len(sim.Subscriptions("")) != 0 {
		t.Fatalf("doctor left subscriptions: %+v", sim.Subscriptions(""))
	}
}

func TestDoctor_Failures(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"201", "202"}, User: "bridge", Password: "s3cret"})
	cfg := testConfig(sim)
	cfg.User, cfg.Password = "bridge", "wrong-s3cret"
	got := runDoctor(t, cfg, []psync.User{anna, ben})
	if c := got["subscribe"]; c.OK || !strings.Contains(c.Fix, "sip.password") {
		t.Fatalf("wrong password: %+v", c)
	}

	cfg.Password = "s3cret"
	got = runDoctor(t, cfg, []psync.User{anna, ben})
	if c := got["extensions anna"]; c.OK || !strings.Contains(c.Detail, "221 refused (404") || !strings.Contains(c.Detail, "201 subscribed") {
		t.Fatalf("unknown extension: %+v", c)
	}
	if c := got["extensions ben"]; !c.OK {
		t.Fatalf("ben: %+v", c)
	}

	sim.Kill()
	got = runDoctor(t, cfg, []psync.User{ben})
	if c := got["reach"]; c.OK || !strings.Contains(c.Fix, "sip.server") {
		t.Fatalf("server down: %+v", c)
	}
	if _, ran := got["subscribe"]; ran {
		t.Fatal("subscribe ran against a dead server")
	}

	got = runDoctor(t, Config{}, nil)
	if c := got["settings"]; c.OK || !strings.Contains(c.Detail, "sip.server") {
		t.Fatalf("no server: %+v", c)
	}
}

func TestDoctor_RPC(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}})
	cfg := testConfig(sim)
	cfg.Writer = WriterKamailio
	fb := newFakeBusy()
	cfg.busy = fb
	got := runDoctor(t, cfg, []psync.User{ben})
	if c := got["rpc"]; !c.OK {
		t.Fatalf("rpc: %+v", c)
	}
	fb.fail = errFake
	got = runDoctor(t, cfg, []psync.User{ben})
	if c := got["rpc"]; c.OK || !strings.Contains(c.Fix, "sip.rpc_url") {
		t.Fatalf("rpc down: %+v", c)
	}
}
