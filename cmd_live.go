package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/presencebridge/presencebridge/service"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/tui"
)

// The commands that watch the running bridge: console, status, logs.

func cmdConsole(g *globals, _ string, args []string) error {
	fs := newFlags("console", "console [--socket PATH]", g.stderr)
	sock := g.socketFlag(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	c, err := g.client(*sock)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, stop := signalContext()
	defer stop()
	if _, err := c.Overview(ctx); err != nil {
		return err // not running: say so before taking the screen
	}
	sum, err := tui.Run(ctx, c, tui.Options{Version: version}, g.stdin, g.stdout)
	fmt.Fprintln(g.stdout, sum)
	return err
}

func cmdStatus(g *globals, _ string, args []string) error {
	fs := newFlags("status", "status [--socket PATH] [--db FILE] [--json]", g.stderr)
	w := g.whereFlags(fs)
	asJSON := fs.Bool("json", false, "print the bridge's overview as JSON")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	c, err := g.client(*w.socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, stop := signalContext()
	defer stop()
	ov, err := c.Overview(ctx)
	if *asJSON {
		if err != nil {
			return err
		}
		return json.NewEncoder(g.stdout).Encode(ov)
	}
	fmt.Fprintf(g.stdout, "OS service: %s\n", service.ServiceState())
	if err != nil {
		// Which database the admin commands would open instead.
		path, _, perr := dbChoice(*w.db)
		if inst, installed, _ := service.FindInstalled(serviceFile()); installed && *w.db == "" && os.Getenv("PRESENCEBRIDGE_DB") == "" {
			path = inst.DB
		}
		if perr == nil {
			state := "exists"
			if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
				state = "does not exist"
			}
			fmt.Fprintf(g.stdout, "database:   %s (%s; no bridge runs on it)\n", path, state)
		}
		return err
	}
	if d, derr := c.Database(ctx); derr == nil {
		fmt.Fprintf(g.stdout, "database:   %s\n", d.Path)
	}
	service.WriteOverview(g.stdout, ov, time.Now())
	return nil
}

func cmdLogs(g *globals, _ string, args []string) error {
	fs := newFlags("logs", "logs [-n N] [-f] [--user ID] [--json] [--db FILE] [--socket PATH]", g.stderr)
	w := g.whereFlags(fs)
	n := fs.Int("n", 20, fmt.Sprintf("show the last N decisions (1..%d)", service.MaxAuditLimit))
	follow := fs.Bool("f", false, "then follow new decisions live until Ctrl-C (needs the running bridge)")
	user := fs.String("user", "", "only this user's decisions")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *n < 1 || *n > service.MaxAuditLimit {
		return fmt.Errorf("-n must be between 1 and %d, not %d", service.MaxAuditLimit, *n)
	}
	ctx, stop := signalContext()
	defer stop()
	a, err := g.openAdmin(ctx, w, reading)
	if err != nil {
		return err
	}
	defer a.close()
	// Subscribe before reading the past, so nothing falls between the two
	// (a decision made in that instant may show twice).
	var live <-chan psync.Decision
	if *follow {
		if a.client == nil {
			return fmt.Errorf("-f follows the running bridge, and none answers (it would be on the control socket); the past decisions are in %s: run without -f", a.path)
		}
		if live, err = a.client.Events(ctx); err != nil {
			return err
		}
	}
	var past []psync.Decision
	if *user != "" {
		past, err = a.api.History(ctx, psync.UserID(*user), *n)
	} else {
		past, err = a.api.Audit(ctx, *n)
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(g.stdout)
	show := func(d psync.Decision) {
		if *asJSON {
			enc.Encode(d)
			return
		}
		service.WriteDecision(g.stdout, d)
	}
	for i := len(past) - 1; i >= 0; i-- { // oldest first, like a log
		show(past[i])
	}
	if !*follow {
		return nil
	}
	for d := range live {
		if *user == "" || d.User == psync.UserID(*user) {
			show(d)
		}
	}
	if ctx.Err() == nil {
		return errors.New("the service closed the stream (stopped or restarting)")
	}
	return nil
}
