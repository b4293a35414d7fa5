package sipsim

import (
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

const onThePhone = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
          xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:201@127.0.0.1">
  <tuple id="teams-bridge"><status><basic>open</basic></status><note>In a Teams call</note></tuple>
  <dm:person id="p-201"><rpid:activities><rpid:on-the-phone/></rpid:activities><dm:note>In a Teams call</dm:note></dm:person>
</presence>`

func publishReq(sim *Server, ext, etag, body string, expires int) *sip.Request {
	host, port, _ := sip.ParseAddr(sim.Addr())
	req := sip.NewRequest(sip.PUBLISH, sip.Uri{Scheme: "sip", User: ext, Host: host, Port: port})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if etag != "" {
		req.AppendHeader(sip.NewHeader("SIP-If-Match", etag))
	}
	if body != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/pidf+xml"))
		req.SetBody([]byte(body))
	}
	return req
}

func TestPublishETagLifecycle(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}, MaxExpires: 600})
	w := newWatcher(t)

	res := w.do(publishReq(sim, "201", "", onThePhone, 3600))
	etag := header(res, "SIP-ETag")
	if res.StatusCode != 200 || etag == "" || header(res, "Expires") != "600" {
		t.Fatalf("initial: %d etag %q expires %q", res.StatusCode, etag, header(res, "Expires"))
	}
	body, ok := sim.Published("201")
	if !ok || body != onThePhone {
		t.Fatalf("Published: %v %q", ok, body)
	}
	p, ok := sim.PublishedPresence("201")
	if !ok || p.Activity() != "on-the-phone" || p.Note != "In a Teams call" || p.Basic != "open" {
		t.Fatalf("PublishedPresence: %+v", p)
	}

	// Refresh: no body, the old ETag; a new ETag comes back.
	res = w.do(publishReq(sim, "201", etag, "", 300))
	etag2 := header(res, "SIP-ETag")
	if res.StatusCode != 200 || etag2 == "" || etag2 == etag {
		t.Fatalf("refresh: %d etag %q (was %q)", res.StatusCode, etag2, etag)
	}
	if body, _ := sim.Published("201"); body != onThePhone {
		t.Fatal("refresh lost the body")
	}
	// The superseded ETag is gone.
	if res := w.do(publishReq(sim, "201", etag, "", 300)); res.StatusCode != 412 {
		t.Fatalf("old etag: %d", res.StatusCode)
	}
	if res := w.do(publishReq(sim, "201", "no-such-etag", "", 0)); res.StatusCode != 412 {
		t.Fatalf("unknown etag removal: %d", res.StatusCode)
	}
	// Removal.
	if res := w.do(publishReq(sim, "201", etag2, "", 0)); res.StatusCode != 200 {
		t.Fatalf("removal: %d", res.StatusCode)
	}
	if _, ok := sim.Published("201"); ok {
		t.Fatal("still published after Expires: 0")
	}
	if n := sim.Publications("201"); n != 0 {
		t.Fatalf("%d publications left", n)
	}

	// Refusals.
	if res := w.do(publishReq(sim, "201", "", "", 60)); res.StatusCode != 400 {
		t.Fatalf("initial without body: %d", res.StatusCode)
	}
	if res := w.do(publishReq(sim, "999", "", onThePhone, 60)); res.StatusCode != 404 {
		t.Fatalf("unknown extension: %d", res.StatusCode)
	}
	if res := w.do(publishReq(sim, "201", "", "<presence", 60)); res.StatusCode != 400 {
		t.Fatalf("broken PIDF: %d", res.StatusCode)
	}
	ev := publishReq(sim, "201", "", onThePhone, 60)
	ev.ReplaceHeader(sip.NewHeader("Event", "dialog"))
	if res := w.do(ev); res.StatusCode != 489 {
		t.Fatalf("dialog PUBLISH: %d", res.StatusCode)
	}
	sim.RefusePublish(403)
	if res := w.do(publishReq(sim, "201", "", onThePhone, 60)); res.StatusCode != 403 {
		t.Fatalf("refused: %d", res.StatusCode)
	}
}

func TestPublishNeedsDigestWhenConfigured(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}, User: "bridge", Password: "pw"})
	w := newWatcher(t)
	if res := w.do(publishReq(sim, "201", "", onThePhone, 60)); res.StatusCode != 407 {
		t.Fatalf("unauthenticated: %d", res.StatusCode)
	}
	if res := w.doAuth(publishReq(sim, "201", "", onThePhone, 60), "bridge", "pw"); res.StatusCode != 200 {
		t.Fatalf("authenticated: %d", res.StatusCode)
	}
}

func TestParsePIDFVariants(t *testing.T) {
	legacy := `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:ep="urn:ietf:params:xml:ns:pidf:status:rpid-status" entity="sip:201@x">
<tuple id="t"><status><basic>open</basic><ep:activities><ep:activity>on-the-phone</ep:activity></ep:activities></status></tuple></presence>`
	p, err := ParsePIDF([]byte(legacy))
	if err != nil || p.Activity() != "on-the-phone" {
		t.Fatalf("legacy: %+v %v", p, err)
	}
	asterisk := `<?xml version="1.0" encoding="UTF-8"?>
<presence entity="sip:201@pbx" xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid">
 <note>On the phone</note>
 <dm:person><rpid:activities><rpid:on-the-phone /></rpid:activities></dm:person>
 <tuple id="201"><status><basic>closed</basic></status><contact priority="1">sip:201@pbx</contact></tuple>
</presence>`
	p, err = ParsePIDF([]byte(asterisk))
	if err != nil || p.Activity() != "on-the-phone" || p.Basic != "closed" || p.Note != "On the phone" {
		t.Fatalf("asterisk: %+v %v", p, err)
	}
	for _, bad := range []string{"", "<notpresence/>", "<presence><tuple>"} {
		if _, err := ParsePIDF([]byte(bad)); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
}

func TestPresenceWatcherSeesPublications(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}})
	w := newWatcher(t)
	if res := w.do(w.subscribeReq(sim, "201", "presence", 600)); res.StatusCode != 200 {
		t.Fatalf("presence SUBSCRIBE: %d", res.StatusCode)
	}
	n := w.next(2 * time.Second)
	p, err := ParsePIDF(n.Body())
	if err != nil || p.Basic != "open" || p.Note != "Available" || header(n, "Content-Type") != "application/pidf+xml" {
		t.Fatalf("dummy: %+v %v %q", p, err, header(n, "Content-Type"))
	}
	res := w.do(publishReq(sim, "201", "", onThePhone, 600))
	if n := w.next(2 * time.Second); string(n.Body()) != onThePhone {
		t.Fatalf("published body not passed on:\n%s", n.Body())
	}
	// A refresh without a body changes nothing a watcher sees.
	queued := sim.Stats().NotifiesQueued
	res = w.do(publishReq(sim, "201", header(res, "SIP-ETag"), "", 600))
	w.do(publishReq(sim, "201", header(res, "SIP-ETag"), "", 0))
	n = w.next(2 * time.Second)
	if p, _ := ParsePIDF(n.Body()); p.Basic != "closed" || sim.Stats().NotifiesQueued != queued+1 {
		t.Fatalf("after removal: %+v (%d NOTIFYs since the refresh)", p, sim.Stats().NotifiesQueued-queued)
	}
	// Calls do not NOTIFY presence watchers.
	queued = sim.Stats().NotifiesQueued
	sim.StartCall("201")
	if got := sim.Stats().NotifiesQueued; got != queued {
		t.Fatalf("a call sent %d NOTIFYs to a presence watcher", got-queued)
	}
}
