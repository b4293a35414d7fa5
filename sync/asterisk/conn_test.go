package asterisk_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/asterisk"
	"github.com/presencebridge/presencebridge/sync/asterisk/amisim"
)

var bg = context.Background()

func TestSnapshotDevicesAndCalls(t *testing.T) {
	sim := startSim(t)
	_, w := connect(t, testConfig(sim), anna, ben)
	w.waitFor("anna's devices", func(w *watcher) bool {
		d := w.user("anna").Devices
		return len(d) == 2 && d[0].ID == "PJSIP/201" && d[1].ID == "PJSIP/211" && !d[0].DND
	})

	sim.StartCall("PJSIP/211")
	sim.Answer("PJSIP/202") // a later event proves the ringing was seen and left out
	w.waitFor("ben's call", func(w *watcher) bool { return len(w.calls("ben")) == 1 })
	w.mu.Lock()
	if n := len(w.calls("anna")); n != 0 {
		t.Errorf("ringing made %d calls; ringing is not a call", n)
	}
	w.mu.Unlock()

	sim.Answer("PJSIP/211")
	w.waitFor("anna connected", func(w *watcher) bool {
		c := w.calls("anna")
		return len(c) == 1 && c[0].State == psync.CallConnected && c[0].Device == "PJSIP/211"
	})
	sim.Hold("PJSIP/211")
	w.waitFor("anna held", func(w *watcher) bool {
		c := w.calls("anna")
		return len(c) == 1 && c[0].State == psync.CallHeld
	})
	sim.Answer("PJSIP/211")
	sim.JoinConference("PJSIP/211", "teamroom")
	w.waitFor("anna in a conference", func(w *watcher) bool {
		c := w.calls("anna")
		return len(c) == 1 && c[0].Conference && c[0].State == psync.CallConference
	})
	sim.Hold("PJSIP/211")
	w.waitFor("a held conference stays one", func(w *watcher) bool {
		c := w.calls("anna")
		return len(c) == 1 && c[0].Conference && c[0].State == psync.CallHeld
	})
	sim.End("PJSIP/211")
	w.waitFor("anna's call ended", func(w *watcher) bool { return len(w.calls("anna")) == 0 })

	// RINGINUSE: in a call while another rings: a call.
	sim.SetDeviceState("PJSIP/201", "RINGINUSE")
	w.waitFor("ringinuse is a call", func(w *watcher) bool { return len(w.calls("anna")) == 1 })
	sim.End("PJSIP/201")
	// A new call on the same device is a new call: no conference carried over.
	sim.Answer("PJSIP/211")
	w.waitFor("fresh call", func(w *watcher) bool {
		c := w.calls("anna")
		return len(c) == 1 && c[0].Device == "PJSIP/211" && !c[0].Conference
	})
}

// The person's own DND (*78) is never cleared by the bridge, whether the
// bridge was asked to protect before or after.
func TestUsersOwnDNDNeverCleared(t *testing.T) {
	sim := startSim(t)
	c, w := connect(t, testConfig(sim), anna)
	sim.PersonDND("201", true)
	w.waitFor("anna's DND seen", func(w *watcher) bool { return w.dnd("anna", true) })

	err := c.RestoreDeviceProtection(bg, anna, "PJSIP/201", true, false)
	if !errors.Is(err, psync.ErrChangedByUser) {
		t.Fatalf("restore of the person's DND: %v, want ErrChangedByUser", err)
	}
	// Asked to protect while the person's DND is on: the bridge takes
	// nothing over, so a later give-back still finds it the person's.
	if err := c.SetDeviceProtection(bg, anna, "PJSIP/201", true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeviceProtection(bg, anna, "PJSIP/211", true); err != nil {
		t.Fatal(err)
	}
	if _, ok := sim.DB("teams", "201/dnd"); ok {
		t.Error("the bridge marked the person's DND as its own")
	}
	for _, dev := range []string{"PJSIP/201", "PJSIP/211"} {
		if err := c.RestoreDeviceProtection(bg, anna, dev, true, false); !errors.Is(err, psync.ErrChangedByUser) {
			t.Errorf("restore %s: %v, want ErrChangedByUser", dev, err)
		}
	}
	if err := c.SetDeviceProtection(bg, anna, "PJSIP/201", false); !errors.Is(err, psync.ErrChangedByUser) {
		t.Errorf("switching off the person's DND: %v, want ErrChangedByUser", err)
	}
	if v, ok := sim.DB("DND", "201"); !ok || v != "YES" {
		t.Fatalf("DND/201 = %q,%v after the bridge's give-backs; the person's DND was cleared", v, ok)
	}
	if st := sim.DeviceState("Custom:DND201"); st != "BUSY" {
		t.Fatalf("Custom:DND201 = %s", st)
	}
}

// The bridge's DND is FreePBX's: AstDB DND/<ext> YES, the custom states,
// and the hint shows Busy. None of it comes back as a call.
func TestBridgeDNDIsNoCall(t *testing.T) {
	sim := startSim(t)
	c, w := connect(t, testConfig(sim), anna, ben)
	for _, dev := range []string{"PJSIP/201", "PJSIP/211"} {
		if err := c.SetDeviceProtection(bg, anna, dev, true); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := sim.DB("DND", "201"); v != "YES" {
		t.Fatalf("DND/201 = %q", v)
	}
	for _, d := range []string{"Custom:DND201", "Custom:DEVDND201", "Custom:DEVDND211"} {
		if st := sim.DeviceState(d); st != "BUSY" {
			t.Errorf("%s = %s, want BUSY", d, st)
		}
	}
	if st := sim.ExtensionStatus("201"); st != 2 {
		t.Fatalf("hint 201 aggregates to %d, want 2 (Busy): the simulator must show the echo hazard", st)
	}
	w.waitFor("DND shown on both devices", func(w *watcher) bool { return w.dnd("anna", true) })
	// A later event of ben's proves anna's events were all processed.
	sim.Answer("PJSIP/202")
	w.waitFor("ben's call", func(w *watcher) bool { return len(w.calls("ben")) == 1 })
	w.mu.Lock()
	for _, ev := range w.all {
		if ev.User == "anna" && ev.Kind == psync.PhoneCallChanged {
			t.Errorf("the bridge's DND came back as a call: %+v", ev)
		}
	}
	w.mu.Unlock()

	// FreePBX's order: DBPut DND, DEVDND per device, DND<ext>; the mark first.
	var seq []string
	for _, a := range sim.Actions() {
		switch a.Name {
		case "DBPut":
			seq = append(seq, "DBPut "+a.Fields["family"]+"/"+a.Fields["key"]+"="+a.Fields["val"])
		case "Setvar":
			seq = append(seq, "Setvar "+a.Fields["variable"]+"="+a.Fields["value"])
		}
	}
	want := []string{
		"DBPut teams/201/dnd=PJSIP/201",
		"DBPut DND/201=YES",
		"Setvar DEVICE_STATE(Custom:DEVDND201)=BUSY",
		"Setvar DEVICE_STATE(Custom:DEVDND211)=BUSY",
		"Setvar DEVICE_STATE(Custom:DND201)=BUSY",
		"DBPut teams/201/dnd=PJSIP/201&PJSIP/211",
	}
	if strings.Join(seq, "\n") != strings.Join(want, "\n") {
		t.Fatalf("writes:\n%s\nwant:\n%s", strings.Join(seq, "\n"), strings.Join(want, "\n"))
	}

	// Give back: the first device keeps it on for the other; the last clears.
	if err := c.RestoreDeviceProtection(bg, anna, "PJSIP/201", true, false); err != nil {
		t.Fatal(err)
	}
	if v, _ := sim.DB("DND", "201"); v != "YES" {
		t.Fatal("DND cleared while another device's protection was still held")
	}
	if err := c.RestoreDeviceProtection(bg, anna, "PJSIP/211", true, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := sim.DB("DND", "201"); ok {
		t.Fatal("DND/201 still set after the last give-back")
	}
	if _, ok := sim.DB("teams", "201/dnd"); ok {
		t.Fatal("the bridge's mark outlived its DND")
	}
	for _, d := range []string{"Custom:DND201", "Custom:DEVDND201", "Custom:DEVDND211"} {
		if st := sim.DeviceState(d); st != "UNAVAILABLE" {
			t.Errorf("%s = %s, want UNAVAILABLE (as FreePBX clears)", d, st)
		}
	}
	w.waitFor("DND off", func(w *watcher) bool { return w.dnd("anna", false) })
	// A second give-back finds it already off: nil.
	if err := c.RestoreDeviceProtection(bg, anna, "PJSIP/211", true, false); err != nil {
		t.Fatalf("repeated give-back: %v", err)
	}
}

// The person switching DND off (*79) while the bridge holds it, then on
// again: the engine sees the change; a give-back of the device finds it
// off (nil) and never clears the person's later DND... as long as the
// connector saw nothing of the bridge's remain.
func TestPersonClearsBridgeDND(t *testing.T) {
	sim := startSim(t)
	c, w := connect(t, testConfig(sim), anna)
	if err := c.SetDeviceProtection(bg, anna, "PJSIP/201", true); err != nil {
		t.Fatal(err)
	}
	w.waitFor("on", func(w *watcher) bool { return w.dnd("anna", true) })
	sim.PersonDND("201", false)
	w.waitFor("the person's *79 seen", func(w *watcher) bool { return w.dnd("anna", false) })
	if err := c.RestoreDeviceProtection(bg, anna, "PJSIP/201", true, false); err != nil {
		t.Fatalf("restore after the person cleared: %v", err)
	}
	if _, ok := sim.DB("teams", "201/dnd"); ok {
		t.Fatal("mark left behind")
	}
	sim.PersonDND("201", true)
	w.waitFor("the person's *78 seen", func(w *watcher) bool { return w.dnd("anna", true) })
	if err := c.RestoreDeviceProtection(bg, anna, "PJSIP/201", true, false); !errors.Is(err, psync.ErrChangedByUser) {
		t.Fatalf("restore of the person's new DND: %v", err)
	}
	if v, _ := sim.DB("DND", "201"); v != "YES" {
		t.Fatal("the person's DND was cleared")
	}
}

// Changes while the connection is down are in the snapshot after the
// reconnect; nothing is lost.
func TestReconnectResyncs(t *testing.T) {
	sim := startSim(t)
	_, w := connect(t, testConfig(sim), anna, ben)
	sim.Answer("PJSIP/201")
	w.waitFor("anna's call", func(w *watcher) bool { return len(w.calls("anna")) == 1 })

	sim.Restart() // connections drop; calls end; AstDB stays
	sim.Answer("PJSIP/202")
	sim.PersonDND("201", true)
	w.waitFor("resynced", func(w *watcher) bool {
		return w.synced >= 2 && len(w.calls("anna")) == 0 && len(w.calls("ben")) == 1 && w.dnd("anna", true)
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	var down, up bool
	for _, h := range w.health {
		if !h.Healthy {
			down = true
		} else if down {
			up = true
		}
	}
	if !down || !up {
		t.Fatalf("health: %s", w.healthDetails())
	}
}

// A write with no connection sent nothing: NotSent + ErrUnavailable.
func TestWriteWhileDisconnected(t *testing.T) {
	sim := startSim(t)
	c, err := asterisk.New(testConfig(sim))
	if err != nil {
		t.Fatal(err)
	}
	_, w := connect(t, testConfig(sim), anna)
	_ = w
	err = c.SetDeviceProtection(bg, anna, "PJSIP/201", true)
	var ns *psync.NotSentError
	if !errors.As(err, &ns) || !errors.Is(err, psync.ErrUnavailable) && !errors.Is(err, psync.ErrRejected) {
		t.Fatalf("write before Run: %v", err)
	}
	sim.Close()
	c2, w2 := connect(t, testConfig(startSim(t)), anna)
	w2.waitFor("synced", func(w *watcher) bool { return w.synced >= 1 })
	if err := c2.SetDeviceProtection(bg, anna, "PJSIP/999", true); !errors.Is(err, psync.ErrRejected) {
		t.Fatalf("unknown device: %v", err)
	}
}

// A new connector (the bridge restarted, kill -9 included) against the same
// PBX: the snapshot shows the DND the earlier run wrote, and the give-back
// the engine's reconciliation sends clears it, because the mark in AstDB
// says it is the bridge's.
func TestRestartedConnectorGivesBackItsDND(t *testing.T) {
	sim := startSim(t)
	c1, w1 := connect(t, testConfig(sim), anna)
	if err := c1.SetDeviceProtection(bg, anna, "PJSIP/201", true); err != nil {
		t.Fatal(err)
	}
	w1.waitFor("on", func(w *watcher) bool { return w.dnd("anna", true) })
	c1.Close()
	waitSim(t, "first connection gone", func() bool { return sim.Sessions() == 0 })

	c2, w2 := connect(t, testConfig(sim), anna)
	w2.mu.Lock()
	on := w2.dnd("anna", true)
	w2.mu.Unlock()
	if !on {
		t.Fatal("the restarted connector's snapshot does not show the DND it holds")
	}
	if err := c2.RestoreDeviceProtection(bg, anna, "PJSIP/201", true, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := sim.DB("DND", "201"); ok {
		t.Fatal("DND/201 not cleared by the restarted bridge")
	}
	w2.waitFor("off", func(w *watcher) bool { return w.dnd("anna", false) })
}

func TestLoginRefusedAndRecovered(t *testing.T) {
	sim := startSim(t)
	sim.FailLogins(1)
	cfg := testConfig(sim)
	cfg.ReconnectMax = 100 * time.Millisecond
	_, w := connect(t, cfg, anna)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.health) < 2 || w.health[0].Healthy || !strings.Contains(w.health[0].Detail, "Authentication failed") {
		t.Fatalf("health: %s", w.healthDetails())
	}
	if strings.Contains(w.healthDetails(), testSecret) {
		t.Fatal("the secret appears in a health detail")
	}
}

// A Ping without Pong drops the connection; the next one resyncs.
func TestMissedPongReconnects(t *testing.T) {
	sim := startSim(t)
	cfg := testConfig(sim)
	cfg.KeepAlive = 50 * time.Millisecond
	cfg.ActionTimeout = 150 * time.Millisecond
	_, w := connect(t, cfg, anna)
	sim.IgnorePings(true)
	w.waitFor("loss noticed", func(w *watcher) bool {
		for _, h := range w.health {
			if !h.Healthy && strings.Contains(h.Detail, "Pong") {
				return true
			}
		}
		return false
	})
	sim.IgnorePings(false)
	w.waitFor("resynced", func(w *watcher) bool { return w.synced >= 2 })
}

func TestPermissionsNamed(t *testing.T) {
	sim := startSim(t, map[string]amisim.Account{
		"nocall":   {Secret: "x", Read: "call", Write: "system,reporting"},
		"nosystem": {Secret: "y", Read: "call", Write: "call"},
	})
	cfg := testConfig(sim)
	cfg.User, cfg.Secret = "nocall", "x"
	c, _ := connect(t, cfg, anna)
	err := c.SetDeviceProtection(bg, anna, "PJSIP/201", true)
	if !errors.Is(err, psync.ErrRejected) || !strings.Contains(err.Error(), `"call"`) || !strings.Contains(err.Error(), "manager.conf") {
		t.Fatalf("write without class call: %v", err)
	}

	cfg.User, cfg.Secret = "nosystem", "y"
	c2, err := asterisk.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := newWatcher(t)
	w.run(c2, anna)
	w.waitFor("refusal reported", func(w *watcher) bool {
		for _, h := range w.health {
			if !h.Healthy && strings.Contains(h.Detail, "system") {
				return true
			}
		}
		return false
	})
	rep := c2.Report()
	if len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0].Fix+rep.Errors[len(rep.Errors)-1].Fix, "write = system,call") {
		t.Fatalf("report: %+v", rep.Errors)
	}
}

func TestAsteriskProfileLease(t *testing.T) {
	sim := startSim(t)
	sim.AddDevice("PJSIP/301")
	cfg := testConfig(sim)
	cfg.Profile = asterisk.ProfileAsterisk
	cfg.Lease = 3 * time.Second
	cfg.Refresh = 100 * time.Millisecond
	carl := psync.User{ID: "carl", Extension: "301"}
	sim.AddDevice("SIP/302") // chan_sip
	dora := psync.User{ID: "dora", Extension: "302"}
	c, w := connect(t, cfg, carl, dora)
	w.waitFor("devices", func(w *watcher) bool {
		d, e := w.user("carl").Devices, w.user("dora").Devices
		return len(d) == 1 && d[0].ID == "PJSIP/301" && len(e) == 1 && e[0].ID == "SIP/302"
	})
	sim.Answer("SIP/302")
	w.waitFor("dora's chan_sip call", func(w *watcher) bool { return len(w.calls("dora")) == 1 })
	if err := c.SetDeviceProtection(bg, carl, "PJSIP/301", true); err != nil {
		t.Fatal(err)
	}
	if st := sim.DeviceState("Custom:teams301"); st != "BUSY" {
		t.Fatalf("Custom:teams301 = %s", st)
	}
	first, _ := sim.DB("teams", "301/until")
	waitSim(t, "lease renewed", func() bool {
		v, _ := sim.DB("teams", "301/until")
		return v > first
	})
	w.waitFor("shown as DND", func(w *watcher) bool { return w.dnd("carl", true) })
	if err := c.RestoreDeviceProtection(bg, carl, "PJSIP/301", true, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := sim.DB("teams", "301/until"); ok {
		t.Fatal("lease left")
	}
	if st := sim.DeviceState("Custom:teams301"); st != "NOT_INUSE" {
		t.Fatalf("Custom:teams301 = %s", st)
	}
	w.waitFor("off", func(w *watcher) bool { return w.dnd("carl", false) })
}

func TestPresence(t *testing.T) {
	sim := startSim(t)
	cfg := testConfig(sim)
	c0, _ := asterisk.New(testConfig(sim))
	if err := c0.SetPresence(bg, anna, psync.PresenceMark{Presence: psync.PhoneBusy}, nil); !errors.Is(err, psync.ErrRejected) || !strings.Contains(err.Error(), "asterisk.presence") {
		t.Fatalf("presence off: %v", err)
	}
	cfg.Presence = true
	c, w := connect(t, cfg, anna)
	w.waitFor("not set", func(w *watcher) bool { return w.user("anna").Presence == psync.PhoneNotSet })
	if err := c.SetPresence(bg, anna, psync.PresenceMark{Presence: psync.PhoneBusy}, nil); err != nil {
		t.Fatal(err)
	}
	if st, sub, msg := sim.Presence("201"); st != "dnd" || sub != "busy" || msg != "In a Teams call" {
		t.Fatalf("PRESENCE_STATE = %s,%s,%s", st, sub, msg)
	}
	w.waitFor("busy", func(w *watcher) bool { return w.user("anna").Presence == psync.PhoneBusy })
	own := []psync.PresenceMark{{Presence: psync.PhoneBusy}}
	if err := c.RestorePresence(bg, anna, own, psync.PresenceMark{Presence: psync.PhoneNotSet}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := sim.Presence("201"); st != "not_set" {
		t.Fatalf("after restore: %s", st)
	}
	if err := c.SetPresence(bg, anna, psync.PresenceMark{Presence: psync.PhoneBusy}, nil); err != nil {
		t.Fatal(err)
	}
	sim.PersonPresence("201", "away", "", "lunch")
	w.waitFor("away", func(w *watcher) bool { return w.user("anna").Presence == psync.PhoneAway })
	if err := c.RestorePresence(bg, anna, own, psync.PresenceMark{Presence: psync.PhoneNotSet}); !errors.Is(err, psync.ErrChangedByUser) {
		t.Fatalf("restore over the person's presence: %v", err)
	}
	if st, _, _ := sim.Presence("201"); st != "away" {
		t.Fatal("the person's presence was overwritten")
	}
}

// An extension with a line break would inject AMI fields: the user is not
// watched and writes for them are refused.
func TestHostileExtensionRefused(t *testing.T) {
	sim := startSim(t)
	evil := psync.User{ID: "evil", Extension: "201\r\nAction: Command\r\nCommand: core stop now"}
	c, _ := connect(t, testConfig(sim), anna, evil)
	if err := c.SetDeviceProtection(bg, evil, "PJSIP/201", true); !errors.Is(err, psync.ErrRejected) {
		t.Fatalf("write for a user with a hostile extension: %v", err)
	}
	for _, a := range sim.Actions() {
		if strings.EqualFold(a.Name, "Command") {
			t.Fatal("an injected action reached the PBX")
		}
	}
}

func TestConfigFromSettings(t *testing.T) {
	cfg, err := asterisk.ConfigFromSettings(map[string]string{"asterisk.host": "pbx.example", "asterisk.user": "bridge", "asterisk.secret": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Profile != asterisk.ProfileFreePBX || cfg.Presence || cfg.Lease != 10*time.Minute {
		t.Fatalf("defaults: %+v", cfg)
	}
	for _, tc := range []struct {
		values map[string]string
		want   string
	}{
		{map[string]string{}, "asterisk.host"},
		{map[string]string{"asterisk.host": "pbx:5038"}, "asterisk.user"},
		{map[string]string{"asterisk.host": "pbx:5038", "asterisk.user": "b"}, "asterisk.secret"},
		{map[string]string{"asterisk.host": "pbx:99999", "asterisk.user": "b", "asterisk.secret": "x"}, "port"},
		{map[string]string{"asterisk.host": "pbx", "asterisk.user": "b", "asterisk.secret": "x\r\nAction: Command"}, "asterisk.secret"},
		{map[string]string{"asterisk.host": "pbx", "asterisk.user": "b", "asterisk.secret": "x", "asterisk.profile": "3cx"}, "asterisk.profile"},
		{map[string]string{"asterisk.host": "pbx", "asterisk.user": "b", "asterisk.secret": "x", "asterisk.presence": "yes"}, "asterisk.presence"},
	} {
		_, err := asterisk.ConfigFromSettings(tc.values)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.values, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "Action: Command") {
			t.Errorf("error repeats the secret: %v", err)
		}
	}
	if !strings.Contains(asterisk.ManagerStanza("bridge"), "read = call\nwrite = system,call") {
		t.Fatal(asterisk.ManagerStanza("bridge"))
	}
}

func TestAbilitiesAndIDs(t *testing.T) {
	sim := startSim(t)
	cfg := testConfig(sim)
	c, _ := asterisk.New(cfg)
	if c.Abilities() != psync.AbilityProtection {
		t.Fatalf("presence off: %v", c.Abilities())
	}
	cfg.Presence = true
	c, _ = asterisk.New(cfg)
	if c.Abilities() != psync.AbilityAll {
		t.Fatalf("presence on: %v", c.Abilities())
	}
	// The id is the extension when the Extension field is empty; a UPN is not.
	byID := psync.User{ID: "202"}
	upn := psync.User{ID: "carl@example.com"}
	_, w := connect(t, testConfig(sim), byID, upn)
	w.waitFor("202 by its id", func(w *watcher) bool { return len(w.user("202").Devices) == 1 })
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.state["carl@example.com"]; ok {
		t.Fatal("a UPN was taken for an extension")
	}
	if got := asterisk.MissingSettings(map[string]string{"asterisk.host": "pbx"}); len(got) != 2 || !strings.Contains(got[0], "asterisk.user") {
		t.Fatalf("missing: %v", got)
	}
}

// A lease that ran out (the bridge was gone): the PBX lets calls through,
// the restarted connector shows no protection although the lamp still
// says BUSY, and the give-back tidies key and lamp.
func TestAsteriskProfileLeaseRanOut(t *testing.T) {
	sim := startSim(t)
	sim.AddDevice("PJSIP/301")
	sim.PutDB("teams", "301/until", "1000") // long past
	sim.PutDB("teams", "301/dnd", "PJSIP/301")
	sim.SetDeviceState("Custom:teams301", "BUSY")
	cfg := testConfig(sim)
	cfg.Profile = asterisk.ProfileAsterisk
	carl := psync.User{ID: "carl", Extension: "301"}
	c, w := connect(t, cfg, carl)
	w.mu.Lock()
	on := w.dnd("carl", true)
	w.mu.Unlock()
	if on {
		t.Fatal("a run-out lease shown as protection")
	}
	if err := c.RestoreDeviceProtection(bg, carl, "PJSIP/301", true, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := sim.DB("teams", "301/until"); ok {
		t.Fatal("run-out lease key left")
	}
	if st := sim.DeviceState("Custom:teams301"); st != "NOT_INUSE" {
		t.Fatalf("lamp %s", st)
	}
}

// The secret never crosses the network (AMI has no TLS by default): the
// login answers a challenge with MD5(challenge + secret), and the
// simulator, as Asterisk, accepts only the right key.
func TestLoginSendsNoSecret(t *testing.T) {
	sim := startSim(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var sent bytes.Buffer
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", sim.Addr())
			if err != nil {
				c.Close()
				return
			}
			go func() { io.Copy(c, s); c.Close() }()
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					mu.Lock()
					sent.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						s.Close()
						return
					}
					s.Write(buf[:n])
				}
			}()
		}
	}()
	cfg := testConfig(sim)
	cfg.Host = ln.Addr().String()
	_, w := connect(t, cfg, anna)
	w.waitFor("connected", func(w *watcher) bool { return len(w.state) > 0 })
	mu.Lock()
	wire := sent.String()
	mu.Unlock()
	if !strings.Contains(wire, "Action: Challenge") || !strings.Contains(wire, "Key: ") {
		t.Fatalf("no challenge login on the wire:\n%s", wire)
	}
	if strings.Contains(wire, testSecret) || strings.Contains(strings.ToLower(wire), "secret:") {
		t.Fatalf("the secret crossed the network:\n%s", wire)
	}
}

// asterisk.presence switched off while the bridge's presence is on the
// phones: the give-back still goes (the value has no end time on
// Asterisk); only new writes are refused. A give-back for a device the PBX
// no longer lists still clears the bridge's DND by its mark.
func TestGiveBacksAfterTheSettingsChanged(t *testing.T) {
	sim := startSim(t)
	cfg := testConfig(sim)
	cfg.Presence = true
	c, w := connect(t, cfg, anna)
	if err := c.SetPresence(bg, anna, psync.PresenceMark{Presence: psync.PhoneBusy}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeviceProtection(bg, anna, "PJSIP/211", true); err != nil {
		t.Fatal(err)
	}
	w.waitFor("busy", func(w *watcher) bool { return w.user("anna").Presence == psync.PhoneBusy })
	sim.PutDB("AMPUSER", "201/device", "201") // her second device is gone from FreePBX

	off := testConfig(sim)
	c2, _ := connect(t, off, anna)
	own := []psync.PresenceMark{{Presence: psync.PhoneBusy}}
	if err := c2.RestorePresence(bg, anna, own, psync.PresenceMark{Presence: psync.PhoneNotSet}); err != nil {
		t.Fatalf("give-back with asterisk.presence off: %v", err)
	}
	if st, _, _ := sim.Presence("201"); st != "not_set" {
		t.Fatalf("PRESENCE_STATE after the give-back: %s", st)
	}
	if err := c2.SetPresence(bg, anna, psync.PresenceMark{Presence: psync.PhoneBusy}, nil); !errors.Is(err, psync.ErrRejected) {
		t.Fatalf("a new presence write with asterisk.presence off: %v", err)
	}
	if err := c2.RestoreDeviceProtection(bg, anna, "PJSIP/211", true, false); err != nil {
		t.Fatalf("give-back for a device no longer listed: %v", err)
	}
	if v, ok := sim.DB("DND", "201"); ok && v == "YES" {
		t.Fatal("the bridge's DND stayed on")
	}
}
