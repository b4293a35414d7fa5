package graphsim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

// TakeRequests hands over the log and empties it, so a caller that takes
// it often sees every request however many arrive in total.
func TestServer_TakeRequests(t *testing.T) {
	e := newEnv(t, func(o *graphsim.Options) { o.RequestLogLimit = 3 })
	tok := e.appToken(daemonApp, daemonSec)
	e.sim.TakeRequests()
	var seen []graphsim.Request
	for range 5 {
		resp, body := set(e, tok, aliceID, "Busy", "InACall", "PT5M")
		e.expect(resp, body, 200)
		seen = append(seen, e.sim.TakeRequests()...)
	}
	if len(seen) != 5 {
		t.Fatalf("took %d requests, want 5", len(seen))
	}
	for _, r := range seen {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/presence/setPresence") || r.AppID != daemonApp || r.Status != 200 {
			t.Fatalf("request %+v", r)
		}
	}
	if rest := e.sim.Requests(); len(rest) != 0 {
		t.Fatalf("log not emptied: %d left", len(rest))
	}
}

// The presence log has one entry per change of the aggregated presence, at
// the simulated time of the change, and none when the presence stays.
func TestServer_PresenceLog(t *testing.T) {
	e := newEnv(t, func(o *graphsim.Options) { o.PresenceLog = true })
	if err := e.sim.SignIn(aliceID); err != nil {
		t.Fatal(err)
	}
	e.sim.TakePresenceChanges()
	start := e.clock.Now()
	if err := e.sim.StartTeamsCall(aliceID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if err := e.sim.StartTeamsCall(aliceID); err != nil { // no change
		t.Fatal(err)
	}
	if err := e.sim.StartPresenting(aliceID); err != nil {
		t.Fatal(err)
	}
	got := e.sim.TakePresenceChanges()
	if len(got) != 2 {
		t.Fatalf("%d changes, want 2: %+v", len(got), got)
	}
	if got[0].UserID != aliceID || got[0].Availability != "Busy" || got[0].Activity != "InACall" || !got[0].Time.Equal(start) {
		t.Errorf("first change %+v", got[0])
	}
	if got[1].Availability != "DoNotDisturb" || got[1].Activity != "Presenting" || !got[1].Time.Equal(start.Add(time.Second)) ||
		got[1].SequenceNumber <= got[0].SequenceNumber {
		t.Errorf("second change %+v", got[1])
	}
	if p := presence(t, e, aliceID); p.SequenceNumber != got[1].SequenceNumber {
		t.Errorf("presence sequence %s, log %s", p.SequenceNumber, got[1].SequenceNumber)
	}
	if again := e.sim.TakePresenceChanges(); len(again) != 0 {
		t.Fatalf("log not emptied: %+v", again)
	}

	off := newEnv(t)
	if err := off.sim.StartTeamsCall(aliceID); err != nil {
		t.Fatal(err)
	}
	if got := off.sim.TakePresenceChanges(); len(got) != 0 {
		t.Fatalf("presence log without Options.PresenceLog: %+v", got)
	}
}
