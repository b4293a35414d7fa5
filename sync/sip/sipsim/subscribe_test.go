package sipsim

import (
	"strings"
	"testing"
	"time"
)

func TestSubscribeNotifiesCallChanges(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}})
	w := newWatcher(t)

	req := w.subscribeReq(sim, "201", "dialog", 600)
	res := w.do(req)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	if tag, _ := res.To().Params.Get("tag"); tag == "" {
		t.Fatal("200 without To-tag")
	}
	if got := header(res, "Expires"); got != "600" {
		t.Fatalf("Expires = %q, want 600", got)
	}

	n := w.next(2 * time.Second)
	if ss := header(n, "Subscription-State"); !strings.HasPrefix(ss, "active;expires=") {
		t.Fatalf("Subscription-State %q", ss)
	}
	if ev := header(n, "Event"); ev != "dialog" {
		t.Fatalf("Event %q", ev)
	}
	di := parseDialogInfo(t, n)
	if di.State != "full" || states(di) != "terminated" || di.Dialogs[0].ID != dummyDialogID {
		t.Fatalf("idle document: %+v", di)
	}
	if !strings.HasPrefix(di.Entity, "sip:201@") {
		t.Fatalf("entity %q", di.Entity)
	}

	id := sim.StartCall("201")
	if id == "" {
		t.Fatal("StartCall returned no id")
	}
	for _, want := range []string{"Trying", "early"} {
		di = parseDialogInfo(t, w.next(2*time.Second))
		if states(di) != want || !strings.HasPrefix(di.Dialogs[0].ID, "padi-") || di.Dialogs[0].CallID == "" {
			t.Fatalf("want %s, got %+v", want, di)
		}
	}
	if err := sim.Answer(id); err != nil {
		t.Fatal(err)
	}
	di = parseDialogInfo(t, w.next(2*time.Second))
	if states(di) != "confirmed" || di.Dialogs[0].param("+sip.rendering") != "" {
		t.Fatalf("answered: %+v", di)
	}
	if err := sim.Hold(id, true); err != nil {
		t.Fatal(err)
	}
	di = parseDialogInfo(t, w.next(2*time.Second))
	if states(di) != "confirmed" || di.Dialogs[0].param("+sip.rendering") != "no" {
		t.Fatalf("held: %+v", di)
	}
	if err := sim.Hold(id, false); err != nil {
		t.Fatal(err)
	}
	w.next(2 * time.Second)
	if err := sim.Conference(id); err != nil {
		t.Fatal(err)
	}
	di = parseDialogInfo(t, w.next(2*time.Second))
	if di.Dialogs[0].param("isfocus") != "true" {
		t.Fatalf("conference: %+v", di)
	}
	if err := sim.EndCall(id); err != nil {
		t.Fatal(err)
	}
	last := parseDialogInfo(t, w.next(2*time.Second))
	if states(last) != "terminated" || last.Dialogs[0].ID == dummyDialogID {
		t.Fatalf("ended: %+v", last)
	}
	if last.Version <= di.Version {
		t.Fatalf("version did not increase: %d then %d", di.Version, last.Version)
	}
	if err := sim.Answer(id); err == nil {
		t.Fatal("Answer of an ended call succeeded")
	}
	subs := sim.Subscriptions("201")
	if len(subs) != 1 || subs[0].Granted != 600 || subs[0].Notifies != 8 {
		t.Fatalf("Subscriptions: %+v", subs)
	}
}

func TestSubscribeRefusals(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}})
	w := newWatcher(t)
	if res := w.do(w.subscribeReq(sim, "999", "dialog", 60)); res.StatusCode != 404 {
		t.Fatalf("unknown extension: %d", res.StatusCode)
	}
	if res := w.do(w.subscribeReq(sim, "201", "message-summary", 60)); res.StatusCode != 489 {
		t.Fatalf("unknown event: %d", res.StatusCode)
	}
	sim.RefuseSubscribe(503)
	if res := w.do(w.subscribeReq(sim, "201", "dialog", 60)); res.StatusCode != 503 {
		t.Fatalf("refused: %d", res.StatusCode)
	}
	sim.ClearFaults()
	if res := w.do(w.subscribeReq(sim, "201", "dialog", 60)); res.StatusCode != 200 {
		t.Fatalf("after ClearFaults: %d", res.StatusCode)
	}
}
