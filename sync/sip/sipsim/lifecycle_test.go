package sipsim

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestDigestChallenge(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}, Realm: "pbx.test", User: "bridge", Password: "s3cret"})
	w := newWatcher(t)

	res := w.do(w.subscribeReq(sim, "201", "dialog", 60))
	if res.StatusCode != 407 || !strings.Contains(header(res, "Proxy-Authenticate"), `realm="pbx.test"`) {
		t.Fatalf("SUBSCRIBE without credentials: %d %q", res.StatusCode, header(res, "Proxy-Authenticate"))
	}
	if res := w.doAuth(w.subscribeReq(sim, "201", "dialog", 60), "bridge", "wrong"); res.StatusCode != 407 {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
	req := w.subscribeReq(sim, "201", "dialog", 60)
	res = w.doAuth(req, "bridge", "s3cret")
	if res.StatusCode != 200 {
		t.Fatalf("right password: %d", res.StatusCode)
	}
	w.next(2 * time.Second)

	// A refresh must authenticate too; a stale nonce is challenged again.
	ref := inDialog(req, res, 60)
	if res := w.doAuth(ref, "bridge", "s3cret"); res.StatusCode != 200 {
		t.Fatalf("refresh with digest: %d", res.StatusCode)
	}

	host, port, _ := sip.ParseAddr(sim.Addr())
	reg := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: host, Port: port})
	reg.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "bridge", Host: host}})
	reg.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bridge", Host: "127.0.0.1", Port: w.port()}})
	reg.AppendHeader(sip.NewHeader("Expires", "7200"))
	res = w.do(reg.Clone())
	if res.StatusCode != 401 || header(res, "WWW-Authenticate") == "" {
		t.Fatalf("REGISTER without credentials: %d", res.StatusCode)
	}
	if res := w.doAuth(reg, "bridge", "s3cret"); res.StatusCode != 200 || header(res, "Expires") != "3600" {
		t.Fatalf("REGISTER with digest: %d Expires %q", res.StatusCode, header(res, "Expires"))
	}
	regs := sim.Registrations()
	if len(regs) != 1 || regs[0].Granted != 3600 || !strings.HasPrefix(regs[0].AOR, "sip:bridge@") {
		t.Fatalf("Registrations: %+v", regs)
	}
}

func TestMaxExpiresRefreshAndUnsubscribe(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}, MaxExpires: 120})
	w := newWatcher(t)
	req := w.subscribeReq(sim, "201", "dialog", 600)
	res := w.do(req)
	if res.StatusCode != 200 || header(res, "Expires") != "120" {
		t.Fatalf("granted: %d %q", res.StatusCode, header(res, "Expires"))
	}
	if ss := header(w.next(2*time.Second), "Subscription-State"); ss != "active;expires=120" {
		t.Fatalf("Subscription-State %q", ss)
	}
	res2 := w.do(inDialog(req, res, 90))
	if res2.StatusCode != 200 || header(res2, "Expires") != "90" {
		t.Fatalf("refresh: %d %q", res2.StatusCode, header(res2, "Expires"))
	}
	if ss := header(w.next(2*time.Second), "Subscription-State"); ss != "active;expires=90" {
		t.Fatalf("after refresh: %q", ss)
	}
	if subs := sim.Subscriptions("201"); len(subs) != 1 || subs[0].Refreshed != 1 || subs[0].Granted != 90 {
		t.Fatalf("Subscriptions: %+v", subs)
	}
	bye := inDialog(req, res, 0)
	bye.CSeq().SeqNo += 10
	if res := w.do(bye); res.StatusCode != 200 {
		t.Fatalf("unsubscribe: %d", res.StatusCode)
	}
	if ss := header(w.next(2*time.Second), "Subscription-State"); ss != "terminated;reason=timeout" {
		t.Fatalf("final NOTIFY: %q", ss)
	}
	if n := len(sim.Subscriptions("201")); n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
	again := inDialog(req, res, 60)
	again.CSeq().SeqNo += 20
	if res := w.do(again); res.StatusCode != 481 {
		t.Fatalf("refresh after unsubscribe: %d", res.StatusCode)
	}
}

func TestExpiryWithoutRefresh(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}, MaxExpires: 1})
	w := newWatcher(t)
	if res := w.do(w.subscribeReq(sim, "201", "dialog", 600)); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	w.next(2 * time.Second)
	if ss := header(w.next(3*time.Second), "Subscription-State"); ss != "terminated;reason=timeout" {
		t.Fatalf("expiry NOTIFY: %q", ss)
	}
	if n := len(sim.Subscriptions("")); n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

func TestRestartForgetsSubscriptions(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}})
	w := newWatcher(t)
	req := w.subscribeReq(sim, "201", "dialog", 600)
	res := w.do(req)
	w.next(2 * time.Second)

	sim.Restart()
	queued := sim.Stats().NotifiesQueued
	id := sim.StartCall("201")
	if got := sim.Stats().NotifiesQueued; got != queued {
		t.Fatalf("%d NOTIFYs built after Restart", got-queued)
	}
	if res := w.do(inDialog(req, res, 600)); res.StatusCode != 481 {
		t.Fatalf("refresh after restart: %d", res.StatusCode)
	}
	// Subscribing again works and shows the call that started meanwhile.
	if res := w.do(w.subscribeReq(sim, "201", "dialog", 600)); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	di := parseDialogInfo(t, w.next(2*time.Second))
	if states(di) != "early" {
		t.Fatalf("after resubscribe: %+v", di)
	}
	_ = sim.EndCall(id)
	if st := sim.Stats(); st.Unknown481 != 1 || st.Restarts != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestKillAndStartOnTheSamePort(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}})
	w := newWatcher(t)
	addr, rpc := sim.Addr(), sim.RPCURL()
	req := w.subscribeReq(sim, "201", "dialog", 600)
	res := w.do(req)
	w.next(2 * time.Second)

	sim.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if _, err := w.client.Do(ctx, w.subscribeReq(sim, "201", "dialog", 600)); err == nil {
		t.Fatal("a killed simulator answered")
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	if sim.Addr() != addr || sim.RPCURL() != rpc {
		t.Fatalf("rebound on %s %s, want %s %s", sim.Addr(), sim.RPCURL(), addr, rpc)
	}
	if res := w.do(inDialog(req, res, 600)); res.StatusCode != 481 {
		t.Fatalf("old dialog after restart: %d", res.StatusCode)
	}
	if res := w.do(w.subscribeReq(sim, "201", "dialog", 600)); res.StatusCode != 200 {
		t.Fatalf("new subscription: %d", res.StatusCode)
	}
	w.next(2 * time.Second)
}

func TestNotify481EndsSubscription(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}})
	w := newWatcher(t)
	w.do(w.subscribeReq(sim, "201", "dialog", 600))
	w.next(2 * time.Second)
	w.answer.Store(481)
	sim.StartCall("201")
	waitFor(t, "the subscription to go", func() bool { return len(sim.Subscriptions("201")) == 0 })
	if st := sim.Stats(); st.NotifyFailures == 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestDropNotifiesAndDelay(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}})
	w := newWatcher(t)
	w.do(w.subscribeReq(sim, "201", "dialog", 600))
	w.next(2 * time.Second)
	sim.DropNotifies(true)
	id := sim.StartCall("201")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := sim.WaitStats(ctx, func(s Stats) bool { return s.NotifiesDropped == 2 }); err != nil {
		t.Fatal(err, sim.Stats())
	}
	if st := sim.Stats(); st.Notifies != 1 {
		t.Fatalf("dropped NOTIFYs were sent: %+v", st)
	}
	sim.DropNotifies(false)
	_ = sim.Answer(id)
	if di := parseDialogInfo(t, w.next(2*time.Second)); states(di) != "confirmed" {
		t.Fatalf("%+v", di)
	}

	sim.SetAnswerDelay(300 * time.Millisecond)
	start := time.Now()
	if res := w.do(w.subscribeReq(sim, "201", "dialog", 600)); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("answered after %v despite a 300ms delay", d)
	}
}

func TestAsteriskStyle(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}, Style: StyleAsterisk})
	w := newWatcher(t)
	w.do(w.subscribeReq(sim, "201", "dialog", 600))
	di := parseDialogInfo(t, w.next(2*time.Second))
	if len(di.Dialogs) != 1 || di.Dialogs[0].ID != "201" || states(di) != "terminated" {
		t.Fatalf("idle: %+v", di)
	}
	a := sim.StartCall("201")
	di = parseDialogInfo(t, w.next(2*time.Second))
	if states(di) != "early" || di.Dialogs[0].ID != "201" {
		t.Fatalf("ringing: %+v", di)
	}
	_ = sim.Answer(a)
	di = parseDialogInfo(t, w.next(2*time.Second))
	if states(di) != "confirmed" || di.Dialogs[0].CallID != "" {
		t.Fatalf("connected: %+v", di)
	}
	// A second call ringing while the first is connected leaves the hint
	// INUSE: no NOTIFY. Holding the connected one makes it ONHOLD.
	b := sim.StartCall("201")
	_ = sim.Hold(a, true)
	di = parseDialogInfo(t, w.next(2*time.Second))
	if states(di) != "confirmed" || di.Dialogs[0].param("+sip.rendering") != "no" {
		t.Fatalf("held: %+v", di)
	}
	_ = sim.EndCall(a)
	di = parseDialogInfo(t, w.next(2*time.Second))
	if states(di) != "early" {
		t.Fatalf("only the ringing call left: %+v", di)
	}
	_ = sim.EndCall(b)
	di = parseDialogInfo(t, w.next(2*time.Second))
	if states(di) != "terminated" || di.Dialogs[0].ID != "201" {
		t.Fatalf("idle again: %+v", di)
	}
}

func TestPartialStyle(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}, Style: StylePartial})
	w := newWatcher(t)
	w.do(w.subscribeReq(sim, "201", "dialog", 600))
	first := parseDialogInfo(t, w.next(2*time.Second))
	if first.State != "full" || len(first.Dialogs) != 0 {
		t.Fatalf("idle: %+v", first)
	}
	a := sim.StartCall("201")
	w.next(2 * time.Second) // Trying
	w.next(2 * time.Second) // early
	b := sim.StartCall("201")
	w.next(2 * time.Second)
	di := parseDialogInfo(t, w.next(2*time.Second))
	if di.State != "partial" || len(di.Dialogs) != 1 || states(di) != "early" {
		t.Fatalf("second call: %+v", di)
	}
	_ = sim.EndCall(a)
	last := parseDialogInfo(t, w.next(2*time.Second))
	if last.State != "partial" || states(last) != "terminated" || last.Version != first.Version+5 {
		t.Fatalf("ended: %+v (first version %d)", last, first.Version)
	}
	_ = b
}

func TestMalformedInputIsRefusedNotFatal(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}, MaxBody: 256})
	w := newWatcher(t)

	conn, err := net.Dial("udp", sim.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, junk := range []string{
		"\x00\x01garbage",
		"SUBSCRIBE sip:201@127.0.0.1 SIP/2.0\r\n\r\n",
		"SUBSCRIBE sip:201@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\nContent-Length: 99999\r\n\r\nshort",
		"SUBSCRIBE sip:201@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:201@b>\r\nCall-ID: x\r\nCSeq: nope\r\n\r\n",
		"NOTIFY sip:201@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKz\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:201@b>\r\nCall-ID: y\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n",
	} {
		if _, err := conn.Write([]byte(junk)); err != nil {
			t.Fatal(err)
		}
	}

	big := w.subscribeReq(sim, "201", "dialog", 60)
	big.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
	big.SetBody([]byte(strings.Repeat("x", 600)))
	if res := w.do(big); res.StatusCode != 413 {
		t.Fatalf("big body: %d", res.StatusCode)
	}
	noContact := w.subscribeReq(sim, "201", "dialog", 60)
	noContact.RemoveHeader("Contact")
	if res := w.do(noContact); res.StatusCode != 400 {
		t.Fatalf("no Contact: %d", res.StatusCode)
	}
	badExp := w.subscribeReq(sim, "201", "dialog", -1)
	badExp.AppendHeader(sip.NewHeader("Expires", "soon"))
	if res := w.do(badExp); res.StatusCode != 400 {
		t.Fatalf("bad Expires: %d", res.StatusCode)
	}
	if res := w.do(w.subscribeReq(sim, "201", "dialog", 60)); res.StatusCode != 200 {
		t.Fatalf("still serving: %d", res.StatusCode)
	}
}
