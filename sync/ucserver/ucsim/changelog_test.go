package ucsim_test

import (
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// The change log says who changed what, in order: the person, a session
// (by its logged-in contact), or the server at stTimeTo; reads are logged
// so that a restore's read-then-write window can be told.
func TestServer_ChangeLog(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, ucsim.Options{Now: clk.Now, KeepAliveTimeout: -1, SweepInterval: time.Hour, ChangeLog: true})
	svc := login(t, s, "svc", "secret")

	until := clk.Now().Add(time.Minute)
	if err := s.SetAbsentState(aliceID, ucsim.AbsentState{State: ucsim.AbsentBusy, To: until}); err != nil {
		t.Fatal(err)
	}
	svc.invoke(1, ucsim.OpGetUserAbsentState, map[string]any{"contactId": aliceID})
	svc.result(1, nil)
	svc.invoke(2, ucsim.OpResetUserAbsentState, map[string]any{"u8sContactId": aliceID})
	svc.result(2, nil)
	svc.invoke(3, ucsim.OpCtiSnapshotPhoneLine, map[string]any{"u8sLinePhoneNumber": aliceDesk})
	svc.result(3, nil)
	svc.invoke(4, ucsim.OpCtiLineSetDoNotDisturb, map[string]any{"u8sLinePhoneNumber": aliceDesk, "bDoNotDisturb": true})
	svc.result(4, nil)
	if err := s.SetLineDND(aliceDesk, false); err != nil {
		t.Fatal(err)
	}
	conn, err := s.Ring(aliceDesk, "+4930555")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PickUp(conn); err != nil {
		t.Fatal(err)
	}
	if err := s.Conference(conn); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(conn); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAbsentState(bobID, ucsim.AbsentState{State: ucsim.AbsentDoNotDisturb, To: clk.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	s.Sweep()

	type row struct {
		kind    ucsim.ChangeKind
		contact string
		line    string
		by      string
		absent  int
		dnd     bool
		call    int
		conf    bool
	}
	want := []row{
		{ucsim.ChangeAbsent, aliceID, "", ucsim.ByPerson, ucsim.AbsentBusy, false, 0, false},
		{ucsim.ReadAbsent, aliceID, "", svcID, ucsim.AbsentBusy, false, 0, false},
		{ucsim.ChangeAbsent, aliceID, "", svcID, ucsim.AbsentNotSet, false, 0, false},
		{ucsim.ReadLine, aliceID, aliceDesk, svcID, 0, false, 0, false},
		{ucsim.ChangeLineDND, aliceID, aliceDesk, svcID, 0, true, 0, false},
		{ucsim.ChangeLineDND, aliceID, aliceDesk, ucsim.ByPerson, 0, false, 0, false},
		{ucsim.ChangeCall, aliceID, aliceDesk, ucsim.ByPerson, 0, false, ucsim.CallOffering, false},
		{ucsim.ChangeCall, aliceID, aliceDesk, ucsim.ByPerson, 0, false, ucsim.CallConnected, false},
		{ucsim.ChangeCall, aliceID, aliceDesk, ucsim.ByPerson, 0, false, ucsim.CallConferenced, true},
		{ucsim.ChangeCall, aliceID, aliceDesk, ucsim.ByPerson, 0, false, ucsim.CallHold, true},
		{ucsim.ChangeAbsent, bobID, "", ucsim.ByPerson, ucsim.AbsentDoNotDisturb, false, 0, false},
		{ucsim.ChangeAbsent, bobID, "", ucsim.ByServer, ucsim.AbsentNotSet, false, 0, false},
	}
	got := s.TakeChanges()
	if len(got) != len(want) {
		t.Fatalf("%d changes, want %d: %+v", len(got), len(want), got)
	}
	for i, c := range got {
		w := want[i]
		r := row{c.Kind, c.ContactID, c.LineURI, c.By, c.Absent.State, c.DND, c.CallState, c.Conferenced}
		if r != w {
			t.Errorf("change %d: %+v, want %+v", i, r, w)
		}
		if i > 0 && c.Seq <= got[i-1].Seq {
			t.Errorf("change %d: seq %d after %d", i, c.Seq, got[i-1].Seq)
		}
		if c.Kind == ucsim.ChangeCall && c.ConnectionID != conn {
			t.Errorf("change %d: connection %q, want %q", i, c.ConnectionID, conn)
		}
	}
	if !got[0].Absent.To.Equal(until) {
		t.Errorf("end time %v, want %v", got[0].Absent.To, until)
	}
	if !got[11].Time.Equal(clk.Now()) {
		t.Errorf("expiry logged at %v, want %v", got[11].Time, clk.Now())
	}
	if again := s.TakeChanges(); len(again) != 0 {
		t.Fatalf("TakeChanges did not empty the log: %+v", again)
	}

	// Off by default.
	quiet := startSim(t, ucsim.Options{})
	if err := quiet.SetLineDND(aliceDesk, true); err != nil {
		t.Fatal(err)
	}
	if got := quiet.TakeChanges(); len(got) != 0 {
		t.Fatalf("change log without Options.ChangeLog: %+v", got)
	}
}
