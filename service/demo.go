// Package service holds the ways of running presencebridge: the OS service
// and its foreground daemon, the local control API (server and client),
// metrics, and the demo with a simulated office. It wires the store, the
// sides and the engine together.
package service

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
	"github.com/presencebridge/presencebridge/sync/teams/webhook"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// DemoOptions are the knobs of `presencebridge demo`.
type DemoOptions struct {
	DB        string        // database path; "" = a temporary one, removed afterwards
	Users     int           // people in the office
	Seed      uint64        // seed of the people's behaviour
	Duration  time.Duration // 0 = until ctx ends (Ctrl-C)
	Every     time.Duration // time between two things people do
	TeamsMode string        // "poll" (default) or "subscribe"
	Version   string
	Logger    *slog.Logger
	// Console, when set, runs the live console on the demo's controller
	// instead of printing decisions; the demo stops when it returns.
	Console func(ctx context.Context, ctrl *Local) error
}

// demoApp is the bridge's app registration in the simulated tenant.
const (
	demoTenant  = "c0ffee00-0000-4000-8000-000000000001"
	demoApp     = "c0ffee00-0000-4000-8000-0000000000a1"
	demoService = "c0ffee00-0000-4000-8000-0000000000b1"
	demoSvcUPN  = "presence-service@contoso.example"
)

// Demo runs the real engine, store and adapters against an in-process
// simulated office: a Microsoft Graph simulator (graphsim, HTTPS on
// loopback) and an estos UCServer simulator (ucsim, WebSocket on loopback)
// in which simulated people make calls. It prints one line per decision
// (and per thing people do) to out, or runs the console. It stops when ctx
// ends or the duration is over, releasing what the bridge holds.
func Demo(ctx context.Context, o DemoOptions, out io.Writer) error {
	if o.Users < 1 || o.Users > 10000 {
		return fmt.Errorf("--users must be between 1 and 10000, not %d", o.Users)
	}
	if o.Every <= 0 {
		return fmt.Errorf("--every must be positive")
	}
	if o.TeamsMode == "" {
		o.TeamsMode = "poll"
	}
	if o.TeamsMode != "poll" && o.TeamsMode != "subscribe" {
		return fmt.Errorf("--teams-mode %q: want poll or subscribe", o.TeamsMode)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	path := o.DB
	if path == "" {
		dir, err := os.MkdirTemp("", "presencebridge-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "state.db")
	}
	db, err := store.Open(path, store.Options{Logger: o.Logger})
	if err != nil {
		return err
	}
	defer db.Close()
	// The demo writes its simulators' tenant, secret and UCServer address
	// into the settings: never over a real configuration.
	if err := db.ClaimForDemo(); errors.Is(err, store.ErrNotDemo) {
		return fmt.Errorf("%w: the demo would overwrite its Teams and UCServer settings with the simulators'; "+
			"give the demo a database of its own (--db NEW-FILE) or none (a temporary one)", err)
	} else if err != nil {
		return err
	}

	users := simoffice.Users(o.Users)
	if err := seedOffice(db, users); err != nil {
		return err
	}
	// Profiles edited in the database (config set, the console) apply.
	stored, err := db.Users()
	if err != nil {
		return err
	}
	byID := map[psync.UserID]psync.User{}
	for _, u := range stored {
		byID[u.ID] = u
	}
	for i, u := range users {
		if s, ok := byID[u.ID]; ok {
			users[i].Profile = s.Profile
		}
	}

	w := bufio.NewWriter(out)
	lines := make(chan string, 4096)
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for l := range lines {
			fmt.Fprintln(w, l)
			if len(lines) == 0 {
				w.Flush()
			}
		}
		w.Flush()
	}()
	say := func(s string) {
		if o.Console != nil {
			return // the console owns the screen; it shows the decisions
		}
		select {
		case lines <- s:
		default: // a slow terminal must not slow the engine
		}
	}
	defer func() { close(lines); <-printed }()

	// The simulators, and settings that point the real adapters at them.
	sims, err := startDemoSims(users, o, say)
	if err != nil {
		return err
	}
	defer sims.close()
	for k, v := range sims.settings {
		if err := db.SetSetting(k, v); err != nil {
			return fmt.Errorf("demo settings: %w", err)
		}
	}
	values, err := db.Settings()
	if err != nil {
		return err
	}
	settings, err := psync.ParseSettings(values)
	if err != nil {
		return fmt.Errorf("settings in %s: %w", path, err)
	}
	profiles, err := db.Profiles()
	if err != nil {
		return err
	}
	holds, err := db.Holds()
	if err != nil {
		return err
	}
	say(fmt.Sprintf("presencebridge demo: %d people, seed %d, database %s", len(users), o.Seed, path))
	say(fmt.Sprintf("Teams: the Graph adapter (%s mode) against graphsim at %s", o.TeamsMode, sims.graph.URL()))
	say(fmt.Sprintf("phone: the UCServer connector against ucsim at %s", sims.uc.URL()))
	if len(holds) > 0 {
		say(fmt.Sprintf("adopting %d holds left by an earlier run (crash recovery, presence-rules.md §4.4)", len(holds)))
	}
	say("columns: time, user, side, what: old -> new (why; profile: flag) outcome")

	ad, err := RealAdapters(sims.adapterOptions)(ctx, AdapterEnv{DB: db, Settings: values, Parsed: settings, Users: users, Meter: psync.NopMeter{}, Logger: o.Logger})
	if err != nil {
		return err
	}
	defer ad.Close()
	hub := NewHub()
	defer hub.Close()
	engine, err := psync.NewEngine(psync.EngineConfig{
		Settings: settings, Profiles: profiles, Users: users,
		Teams: ad.Teams, Phone: ad.Phone, Journal: db,
		Logger: o.Logger, Seed: o.Seed,
		Observe: func(d psync.Decision) { say(d.String()); hub.Publish(d) },
	})
	if err != nil {
		return err
	}
	runCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	done := make(chan error, 1)
	go func() { done <- engine.Run(runCtx) }()
	// On an early return, wait for the engine before the deferred closes
	// below it (hub, adapters, simulators, store) pull things from under it.
	engineDone := false
	defer func() {
		if !engineDone {
			stopEngine()
			<-done
		}
	}()

	if o.TeamsMode == "subscribe" {
		// What the admin does once per service account: open the URL and
		// enter the code. The demo's simulated admin approves it.
		p, err := ad.SignIn.StartSignIn(ctx, "")
		if err != nil {
			return err
		}
		say(fmt.Sprintf("sign-in of %s: open %s and enter %s (the demo approves it)", p.Account, p.URL, p.Code))
		if err := sims.graph.ApproveDeviceCode(p.Code, demoService); err != nil {
			return err
		}
	}

	peopleCtx, stopPeople := context.WithCancel(ctx)
	if o.Duration > 0 {
		peopleCtx, stopPeople = context.WithTimeout(ctx, o.Duration)
	}
	defer stopPeople()
	world := sims.world(users, say)
	office := simoffice.NewInWorld(users, o.Seed, world)
	if o.Console != nil {
		var reps []psync.Reporter
		for _, side := range []any{ad.Teams, ad.Phone} {
			if r, ok := side.(psync.Reporter); ok {
				reps = append(reps, r)
			}
		}
		local, err := NewLocal(LocalConfig{Engine: engine, DB: db, Hub: hub, Reporters: reps, SignIn: ad.SignIn, Sides: sims.adapterOptions, Version: o.Version, Mode: "demo", Logger: o.Logger})
		if err != nil {
			return err
		}
		go local.Watch(peopleCtx)
		go office.Run(peopleCtx, o.Every, nil)
		err = o.Console(peopleCtx, local)
		stopPeople()
		if err != nil {
			o.Logger.Error("console", "err", err)
		}
	} else {
		office.Run(peopleCtx, o.Every, func(s string) { say(time.Now().Format("15:04:05.000") + " * " + s) })
	}

	say("stopping: releasing everything the bridge holds")
	shCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shErr := engine.Shutdown(shCtx)
	stopEngine()
	runErr := <-done
	engineDone = true
	if shErr != nil {
		return fmt.Errorf("shutdown: %w", shErr)
	}
	return runErr
}

// demoSims are the simulators a demo runs against.
type demoSims struct {
	graph          *graphsim.Server
	uc             *ucsim.Server
	settings       map[string]string
	adapterOptions AdapterOptions
	closers        []func()
}

func (s *demoSims) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func (s *demoSims) world(users []psync.User, say func(string)) *simWorld {
	w := &simWorld{graph: s.graph, uc: s.uc, users: map[psync.UserID]psync.User{}, lines: map[psync.UserID][]string{}, conns: map[string]string{}, say: say}
	for i, u := range users {
		w.users[u.ID] = u
		w.lines[u.ID] = simoffice.Devices(i)
	}
	return w
}

func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startDemoSims starts graphsim and ucsim with the office's people in them.
func startDemoSims(users []psync.User, o DemoOptions, say func(string)) (*demoSims, error) {
	s := &demoSims{}
	secret, ucPass := randomSecret(), randomSecret()
	gopts := graphsim.Options{
		TenantID: demoTenant, Logger: o.Logger,
		Apps: []graphsim.App{{ClientID: demoApp, DisplayName: "presencebridge (demo)", Secrets: []string{secret},
			Roles: []string{"Presence.ReadWrite.All", "User.Read.All"}, DelegatedScopes: []string{"Presence.Read.All"}, PublicClient: true}},
		Users: []graphsim.User{{ID: demoService, UserPrincipalName: demoSvcUPN, DisplayName: "Presence service account"}},
	}
	for _, u := range users {
		gopts.Users = append(gopts.Users, graphsim.User{ID: u.TeamsID, UserPrincipalName: u.UPN, DisplayName: u.DisplayName})
	}
	s.settings = map[string]string{"teams.mode": o.TeamsMode}
	if o.TeamsMode == "subscribe" {
		sc, err := webhook.NewServerCert("127.0.0.1")
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		gopts.NotificationClient = sc.Client()
		s.adapterOptions.WebhookListener, s.adapterOptions.WebhookCert = ln, &sc.TLS
		s.settings["teams.service_accounts"] = demoSvcUPN
		s.settings["teams.webhook_url"] = "https://" + ln.Addr().String()
	}
	g, err := graphsim.New(gopts)
	if err != nil {
		return nil, fmt.Errorf("graphsim: %w", err)
	}
	s.graph = g
	s.closers = append(s.closers, func() { g.Close() })
	for _, u := range users {
		if err := g.SignIn(u.TeamsID); err != nil { // everyone's Teams client is on
			s.close()
			return nil, err
		}
	}
	hc := g.Client()
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = 16 // as the product's own client
	s.adapterOptions.TeamsHTTPClient = hc

	uopts := ucsim.Options{Addr: "127.0.0.1:0", Logger: o.Logger, Users: []ucsim.User{
		{ContactID: "sip:presencebridge@contoso.example", DisplayName: "presencebridge", LoginName: "presencebridge", Password: ucPass},
	}}
	for i, u := range users {
		uu := ucsim.User{ContactID: string(u.ID), DisplayName: u.DisplayName, Email: u.UPN}
		for _, d := range simoffice.Devices(i) {
			uu.Lines = append(uu.Lines, ucsim.Line{URI: lineURI(u.ID, d), Descriptor: d})
		}
		uopts.Users = append(uopts.Users, uu)
	}
	uc := ucsim.New(uopts)
	if err := uc.Start(); err != nil {
		s.close()
		return nil, fmt.Errorf("ucsim: %w", err)
	}
	s.uc = uc
	s.closers = append(s.closers, func() { uc.Close() })
	for k, v := range map[string]string{
		"teams.tenant_id": demoTenant, "teams.client_id": demoApp, "teams.client_secret": secret,
		"teams.authority_url": g.URL(), "teams.graph_url": g.GraphURL(),
		"phone.system": "ucserver", "ucserver.url": uc.URL(), "ucserver.user": "presencebridge", "ucserver.password": ucPass,
	} {
		s.settings[k] = v
	}
	return s, nil
}

// seedOffice writes the office's profiles and users into a database that
// has none, so `config` shows and edits what the demo runs with.
func seedOffice(db *store.DB, users []psync.User) error {
	have, err := db.Users()
	if err != nil {
		return err
	}
	if len(have) > 0 {
		return nil
	}
	for _, p := range simoffice.Profiles() {
		if _, err := db.Profile(p.Name); err == nil {
			continue
		}
		if err := db.PutProfile(p); err != nil {
			return err
		}
	}
	for _, u := range users {
		if err := db.PutUser(u); err != nil {
			return err
		}
	}
	return nil
}
