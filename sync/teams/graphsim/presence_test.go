package graphsim_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

func set(e *env, tok, user, avail, act, dur string) (*http.Response, map[string]any) {
	body := map[string]any{"sessionId": daemonApp, "availability": avail, "activity": act}
	if dur != "" {
		body["expirationDuration"] = dur
	}
	return e.graph(http.MethodPost, "/users/"+user+"/presence/setPresence", tok, body, gzipped())
}

func presence(t *testing.T, e *env, user string) graphsim.Presence {
	t.Helper()
	p, err := e.sim.Presence(user)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServer_SetPresenceCombinations(t *testing.T) {
	e := newEnv(t)
	tok := e.appToken(daemonApp, daemonSec)
	accepted := [][2]string{{"Available", "Available"}, {"Busy", "InACall"}, {"Busy", "InAConferenceCall"}, {"Away", "Away"}, {"DoNotDisturb", "Presenting"}, {"busy", "inacall"}}
	for _, c := range accepted {
		resp, body := set(e, tok, aliceID, c[0], c[1], "PT10M")
		e.expect(resp, body, 200)
		p := presence(t, e, aliceID)
		if !strings.EqualFold(p.Availability, c[0]) || !strings.EqualFold(p.Activity, c[1]) {
			t.Errorf("%v: presence %s/%s", c, p.Availability, p.Activity)
		}
	}
	rejected := [][2]string{{"Available", "Busy"}, {"Busy", "Busy"}, {"DoNotDisturb", "DoNotDisturb"}, {"Offline", "Offline"},
		{"BeRightBack", "BeRightBack"}, {"Busy", "InAMeeting"}, {"Available", "OutOfOffice"}, {"Away", "Available"}, {"Nonsense", "Available"}}
	for _, c := range rejected {
		resp, body := set(e, tok, aliceID, c[0], c[1], "")
		if resp.StatusCode != 400 || errCode(body) != "InvalidArgument" {
			t.Errorf("%v: %d %v", c, resp.StatusCode, body)
		}
	}
	for dur, ok := range map[string]bool{"PT5M": true, "PT4H": true, "PT1H30M": true, "PT4M": false, "PT4H1M": false, "banana": false} {
		resp, body := set(e, tok, aliceID, "Available", "Available", dur)
		if (resp.StatusCode == 200) != ok {
			t.Errorf("expirationDuration %s: %d %v", dur, resp.StatusCode, body)
		}
		if dur == "PT4M" && errMessage(body) != "The provided [ExpirationDuration] is out of range." {
			t.Errorf("PT4M: %v", body)
		}
	}
	// The session id must be the calling application's id.
	resp, body := e.graph(http.MethodPost, "/users/"+aliceID+"/presence/setPresence", tok,
		map[string]any{"sessionId": bridgeApp, "availability": "Busy", "activity": "InACall"})
	if resp.StatusCode != 400 {
		t.Fatalf("foreign sessionId: %d %v", resp.StatusCode, body)
	}
	// Default expiry is five minutes; the UPN and the communications path work too.
	resp, body = e.graph(http.MethodPost, "/users/alice@contoso.onmicrosoft.com/presence/setPresence", tok,
		map[string]any{"sessionId": daemonApp, "availability": "Busy", "activity": "InACall"})
	e.expect(resp, body, 200)
	ss, _ := e.sim.Sessions(aliceID)
	if len(ss) != 1 || ss[0].AppID != daemonApp || ss[0].ExpiresAt.Sub(ss[0].SetAt) != 5*time.Minute {
		t.Fatalf("sessions %+v", ss)
	}
	resp, body = e.graph(http.MethodPost, "/communications/presences/"+aliceID+"/setPresence", tok,
		map[string]any{"sessionId": daemonApp, "availability": "Away", "activity": "Away", "expirationDuration": "PT5M"})
	e.expect(resp, body, 200)
	resp, body = e.graph(http.MethodPost, "/users/"+"01010101-0000-4000-8000-000000000001"+"/presence/setPresence", tok,
		map[string]any{"sessionId": daemonApp, "availability": "Away", "activity": "Away"})
	if resp.StatusCode != 404 {
		t.Fatalf("unknown user: %d %v", resp.StatusCode, body)
	}
}

func TestServer_ClearPresence(t *testing.T) {
	e := newEnv(t)
	tok := e.appToken(daemonApp, daemonSec)
	clear := func() (*http.Response, map[string]any) {
		return e.graph(http.MethodPost, "/users/"+aliceID+"/presence/clearPresence", tok, map[string]any{"sessionId": daemonApp}, gzipped())
	}
	if resp, body := clear(); resp.StatusCode != 404 {
		t.Fatalf("no session: %d %v", resp.StatusCode, body)
	}
	resp, body := set(e, tok, aliceID, "Busy", "InACall", "PT1H")
	e.expect(resp, body, 200)
	resp, body = clear()
	e.expect(resp, body, 200)
	if p := presence(t, e, aliceID); p.Availability != "Offline" || p.Activity != "Offline" {
		t.Fatalf("only session cleared: %+v", p)
	}
	if resp, _ := clear(); resp.StatusCode != 404 {
		t.Fatal("second clear must be 404")
	}
	// With the Teams client signed in, clearing falls back to it.
	_ = e.sim.SignIn(aliceID)
	set(e, tok, aliceID, "Busy", "InACall", "PT1H")
	if p := presence(t, e, aliceID); p.Activity != "InACall" {
		t.Fatalf("%+v", p)
	}
	clear()
	if p := presence(t, e, aliceID); p.Availability != "Available" || p.Activity != "Available" {
		t.Fatalf("after clear: %+v", p)
	}
}

func TestServer_PresenceTimeline(t *testing.T) {
	e := newEnv(t)
	tok := e.appToken(daemonApp, daemonSec)
	t0 := e.clock.Now()
	resp, body := set(e, tok, aliceID, "Available", "Available", "PT1H")
	e.expect(resp, body, 200)

	var seqs []string
	step := func(d time.Duration, wantA, wantC string) {
		t.Helper()
		e.clock.Set(t0.Add(d))
		e.sim.Tick()
		_, body := e.graph(http.MethodGet, "/users/"+aliceID+"/presence", tok, nil)
		if body["availability"] != wantA || body["activity"] != wantC {
			t.Fatalf("+%v: %v/%v, want %s/%s", d, body["availability"], body["activity"], wantA, wantC)
		}
		seqs = append(seqs, body["sequenceNumber"].(string))
	}
	step(4*time.Minute, "Available", "Available")
	step(5*time.Minute, "Available", "AvailableInactive")
	step(10*time.Minute, "Away", "Away")
	step(59*time.Minute, "Away", "Away")
	step(60*time.Minute, "Offline", "Offline")
	for i := 1; i < len(seqs); i++ {
		same := i == 3 // nothing changed between +10m and +59m
		if same != (seqs[i] == seqs[i-1]) || (!same && seqs[i] <= seqs[i-1]) {
			t.Fatalf("sequence numbers %v", seqs)
		}
	}

	// Keep-alive: refreshing before the timeout keeps Available.
	tok = e.appToken(daemonApp, daemonSec) // the first one expired with the hour
	resp, body = set(e, tok, aliceID, "Available", "Available", "PT1H")
	e.expect(resp, body, 200)
	for i := 0; i < 4; i++ {
		e.clock.Advance(4 * time.Minute)
		resp, body = set(e, tok, aliceID, "Available", "Available", "PT1H")
		e.expect(resp, body, 200)
	}
	if p := presence(t, e, aliceID); p.Activity != "Available" {
		t.Fatalf("keep-alive: %+v", p)
	}

	// An app's Away cannot pull a user whose Teams client is Available down to Away.
	_ = e.sim.SignIn(aliceID)
	set(e, tok, aliceID, "Away", "Away", "PT1H")
	if p := presence(t, e, aliceID); p.Availability != "Available" {
		t.Fatalf("aggregation: %+v", p)
	}
}

func TestServer_ScriptedPerson(t *testing.T) {
	e := newEnv(t)
	tok := e.appToken(daemonApp, daemonSec)
	steps := []struct {
		do   func() error
		a, c string
	}{
		{func() error { return e.sim.SignIn(aliceID) }, "Available", "Available"},
		{func() error { return e.sim.StartTeamsCall(aliceID) }, "Busy", "InACall"},
		{func() error { return e.sim.StartPresenting(aliceID) }, "DoNotDisturb", "Presenting"},
		{func() error { return e.sim.StopPresenting(aliceID) }, "Busy", "InACall"},
		{func() error { return e.sim.EndCall(aliceID) }, "Available", "Available"},
		{func() error { return e.sim.JoinMeeting(aliceID) }, "Busy", "InAConferenceCall"},
		{func() error { return e.sim.EndCall(aliceID) }, "Available", "Available"},
		{func() error { return e.sim.StartCalendarMeeting(aliceID) }, "Busy", "InAMeeting"},
		{func() error { return e.sim.EndCall(aliceID) }, "Available", "Available"},
		{func() error { return e.sim.SetIdle(aliceID, true) }, "Away", "Away"},
		{func() error { return e.sim.SetIdle(aliceID, false) }, "Available", "Available"},
		{func() error { return e.sim.SetDND(aliceID) }, "DoNotDisturb", "DoNotDisturb"},
		{func() error { return e.sim.StartTeamsCall(aliceID) }, "DoNotDisturb", "DoNotDisturb"}, // the user's choice wins
		{func() error { return e.sim.ResetStatus(aliceID) }, "Busy", "InACall"},
		{func() error { return e.sim.EndCall(aliceID) }, "Available", "Available"},
		{func() error { return e.sim.SetBeRightBack(aliceID) }, "BeRightBack", "BeRightBack"},
		{func() error { return e.sim.SetAppearOffline(aliceID) }, "Offline", "OffWork"},
		{func() error { return e.sim.ResetStatus(aliceID) }, "Available", "Available"},
		{func() error { return e.sim.SetOutOfOffice(aliceID, true, "On leave") }, "Available", "OutOfOffice"},
		{func() error { return e.sim.SetOutOfOffice(aliceID, false, "") }, "Available", "Available"},
		{func() error { return e.sim.SignOut(aliceID) }, "Offline", "Offline"},
	}
	last := ""
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatal(err)
		}
		resp, body := e.graph(http.MethodGet, "/communications/presences/"+aliceID, tok, nil)
		e.expect(resp, body, 200)
		if body["availability"] != st.a || body["activity"] != st.c {
			t.Fatalf("step %d: %v/%v, want %s/%s", i, body["availability"], body["activity"], st.a, st.c)
		}
		seq := body["sequenceNumber"].(string)
		if seq < last {
			t.Fatalf("step %d: sequence went backwards", i)
		}
		last = seq
	}
	if err := e.sim.StartTeamsCall("nobody@contoso.onmicrosoft.com"); err == nil {
		t.Fatal("unknown user accepted")
	}
}

func TestServer_UserPreferredPresence(t *testing.T) {
	e := newEnv(t)
	tok := e.appToken(daemonApp, daemonSec)
	pref := func(a, c, d string) (*http.Response, map[string]any) {
		body := map[string]any{"availability": a, "activity": c}
		if d != "" {
			body["expirationDuration"] = d
		}
		return e.graph(http.MethodPost, "/users/"+aliceID+"/presence/setUserPreferredPresence", tok, body)
	}
	// Without any session the preferred state has no effect.
	resp, body := pref("DoNotDisturb", "DoNotDisturb", "")
	e.expect(resp, body, 200)
	if p := presence(t, e, aliceID); p.Availability != "Offline" {
		t.Fatalf("%+v", p)
	}
	set(e, tok, aliceID, "Busy", "InACall", "PT4H")
	if p := presence(t, e, aliceID); p.Availability != "DoNotDisturb" {
		t.Fatalf("preferred over the app session: %+v", p)
	}
	// DND lasts a day by default.
	e.clock.Advance(24 * time.Hour)
	tok = e.appToken(daemonApp, daemonSec)
	resp, body = set(e, tok, aliceID, "Busy", "InACall", "PT4H")
	e.expect(resp, body, 200)
	if p := presence(t, e, aliceID); p.Activity != "InACall" {
		t.Fatalf("after a day: %+v", p)
	}
	if resp, body := pref("Busy", "InACall", ""); resp.StatusCode != 400 {
		t.Fatalf("bad combination: %d %v", resp.StatusCode, body)
	}
	pref("Away", "Away", "PT1H")
	if p := presence(t, e, aliceID); p.Availability != "Away" {
		t.Fatalf("%+v", p)
	}
	resp, body = e.graph(http.MethodPost, "/users/"+aliceID+"/presence/clearUserPreferredPresence", tok, nil)
	e.expect(resp, body, 200)
	if p := presence(t, e, aliceID); p.Activity != "InACall" {
		t.Fatalf("%+v", p)
	}
	// Status message.
	resp, body = e.graph(http.MethodPost, "/users/"+aliceID+"/presence/setStatusMessage", tok, map[string]any{
		"statusMessage": map[string]any{"message": map[string]any{"content": "On the phone", "contentType": "text"}}})
	e.expect(resp, body, 200)
	_, body = e.graph(http.MethodGet, "/users/"+aliceID+"/presence", tok, nil)
	if body["statusMessage"].(map[string]any)["message"].(map[string]any)["content"] != "On the phone" {
		t.Fatalf("%v", body)
	}
}

func TestServer_GetPresencesByUserID(t *testing.T) {
	e := newEnv(t)
	tok := e.appToken(daemonApp, daemonSec)
	_ = e.sim.StartTeamsCall(aliceID)
	ids := []string{aliceID, serviceID, aliceID}
	for i := 0; len(ids) < 650; i++ {
		ids = append(ids, fmt.Sprintf("%08x-0000-4000-8000-000000000000", i))
	}
	resp, body := e.graph(http.MethodPost, "/communications/getPresencesByUserId", tok, map[string]any{"ids": ids}, gzipped())
	e.expect(resp, body, 200)
	vals := body["value"].([]any)
	if len(vals) != 649 { // the duplicate counts once
		t.Fatalf("%d presences", len(vals))
	}
	first := vals[0].(map[string]any)
	if first["id"] != aliceID || first["activity"] != "InACall" || vals[2].(map[string]any)["availability"] != "PresenceUnknown" {
		t.Fatalf("%v %v", first, vals[2])
	}
	ids = append(ids, "ffffffff-0000-4000-8000-000000000000", "fffffffe-0000-4000-8000-000000000000")
	resp, body = e.graph(http.MethodPost, "/communications/getPresencesByUserId", tok, map[string]any{"ids": ids})
	if resp.StatusCode != 400 {
		t.Fatalf("651 ids: %d %v", resp.StatusCode, body)
	}
	resp, body = e.graph(http.MethodPost, "/communications/getPresencesByUserId", tok, map[string]any{"ids": []string{"alice"}})
	if resp.StatusCode != 400 {
		t.Fatalf("non-GUID: %d %v", resp.StatusCode, body)
	}
}

func TestServer_GzipBodies(t *testing.T) {
	e := newEnv(t)
	tok := e.appToken(daemonApp, daemonSec)
	body := map[string]any{"ids": []string{aliceID}}
	resp, out := e.graph(http.MethodPost, "/communications/getPresencesByUserId", tok, body, gzipped())
	e.expect(resp, out, 200)
	// The kiota-http-go retry bug: a plain body still labelled gzip.
	resp, out = e.graph(http.MethodPost, "/communications/getPresencesByUserId", tok, body, labelledGzip())
	if resp.StatusCode != 400 || errCode(out) != "BadRequest" {
		t.Fatalf("bad gzip: %d %v", resp.StatusCode, out)
	}
	resp, out = e.graph(http.MethodPost, "/communications/getPresencesByUserId", tok, body, func(r *http.Request, _ *[]byte) { r.Header.Set("Content-Encoding", "br") })
	if resp.StatusCode != 415 {
		t.Fatalf("unknown encoding: %d %v", resp.StatusCode, out)
	}
	reqs := e.sim.Requests()
	var gz []bool
	for _, r := range reqs {
		if r.Path == "/v1.0/communications/getPresencesByUserId" {
			gz = append(gz, r.Gzip)
		}
	}
	if fmt.Sprint(gz) != "[true true false]" {
		t.Fatalf("gzip flags %v", gz)
	}
}

func TestServer_UsersAndGroups(t *testing.T) {
	var members []string
	var users []graphsim.User
	for i := 0; i < 7; i++ {
		id := fmt.Sprintf("%08x-1111-4000-8000-000000000000", i)
		users = append(users, graphsim.User{ID: id, UserPrincipalName: fmt.Sprintf("u%d@contoso.onmicrosoft.com", i)})
		members = append(members, id)
	}
	groupID := "66666666-0000-4000-8000-000000000006"
	e := newEnv(t, func(o *graphsim.Options) {
		o.Users = append(o.Users, users...)
		o.Groups = []graphsim.Group{{ID: groupID, DisplayName: "Sales", Members: members}}
		o.PageSize = 3
	})
	tok := e.appToken(daemonApp, daemonSec)
	resp, body := e.graph(http.MethodGet, "/users/"+url.PathEscape("alice@contoso.onmicrosoft.com"), tok, nil)
	e.expect(resp, body, 200)
	if body["id"] != aliceID || body["mail"] != "alice@contoso.com" || body["displayName"] != "Alice" {
		t.Fatalf("%v", body)
	}
	if _, ok := body["accountEnabled"]; ok {
		t.Fatal("accountEnabled is not a default property")
	}
	_, body = e.graph(http.MethodGet, "/users/"+bobID+"?$select=id,userPrincipalName,accountEnabled", tok, nil)
	if body["accountEnabled"] != false || body["userPrincipalName"] != "bob@contoso.onmicrosoft.com" || len(body) != 4 {
		t.Fatalf("$select: %v", body)
	}
	if resp, body := e.graph(http.MethodGet, "/users/"+bobID+"?$select=nosuch", tok, nil); resp.StatusCode != 400 {
		t.Fatalf("bad $select: %d %v", resp.StatusCode, body)
	}
	if resp, body := e.graph(http.MethodGet, "/users/nobody@contoso.onmicrosoft.com", tok, nil); resp.StatusCode != 404 || errCode(body) != "Request_ResourceNotFound" {
		t.Fatalf("unknown: %d %v", resp.StatusCode, body)
	}
	// Members, paged through @odata.nextLink.
	var got []string
	next := e.sim.GraphURL() + "/groups/" + groupID + "/members?$select=id,userPrincipalName"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		resp, body := e.graph(http.MethodGet, strings.TrimPrefix(next, e.sim.GraphURL()), tok, nil)
		e.expect(resp, body, 200)
		for _, v := range body["value"].([]any) {
			m := v.(map[string]any)
			if m["@odata.type"] != "#microsoft.graph.user" {
				t.Fatalf("%v", m)
			}
			got = append(got, m["id"].(string))
		}
		next, _ = body["@odata.nextLink"].(string)
	}
	if fmt.Sprint(got) != fmt.Sprint(members) {
		t.Fatalf("members %v", got)
	}
	if resp, _ := e.graph(http.MethodGet, "/groups/77777777-0000-4000-8000-000000000007/members", tok, nil); resp.StatusCode != 404 {
		t.Fatalf("unknown group: %d", resp.StatusCode)
	}
}
