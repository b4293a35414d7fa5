package sync_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// What --json and the control API print: snake_case keys, enums by name,
// unknown times as null; and what they print reads back the same.
func TestJSON_UserStatus(t *testing.T) {
	since := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	u := psync.UserStatus{
		User:    psync.User{ID: "201", DisplayName: "Anna"},
		Profile: "default", TeamsState: psync.TeamsInCall, Colour: psync.ColourRed, Text: "In call",
		Teams: psync.TeamsPresence{Availability: "Busy", Activity: "InACall"},
		Phone: psync.PhoneState{Presence: psync.PhoneNotSet, Devices: []psync.Device{{ID: "tel:1", DND: true, Name: "Desk"}},
			Calls: []psync.Call{{ID: "c", Device: "tel:1", State: psync.CallHeld, Conference: true}}},
		Holds: []psync.HoldStatus{{Hold: psync.Hold{User: "201", Kind: psync.HoldDeviceProtection, Device: "tel:1", Set: "on", Replaced: "off", Since: since,
			Shown: &psync.Mark{Value: "on"}}, Confirmed: true, HeldByBridge: true}},
	}
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"teams_state":"in-call"`, `"colour":"red"`, `"presence":"not-set"`, `"state":"held"`, `"conference":true`,
		`"kind":"device-protection"`, `"lease":null`, `"last_change":null`, `"last_side":null`, `"observed":null`, `"held_by_bridge":true`,
		`"confirmed":true`, `"shown":{"value":"on","until":null}`, `"since":"2026-12-06T09:00:00Z"`, `"teams_known":false`, `"also_in_teams":false`} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %s in\n%s", want, s)
		}
	}
	for _, bad := range []string{`"User"`, `"TeamsKnown"`, `0001-01-01`} {
		if strings.Contains(s, bad) {
			t.Errorf("%s in\n%s", bad, s)
		}
	}
	var back psync.UserStatus
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, u) {
		t.Fatalf("round trip:\n%+v\n%+v", back, u)
	}
}

// Records of earlier versions stored enums as numbers: they still read.
func TestJSON_ReadsOldNumbers(t *testing.T) {
	var h psync.Hold
	if err := json.Unmarshal([]byte(`{"user":"201","kind":2,"set":"dnd","replaced":"available","since":"2026-12-06T09:00:00Z","lease":"2026-12-06T09:10:00Z"}`), &h); err != nil {
		t.Fatal(err)
	}
	if h.Kind != psync.HoldPhonePresence || h.Lease.IsZero() {
		t.Fatalf("%+v", h)
	}
	var p psync.PhoneState
	if err := json.Unmarshal([]byte(`{"presence":4,"calls":[{"id":"c","device":"d","state":2}]}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Presence != psync.PhoneDND || p.Calls[0].State != psync.CallConnected {
		t.Fatalf("%+v", p)
	}
	var d psync.Decision
	if err := json.Unmarshal([]byte(`{"side":1,"outcome":"applied"}`), &d); err != nil || d.Side != psync.SideTeams {
		t.Fatalf("%+v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`{"presence":"sparkling"}`), &p); err == nil {
		t.Fatal("an unknown name was accepted")
	}
	if err := json.Unmarshal([]byte(`{"presence":9999}`), &p); err == nil {
		t.Fatal("a number out of range was accepted")
	}
}
