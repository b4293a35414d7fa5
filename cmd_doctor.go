package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/presencebridge/presencebridge/service"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams"
)

func cmdDoctor(g *globals, _ string, args []string) error {
	fs := newFlags("doctor", "doctor [--db FILE] [--socket PATH]\n\n"+
		"Checks both sides step by step with real requests and prints each check as it\n"+
		"completes, with the fix for what fails. While the bridge runs, it checks with\n"+
		"the bridge's configuration through its control socket.", g.stderr)
	w := g.whereFlags(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	a, err := g.openAdmin(ctx, w, reading)
	if err != nil {
		return err
	}
	defer a.close()
	via := "opened by this command"
	if a.client != nil {
		via = "through the running bridge"
	}
	fmt.Fprintf(g.stdout, "doctor: the configuration in %s (%s)\n", a.path, via)
	var (
		mu                           sync.Mutex
		total, failed, warned, skips int
	)
	err = a.api.Doctor(ctx, func(c psync.Check) {
		if ctx.Err() != nil {
			return // cut short by Ctrl-C: not a finding about the side
		}
		mu.Lock()
		defer mu.Unlock()
		total++
		switch {
		case c.Skipped:
			skips++
		case c.Failed():
			failed++
		case c.Warn:
			warned++
		}
		service.WriteDoctorCheck(g.stdout, c)
	})
	if ctx.Err() != nil {
		return errCancelled
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%d checks: %d ok, %d failed, %d warnings, %d skipped\n", total, total-failed-warned-skips, failed, warned, skips)
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

func cmdSignIn(g *globals, _ string, args []string) error {
	fs := newFlags("signin", "signin ACCOUNT [--db FILE] [--socket PATH]\n\n"+
		"Signs in a Teams service account (a UPN listed in teams.service_accounts) with a\n"+
		"device code, for subscribe mode.", g.stderr)
	w := g.whereFlags(fs)
	words, err := parseN(fs, args, 1, "the service account (a UPN listed in teams.service_accounts)")
	if err != nil {
		return err
	}
	account := words[0]
	ctx, stop := signalContext()
	defer stop()
	a, err := g.openAdmin(ctx, w, reading)
	if err != nil {
		return err
	}
	defer a.close()
	if a.client != nil {
		// The running bridge holds the sign-in and keeps its tokens.
		p, err := a.client.StartSignIn(ctx, account)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s\n(the code expires at %s; the running bridge completes the sign-in once it is entered, and keeps it in %s)\n",
			safe(p.Message), p.Expires.Local().Format("15:04"), a.path)
		return nil
	}
	return signInHere(ctx, g, a, account)
}

// signInHere runs the device-code sign-in in this process, keeping the
// account's tokens in the database it opened.
func signInHere(ctx context.Context, g *globals, a *admin, account string) error {
	if a.db == nil {
		return errors.New("no database open")
	}
	values, err := a.db.Settings()
	if err != nil {
		return err
	}
	cfg, err := teams.ConfigFromSettings(values)
	if err != nil {
		return err
	}
	cfg.Store = service.StorePersistence(a.db)
	c, err := teams.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	done := make(chan error, 1)
	p, err := c.StartSignInWait(ctx, account, func(err error) { done <- err })
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%s\n(the code expires at %s)\n", safe(p.Message), p.Expires.Local().Format("15:04"))
	select {
	case err := <-done:
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s is signed in; the sign-in is kept in %s\n", safe(p.Account), a.path)
		return nil
	case <-ctx.Done():
		return errCancelled
	}
}
