package graphsim_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

func TestServer_InjectFault(t *testing.T) {
	e := newEnv(t)
	tok := e.appToken(daemonApp, daemonSec)
	get := func() *http.Response {
		resp, _ := e.graph(http.MethodPost, "/communications/getPresencesByUserId", tok, map[string]any{"ids": []string{aliceID}}, gzipped())
		return resp
	}

	// 429 with Retry-After for the next two requests on one path.
	e.sim.InjectFault(graphsim.Fault{Path: "/v1.0/communications/", Status: 429, RetryAfter: 2500 * time.Millisecond, Count: 2})
	for i := 0; i < 2; i++ {
		resp, body := e.graph(http.MethodPost, "/communications/getPresencesByUserId", tok, map[string]any{"ids": []string{aliceID}})
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || errCode(body) != "TooManyRequests" {
			t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if resp, _ := e.graph(http.MethodGet, "/users/"+aliceID, tok, nil); resp.StatusCode != 200 {
		t.Fatal("other paths are not affected")
	}
	if r := get(); r.StatusCode != 200 {
		t.Fatalf("after two: %d", r.StatusCode)
	}

	// 503 without Retry-After, for one method only.
	remove := e.sim.InjectFault(graphsim.Fault{Method: http.MethodGet, Status: 503, NoRetryAfter: true})
	resp, body := e.graph(http.MethodGet, "/users/"+aliceID, tok, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "" || errCode(body) != "ServiceUnavailable" {
		t.Fatalf("503: %d %v", resp.StatusCode, body)
	}
	if r := get(); r.StatusCode != 200 {
		t.Fatal("POST hit by a GET fault")
	}
	remove()
	if resp, _ := e.graph(http.MethodGet, "/users/"+aliceID, tok, nil); resp.StatusCode != 200 {
		t.Fatal("fault not removed")
	}

	// A rate: reproducible from the seed, roughly the share asked for.
	remove = e.sim.InjectFault(graphsim.Fault{Path: "/v1.0/communications/", Status: 500, Rate: 0.3})
	failed := 0
	for i := 0; i < 100; i++ {
		if get().StatusCode == 500 {
			failed++
		}
	}
	remove()
	if failed < 15 || failed > 45 {
		t.Fatalf("%d of 100 failed at rate 0.3", failed)
	}

	// Latency only: the request is delayed, then handled.
	e.sim.InjectFault(graphsim.Fault{Path: "/v1.0/users/", Latency: 80 * time.Millisecond, Count: 1})
	start := time.Now()
	if resp, _ := e.graph(http.MethodGet, "/users/"+aliceID, tok, nil); resp.StatusCode != 200 || time.Since(start) < 80*time.Millisecond {
		t.Fatalf("latency: %d after %v", resp.StatusCode, time.Since(start))
	}

	// Faults reach the Entra endpoints too, in Entra's error shape.
	e.sim.InjectFault(graphsim.Fault{Path: "/" + tenantID + "/oauth2/", Status: 503, RetryAfter: time.Second, Count: 1})
	code, out := e.form(e.tokenPath(), url.Values{"grant_type": {"client_credentials"}, "client_id": {daemonApp}, "client_secret": {daemonSec}, "scope": {"https://graph.microsoft.com/.default"}})
	if code != 503 || out["error"] != "temporarily_unavailable" {
		t.Fatalf("token fault: %d %v", code, out)
	}

	var faulted int
	for _, r := range e.sim.Requests() {
		if r.Fault != "" {
			faulted++
		}
	}
	if faulted != 2+1+failed+1+1 {
		t.Fatalf("request log counts %d faults", faulted)
	}
	e.sim.ClearFaults()
}

func TestServer_RequestBudget(t *testing.T) {
	e := newEnv(t, func(o *graphsim.Options) { o.RequestBudget = 5 })
	tok := e.appToken(daemonApp, daemonSec)
	other := e.appToken(noRolesApp, "x")
	for i := 0; i < 5; i++ {
		if resp, _ := e.graph(http.MethodGet, "/users/"+aliceID, tok, nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		e.clock.Advance(time.Second)
	}
	resp, body := e.graph(http.MethodGet, "/users/"+aliceID, tok, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "25" {
		t.Fatalf("over budget: %d %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// The budget is per app.
	if resp, _ := e.graph(http.MethodGet, "/users/"+aliceID, other, nil); resp.StatusCode == 429 {
		t.Fatal("another app was throttled")
	}
	e.clock.Advance(25 * time.Second)
	if resp, _ := e.graph(http.MethodGet, "/users/"+aliceID, tok, nil); resp.StatusCode != 200 {
		t.Fatalf("after Retry-After: %d", resp.StatusCode)
	}
}

func TestServer_RequestLog(t *testing.T) {
	e := newEnv(t)
	tok := e.appToken(daemonApp, daemonSec)
	set(e, tok, aliceID, "Busy", "InACall", "PT10M")
	reqs := e.sim.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests logged", len(reqs))
	}
	token, sp := reqs[0], reqs[1]
	if token.Form.Get("client_secret") != "REDACTED" || token.Form.Get("client_id") != daemonApp || token.Body != nil || token.Status != 200 {
		t.Fatalf("token request %+v", token)
	}
	if strings.Contains(string(token.Body), daemonSec) {
		t.Fatal("secret in the log")
	}
	j := sp.JSON.(map[string]any)
	if sp.Path != "/v1.0/users/"+aliceID+"/presence/setPresence" || !sp.Gzip || sp.Status != 200 || sp.AppID != daemonApp || j["activity"] != "InACall" || j["expirationDuration"] != "PT10M" {
		t.Fatalf("setPresence %+v", sp)
	}
	e.sim.ResetRequests()
	if len(e.sim.Requests()) != 0 {
		t.Fatal("not reset")
	}
}

func TestServer_CloseAbortsHandshake(t *testing.T) {
	e := newEnv(t)
	tok := e.serviceToken()
	e.rcv.setMode("hang")
	done := make(chan int, 1)
	go func() {
		// The handshake will hang until Close.
		req, _ := http.NewRequest(http.MethodPost, e.sim.GraphURL()+"/subscriptions", strings.NewReader(
			`{"changeType":"updated","notificationUrl":"`+e.rcv.ts.URL+`/n","resource":"communications/presences/`+aliceID+
				`","expirationDateTime":"`+e.clock.Now().Add(time.Hour).Format(graphTime)+`"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		code := 0
		if resp, err := e.http.Do(req); err == nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		done <- code
	}()
	e.drainValidations(1)
	start := time.Now()
	if err := e.sim.Close(); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Close took %v", time.Since(start))
	}
	select {
	case code := <-done:
		if code == 201 {
			t.Fatal("subscription created without a handshake")
		}
	case <-time.After(waitTimeout):
		t.Fatal("client still waiting after Close")
	}
	if _, err := e.http.Get(e.sim.URL() + "/common/discovery/keys"); err == nil {
		t.Fatal("server still answering after Close")
	}
}
