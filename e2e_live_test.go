package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// Settings changed while `run` runs take effect without a restart and
// without releasing what the bridge holds: a new Teams lease is on the next
// setPresence; a wrong UCServer password shows on the dashboard with its
// fix within seconds; the right one reconnects, and the phone protection
// the bridge held all along was never released.
func TestRun_SettingsApplyLive(t *testing.T) {
	s, ca := e2eTenantSim(t)
	uc := ucsim.New(ucsim.Options{Addr: "127.0.0.1:0", Users: []ucsim.User{
		{ContactID: "sip:bridge@contoso.example", LoginName: "bridge", Password: "uc-pass"},
		{ContactID: "sip:anna@contoso.example", DisplayName: "Anna", Email: "anna@contoso.example", Lines: []ucsim.Line{{URI: "tel:201"}}},
	}})
	if err := uc.Start(); err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	settings := teamsSettings(s, e2eSecret)
	for k, v := range map[string]string{"phone.system": "ucserver", "ucserver.url": uc.URL(), "ucserver.user": "bridge", "ucserver.password": "uc-pass"} {
		settings[k] = v
	}
	db := e2eDB(t, settings)
	dir, err := os.MkdirTemp("", "pblive") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "control.sock")
	pb := newPB(t, "SSL_CERT_FILE="+ca, "PRESENCEBRIDGE_SOCKET="+sock)

	// Anna's profile protects her phone during a Teams call: DND presence
	// and line DND, both held by the bridge.
	pb.ok("", "profiles", "add", "protected", "--db", db)
	pb.ok("", "config", "set", "profile.protected.cross_device_busy_on_busy", "on", "--db", db)
	pb.ok("", "config", "set", "profile.protected.dnd_protection_controls_presence", "on", "--db", db)
	pb.ok("", "config", "set", "user.sip:anna@contoso.example.profile", "protected", "--db", db)

	cmd := exec.Command(pb.bin, "run", "--db", db, "--socket", sock, "--group", "")
	cmd.Env = pb.env
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	wait := func(what string, within time.Duration, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !f(); time.Sleep(50 * time.Millisecond) {
			select {
			case err := <-exited:
				t.Fatalf("run exited (%v) while waiting for %s:\n%s", err, what, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %s: %s\n%s", within, what, logs.String())
			}
		}
	}
	status := func() string { _, out, _ := pb.run("", "status"); return out }
	wait("both sides synced", 20*time.Second, func() bool {
		out := status()
		return strings.Count(out, "healthy") == 2 && !strings.Contains(out, "not complete")
	})

	// A new Teams lease: the next setPresence carries it.
	pb.ok("", "config", "set", "teams.lease", "30m")
	call, err := uc.Ring("tel:201", "+4930555")
	if err != nil {
		t.Fatal(err)
	}
	if err := uc.PickUp(call); err != nil {
		t.Fatal(err)
	}
	var lease string
	wait("a setPresence for the call", 10*time.Second, func() bool {
		for _, q := range s.Requests() {
			if strings.HasSuffix(q.Path, "/setPresence") {
				if m, ok := q.JSON.(map[string]any); ok {
					lease, _ = m["expirationDuration"].(string)
				}
				return true
			}
		}
		return false
	})
	if lease != "PT30M" {
		t.Fatalf("setPresence after teams.lease 30m carried expirationDuration %q", lease)
	}
	_ = uc.HangUp(call)

	// A Teams call: the bridge holds Anna's presence and line.
	if err := s.StartTeamsCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	protected := func() bool {
		st, ok := uc.UserState("sip:anna@contoso.example")
		return ok && st.Absent.State == ucsim.AbsentDoNotDisturb && len(st.Lines) == 1 && st.Lines[0].DND
	}
	wait("Anna's phone protected", 20*time.Second, protected)
	holds := func() int {
		var us []psync.UserStatus
		if out := pb.ok("", "users", "--json"); json.Unmarshal([]byte(out), &us) != nil || len(us) != 1 {
			t.Fatalf("users --json: %s", out)
		}
		return len(us[0].Holds)
	}
	if n := holds(); n != 2 {
		t.Fatalf("%d holds, want presence and line", n)
	}

	// A wrong password: the phone side goes down and says what to fix,
	// within seconds; nothing held is released.
	began := time.Now()
	pb.ok("", "config", "set", "ucserver.password", "wrong-pass")
	wait("the failed login on the dashboard", 10*time.Second, func() bool {
		out := status()
		return strings.Contains(out, "NOT connected") && strings.Contains(out, "ucserver.password")
	})
	t.Logf("the failed login showed %s after the change", time.Since(began).Round(10*time.Millisecond))
	if out := status(); strings.Contains(out, "wrong-pass") {
		t.Fatalf("status shows the password:\n%s", out)
	}
	if !protected() || holds() != 2 {
		t.Fatal("the protection was released while the phone side was being rebuilt")
	}

	// The right one: it reconnects, still holding what it held.
	pb.ok("", "config", "set", "ucserver.password", "uc-pass")
	wait("reconnected", 15*time.Second, func() bool {
		out := status()
		return strings.Count(out, "healthy") == 2 && !strings.Contains(out, "NOT connected")
	})
	if !protected() || holds() != 2 {
		t.Fatal("the protection was released across the reconnect")
	}
	if strings.Contains(logs.String(), "released") {
		t.Fatalf("something was released meanwhile:\n%s", logs.String())
	}

	// And the rebuilt side still gives back when the Teams call ends.
	if err := s.EndCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	wait("released after the Teams call", 20*time.Second, func() bool {
		st, ok := uc.UserState("sip:anna@contoso.example")
		return ok && st.Absent.State == ucsim.AbsentNotSet && !st.Lines[0].DND
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
}
