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
)

// DemoOptions are the knobs of `presencebridge demo`.
type DemoOptions struct {
	DB        string        // database path; "" = a temporary one, removed afterwards
	Socket    string        // control socket; "" = one in a temporary directory, removed afterwards
	Self      string        // how to call this binary, for the command line printed to try the socket
	Users     int           // people in the office
	Seed      uint64        // seed of the people's behaviour
	Duration  time.Duration // 0 = until ctx ends (Ctrl-C)
	Every     time.Duration // time between two things people do
	TeamsMode string        // "poll" (default) or "subscribe"
	// Phone is the phone system simulated (a phone.system value;
	// "" = ucserver).
	Phone string
	// Outage is when the simulated UCServer goes down, and for how long,
	// so that the demo shows failed commands and the bridge converging
	// when the side is back. nil: DefaultOutage; a zero For: none.
	Outage  *simoffice.Outage
	Version string
	Logger  *slog.Logger
	// Console, when set, runs the live console on the demo's controller
	// instead of printing decisions; the demo stops when it returns. notice
	// says where the control socket is, for the console to show.
	Console func(ctx context.Context, ctrl *Local, notice string) error
}

// DefaultOutage is the demo's scheduled UCServer outage: early enough that
// a one-minute demo shows a side down and the bridge catching up, long
// enough for commands to fail and be retried, and again every few minutes.
var DefaultOutage = simoffice.Outage{First: 20 * time.Second, For: 10 * time.Second, Every: 5 * time.Minute}

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
// in which simulated people make calls. It serves the control API on a
// socket of its own, so that status, users, logs and console can be tried
// against it. It prints one line per decision (and per thing people do) to
// out, or runs the console. It stops when ctx ends or the duration is over,
// releasing what the bridge holds, and prints a one-line summary.
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
	outage := DefaultOutage
	if o.Outage != nil {
		outage = *o.Outage
	}
	if o.Self == "" {
		o.Self = "presencebridge"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	started := time.Now()
	var tmp string
	if o.DB == "" || o.Socket == "" {
		dir, err := os.MkdirTemp("", "presencebridge-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		tmp = dir
	}
	path := o.DB
	if path == "" {
		path = filepath.Join(tmp, "state.db")
	}
	socket := o.Socket
	if socket == "" {
		socket = filepath.Join(tmp, "control.sock")
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

	if o.Phone == "" {
		o.Phone = "ucserver"
	}
	phone, err := phoneSystemOf(map[string]string{"phone.system": o.Phone})
	if err != nil || phone.demo == nil {
		return fmt.Errorf("--phone %q: want one of %s", o.Phone, demoPhoneNames())
	}
	users := simoffice.Users(o.Users)
	if phone.demoUsers != nil {
		users = phone.demoUsers(users)
	}
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
	// The summary is printed whatever the mode, after the console has
	// given the screen back, and is never dropped.
	var summary string
	defer func() {
		close(lines)
		<-printed
		if summary != "" {
			fmt.Fprintln(out, summary)
		}
	}()

	// The simulators, and settings that point the real adapters at them.
	sims, err := startDemoSims(users, o, phone)
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
	ln, err := ListenControl(socket, "", o.Logger)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer ln.Close()
	notice := fmt.Sprintf("control socket %s: try %s status --socket %s (also users, logs -f, console)", socket, o.Self, socket)
	say(fmt.Sprintf("presencebridge demo: %d people, seed %d, database %s", len(users), o.Seed, path))
	say(fmt.Sprintf("Teams: the Graph adapter (%s mode) against graphsim at %s", o.TeamsMode, sims.graph.URL()))
	say("phone: " + sims.phone.about)
	say(fmt.Sprintf("control socket: %s", socket))
	say(fmt.Sprintf("try in another terminal: %s status --socket %s   (also: users, logs -f, console)", o.Self, socket))
	if outage.For > 0 {
		again := "once"
		if outage.Every > outage.For {
			again = "again every " + outage.Every.String()
		}
		say(fmt.Sprintf("the simulated %s goes down %s after the start for %s (%s): commands fail, then the bridge catches up",
			phone.title, outage.First, outage.For, again))
	}
	if len(holds) > 0 {
		say(fmt.Sprintf("adopting %d holds left by an earlier run (crash recovery, sync/RULES.md §4.4)", len(holds)))
	}
	say("columns: time, user, side, what: old -> new (why; profile: flag) outcome")

	ad, err := RealAdapters(sims.adapterOptions)(ctx, AdapterEnv{DB: db, Settings: values, Parsed: settings, Users: users, Meter: psync.NopMeter{}, Logger: o.Logger})
	if err != nil {
		return err
	}
	defer ad.Close()
	hub := NewHub()
	defer hub.Close()
	// Counted on the engine goroutine, read after it has stopped.
	outcomes := psync.OutcomeCounts{}
	engine, err := psync.NewEngine(psync.EngineConfig{
		Settings: settings, Profiles: profiles, Users: users,
		Teams: ad.Teams, Phone: ad.Phone, Journal: db,
		Logger: o.Logger, Seed: o.Seed,
		Observe: func(d psync.Decision) { outcomes.Add(d); say(d.String()); hub.Publish(d) },
	})
	if err != nil {
		return err
	}
	var reps []psync.Reporter
	for _, side := range []any{ad.Teams, ad.Phone} {
		if r, ok := side.(psync.Reporter); ok {
			reps = append(reps, r)
		}
	}
	local, err := NewLocal(LocalConfig{Engine: engine, DB: db, Hub: hub, Reporters: reps, SignIn: ad.SignIn, Sides: sims.adapterOptions, Version: o.Version, Mode: "demo", Started: started, Logger: o.Logger})
	if err != nil {
		return err
	}
	policy, _ := DefaultPeerPolicy("") // root and the user running the demo
	srv, err := NewServer(ServerConfig{Local: local, Policy: &policy, Logger: o.Logger})
	if err != nil {
		return err
	}
	runCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	done := make(chan error, 1)
	go func() { done <- engine.Run(runCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	// On an early return, wait for the engine and the server before the
	// deferred closes below them (hub, adapters, simulators, store) pull
	// things from under them.
	engineDone := false
	defer func() {
		if !engineDone {
			hub.Close()
			srv.Shutdown(context.Background())
			<-serveDone
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
	office.Outage = outage
	go local.Watch(peopleCtx)
	// Run ends an outage under way as it returns: the bridge releases on
	// both sides up.
	if o.Console != nil {
		officeDone := make(chan struct{})
		go func() { defer close(officeDone); office.Run(peopleCtx, o.Every, nil) }()
		err = o.Console(peopleCtx, local, notice)
		stopPeople()
		<-officeDone
		if err != nil {
			o.Logger.Error("console", "err", err)
		}
	} else {
		office.Run(peopleCtx, o.Every, func(s string) { say(time.Now().Format("15:04:05.000") + " * " + s) })
	}

	say("stopping: releasing everything the bridge holds")
	hub.Close()
	apiCtx, apiCancel := context.WithTimeout(context.Background(), time.Second)
	_ = srv.Shutdown(apiCtx)
	apiCancel()
	<-serveDone
	st, _ := engine.Status(context.Background())
	shCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shErr := engine.Shutdown(shCtx)
	stopEngine()
	runErr := <-done
	engineDone = true
	left, herr := db.Holds()
	summary = demoSummary(time.Since(started), st.Stats, outcomes, len(left), herr)
	if shErr != nil {
		return fmt.Errorf("shutdown: %w", shErr)
	}
	return runErr
}

// demoSummary is the line the demo ends with: how long it ran, what the
// bridge saw and decided, and what it still holds (nothing, after a clean
// stop).
func demoSummary(up time.Duration, st psync.Stats, oc psync.OutcomeCounts, holds int, herr error) string {
	left := fmt.Sprintf("%d holds left", holds)
	if herr != nil {
		left = "holds left unknown (" + herr.Error() + ")"
	}
	return fmt.Sprintf("presencebridge demo: up %s · %d events (%d Teams, %d phone) · decisions: %s · %s",
		up.Round(time.Second), st.TeamsEvents+st.PhoneEvents, st.TeamsEvents, st.PhoneEvents, oc, left)
}

// demoSims are the simulators a demo runs against.
type demoSims struct {
	graph          *graphsim.Server
	phone          *demoPhone
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
	w := &simWorld{graph: s.graph, phone: s.phone.world, users: map[psync.UserID]psync.User{}, lines: map[psync.UserID][]string{}, say: say}
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

// startDemoSims starts graphsim and the phone system's simulator with the
// office's people in them.
func startDemoSims(users []psync.User, o DemoOptions, phone phoneSystem) (*demoSims, error) {
	s := &demoSims{}
	secret := randomSecret()
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

	ph, err := phone.demo(users, o)
	if err != nil {
		s.close()
		return nil, err
	}
	s.phone = ph
	s.closers = append(s.closers, ph.close)
	s.adapterOptions.PhoneRootCAs = ph.rootCAs
	for k, v := range ph.settings {
		s.settings[k] = v
	}
	for k, v := range map[string]string{
		"teams.tenant_id": demoTenant, "teams.client_id": demoApp, "teams.client_secret": secret,
		"teams.authority_url": g.URL(), "teams.graph_url": g.GraphURL(),
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
