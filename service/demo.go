// Package service holds the ways of running presencebridge: the demo with a
// simulated office, and (later) the OS service, its lifecycle and the local
// control API. It wires the store, the sides and the engine together.
package service

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

// DemoOptions are the knobs of `presencebridge demo`.
type DemoOptions struct {
	DB       string        // database path; "" = a temporary one, removed afterwards
	Users    int           // people in the office
	Seed     uint64        // seed of the people's behaviour
	Duration time.Duration // 0 = until ctx ends (Ctrl-C)
	Every    time.Duration // time between two things people do
	Logger   *slog.Logger
}

// Demo runs the real engine and store against an in-process simulated
// office and prints one line per decision (and per thing people do) to out.
// It stops when ctx ends or the duration is over, releasing what the bridge
// holds.
func Demo(ctx context.Context, o DemoOptions, out io.Writer) error {
	if o.Users < 1 || o.Users > 10000 {
		return fmt.Errorf("--users must be between 1 and 10000, not %d", o.Users)
	}
	if o.Every <= 0 {
		return fmt.Errorf("--every must be positive")
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

	office := simoffice.New(o.Users, o.Seed, psync.RealClock{})
	if err := seedOffice(db, office.Users()); err != nil {
		return err
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
	// The simulated office has its own users; profiles edited in the
	// database (config set profile.…) apply to them.
	users := office.Users()
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
		select {
		case lines <- s:
		default: // a slow terminal must not slow the engine
		}
	}
	holds, err := db.Holds()
	if err != nil {
		return err
	}
	say(fmt.Sprintf("presencebridge demo: %d people, seed %d, database %s", len(users), o.Seed, path))
	if len(holds) > 0 {
		say(fmt.Sprintf("adopting %d holds left by an earlier run (crash recovery, presence-rules.md §4.4)", len(holds)))
	}
	say("columns: time, user, side, what: old -> new (why; profile: flag) outcome")

	engine, err := psync.NewEngine(psync.EngineConfig{
		Settings: settings, Profiles: profiles, Users: users,
		Teams: office.Teams, Phone: office.Phone, Journal: db,
		Logger: o.Logger, Seed: o.Seed,
		Observe: func(d psync.Decision) { say(d.String()) },
	})
	if err != nil {
		return err
	}
	runCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	done := make(chan error, 1)
	go func() { done <- engine.Run(runCtx) }()

	peopleCtx, stopPeople := context.WithCancel(ctx)
	if o.Duration > 0 {
		peopleCtx, stopPeople = context.WithTimeout(ctx, o.Duration)
	}
	defer stopPeople()
	office.Run(peopleCtx, o.Every, func(s string) { say(time.Now().Format("15:04:05.000") + " * " + s) })

	say("stopping: releasing everything the bridge holds")
	shCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shErr := engine.Shutdown(shCtx)
	stopEngine()
	runErr := <-done
	close(lines)
	<-printed
	if shErr != nil {
		return fmt.Errorf("shutdown: %w", shErr)
	}
	return runErr
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
