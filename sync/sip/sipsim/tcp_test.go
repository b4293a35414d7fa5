package sipsim

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestSubscribeOverTCP subscribes over a TCP connection of the
// subscriber's own; the NOTIFYs must come back over that connection.
func TestSubscribeOverTCP(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}})
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	notifies := make(chan *sip.Request, 8)
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		// Queue before answering: the next NOTIFY may only come after the
		// answer, so the queue keeps the order they were sent in.
		notifies <- req
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := sip.ParseAddr(sim.Addr())
	req := sip.NewRequest(sip.SUBSCRIBE, sip.Uri{Scheme: "sip", User: "201", Host: host, Port: port,
		UriParams: tcpParam()})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bridge", Host: "127.0.0.1", Port: 5999,
		UriParams: tcpParam()}})
	req.AppendHeader(sip.NewHeader("Event", "dialog"))
	req.AppendHeader(sip.NewHeader("Expires", "60"))
	req.AppendHeader(sip.NewHeader("Content-Length", "0"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := client.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE over TCP: %d", res.StatusCode)
	}
	if ct := res.Contact(); ct == nil || ct.Address.UriParams.GetOr("transport", "") != "tcp" {
		t.Fatalf("200 Contact %v does not say tcp", ct)
	}
	if subs := sim.Subscriptions("201"); len(subs) != 1 || subs[0].Transport != "TCP" {
		t.Fatalf("Subscriptions: %+v", subs)
	}
	id := sim.StartCall("201")
	_ = sim.Answer(id)
	want := []string{"terminated", "Trying", "early", "confirmed"}
	for _, w := range want {
		select {
		case n := <-notifies:
			if got := states(parseDialogInfo(t, n)); got != w {
				t.Fatalf("got %s, want %s", got, w)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no NOTIFY (%s) over TCP", w)
		}
	}
	ref := inDialog(req, res, 0)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if res, err := client.Do(ctx2, ref); err != nil || res.StatusCode != 200 {
		t.Fatalf("unsubscribe over TCP: %v %v", res, err)
	}
	select {
	case n := <-notifies:
		if ss := header(n, "Subscription-State"); ss != "terminated;reason=timeout" {
			t.Fatalf("final NOTIFY over TCP: %q", ss)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no final NOTIFY over TCP")
	}
}

func tcpParam() sip.HeaderParams {
	p := sip.NewParams()
	p.Add("transport", "tcp")
	return p
}
