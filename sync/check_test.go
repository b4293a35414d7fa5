package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

func TestCheckRunner_ReportsEachCheckWhenDone(t *testing.T) {
	var got []psync.Check
	r := psync.CheckRunner{Side: psync.SidePhone, Timeout: time.Second, Report: func(c psync.Check) { got = append(got, c) }}
	c := r.Run(context.Background(), "reach", func(context.Context) psync.Check {
		return psync.Check{OK: true, Detail: "connects"}
	})
	if len(got) != 1 || got[0] != c || c.Side != psync.SidePhone || c.Name != "reach" || !c.OK || c.State() != "ok" {
		t.Fatalf("after the first check: %+v", got)
	}
	r.Run(context.Background(), "login", func(context.Context) psync.Check {
		if len(got) != 1 {
			t.Errorf("the first check was not reported before the second ran")
		}
		return psync.Check{Detail: "refused", Fix: "check ucserver.password"}
	})
	if len(got) != 2 || !got[1].Failed() || got[1].State() != "failed" {
		t.Fatalf("checks: %+v", got)
	}
}

func TestCheckRunner_OwnTimeout(t *testing.T) {
	var got []psync.Check
	r := psync.CheckRunner{Side: psync.SideTeams, Timeout: 50 * time.Millisecond, Report: func(c psync.Check) { got = append(got, c) }}
	c := r.Run(context.Background(), "app sign-in", func(ctx context.Context) psync.Check {
		<-ctx.Done() // a server that never answers
		return psync.Check{Detail: "token: " + ctx.Err().Error(), Fix: psync.NetFix(ctx.Err(), "teams.authority_url")}
	})
	if !c.Failed() || !strings.HasPrefix(c.Detail, "no answer within 50ms: ") || c.Took < 50*time.Millisecond ||
		!strings.Contains(c.Fix, "does not answer") || r.Stopped() || len(got) != 1 {
		t.Fatalf("timed-out check: %+v", c)
	}
	// The next check has a timeout of its own.
	c = r.Run(context.Background(), "permissions", func(ctx context.Context) psync.Check {
		if ctx.Err() != nil {
			t.Error("the next check starts with an ended context")
		}
		return psync.Check{OK: true}
	})
	if !c.OK {
		t.Fatalf("next check: %+v", c)
	}
}

func TestCheckRunner_Cancel(t *testing.T) {
	var got []psync.Check
	r := psync.CheckRunner{Side: psync.SidePhone, Timeout: time.Minute, Report: func(c psync.Check) { got = append(got, c) }}
	ctx, cancel := context.WithCancel(context.Background())
	c := r.Run(ctx, "login", func(cctx context.Context) psync.Check {
		cancel() // Ctrl-C while the check waits
		<-cctx.Done()
		return psync.Check{Detail: "createsession: " + cctx.Err().Error()}
	})
	if !c.Cancelled() || c.State() != "cancelled" || c.Failed() || c.Name != "login" || strings.Contains(c.Detail, "context canceled") || !r.Stopped() {
		t.Fatalf("cancelled check: %+v", c)
	}
	r.Run(ctx, "rights", func(context.Context) psync.Check {
		t.Error("a check ran after the cancel")
		return psync.Check{}
	})
	r.Skip("line monitor", "no user has a line")
	if len(got) != 1 {
		t.Fatalf("after the cancel: %+v", got)
	}
}

func TestCheckRunner_OverallDeadline(t *testing.T) {
	r := psync.CheckRunner{Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	c := r.Run(ctx, "users", func(cctx context.Context) psync.Check {
		<-cctx.Done()
		return psync.Check{Detail: cctx.Err().Error()}
	})
	if !c.Cancelled() || !strings.Contains(c.Fix, "overall time limit") {
		t.Fatalf("check at the overall deadline: %+v", c)
	}
}

func TestCheck_JSON(t *testing.T) {
	c := psync.Check{Side: psync.SidePhone, Name: "tls", OK: true, Warn: true, Detail: "http://", Fix: "use https", Took: 1500 * time.Millisecond}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"side":"phone","name":"tls","ok":true,"warn":true,"detail":"http://","fix":"use https","took_ms":1500}`
	if string(b) != want {
		t.Fatalf("JSON\n %s\nwant\n %s", b, want)
	}
	var back psync.Check
	if err := json.Unmarshal(b, &back); err != nil || back != c {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	b, _ = json.Marshal(psync.Check{Side: psync.SideTeams, Name: "settings"})
	if string(b) != `{"side":"teams","name":"settings","ok":false,"took_ms":0}` {
		t.Fatalf("failed check: %s", b)
	}
	if err := json.Unmarshal([]byte(`{"side":"sip","name":"reach"}`), &back); err == nil || !strings.Contains(err.Error(), `side "sip"`) {
		t.Fatalf("unknown side: %v", err)
	}
}

// net/http finishes a dial after its request was cancelled; the doctor's
// transport closes it when the doctor ends.
func TestCheckTransport_EndsConnectionsWithTheDoctor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	life, end := context.WithCancel(context.Background())
	defer end()
	hc := &http.Client{Transport: psync.CheckTransport(life, nil)}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+ln.Addr().String()+"/", nil)
	if _, err := hc.Do(req); err == nil {
		t.Fatal("a silent server answered")
	}
	var conn net.Conn
	select {
	case conn = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection")
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); err != nil { // the TLS hello
		t.Fatal(err)
	}
	// The request is over; the handshake still waits for the server.
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("before the end: %v, want the connection still open", err)
	}
	end()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after the end: %v, want the connection closed", err)
	}
}
