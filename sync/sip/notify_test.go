package sip

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/sipsim"
)

// notifier sends hand-made NOTIFYs to the connector's Contact, as a PBX
// (or an attacker) could.
type notifier struct {
	t      testing.TB
	client *sipgo.Client
	ua     *sipgo.UserAgent
	cseq   uint32
}

func newNotifier(t testing.TB) *notifier {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return &notifier{t: t, client: client, ua: ua, cseq: 100}
}

// send NOTIFYs sub's dialog (callID, tags) with body; it returns the code.
func (n *notifier) send(contact sip.Uri, callID, ourTag, theirTag, state, body string) int {
	n.t.Helper()
	req := sip.NewRequest(sip.NOTIFY, contact)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "202", Host: "127.0.0.1"}, Params: sip.NewParams()}
	from.Params.Add("tag", theirTag)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "presencebridge", Host: "127.0.0.1"}, Params: sip.NewParams()}
	to.Params.Add("tag", ourTag)
	cid := sip.CallIDHeader(callID)
	n.cseq++
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: n.cseq, MethodName: sip.NOTIFY})
	req.AppendHeader(sip.NewHeader("Event", "dialog"))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: 5999}})
	if body != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", ctDI))
	}
	req.SetBody([]byte(body))
	req.SetTransport("UDP")
	if tp, ok := contact.UriParams.Get("transport"); ok {
		req.SetTransport(strings.ToUpper(tp))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := n.client.Do(ctx, req)
	if err != nil {
		n.t.Errorf("NOTIFY: %v", err) // not Fatal: the benchmark sends from another goroutine
		return -1
	}
	return res.StatusCode
}

func contactOf(t testing.TB, s sipsim.SubInfo) sip.Uri {
	t.Helper()
	var u sip.Uri
	raw := strings.Trim(strings.TrimSpace(s.Contact), "<>")
	if i := strings.Index(raw, ">"); i >= 0 {
		raw = raw[:i]
	}
	if err := sip.ParseUri(raw, &u); err != nil {
		t.Fatalf("contact %q: %v", s.Contact, err)
	}
	return u
}

func confirmedDoc(version int, id string) string {
	return `<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="` + strconv.Itoa(version) +
		`" state="full" entity="sip:202@127.0.0.1"><dialog id="` + id + `"><state>confirmed</state></dialog></dialog-info>`
}

func TestConn_NotifyForUnknownDialogRefused(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}})
	r := runConn(t, testConfig(sim), []psync.User{ben})
	r.waitSynced()
	sub := sim.Subscriptions("202")[0]
	n := newNotifier(t)
	contact := contactOf(t, sub)

	// A dialog the bridge never made (a former run's, or forged): 481.
	if code := n.send(contact, "stale-dialog@pbx", "nope", "x", "active;expires=600", confirmedDoc(1000, "forged")); code != 481 {
		t.Fatalf("unknown dialog: %d, want 481", code)
	}
	// The right Call-ID with a wrong tag is no better.
	if code := n.send(contact, sub.CallID, "wrong-tag", sub.ToTag, "active;expires=600", confirmedDoc(1000, "forged")); code != 481 {
		t.Fatalf("wrong tag: %d, want 481", code)
	}
	// The live dialog is taken: proves the two above were refused for
	// their ids, not for their shape.
	if code := n.send(contact, sub.CallID, sub.FromTag, sub.ToTag, "active;expires=600", confirmedDoc(1000, "real")); code != 200 {
		t.Fatalf("live dialog: %d, want 200", code)
	}
	ev := r.waitFor(5*time.Second, "the live dialog's call", callIs("ben", "202", psync.CallConnected))
	if ev.Call.ID != "202/real" {
		t.Fatalf("took %+v", ev.Call)
	}
	for _, e := range r.seen {
		if strings.Contains(e.Call.ID, "forged") {
			t.Fatalf("a refused NOTIFY was taken: %+v", e)
		}
	}
}

// Over TCP: sipgo's UDP client refuses to send a datagram above the MTU,
// so the large hostile bodies go the way a PBX could send them.
func TestConn_HostileNotifyBodiesBounded(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}})
	cfg := testConfig(sim)
	cfg.Transport = "tcp"
	r := runConn(t, cfg, []psync.User{ben})
	r.waitSynced()
	sub := sim.Subscriptions("202")[0]
	n := newNotifier(t)
	contact := contactOf(t, sub)
	if code := n.send(contact, sub.CallID, sub.FromTag, sub.ToTag, "active", confirmedDoc(1000, "real")); code != 200 {
		t.Fatal(code)
	}
	r.waitFor(5*time.Second, "call", callIs("ben", "202", psync.CallConnected))

	many := `<dialog-info version="1001" state="full">` + strings.Repeat(`<dialog id="d"><state>confirmed</state></dialog>`, 1000) + `</dialog-info>`
	deep := `<dialog-info version="1001" state="full">` + strings.Repeat("<a>", 5000) + strings.Repeat("</a>", 5000) + `</dialog-info>`
	for name, body := range map[string]string{
		"too many dialogs": many,
		"too deep":         deep,
		"not xml":          "\x00\x01garbage<<<",
		"wrong root":       `<presence version="1001"/>`,
	} {
		if code := n.send(contact, sub.CallID, sub.FromTag, sub.ToTag, "active", body); code != 200 {
			t.Fatalf("%s: answered %d (a NOTIFY of a live dialog is always 200)", name, code)
		}
	}
	// None of them changed what the bridge knows: the call is still on,
	// and the next sane NOTIFY ends it in order.
	if code := n.send(contact, sub.CallID, sub.FromTag, sub.ToTag, "active", `<dialog-info version="1002" state="full"/>`); code != 200 {
		t.Fatal(code)
	}
	r.waitFor(5*time.Second, "hang-up", callIs("ben", "202", psync.CallEnded))
	for _, e := range r.seen {
		if e.Kind == psync.PhoneCallChanged && e.Call.ID == "202/d" {
			t.Fatalf("a hostile body was taken: %+v", e)
		}
	}
}

func TestConn_NotifyTerminatedResubscribes(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}})
	r := runConn(t, testConfig(sim), []psync.User{ben})
	r.waitSynced()
	sub := sim.Subscriptions("202")[0]
	n := newNotifier(t)
	if code := n.send(contactOf(t, sub), sub.CallID, sub.FromTag, sub.ToTag, "terminated;reason=deactivated", ""); code != 200 {
		t.Fatal(code)
	}
	eventually(t, 5*time.Second, "a new subscription", func() bool {
		for _, s := range sim.Subscriptions("202") {
			if s.CallID != sub.CallID {
				return true
			}
		}
		return false
	})
	id := sim.StartCall("202")
	_ = sim.Answer(id)
	r.waitFor(5*time.Second, "connected on the new subscription", callIs("ben", "202", psync.CallConnected))
}

func TestConn_NotifyLowersExpiry(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}})
	r := runConn(t, testConfig(sim), []psync.User{ben})
	r.waitSynced()
	sub := sim.Subscriptions("202")[0]
	if sub.Refreshed != 0 || sub.Granted < 120 {
		t.Fatalf("%+v", sub)
	}
	n := newNotifier(t)
	// The server says 1 s are left: the bridge refreshes at once instead
	// of at 80 % of the 2 minutes granted.
	if code := n.send(contactOf(t, sub), sub.CallID, sub.FromTag, sub.ToTag, "active;expires=1", ""); code != 200 {
		t.Fatal(code)
	}
	eventually(t, 3*time.Second, "a refresh", func() bool {
		s := sim.Subscriptions("202")
		return len(s) == 1 && s[0].Refreshed >= 1
	})
}

// A partial document after a gap cannot be merged: the bridge asks for full
// state with a new subscription, and takes nothing from the gap.
func TestConn_VersionGapResubscribes(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}, Style: sipsim.StylePartial})
	r := runConn(t, testConfig(sim), []psync.User{ben})
	r.waitSynced()
	sub := sim.Subscriptions("202")[0]
	n := newNotifier(t)
	gap := `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="50" state="partial" entity="sip:202@127.0.0.1">` +
		`<dialog id="gap"><state>confirmed</state></dialog></dialog-info>`
	if code := n.send(contactOf(t, sub), sub.CallID, sub.FromTag, sub.ToTag, "active", gap); code != 200 {
		t.Fatal(code)
	}
	eventually(t, 5*time.Second, "a new subscription", func() bool {
		s := sim.Subscriptions("202")
		return len(s) == 1 && s[0].CallID != sub.CallID
	})
	id := sim.StartCall("202")
	_ = sim.Answer(id)
	r.waitFor(5*time.Second, "connected on the new subscription", callIs("ben", "202", psync.CallConnected))
	for _, e := range r.seen {
		if strings.Contains(e.Call.ID, "gap") {
			t.Fatalf("the partial after a gap was taken: %+v", e)
		}
		for _, c := range e.State.Calls {
			if strings.Contains(c.ID, "gap") {
				t.Fatalf("the partial after a gap was taken: %+v", e)
			}
		}
	}
}
