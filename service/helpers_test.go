package service_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

// shortDir is a temporary directory with a short path: a Unix socket path
// must fit in 108 bytes, and t.TempDir() embeds the test's name.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// seedDB writes the simulated office's profiles and users into a new database.
func seedDB(t *testing.T, path string, users []psync.User) {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, p := range simoffice.Profiles() {
		if err := db.PutProfile(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range users {
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// meter classifies a side's answer the way a real adapter reports it.
func result(err error) string {
	var ra *psync.RetryAfterError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ra):
		return "throttled"
	case errors.Is(err, psync.ErrRejected):
		return "rejected"
	case errors.Is(err, psync.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// meteredTeams is the simulated tenant reporting its calls to the meter,
// as the Graph adapter does.
type meteredTeams struct {
	*simoffice.Teams
	m psync.Meter
}

func (t meteredTeams) Run(ctx context.Context, users []psync.User, ev chan<- psync.TeamsEvent) error {
	// A subscribe-mode adapter reports its subscriptions like this.
	t.m.Subscriptions(psync.SideTeams, 3, time.Unix(2_000_000_000, 0))
	return t.Teams.Run(ctx, users, ev)
}

func (t meteredTeams) SetPresence(ctx context.Context, u psync.User, activity string, lease time.Duration) error {
	began := time.Now()
	err := t.Teams.SetPresence(ctx, u, activity, lease)
	t.m.Call(psync.SideTeams, "setPresence", result(err), time.Since(began))
	return err
}

func (t meteredTeams) ClearPresence(ctx context.Context, u psync.User) (psync.TeamsPresence, error) {
	began := time.Now()
	p, err := t.Teams.ClearPresence(ctx, u)
	t.m.Call(psync.SideTeams, "clearPresence", result(err), time.Since(began))
	return p, err
}

type meteredPhone struct {
	*simoffice.Phone
	m psync.Meter
}

func (p meteredPhone) SetPresence(ctx context.Context, u psync.User, set psync.PresenceMark, own []psync.PresenceMark) error {
	began := time.Now()
	err := p.Phone.SetPresence(ctx, u, set, own)
	p.m.Call(psync.SidePhone, "setPresence", result(err), time.Since(began))
	return err
}

func (p meteredPhone) RestorePresence(ctx context.Context, u psync.User, own []psync.PresenceMark, restore psync.PresenceMark) error {
	began := time.Now()
	err := p.Phone.RestorePresence(ctx, u, own, restore)
	p.m.Call(psync.SidePhone, "restorePresence", result(err), time.Since(began))
	return err
}

// reporter describes a simulated side for the dashboard.
type reporter struct{ r psync.SideReport }

func (r reporter) Report() psync.SideReport { return r.r }

// fakeSignIn is a device-code flow that answers at once.
type fakeSignIn struct{}

func (fakeSignIn) StartSignIn(_ context.Context, account string) (psync.SignInPrompt, error) {
	return psync.SignInPrompt{Account: account, Code: "ABCD-EFGH", URL: "https://microsoft.com/devicelogin", Expires: time.Now().Add(15 * time.Minute)}, nil
}

// bridge is a daemon running against a simulated office in a test.
type bridge struct {
	office  *simoffice.Office
	db      string
	socket  string
	run     service.Running
	logs    *syncBuffer
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

type bridgeOpts struct {
	users   int
	peers   *service.PeerPolicy
	metrics string
	signIn  bool
	// stopTimeout bounds the graceful stop (0: the daemon's default).
	stopTimeout time.Duration
}

// startBridge seeds a database, runs the daemon with simulated sides and
// waits until it serves.
func startBridge(t *testing.T, o bridgeOpts) *bridge {
	t.Helper()
	if o.users == 0 {
		o.users = 4
	}
	dir := shortDir(t)
	b := &bridge{
		office: simoffice.New(o.users, 1, psync.RealClock{}),
		db:     filepath.Join(dir, "state.db"),
		socket: filepath.Join(dir, "run", "control.sock"),
		logs:   &syncBuffer{},
		done:   make(chan error, 1),
	}
	seedDB(t, b.db, b.office.Users())
	ready := make(chan service.Running, 1)
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	opts := service.DaemonOptions{
		DBPath: b.db, Socket: b.socket, Group: "root", Peers: o.peers, MetricsAddr: o.metrics,
		Logger:  slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version: "test", Mode: "foreground", StopTimeout: o.stopTimeout,
		Adapters: func(ctx context.Context, env service.AdapterEnv) (service.Adapters, error) {
			ad := service.Adapters{
				Teams: meteredTeams{b.office.Teams, env.Meter},
				Phone: meteredPhone{b.office.Phone, env.Meter},
				Reporters: []psync.Reporter{
					reporter{psync.SideReport{Side: psync.SideTeams, Name: "Microsoft Graph", Mode: "simulated", Connected: true}},
					reporter{psync.SideReport{Side: psync.SidePhone, Name: "simulated phone system", Connected: true,
						Throttled: time.Now().Add(time.Hour)}},
				},
			}
			if o.signIn {
				ad.SignIn = fakeSignIn{}
			}
			return ad, nil
		},
		Ready: func(r service.Running) { ready <- r },
	}
	go func() { b.done <- service.RunDaemon(ctx, opts) }()
	select {
	case b.run = <-ready:
	case err := <-b.done:
		cancel()
		t.Fatalf("daemon did not start: %v\n%s", err, b.logs)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("daemon not ready after 10 s\n%s", b.logs)
	}
	t.Cleanup(func() {
		if !b.stopped {
			b.stop(t)
		}
	})
	// The sides' first snapshots must be in before tests look at users.
	waitFor(t, "both sides synced", func() bool {
		st, err := b.run.Local.Overview(context.Background())
		return err == nil && st.Engine.Teams.Synced && st.Engine.Phone.Synced
	})
	return b
}

// stop cancels the daemon and returns how long the graceful stop took.
func (b *bridge) stop(t *testing.T) (time.Duration, error) {
	t.Helper()
	b.stopped = true
	began := time.Now()
	b.cancel()
	select {
	case err := <-b.done:
		return time.Since(began), err
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon did not stop within 15 s\n%s", b.logs)
	}
	return 0, nil
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
