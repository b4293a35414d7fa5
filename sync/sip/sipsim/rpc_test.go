package sipsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type rpcAnswer struct {
	status  int
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	ID json.RawMessage `json:"id"`
}

func rpcCall(t *testing.T, sim *Server, body string) rpcAnswer {
	t.Helper()
	res, err := http.Post(sim.RPCURL(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := rpcAnswer{status: res.StatusCode}
	if len(raw) > 0 && res.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("answer to %s: %v\n%s", body, err, raw)
		}
	}
	return a
}

func TestRPCHTableCommands(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201", "202"}})

	a := rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.seti","params":["teamsbusy","201",1],"id":7}`)
	if a.status != 200 || string(a.Result) != `"Ok. Key set to new value."` || string(a.ID) != "7" || a.JSONRPC != "2.0" {
		t.Fatalf("seti: %+v %s", a, a.Result)
	}
	if !sim.Busy("201") || sim.Busy("202") {
		t.Fatal("Busy does not follow the table")
	}
	a = rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.get","params":["teamsbusy","201"],"id":"x"}`)
	var got struct {
		Item struct {
			Name   string `json:"name"`
			Value  int    `json:"value"`
			Flags  int    `json:"flags"`
			Expire string `json:"expire"`
		} `json:"item"`
	}
	if err := json.Unmarshal(a.Result, &got); err != nil || got.Item.Name != "201" || got.Item.Value != 1 || got.Item.Flags != 0 || string(a.ID) != `"x"` {
		t.Fatalf("get: %s %v", a.Result, err)
	}
	if _, err := time.ParseInLocation("2006-01-02 15:04:05", got.Item.Expire, time.Local); err != nil {
		t.Fatalf("expire %q: %v", got.Item.Expire, err)
	}
	// setex shortens the life of the entry; it is gone after.
	a = rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.setex","params":["teamsbusy","201",1],"id":1}`)
	if string(a.Result) != `"Ok"` {
		t.Fatalf("setex: %s", a.Result)
	}
	if _, left, ok := sim.HTableEntry("teamsbusy", "201"); !ok || left > time.Second {
		t.Fatalf("after setex: %v %v", left, ok)
	}
	waitFor(t, "the entry to expire", func() bool { return !sim.Busy("201") })
	a = rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.get","params":["teamsbusy","201"],"id":2}`)
	if a.status != 500 || a.Error == nil || a.Error.Code != 500 || a.Error.Message != "Key name doesn't exist in htable." {
		t.Fatalf("get after expiry: %+v", a)
	}

	// setxi sets value and expiry at once.
	a = rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.setxi","params":["teamsbusy","202",1,600],"id":3}`)
	if string(a.Result) != `"Ok. Key set to new value."` {
		t.Fatalf("setxi: %+v", a)
	}
	if _, left, ok := sim.HTableEntry("teamsbusy", "202"); !ok || left < 590*time.Second || left > 600*time.Second {
		t.Fatalf("setxi expiry: %v", left)
	}
	a = rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.sets","params":["teamsbusy","note","hi"],"id":4}`)
	if a.status != 200 {
		t.Fatalf("sets: %+v", a)
	}
	a = rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.dump","params":["teamsbusy"],"id":5}`)
	var slots []struct {
		Slot []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"slot"`
	}
	if err := json.Unmarshal(a.Result, &slots); err != nil {
		t.Fatalf("dump: %s", a.Result)
	}
	seen := map[string]string{}
	for _, s := range slots {
		for _, e := range s.Slot {
			seen[e.Name] = e.Type
		}
	}
	if len(seen) != 2 || seen["202"] != "int" || seen["note"] != "str" {
		t.Fatalf("dump: %s", a.Result)
	}

	a = rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.delete","params":["teamsbusy","202"],"id":6}`)
	if string(a.Result) != `"Ok. Key deleted."` || sim.Busy("202") {
		t.Fatalf("delete: %+v", a)
	}
	a = rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.delete","params":["teamsbusy","202"],"id":6}`)
	if a.status != 404 || a.Error == nil || a.Error.Code != 404 {
		t.Fatalf("delete again: %+v", a)
	}
}

func TestRPCErrors(t *testing.T) {
	sim := startSim(t, Options{MaxBody: 512})
	for _, tc := range []struct {
		body, msg string
		status    int
	}{
		{`{"jsonrpc":"2.0","method":"htable.get","params":["nosuch","1"],"id":1}`, "No such htable", 500},
		{`{"jsonrpc":"2.0","method":"htable.get","params":["teamsbusy",201],"id":1}`, "Not enough parameters (htable name and key name)", 500},
		{`{"jsonrpc":"2.0","method":"htable.seti","params":["teamsbusy","201"],"id":1}`, "Not enough parameters (htable name, key name and value)", 500},
		{`{"jsonrpc":"2.0","method":"core.nothing","id":1}`, "Method Not Found", 500},
	} {
		a := rpcCall(t, sim, tc.body)
		if a.status != tc.status || a.Error == nil || a.Error.Message != tc.msg {
			t.Fatalf("%s: %+v", tc.body, a)
		}
	}
	if a := rpcCall(t, sim, `{"method":"htable.dump","params":["teamsbusy"],"id":1}`); a.status != 200 || string(a.Result) != "{}" {
		t.Fatalf("without jsonrpc version: %+v %s", a, a.Result)
	}
	if a := rpcCall(t, sim, `not json`); a.status != 500 {
		t.Fatalf("broken JSON: %d", a.status)
	}
	if a := rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.sets","params":["teamsbusy","k","`+strings.Repeat("v", 1000)+`"]}`); a.status != 413 {
		t.Fatalf("big body: %d", a.status)
	}
	// A string where an integer is due reads as 0, as in Kamailio.
	rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.seti","params":["teamsbusy","201","1"],"id":1}`)
	if v, _, ok := sim.HTableEntry("teamsbusy", "201"); !ok || v != "0" {
		t.Fatalf("seti with a string value: %q %v", v, ok)
	}
}

func TestInviteRefusedWhileBusy(t *testing.T) {
	sim := startSim(t, Options{Extensions: []string{"201"}})
	if code := sim.Invite("201"); code != 200 {
		t.Fatalf("idle: %d", code)
	}
	rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.setxi","params":["teamsbusy","201",1,1],"id":1}`)
	if code := sim.Invite("201"); code != 486 {
		t.Fatalf("busy: %d", code)
	}
	if code := sim.Invite("999"); code != 404 {
		t.Fatalf("unknown: %d", code)
	}
	waitFor(t, "the lease to lapse", func() bool { return sim.Invite("201") == 200 })
	if st := sim.Stats(); st.InvitesRefused < 1 || st.Invites < 4 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestHTableWithoutAutoexpireIgnoresSetex(t *testing.T) {
	sim := startSim(t, Options{HTables: []HTable{{Name: "teamsbusy"}}})
	rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.seti","params":["teamsbusy","201",1],"id":1}`)
	a := rpcCall(t, sim, `{"jsonrpc":"2.0","method":"htable.setex","params":["teamsbusy","201",1],"id":1}`)
	if string(a.Result) != `"Ok"` {
		t.Fatalf("setex: %s", a.Result)
	}
	if _, left, ok := sim.HTableEntry("teamsbusy", "201"); !ok || left != 0 {
		t.Fatalf("entry: %v %v", left, ok)
	}
}
