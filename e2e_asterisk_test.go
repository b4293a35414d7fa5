package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/asterisk/amisim"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

// The Asterisk connector through the real binary against the AMI
// simulator, as FreePBX: a phone call sets Teams Busy / InACall; a Teams
// call sets FreePBX DND exactly as FreePBX does; the person's own DND is
// never cleared; kill -9 while the bridge holds DND, the Teams call ends
// meanwhile, and the restarted bridge clears its DND (FreePBX's DND has no
// expiry: the write-ahead hold and the restart are what clear it).
func TestAsterisk_ThroughTheBinary(t *testing.T) {
	sim := amisim.New(amisim.Options{Accounts: map[string]amisim.Account{"bridge": {Secret: "ami-secret", Read: "call", Write: "system,call"}}})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.AddExtension("201", "201", "211")
	s, ca := e2eTenantSim(t)
	settings := teamsSettings(s, e2eSecret)
	for k, v := range map[string]string{"phone.system": "asterisk", "asterisk.host": sim.Addr(), "asterisk.user": "bridge", "asterisk.secret": "ami-secret"} {
		settings[k] = v
	}
	pb, db, sock := protectedOffice(t, ca, settings, "201")
	br := syncedBridge(t, pb, db, sock)

	// Phone → Teams.
	sim.StartCall("PJSIP/211")
	sim.Answer("PJSIP/211")
	br.wait("Teams Busy / InACall during the call on her second device", 10*time.Second, func() bool {
		p, err := s.Presence(e2eAnna)
		return err == nil && p.Availability == "Busy" && p.Activity == "InACall"
	})
	sim.End("PJSIP/211")
	br.wait("cleared", 10*time.Second, func() bool {
		p, err := s.Presence(e2eAnna)
		return err == nil && p.Availability == "Available"
	})

	// Teams → phone: FreePBX DND, and back.
	dnd := func() bool { v, ok := sim.DB("DND", "201"); return ok && v == "YES" }
	if err := s.StartTeamsCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	br.wait("FreePBX DND during the Teams call", 20*time.Second, dnd)
	if st := sim.DeviceState("Custom:DND201"); st != "BUSY" {
		t.Fatalf("Custom:DND201 = %s during the bridge's DND, want BUSY (as FreePBX sets it)", st)
	}
	if p, _ := s.Presence(e2eAnna); p.Activity != "InACall" {
		t.Fatalf("Teams shows %s: the bridge's DND (a busy hint) came back as a call?", p.Activity)
	}
	if err := s.EndCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	br.wait("DND cleared after the Teams call", 20*time.Second, func() bool { return !dnd() })
	if st := sim.DeviceState("Custom:DND201"); st != "UNAVAILABLE" {
		t.Fatalf("Custom:DND201 = %s after the clear, want UNAVAILABLE (as FreePBX clears it)", st)
	}
	if n := countWrites(s.Requests(), "/setPresence"); n != 1 {
		t.Fatalf("%d setPresence: the bridge's own DND echoed to Teams as a call", n)
	}

	// The person's own DND (*78) during a Teams call is theirs: kept.
	sim.PersonDND("201", true)
	if err := s.StartTeamsCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	seen := func(activity string) func() bool {
		return func() bool {
			var us []psync.UserStatus
			out := pb.ok("", "users", "--json")
			return json.Unmarshal([]byte(out), &us) == nil && len(us) == 1 && us[0].Teams.Activity == activity
		}
	}
	br.wait("the bridge sees the Teams call", 20*time.Second, seen("InACall"))
	if err := s.EndCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	br.wait("the bridge sees its end", 20*time.Second, seen("Available"))
	br.wait("the engine has nothing to give back", 10*time.Second, func() bool {
		var us []psync.UserStatus
		return json.Unmarshal([]byte(pb.ok("", "users", "--json")), &us) == nil && len(us) == 1 && len(us[0].Holds) == 0
	})
	if !dnd() {
		t.Fatal("the person's own DND was cleared by the bridge")
	}
	sim.PersonDND("201", false)

	// kill -9 while holding DND; the Teams call ends while the bridge is
	// gone; the restart clears the bridge's DND.
	if err := s.StartTeamsCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	br.wait("DND for the next Teams call", 20*time.Second, dnd)
	br.kill()
	if err := s.EndCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	if !dnd() {
		t.Fatal("FreePBX DND went away with the bridge: the test proves nothing")
	}
	br = runBridge(t, pb, db, sock)
	br.wait("the restarted bridge clears its DND", 30*time.Second, func() bool { return !dnd() })
	br.stop()
}

func countWrites(rs []graphsim.Request, suffix string) int {
	n := 0
	for _, q := range rs {
		if strings.HasSuffix(q.Path, suffix) {
			n++
		}
	}
	return n
}

// `doctor` for Asterisk through the binary: all ok with the least
// privileges; an account without the write class "system" fails and prints
// the manager.conf stanza to use.
func TestAsterisk_Doctor(t *testing.T) {
	sim := amisim.New(amisim.Options{Accounts: map[string]amisim.Account{
		"bridge":  {Secret: "ami-secret", Read: "call", Write: "system,call"},
		"limited": {Secret: "ami-secret", Read: "call", Write: "call"},
	}})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.AddExtension("201", "201", "211")
	s, ca := e2eTenantSim(t)
	db := func(user string) string {
		v := teamsSettings(s, e2eSecret)
		for k, val := range map[string]string{"phone.system": "asterisk", "asterisk.host": sim.Addr(), "asterisk.user": user, "asterisk.secret": "ami-secret"} {
			v[k] = val
		}
		return sipDB(t, v, psync.User{ID: "anna@contoso.example", Extension: "201", UPN: "anna@contoso.example", DisplayName: "Anna"})
	}
	pb := newPB(t, "SSL_CERT_FILE="+ca)
	code, out, errs := pb.run("", "doctor", "--db", db("bridge"))
	if code != 0 || strings.Contains(out, "FAILED") || !strings.Contains(out, "phone ok     login") || !strings.Contains(out, "PJSIP/211") {
		t.Fatalf("doctor with the least privileges: exit %d\n%s%s", code, out, errs)
	}
	t.Logf("doctor:\n%s", out)
	code, out, _ = pb.run("", "doctor", "--db", db("limited"))
	if code == 0 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "write = system,call") || strings.Contains(out, "ami-secret") {
		t.Fatalf("doctor with write = call only: exit %d\n%s", code, out)
	}
}
