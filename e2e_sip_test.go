package main

import (
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/kamailiotest"
)

// The SIP connector through the real binary against a real Kamailio (the
// front proxy of a PBX) and sipp phones, both ways:
//   - phone → Teams: a call through the proxy to either of Anna's two
//     extensions sets her Teams presence Busy / InACall, once per call; it
//     is cleared when the last of her calls ends;
//   - Teams → phone: her Teams call puts both extensions in the proxy's
//     busy table: a call to her is answered 486; after the Teams call it
//     goes through;
//   - kill -9 of the bridge during a Teams call: the proxy lets calls in
//     again by itself when the entry's lease runs out; the restarted bridge
//     reconciles (the Teams call still runs: busy again; it ends: released).
func TestSIP_RealKamailioBothWays(t *testing.T) {
	kamailiotest.Require(t)
	uas := kamailiotest.UAS(t)
	k := kamailiotest.Start(t, kamailiotest.Options{Auth: &kamailiotest.Credentials{User: "bridge", Password: "sip-pass"}, UAS: uas.Addr()})
	s, ca := e2eTenantSim(t)

	settings := teamsSettings(s, e2eSecret)
	for key, v := range map[string]string{
		"phone.system": "sip", "sip.server": k.SIPAddr(), "sip.transport": "udp", "sip.listen": "127.0.0.1:0",
		"sip.user": "bridge", "sip.password": "sip-pass", "sip.writer": "kamailio", "sip.rpc_url": k.RPCURL(),
		"phone.lease": "1m", "phone.keepalive": "20s",
	} {
		settings[key] = v
	}
	pb, db, sock := protectedOffice(t, ca, settings, "201, 202")
	br := syncedBridge(t, pb, db, sock)

	// Phone → Teams: one call, then two overlapping calls on her two
	// extensions.
	writes := func(suffix string) int {
		n := 0
		for _, q := range s.Requests() {
			if strings.HasSuffix(q.Path, suffix) {
				n++
			}
		}
		return n
	}
	busy := func() bool {
		p, err := s.Presence(e2eAnna)
		return err == nil && p.Availability == "Busy" && p.Activity == "InACall"
	}
	call := k.StartCall(t, "300", "201", 3*time.Second)
	br.wait("Teams Busy / InACall during the call to 201", 10*time.Second, busy)
	if code := call.Wait(t); code != 200 {
		t.Fatalf("call to 201 answered %d", code)
	}
	br.wait("cleared after the call", 10*time.Second, func() bool { return writes("/clearPresence") == 1 })
	if n := writes("/setPresence"); n != 1 {
		t.Fatalf("%d setPresence for one call, want 1", n)
	}

	first := k.StartCall(t, "300", "201", 3*time.Second)
	time.Sleep(time.Second) // the second call begins while the first lasts
	second := k.StartCall(t, "301", "202", 5*time.Second)
	br.wait("busy during two calls on two extensions", 10*time.Second, busy)
	if code := first.Wait(t); code != 200 {
		t.Fatalf("first call answered %d", code)
	}
	firstEnded := time.Now()
	if code := second.Wait(t); code != 200 {
		t.Fatalf("second call answered %d", code)
	}
	br.wait("cleared after the second call", 10*time.Second, func() bool { return writes("/clearPresence") == 2 })
	for _, q := range s.Requests() {
		if strings.HasSuffix(q.Path, "/clearPresence") && q.Time.After(firstEnded.Add(-time.Second)) && q.Time.Before(firstEnded.Add(time.Second)) {
			t.Fatalf("Teams cleared when the first of two calls ended (%s), not the last", q.Time.Format(time.StampMilli))
		}
	}
	if n := writes("/setPresence"); n != 2 {
		t.Fatalf("%d setPresence for two calls (the second overlapping), want 2", n)
	}

	// Teams → phone: busy-on-busy through the proxy.
	if err := s.StartTeamsCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	refused := func(ext string) func() bool {
		return func() bool { return k.Call(t, "300", ext, 0) == 486 }
	}
	br.wait("a call to 201 refused 486 during the Teams call", 20*time.Second, refused("201"))
	if !refused("202")() {
		t.Fatal("her second extension is not protected")
	}
	if err := s.EndCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	br.wait("calls go through after the Teams call", 20*time.Second, func() bool { return k.Call(t, "300", "201", 0) == 200 })

	// kill -9 during a Teams call: the proxy expires the entry by itself.
	if err := s.StartTeamsCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	br.wait("protected again", 20*time.Second, refused("201"))
	br.kill()
	killed := time.Now()
	br.wait("the proxy lets calls in once the lease is over", 90*time.Second, func() bool {
		time.Sleep(time.Second)
		return k.Call(t, "300", "201", 0) == 200
	})
	t.Logf("calls went through again %s after the bridge was killed (phone.lease 1m)", time.Since(killed).Round(time.Second))
	if time.Since(killed) < 50*time.Second {
		t.Fatalf("calls went through %s after the kill, before the lease ran out: the entry had no lease", time.Since(killed))
	}

	// The restart reconciles: the Teams call still runs, so she is busy
	// again; when it ends, released.
	br = runBridge(t, pb, db, sock)
	br.wait("busy again after the restart", 30*time.Second, refused("201"))
	if err := s.EndCall(e2eAnna); err != nil {
		t.Fatal(err)
	}
	br.wait("released after the restart", 20*time.Second, func() bool { return k.Call(t, "300", "201", 0) == 200 && k.Call(t, "300", "202", 0) == 200 })
	br.stop()
}

// sipDB writes settings and users into a new database.
func sipDB(t *testing.T, settings map[string]string, users ...psync.User) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// In key order: phone.keepalive is checked against phone.lease when
	// the lease is set, so it goes first.
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		if err := db.SetSetting(k, settings[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutProfile(psync.NewProfile("protected")); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// runProc is one `presencebridge run` of a test.
type runProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	logs   *lockedBuffer
	exited chan error
}

func runBridge(t *testing.T, pb pbBin, db, sock string) *runProc {
	t.Helper()
	cmd := exec.Command(pb.bin, "run", "--db", db, "--socket", sock, "--group", "")
	cmd.Env = pb.env
	b := &runProc{t: t, cmd: cmd, logs: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = b.logs, b.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			b.cmd.Process.Kill()
			<-b.exited
		}
	})
	return b
}

// wait polls f until it holds, failing the test after within or when the
// bridge exits.
func (b *runProc) wait(what string, within time.Duration, f func() bool) {
	b.t.Helper()
	for deadline := time.Now().Add(within); !f(); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-b.exited:
			b.exited <- err
			b.t.Fatalf("run exited (%v) while waiting for %s:\n%s", err, what, b.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out after %s: %s\n%s", within, what, b.logs.String())
		}
	}
}

// kill ends the bridge with SIGKILL: nothing released, nothing said.
func (b *runProc) kill() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		b.t.Fatal(err)
	}
	<-b.exited
}

// stop ends the bridge as a service stop does; it must exit 0.
func (b *runProc) stop() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(os.Interrupt); err != nil {
		b.t.Fatal(err)
	}
	if err := <-b.exited; err != nil {
		b.t.Fatalf("run: %v\n%s", err, b.logs.String())
	}
}

// `doctor` for a SIP PBX through the binary against a real Kamailio: every
// phone check ok (reach, digest, a subscription and its granted expiry, each
// extension, the busy table); a wrong password and an RPC port nobody
// serves each fail with the fix naming the setting.
func TestSIP_DoctorAgainstKamailio(t *testing.T) {
	kamailiotest.Require(t)
	k := kamailiotest.Start(t, kamailiotest.Options{Auth: &kamailiotest.Credentials{User: "bridge", Password: "sip-pass"}, MaxExpires: 60 * time.Second})
	s, ca := e2eTenantSim(t)
	settings := func(change map[string]string) string {
		v := teamsSettings(s, e2eSecret)
		for key, val := range map[string]string{
			"phone.system": "sip", "sip.server": k.SIPAddr(), "sip.listen": "127.0.0.1:0",
			"sip.user": "bridge", "sip.password": "sip-pass", "sip.writer": "kamailio", "sip.rpc_url": k.RPCURL(),
		} {
			v[key] = val
		}
		for key, val := range change {
			v[key] = val
		}
		return sipDB(t, v, psync.User{ID: "anna@contoso.example", Extension: "201,202", UPN: "anna@contoso.example", DisplayName: "Anna"})
	}
	pb := newPB(t, "SSL_CERT_FILE="+ca)

	code, out, errs := pb.run("", "doctor", "--db", settings(nil))
	if code != 0 || strings.Contains(out, "FAILED") {
		t.Fatalf("doctor against a good Kamailio: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"phone ok     subscribe", "granted 1m0s (asked 2m0s)", "201 subscribed, 202 subscribed", "htable teamsbusy exists"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor does not say %q:\n%s", want, out)
		}
	}
	t.Logf("doctor:\n%s", out)

	code, out, _ = pb.run("", "doctor", "--db", settings(map[string]string{"sip.password": "wrong"}))
	if code == 0 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "sip.password") || strings.Contains(out, "wrong") {
		t.Fatalf("doctor with a wrong password: exit %d\n%s", code, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/RPC"
	ln.Close()
	code, out, _ = pb.run("", "doctor", "--db", settings(map[string]string{"sip.rpc_url": closed}))
	if code == 0 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "sip.rpc_url") {
		t.Fatalf("doctor with nothing at the RPC URL: exit %d\n%s", code, out)
	}
}

// protectedOffice is one person, Anna, on a profile that protects every
// device during a Teams call, with the phone settings given: her
// database, the binary set up for it with a control socket of its own,
// and the socket's path.
func protectedOffice(t *testing.T, ca string, settings map[string]string, ext string) (pbBin, string, string) {
	t.Helper()
	db := sipDB(t, settings, psync.User{ID: "anna@contoso.example", Extension: ext, UPN: "anna@contoso.example", DisplayName: "Anna", Profile: "protected"})
	dir, err := os.MkdirTemp("", "pbofc") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "control.sock")
	pb := newPB(t, "SSL_CERT_FILE="+ca, "PRESENCEBRIDGE_SOCKET="+sock)
	pb.ok("", "config", "set", "profile.protected.cross_device_busy_on_busy", "on", "--db", db)
	return pb, db, sock
}

// syncedBridge runs `presencebridge run` and waits until both sides are
// healthy and synced.
func syncedBridge(t *testing.T, pb pbBin, db, sock string) *runProc {
	t.Helper()
	br := runBridge(t, pb, db, sock)
	br.wait("both sides synced", 30*time.Second, func() bool {
		_, out, _ := pb.run("", "status")
		return strings.Count(out, "healthy") == 2 && !strings.Contains(out, "not complete")
	})
	return br
}
