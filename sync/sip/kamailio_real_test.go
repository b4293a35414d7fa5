package sip

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/kamailiotest"
)

// The snippet admins are pointed at (sync/sip/kamailio-busy.cfg) must be the
// one the real-Kamailio tests run: kamailiotest embeds its own copy
// because go:embed cannot reach a parent folder.
func TestKamailioBusySnippet_SameAsTested(t *testing.T) {
	doc, err := os.ReadFile("kamailio-busy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != kamailiotest.BusySnippet {
		t.Fatal("sync/sip/kamailio-busy.cfg differs from sync/sip/kamailiotest/kamailio-busy.cfg: copy the tested one over the other (cp sync/sip/kamailiotest/kamailio-busy.cfg sync/sip/)")
	}
}

var http5s = http.Client{Timeout: 5 * time.Second}

func realKamailio(t *testing.T, opts kamailiotest.Options) (*kamailiotest.Kamailio, *kamailioRPC) {
	t.Helper()
	kamailiotest.Require(t)
	if opts.UAS == "" {
		opts.UAS = kamailiotest.UAS(t).Addr()
	}
	k := kamailiotest.Start(t, opts)
	t.Logf("kamailio started in %v", k.StartTook)
	rpc, err := newKamailioRPC(k.RPCURL(), k.HTable(), &http5s)
	if err != nil {
		t.Fatal(err)
	}
	return k, rpc
}

func wantBusy(t *testing.T, rpc *kamailioRPC, ext string, want bool) {
	t.Helper()
	got, err := rpc.Busy(context.Background(), ext)
	if err != nil || got != want {
		t.Fatalf("Busy(%s) = %v, %v; want %v", ext, got, err, want)
	}
}

func TestKamailioRPC_Real_BusyOnBusy(t *testing.T) {
	k, rpc := realKamailio(t, kamailiotest.Options{})
	ctx := context.Background()
	if err := rpc.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}

	// nothing set: the call goes through to the UAS
	wantBusy(t, rpc, "201", false)
	began := time.Now()
	if code := k.Call(t, "100", "201", 0); code != 200 {
		t.Fatalf("call to 201 before SetBusy answered %d, want 200", code)
	}
	t.Logf("a call through kamailio (ring 300 ms, answer, hang up) took %v", time.Since(began))

	if err := rpc.SetBusy(ctx, "201", time.Minute); err != nil {
		t.Fatal(err)
	}
	wantBusy(t, rpc, "201", true)
	wantBusy(t, rpc, "202", false)
	began = time.Now()
	if code := k.Call(t, "100", "201", 0); code != 486 {
		t.Fatalf("call to busy 201 answered %d, want 486", code)
	}
	t.Logf("a call answered 486 took %v", time.Since(began))
	// only that extension is held
	if code := k.Call(t, "100", "202", 0); code != 200 {
		t.Fatalf("call to 202 answered %d, want 200", code)
	}

	if err := rpc.ClearBusy(ctx, "201"); err != nil {
		t.Fatal(err)
	}
	wantBusy(t, rpc, "201", false)
	if code := k.Call(t, "100", "201", 0); code != 200 {
		t.Fatalf("call to 201 after ClearBusy answered %d, want 200", code)
	}
	if err := rpc.ClearBusy(ctx, "201"); err != nil {
		t.Fatalf("ClearBusy of an entry already gone: %v", err)
	}
}

// A dead bridge never clears its hold: the entry's own lifetime must end
// it on the proxy, with Kamailio's default sweep interval (20 s) left as
// the snippet leaves it.
func TestKamailioRPC_Real_HoldExpires(t *testing.T) {
	k, rpc := realKamailio(t, kamailiotest.Options{})
	ctx := context.Background()
	if err := rpc.SetBusy(ctx, "201", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	set := time.Now()
	wantBusy(t, rpc, "201", true)
	if code := k.Call(t, "100", "201", 0); code != 486 {
		t.Fatalf("call within the lifetime answered %d, want 486", code)
	}
	// A refresh replaces the lifetime: 203 set for 2 s then for a minute
	// stays busy after the first 2 s.
	if err := rpc.SetBusy(ctx, "203", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rpc.SetBusy(ctx, "203", time.Minute); err != nil {
		t.Fatal(err)
	}

	for deadline := set.Add(10 * time.Second); ; {
		busy, err := rpc.Busy(ctx, "201")
		if err != nil {
			t.Fatal(err)
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("201 still busy %v after a 2 s hold", time.Since(set))
		}
		time.Sleep(100 * time.Millisecond)
	}
	gone := time.Since(set)
	if gone < 1500*time.Millisecond {
		t.Fatalf("the 2 s hold ended after %v", gone)
	}
	t.Logf("a 2 s hold read as gone after %v", gone)
	if code := k.Call(t, "100", "201", 0); code != 200 {
		t.Fatalf("call after the hold expired answered %d, want 200", code)
	}
	wantBusy(t, rpc, "203", true)
	if code := k.Call(t, "100", "203", 0); code != 486 {
		t.Fatalf("call to the refreshed 203 answered %d, want 486", code)
	}
}

func TestKamailioRPC_Real_CheckNamesTheFix(t *testing.T) {
	k, rpc := realKamailio(t, kamailiotest.Options{HTable: "bridgebusy"})
	ctx := context.Background()
	if err := rpc.Check(ctx); err != nil {
		t.Fatalf("Check with the right table: %v", err)
	}
	// table name set by Options: the proxy honours it
	if err := rpc.SetBusy(ctx, "201", time.Minute); err != nil {
		t.Fatal(err)
	}
	if code := k.Call(t, "100", "201", 0); code != 486 {
		t.Fatalf("call to 201 held in table bridgebusy answered %d, want 486", code)
	}

	wrong, err := newKamailioRPC(k.RPCURL(), "teamsbusy", &http5s)
	if err != nil {
		t.Fatal(err)
	}
	err = wrong.Check(ctx)
	if !errors.Is(err, psync.ErrRejected) || !strings.Contains(err.Error(), "sip.htable") ||
		!strings.Contains(err.Error(), "bridgebusy") || !strings.Contains(err.Error(), `modparam("htable"`) {
		t.Fatalf("Check with a wrong table: %v\nwant ErrRejected naming sip.htable, the table Kamailio has and the modparam", err)
	}
	t.Logf("wrong table: %v", err)
	if err := wrong.SetBusy(ctx, "201", time.Minute); !errors.Is(err, psync.ErrRejected) || !strings.Contains(err.Error(), "sip.htable") {
		t.Fatalf("SetBusy with a wrong table: %v", err)
	}

	// the SIP port: Kamailio's xhttp answers there too, and the snippet
	// refuses it
	sipPort, err := newKamailioRPC("http://"+k.SIPAddr()+"/RPC", "bridgebusy", &http5s)
	if err != nil {
		t.Fatal(err)
	}
	err = sipPort.Check(ctx)
	if !errors.Is(err, psync.ErrRejected) || !strings.Contains(err.Error(), "sip.rpc_url") || !strings.Contains(err.Error(), "port") {
		t.Fatalf("Check on the SIP port: %v\nwant ErrRejected naming sip.rpc_url and the port", err)
	}
	t.Logf("SIP port: %v", err)

	// a port nothing listens on
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	nowhere, err := newKamailioRPC("http://"+closed+"/RPC", "bridgebusy", &http5s)
	if err != nil {
		t.Fatal(err)
	}
	err = nowhere.Check(ctx)
	var ns *psync.NotSentError
	if !errors.Is(err, psync.ErrUnavailable) || !errors.As(err, &ns) || !strings.Contains(err.Error(), "sip.rpc_url") {
		t.Fatalf("Check on a closed port: %v\nwant NotSent(ErrUnavailable) naming sip.rpc_url", err)
	}
	t.Logf("closed port: %v", err)

	// a wrong path
	badPath, err := newKamailioRPC(strings.TrimSuffix(k.RPCURL(), "/RPC")+"/api", "bridgebusy", &http5s)
	if err != nil {
		t.Fatal(err)
	}
	if err := badPath.Check(ctx); !errors.Is(err, psync.ErrRejected) || !strings.Contains(err.Error(), "/RPC") {
		t.Fatalf("Check on a wrong path: %v", err)
	}

	// Kamailio gone: the write certainly did not reach it
	k.Kill()
	if err := rpc.SetBusy(ctx, "201", time.Minute); !errors.Is(err, psync.ErrUnavailable) || !errors.As(err, &ns) {
		t.Fatalf("SetBusy with Kamailio killed: %v, want NotSent(ErrUnavailable)", err)
	}
}
