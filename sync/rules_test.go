package sync_test

import (
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// TestRules_TeamsToPhone has one case per row of RULES.md §1, with
// the default profile: the classification, the channel shown to admins, and
// what reaches the phone system.
func TestRules_TeamsToPhone(t *testing.T) {
	def := psync.NewProfile("default")
	rows := []struct {
		row          string
		avail, act   string
		state        psync.TeamsState
		colour       psync.Colour
		text         string
		phone        psync.PhonePresence // PhoneUnknown = no change
		ruleContains string
	}{
		{"Available", "Available", "Available", psync.TeamsAvailable, psync.ColourNeutral, "Present", psync.PhoneUnknown, ""},
		{"Busy set by hand", "Busy", "Busy", psync.TeamsBusy, psync.ColourRed, "Busy", psync.PhoneUnknown, ""},
		{"Do not disturb", "DoNotDisturb", "DoNotDisturb", psync.TeamsDoNotDisturb, psync.ColourRed, "Do not disturb", psync.PhoneDND, "do not disturb"},
		{"Be right back", "BeRightBack", "BeRightBack", psync.TeamsBeRightBack, psync.ColourYellow, "Absent", psync.PhoneUnknown, ""},
		{"Appear away", "Away", "Away", psync.TeamsAway, psync.ColourYellow, "Absent", psync.PhoneUnknown, ""},
		{"Appear offline", "Offline", "OffWork", psync.TeamsOffline, psync.ColourNeutral, "Unknown", psync.PhoneUnknown, ""},
		{"Teams call", "Busy", "InACall", psync.TeamsInCall, psync.ColourRed, "In call", psync.PhoneBusy, "Teams call"},
		{"Teams meeting joined", "Busy", "InAConferenceCall", psync.TeamsInCall, psync.ColourRed, "In call", psync.PhoneBusy, "Teams call"},
		{"Presenting", "DoNotDisturb", "Presenting", psync.TeamsPresenting, psync.ColourRed, "Do not disturb", psync.PhoneDND, "presenting"},
		{"Calendar appointment", "Busy", "Busy", psync.TeamsBusy, psync.ColourRed, "Busy", psync.PhoneUnknown, ""},
		{"Calendar meeting", "Busy", "InAMeeting", psync.TeamsInMeeting, psync.ColourRed, "In a meeting", psync.PhoneUnknown, ""},
		{"Out of office", "Available", "OutOfOffice", psync.TeamsOutOfOffice, psync.ColourYellow, "Out of office", psync.PhoneUnknown, ""},
		{"Out of office, availability only", "OutOfOffice", "", psync.TeamsOutOfOffice, psync.ColourYellow, "Out of office", psync.PhoneUnknown, ""},
		{"Unknown", "PresenceUnknown", "PresenceUnknown", psync.TeamsUnknown, psync.ColourNeutral, "Unknown", psync.PhoneUnknown, ""},
		{"Unknown, empty", "", "", psync.TeamsUnknown, psync.ColourNeutral, "Unknown", psync.PhoneUnknown, ""},
		{"Unknown, new value", "Levitating", "Floating", psync.TeamsUnknown, psync.ColourNeutral, "Unknown", psync.PhoneUnknown, ""},
		{"Case does not matter", "busy", "inacall", psync.TeamsInCall, psync.ColourRed, "In call", psync.PhoneBusy, "Teams call"},
		{"Focusing is DND", "Focusing", "", psync.TeamsDoNotDisturb, psync.ColourRed, "Do not disturb", psync.PhoneDND, "do not disturb"},
	}
	for _, r := range rows {
		t.Run(r.row, func(t *testing.T) {
			st := psync.ClassifyTeams(psync.TeamsPresence{Availability: r.avail, Activity: r.act})
			if st != r.state {
				t.Fatalf("ClassifyTeams(%s/%s) = %s, want %s", r.avail, r.act, st, r.state)
			}
			col, text := psync.TeamsChannel(st)
			if col != r.colour || text != r.text {
				t.Errorf("channel = %s %q, want %s %q", col, text, r.colour, r.text)
			}
			tgt := psync.PhoneTargetFor(st, false, def)
			if tgt.Presence != r.phone {
				t.Errorf("phone presence = %s, want %s", tgt.Presence, r.phone)
			}
			if r.ruleContains != "" && !contains(tgt.PresenceWhy.Rule, r.ruleContains) {
				t.Errorf("rule %q does not name %q", tgt.PresenceWhy.Rule, r.ruleContains)
			}
			if tgt.Protect {
				t.Errorf("default profile protects devices")
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestRules_PhoneToTeams has one case per row of RULES.md §2.
func TestRules_PhoneToTeams(t *testing.T) {
	def := psync.NewProfile("default")
	rows := []struct {
		row   string
		state psync.PhoneState
		want  string
	}{
		{"Manual presence change", psync.PhoneState{Presence: psync.PhoneDND}, ""},
		{"Connected call on any device", psync.PhoneState{Calls: []psync.Call{{ID: "1", Device: "softphone", State: psync.CallConnected}}}, psync.ActivityInACall},
		{"Connected call on hold", psync.PhoneState{Calls: []psync.Call{{ID: "1", Device: "desk", State: psync.CallHeld}}}, psync.ActivityInACall},
		{"Conference call", psync.PhoneState{Calls: []psync.Call{{ID: "1", Device: "desk", State: psync.CallConference}}}, psync.ActivityInAConferenceCall},
		{"Conference beside a connected call", psync.PhoneState{Calls: []psync.Call{{ID: "1", Device: "desk", State: psync.CallConnected}, {ID: "2", Device: "softphone", State: psync.CallConference}}}, psync.ActivityInAConferenceCall},
		{"Conference call on hold", psync.PhoneState{Calls: []psync.Call{{ID: "1", Device: "desk", State: psync.CallHeld, Conference: true}}}, psync.ActivityInAConferenceCall},
		{"Former conference connected again (two parties left)", psync.PhoneState{Calls: []psync.Call{{ID: "1", Device: "desk", State: psync.CallConnected, Conference: true}}}, psync.ActivityInACall},
		{"Ringing only", psync.PhoneState{Calls: []psync.Call{{ID: "1", Device: "desk", State: psync.CallRinging}}}, ""},
		{"Last call ended", psync.PhoneState{}, ""},
	}
	for _, r := range rows {
		t.Run(r.row, func(t *testing.T) {
			got := psync.TeamsTargetFor(r.state, def)
			if got.Activity != r.want {
				t.Fatalf("activity = %q, want %q", got.Activity, r.want)
			}
			if r.want != "" && got.Flag != psync.FlagSetTeamsPresence {
				t.Errorf("flag = %q", got.Flag)
			}
		})
	}
}

// TestRules_ProfileFlags switches each §3 flag away from its default and
// checks the one behaviour it governs.
func TestRules_ProfileFlags(t *testing.T) {
	call := psync.PhoneState{Calls: []psync.Call{{ID: "1", Device: "desk", State: psync.CallConnected}}}
	with := func(f psync.ProfileFlag, v bool) psync.Profile {
		p := psync.NewProfile("p")
		if err := p.SetFlag(f, v); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("defaults", func(t *testing.T) {
		want := map[psync.ProfileFlag]bool{psync.FlagSetTeamsPresence: true, psync.FlagApplyTeamsToPhone: true, psync.FlagTeamsDNDToPhoneDND: true, psync.FlagPresentingToPhoneDND: true}
		p := psync.NewProfile("p")
		for _, f := range psync.ProfileFlags {
			if got, _ := p.Flag(f.Flag); got != want[f.Flag] {
				t.Errorf("%s default = %v", f.Flag, got)
			}
		}
	})
	t.Run(string(psync.FlagSetTeamsPresence)+" off", func(t *testing.T) {
		if got := psync.TeamsTargetFor(call, with(psync.FlagSetTeamsPresence, false)); got.Activity != "" {
			t.Fatalf("activity %q", got.Activity)
		}
	})
	t.Run(string(psync.FlagApplyTeamsToPhone)+" off", func(t *testing.T) {
		p := with(psync.FlagApplyTeamsToPhone, false)
		for _, st := range []psync.TeamsState{psync.TeamsInCall, psync.TeamsDoNotDisturb, psync.TeamsPresenting} {
			if got := psync.PhoneTargetFor(st, false, p); got.Presence != psync.PhoneUnknown || got.Protect {
				t.Errorf("%s: %+v", st, got)
			}
		}
	})
	t.Run(string(psync.FlagTeamsDNDToPhoneDND)+" off", func(t *testing.T) {
		if got := psync.PhoneTargetFor(psync.TeamsDoNotDisturb, false, with(psync.FlagTeamsDNDToPhoneDND, false)); got.Presence != psync.PhoneUnknown {
			t.Fatalf("%s", got.Presence)
		}
	})
	t.Run(string(psync.FlagPresentingToPhoneDND)+" off", func(t *testing.T) {
		if got := psync.PhoneTargetFor(psync.TeamsPresenting, false, with(psync.FlagPresentingToPhoneDND, false)); got.Presence != psync.PhoneUnknown {
			t.Fatalf("%s", got.Presence)
		}
	})
	t.Run(string(psync.FlagCrossDeviceBusy)+" on", func(t *testing.T) {
		p := with(psync.FlagCrossDeviceBusy, true)
		got := psync.PhoneTargetFor(psync.TeamsInCall, false, p)
		if !got.Protect || got.ProtectWhy.Flag != psync.FlagCrossDeviceBusy || got.Presence != psync.PhoneBusy {
			t.Fatalf("%+v", got)
		}
		if got := psync.PhoneTargetFor(psync.TeamsPresenting, false, p); !got.Protect {
			t.Errorf("presenting does not protect")
		}
		if got := psync.PhoneTargetFor(psync.TeamsDoNotDisturb, false, p); got.Protect {
			t.Errorf("Teams DND alone protects devices")
		}
		// Call protection is its own switch (package doc).
		p.ApplyTeamsToPhone = false
		if got := psync.PhoneTargetFor(psync.TeamsInCall, false, p); !got.Protect || got.Presence != psync.PhoneUnknown {
			t.Errorf("with apply off: %+v", got)
		}
	})
	t.Run(string(psync.FlagDNDControlsPresence)+" on", func(t *testing.T) {
		got := psync.PhoneTargetFor(psync.TeamsInCall, false, with(psync.FlagDNDControlsPresence, true))
		if got.Presence != psync.PhoneDND || got.PresenceWhy.Flag != psync.FlagDNDControlsPresence {
			t.Fatalf("%+v", got)
		}
	})
	t.Run(string(psync.FlagCalendarAsCalls)+" on", func(t *testing.T) {
		p := with(psync.FlagCalendarAsCalls, true)
		got := psync.PhoneTargetFor(psync.TeamsInMeeting, false, p)
		if got.Presence != psync.PhoneBusy || got.PresenceWhy.Flag != psync.FlagCalendarAsCalls {
			t.Fatalf("%+v", got)
		}
		if got := psync.PhoneTargetFor(psync.TeamsBusy, false, p); got.Presence != psync.PhoneUnknown {
			t.Errorf("calendar appointment (Busy/Busy) counted as a call")
		}
	})
	t.Run("echo never counts as a Teams call", func(t *testing.T) {
		p := with(psync.FlagCrossDeviceBusy, true)
		if got := psync.PhoneTargetFor(psync.TeamsInCall, true, p); got.Presence != psync.PhoneUnknown || got.Protect {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		p := psync.NewProfile("p")
		if err := p.SetFlag("make_coffee", true); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestLinksFor(t *testing.T) {
	l := psync.LinksFor("anna.berg@contoso.example")
	if l.Chat != "https://teams.microsoft.com/l/chat/0/0?users=anna.berg@contoso.example" ||
		l.Call != "https://teams.microsoft.com/l/call/0/0?users=anna.berg@contoso.example" ||
		l.CallApp != "msteams:/l/call/0/0?users=anna.berg@contoso.example" {
		t.Fatalf("%+v", l)
	}
	if l := psync.LinksFor("a+b&c@x.example"); l.Chat != "https://teams.microsoft.com/l/chat/0/0?users=a%2Bb%26c@x.example" {
		t.Fatalf("escaping: %s", l.Chat)
	}
	if (psync.LinksFor("") != psync.DeepLinks{}) {
		t.Fatal("links without a UPN")
	}
}

func TestTeamsPresence_Newer(t *testing.T) {
	a := psync.TeamsPresence{Sequence: "0000000000000002"}
	b := psync.TeamsPresence{Sequence: "0000000000000001"}
	if !a.Newer(b) || b.Newer(a) || a.Newer(a) {
		t.Fatal("sequence order")
	}
}

func TestParseSettings(t *testing.T) {
	s := psync.DefaultSettings()
	if s.TeamsLease.String() != "10m0s" || s.TeamsKeepAlive.String() != "5m0s" || s.AuditLimit != 10000 {
		t.Fatalf("%+v", s)
	}
	bad := []map[string]string{
		{"teams.lease": "1m"},                           // below PT5M
		{"teams.lease": "5h"},                           // above PT4H
		{"teams.lease": "ten minutes"},                  // not a duration
		{"teams.keepalive": "20m"},                      // not shorter than the lease
		{"audit.limit": "-3"},                           // out of range
		{"nonsense.key": "1"},                           // ignored by ParseSettings, caught by LookupSetting
		{"retry.min": "50s", "retry.max": "10s"},        // min above max
		{"default_profile": "has space"},                // bad profile name
		{"teams.graph_url": "ftp://graph.example/v1.0"}, // not http(s)
	}
	for _, v := range bad {
		_, err := psync.ParseSettings(v)
		if _, ok := v["nonsense.key"]; ok {
			if _, lerr := psync.LookupSetting("nonsense.key"); lerr == nil {
				t.Errorf("unknown key accepted")
			}
			continue
		}
		if _, ok := v["teams.graph_url"]; ok {
			spec, _ := psync.LookupSetting("teams.graph_url")
			if _, err := spec.Normalize(v["teams.graph_url"]); err == nil {
				t.Errorf("ftp URL accepted")
			}
			continue
		}
		if err == nil {
			t.Errorf("%v accepted", v)
		}
	}
	spec, _ := psync.LookupSetting("teams.client_secret")
	if spec.Show("hunter2") != psync.Mask {
		t.Error("secret shown")
	}
}

// TestReadTeams is the one place the engine's view of a Graph presence is
// derived: its §1 row, whether it looks like the bridge's own session
// (§4.2), and whether a user-preferred state would hide that session.
func TestReadTeams(t *testing.T) {
	rows := []struct {
		avail, act  string
		state       psync.TeamsState
		sessionLike bool
		callAct     string
		belowBusy   bool
	}{
		{"Busy", "InACall", psync.TeamsInCall, true, psync.ActivityInACall, false},
		{"busy", "inaconferencecall", psync.TeamsInCall, true, psync.ActivityInAConferenceCall, false},
		{"Busy", "Busy", psync.TeamsBusy, true, "", false},
		{"Busy", "InAMeeting", psync.TeamsInMeeting, false, "", false},
		{"DoNotDisturb", "InACall", psync.TeamsInCall, false, psync.ActivityInACall, false},
		{"DoNotDisturb", "Presenting", psync.TeamsPresenting, false, "", false},
		{"Available", "Available", psync.TeamsAvailable, false, "", true},
		{"AvailableIdle", "Available", psync.TeamsAvailable, false, "", true},
		{"Away", "Away", psync.TeamsAway, false, "", true},
		{"BeRightBack", "BeRightBack", psync.TeamsBeRightBack, false, "", true},
		{"Offline", "OffWork", psync.TeamsOffline, false, "", true},
		{"BusyIdle", "Busy", psync.TeamsBusy, false, "", false},
		{"", "", psync.TeamsUnknown, false, "", false},
		{"Sparkling", "Dancing", psync.TeamsUnknown, false, "", false},
	}
	for _, r := range rows {
		got := psync.ReadTeams(psync.TeamsPresence{Availability: r.avail, Activity: r.act})
		want := psync.TeamsReading{State: r.state, SessionLike: r.sessionLike, CallActivity: r.callAct, BelowBusy: r.belowBusy}
		if got != want {
			t.Errorf("%s/%s: %+v, want %+v", r.avail, r.act, got, want)
		}
	}
}

// TestBackoff: doubling from Min to Max within the jitter, and a side's own
// Retry-After believed as it is.
func TestBackoff(t *testing.T) {
	b := psync.NewBackoff(time.Second, 30*time.Second, 7)
	for n, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		d := b.Delay(n+1, nil)
		if d < base*8/10 || d > base*12/10 {
			t.Errorf("attempt %d: %s, want %s ±20 %%", n+1, d, base)
		}
	}
	if d := b.Delay(3, &psync.RetryAfterError{Wait: 42 * time.Second}); d != 42*time.Second {
		t.Errorf("Retry-After: %s", d)
	}
	if d := b.Delay(1000, nil); d > 36*time.Second {
		t.Errorf("far attempt %s beyond max", d)
	}
}
