package asterisk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/asterisk"
	"github.com/presencebridge/presencebridge/sync/asterisk/amisim"
)

func doctor(t *testing.T, cfg asterisk.Config, users ...psync.User) map[string]psync.Check {
	t.Helper()
	got := map[string]psync.Check{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	asterisk.Doctor(ctx, cfg, users, func(c psync.Check) { got[c.Name] = c })
	return got
}

func TestDoctorAllGood(t *testing.T) {
	sim := startSim(t)
	sim.PersonDND("202", true)
	got := doctor(t, testConfig(sim), anna, ben, psync.User{ID: "nobody", Extension: "299"})
	for _, n := range []string{"settings", "reach", "login", "permissions", "events"} {
		if !got[n].OK {
			t.Errorf("%s: %+v", n, got[n])
		}
	}
	u := got["users"]
	if u.OK || !u.Warn || !strings.Contains(u.Detail, "PJSIP/201 not_inuse, PJSIP/211 not_inuse; DND/201 off") ||
		!strings.Contains(u.Detail, "DND/202 on") || !strings.Contains(u.Detail, "299: not a FreePBX extension") {
		t.Fatalf("users: %+v", u)
	}
	if sim.DeviceState("Custom:presencebridge_doctor") != "NOT_INUSE" {
		t.Errorf("probe left at %s", sim.DeviceState("Custom:presencebridge_doctor"))
	}
}

func TestDoctorMissingPermissions(t *testing.T) {
	sim := startSim(t, map[string]amisim.Account{
		"weak":   {Secret: "w", Read: "system", Write: "call"},
		"noread": {Secret: "n", Read: "system", Write: "system,call"},
	})
	cfg := testConfig(sim)
	cfg.User, cfg.Secret = "weak", "w"
	got := doctor(t, cfg, anna)
	p := got["permissions"]
	if p.OK || !strings.Contains(p.Detail, "DBGet (system)") || !strings.Contains(p.Fix, "[weak]\n") || !strings.Contains(p.Fix, "write = system,call") {
		t.Fatalf("permissions: %+v", p)
	}
	cfg.User, cfg.Secret = "noread", "n"
	cfg.ActionTimeout = 300 * time.Millisecond
	got = doctor(t, cfg, anna)
	if e := got["events"]; e.OK || !strings.Contains(e.Fix, "read = call") {
		t.Fatalf("events: %+v", e)
	}
	if !got["permissions"].OK {
		t.Fatalf("permissions: %+v", got["permissions"])
	}
}

func TestDoctorLoginAndReach(t *testing.T) {
	sim := startSim(t)
	cfg := testConfig(sim)
	cfg.Secret = "wrong"
	got := doctor(t, cfg, anna)
	if l := got["login"]; l.OK || !strings.Contains(l.Detail, "Authentication failed") || !strings.Contains(l.Fix, "read = call") {
		t.Fatalf("login: %+v", l)
	}
	if !got["users"].Skipped {
		t.Fatal("users checked without a login")
	}
	addr := sim.Addr()
	sim.Close()
	cfg.Host = addr
	got = doctor(t, cfg, anna)
	if got["reach"].OK || !got["login"].Skipped {
		t.Fatalf("reach: %+v", got["reach"])
	}
	got = doctor(t, asterisk.Config{}, anna)
	if got["settings"].OK || !strings.Contains(got["settings"].Detail, "asterisk.host") {
		t.Fatalf("settings: %+v", got["settings"])
	}
}

func TestDoctorAsteriskProfile(t *testing.T) {
	sim := startSim(t)
	sim.AddDevice("PJSIP/301")
	cfg := testConfig(sim)
	cfg.Profile = asterisk.ProfileAsterisk
	got := doctor(t, cfg, psync.User{ID: "carl", Extension: "301"}, psync.User{ID: "dora", Extension: "302"})
	if d := got["dialplan"]; !d.Warn || !strings.Contains(d.Fix, "extensions-teams.conf") {
		t.Fatalf("dialplan: %+v", d)
	}
	if u := got["users"]; !strings.Contains(u.Detail, "301: PJSIP/301 not_inuse") || !strings.Contains(u.Detail, "302: PJSIP/302 invalid") || u.OK {
		t.Fatalf("users: %+v", u)
	}
}
