package graphsim

import (
	"testing"
	"time"
)

func TestAggregate(t *testing.T) {
	s := func(a, c string, touch uint64) sessionView { return sessionView{a, c, touch} }
	pref := func(a, c string) *[2]string { return &[2]string{a, c} }
	tests := []struct {
		name     string
		sessions []sessionView
		pref     *[2]string
		want     [2]string
	}{
		{"no session", nil, nil, [2]string{"Offline", "Offline"}},
		{"preferred needs a session", nil, pref("DoNotDisturb", "DoNotDisturb"), [2]string{"Offline", "Offline"}},
		{"single", []sessionView{s("Available", "Available", 1)}, nil, [2]string{"Available", "Available"}},
		{"busy beats available", []sessionView{s("Available", "Available", 2), s("Busy", "InACall", 1)}, nil, [2]string{"Busy", "InACall"}},
		{"dnd beats busy", []sessionView{s("Busy", "InACall", 2), s("DoNotDisturb", "Presenting", 1)}, nil, [2]string{"DoNotDisturb", "Presenting"}},
		{"available beats away", []sessionView{s("Away", "Away", 2), s("Available", "Available", 1)}, nil, [2]string{"Available", "Available"}},
		{"available beats be right back", []sessionView{s("BeRightBack", "BeRightBack", 2), s("Available", "Available", 1)}, nil, [2]string{"Available", "Available"}},
		{"be right back beats away", []sessionView{s("Away", "Away", 2), s("BeRightBack", "BeRightBack", 1)}, nil, [2]string{"BeRightBack", "BeRightBack"}},
		{"active beats inactive", []sessionView{s("Available", "AvailableInactive", 2), s("Available", "Available", 1)}, nil, [2]string{"Available", "Available"}},
		{"latest wins a tie", []sessionView{s("Busy", "InACall", 1), s("Busy", "InAConferenceCall", 2)}, nil, [2]string{"Busy", "InAConferenceCall"}},
		{"preferred beats dnd", []sessionView{s("DoNotDisturb", "Presenting", 1)}, pref("Available", "Available"), [2]string{"Available", "Available"}},
		{"preferred appear offline", []sessionView{s("Busy", "InACall", 1)}, pref("Offline", "OffWork"), [2]string{"Offline", "OffWork"}},
	}
	for _, tc := range tests {
		a, c := aggregate(tc.sessions, tc.pref)
		if [2]string{a, c} != tc.want {
			t.Errorf("%s: got %s/%s, want %s/%s", tc.name, a, c, tc.want[0], tc.want[1])
		}
	}
}

func TestParseISODuration(t *testing.T) {
	tests := map[string]time.Duration{
		"PT5M": 5 * time.Minute, "PT4H": 4 * time.Hour, "PT1H30M": 90 * time.Minute, "P1D": 24 * time.Hour,
		"P0DT0H5M0S": 5 * time.Minute, "PT30.5S": 30500 * time.Millisecond, "pt10m": 10 * time.Minute,
	}
	for in, want := range tests {
		if got, ok := parseISODuration(in); !ok || got != want {
			t.Errorf("%s: %v %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "P", "PT", "5m", "PT5X", "P1M"} {
		if _, ok := parseISODuration(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSessionFade(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	ss := &session{availability: "Available", activity: "Available", setAt: t0, expiresAt: t0.Add(time.Hour), fades: true}
	for _, tc := range []struct {
		at        time.Duration
		a, c      string
		wantAlive bool
	}{
		{4 * time.Minute, "Available", "Available", true},
		{5 * time.Minute, "Available", "AvailableInactive", true},
		{10 * time.Minute, "Away", "Away", true},
		{60 * time.Minute, "", "", false},
	} {
		a, c, alive := ss.at(t0.Add(tc.at))
		if a != tc.a || c != tc.c || alive != tc.wantAlive {
			t.Errorf("+%v: %s/%s %v", tc.at, a, c, alive)
		}
	}
}
