package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/tui"
)

func cmdDemo(g *globals, _ string, args []string) error {
	fs := newFlags("demo", "demo [--users N] [--seed N] [--duration D] [--every D] [--teams-mode poll|subscribe] [--phone ucserver|sip|asterisk] [--headless] [--db FILE] [--socket PATH] [--outage-after D] [--outage-for D]", g.stderr)
	users := fs.Int("users", 12, "number of simulated people")
	seed := fs.Uint64("seed", 0, "seed of the people's behaviour (0: pick one and print it)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C, or q in the console)")
	every := fs.Duration("every", 400*time.Millisecond, "time between two things people do")
	mode := fs.String("teams-mode", "poll", "how the Graph adapter reads presence: poll, or subscribe (webhook)")
	phone := fs.String("phone", "ucserver", "the phone system simulated: ucserver (estos UCServer), sip (a SIP PBX with a Kamailio front proxy), asterisk (FreePBX over AMI)")
	headless := fs.Bool("headless", false, "print decisions as lines even on a terminal (no console)")
	db := fs.String("db", "", "database file of the demo's own (default: a temporary one, removed afterwards); "+
		"one that holds a configuration the demo did not create is refused")
	socket := fs.String("socket", "", "control socket of the demo, for status, users, logs and console (default: one in a temporary directory, removed afterwards)")
	outageAfter := fs.Duration("outage-after", service.DefaultOutage.First, "the simulated UCServer goes down this long after the start")
	outageFor := fs.Duration("outage-for", service.DefaultOutage.For, "for this long, and again every "+service.DefaultOutage.Every.String()+" (0: no outage)")
	verbose := fs.Bool("v", false, "log the bridge's own messages (to stderr; to a file with the console)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *duration < 0 || *outageAfter < 0 || *outageFor < 0 {
		return fmt.Errorf("--duration, --outage-after and --outage-for must not be negative")
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano()%1_000_000) + 1
	}
	console := !*headless && isTerminal(g.stdout)
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		w := g.stderr
		if console { // the console owns the screen
			f, err := os.CreateTemp("", "presencebridge-demo-*.log")
			if err != nil {
				return err
			}
			defer f.Close()
			fmt.Fprintf(g.stderr, "logging to %s\n", f.Name())
			w = f
		}
		logger = slog.New(slog.NewTextHandler(w, nil))
	}
	ctx, stop := signalContext()
	defer stop()
	outage := service.DefaultOutage
	outage.First, outage.For = *outageAfter, *outageFor
	opts := service.DemoOptions{DB: *db, Socket: *socket, Self: selfCommand(), Users: *users, Seed: *seed, Duration: *duration, Every: *every,
		TeamsMode: *mode, Phone: *phone, Outage: &outage, Version: version, Logger: logger}
	if console {
		opts.Console = func(ctx context.Context, ctrl *service.Local, notice string) error {
			// The demo prints its own summary once everything is released.
			_, err := tui.Run(ctx, ctrl, tui.Options{Version: version, Notice: notice}, g.stdin, g.stdout)
			return err
		}
	}
	return service.Demo(ctx, opts, g.stdout)
}

// selfCommand is how the admin calls this binary again from another
// terminal: `go run .` builds it in a temporary directory, which is gone
// after the run.
func selfCommand() string {
	exe := os.Args[0]
	if strings.Contains(exe, "go-build") {
		return "go run ."
	}
	return exe
}
