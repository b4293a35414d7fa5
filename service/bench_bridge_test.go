package service

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

// benchBridge is an in-process bridge for the end-to-end benchmarks, wired
// as the daemon wires it: the store on a temporary file (its write-ahead
// fsync included), the Graph adapter and the phone connector built from the
// stored settings (RealRebuilders) and the engine; stopped when b ends.
type benchBridge struct {
	graph   *graphsim.Server
	teamsID string // the one user's Entra id
	engine  *psync.Engine
	phone   psync.PhoneSystem
	sent    *sentTimes // setPresence leaving the Graph client
}

// startBenchBridge runs one user, Anna (extension 201), on prof, with the
// phone settings given; observe sees every decision.
func startBenchBridge(b testing.TB, phoneSettings map[string]string, prof psync.Profile, observe func(psync.Decision)) *benchBridge {
	b.Helper()
	const tenant, app, secret, teamsID = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000", "bench-secret", "00000000-0000-0000-0000-00000000a001"
	g, err := graphsim.New(graphsim.Options{TenantID: tenant,
		Apps:  []graphsim.App{{ClientID: app, Secrets: []string{secret}, Roles: []string{"Presence.ReadWrite.All", "User.Read.All"}}},
		Users: []graphsim.User{{ID: teamsID, UserPrincipalName: "anna@contoso.example", DisplayName: "Anna"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	if err := g.SignIn(teamsID); err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(filepath.Join(b.TempDir(), "state.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	values := map[string]string{
		"teams.tenant_id": tenant, "teams.client_id": app, "teams.client_secret": secret,
		"teams.authority_url": g.URL(), "teams.graph_url": g.GraphURL(),
	}
	for k, v := range phoneSettings {
		values[k] = v
	}
	for key, v := range values {
		if err := db.SetSetting(key, v); err != nil {
			b.Fatal(err)
		}
	}
	if prof.Name != psync.DefaultProfileName {
		if err := db.PutProfile(prof); err != nil {
			b.Fatal(err)
		}
	}
	user := psync.User{ID: "anna", Extension: "201", TeamsID: teamsID, UPN: "anna@contoso.example", DisplayName: "Anna", Profile: prof.Name}
	if err := db.PutUser(user); err != nil {
		b.Fatal(err)
	}
	stored, err := db.Settings()
	if err != nil {
		b.Fatal(err)
	}
	parsed, err := psync.ParseSettings(stored)
	if err != nil {
		b.Fatal(err)
	}
	profiles, err := db.Profiles()
	if err != nil {
		b.Fatal(err)
	}
	users := []psync.User{user}
	env := AdapterEnv{DB: db, Settings: stored, Parsed: parsed, Users: users, Meter: psync.NopMeter{}}
	ctx := context.Background()
	hc, sent := tapSent(g.Client(), "/setPresence")
	rb := RealRebuilders(AdapterOptions{TeamsHTTPClient: hc})
	tc, err := rb.Teams(ctx, env)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeSide(tc) })
	phone, err := rb.Phone(ctx, env)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeSide(phone) })
	engine, err := psync.NewEngine(psync.EngineConfig{Settings: parsed, Profiles: profiles, Users: users,
		Teams: tc, Phone: phone, Journal: db, Observe: observe})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- engine.Run(runCtx) }()
	b.Cleanup(func() {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		_ = engine.Shutdown(sctx)
		cancel()
		<-done
	})
	// Both sides read: the engine knows the user's state on both.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := engine.Status(ctx)
		if err == nil && st.Teams.Synced && st.Phone.Synced && st.Teams.Healthy && st.Phone.Healthy {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the bridge did not sync within 30 s: %+v", st)
		}
	}
	return &benchBridge{graph: g, teamsID: teamsID, engine: engine, phone: phone, sent: sent}
}
