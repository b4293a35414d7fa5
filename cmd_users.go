package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/presencebridge/presencebridge/service"
	psync "github.com/presencebridge/presencebridge/sync"
)

const usersUsage = `users [subcommand] [arguments] [--db FILE] [--socket PATH]

  users [--json]                 every user's live state (needs the running bridge)
  users list [--json]            the configured users
  users add ID [--name N] [--upn U] [--extension E] [--teams-id T] [--profile P]
                                 add a user (ID: the phone system's key, e.g. the
                                 UCServer contact id sip:anna@contoso.com)
  users set ID [--name N] [--upn U] [--extension E] [--teams-id T] [--profile P]
                                 change what is given ("" clears it; --name renames)
  users remove ID                remove a user; a running bridge first gives back
                                 what it holds for them

While the bridge runs, changes go through its control socket and apply at once.`

// userFlags are the fields of users add/set.
type userFlags struct {
	name, upn, extension, teamsID, profile *string
}

func addUserFlags(fs *flag.FlagSet) userFlags {
	return userFlags{
		name:      fs.String("name", "", "display name"),
		upn:       fs.String("upn", "", "Entra user principal name (name@contoso.com)"),
		extension: fs.String("extension", "", "dialable number, for display"),
		teamsID:   fs.String("teams-id", "", "Entra user object id (a GUID; found by --upn when empty)"),
		profile:   fs.String("profile", "", `profile ("" = default_profile)`),
	}
}

// apply copies the flags given on the command line into u.
func (f userFlags) apply(fs *flag.FlagSet, u *psync.User) {
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "name":
			u.DisplayName = *f.name
		case "upn":
			u.UPN = *f.upn
		case "extension":
			u.Extension = *f.extension
		case "teams-id":
			u.TeamsID = *f.teamsID
		case "profile":
			u.Profile = *f.profile
		}
	})
}

func cmdUsers(g *globals, _ string, args []string) error {
	sub, rest := subcommand(args, "db", "socket", "name", "upn", "extension", "teams-id", "profile")
	fs := newFlags("users", usersUsage, g.stderr)
	w := g.whereFlags(fs)
	switch sub {
	case "":
		asJSON := fs.Bool("json", false, "print the users as JSON")
		if err := parseNoArgs(fs, rest); err != nil {
			return err
		}
		return g.liveUsers(*w.socket, *asJSON)
	case "list":
		asJSON := fs.Bool("json", false, "print the users as JSON")
		if err := parseNoArgs(fs, rest); err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		a, err := g.openAdmin(ctx, w, reading)
		if err != nil {
			return err
		}
		defer a.close()
		us, err := a.api.ConfiguredUsers(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if us == nil {
				us = []psync.User{}
			}
			return json.NewEncoder(g.stdout).Encode(us)
		}
		service.WriteConfiguredUsers(g.stdout, us)
		return nil
	case "add", "set":
		uf := addUserFlags(fs)
		words, err := parseN(fs, rest, 1, "the user's ID")
		if err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		a, err := g.openAdmin(ctx, w, writing)
		if err != nil {
			return err
		}
		defer a.close()
		id := psync.UserID(words[0])
		if sub == "add" {
			u := psync.User{ID: id}
			uf.apply(fs, &u)
			if err := a.api.AddUser(ctx, u); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "added user %s\n", safe(string(id)))
			return nil
		}
		u, err := a.api.ConfiguredUser(ctx, id)
		if err != nil {
			return err
		}
		uf.apply(fs, &u)
		return a.api.UpdateUser(ctx, u)
	case "remove":
		words, err := parseN(fs, rest, 1, "the user's ID")
		if err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		a, err := g.openAdmin(ctx, w, writing)
		if err != nil {
			return err
		}
		defer a.close()
		if err := a.api.RemoveUser(ctx, psync.UserID(words[0])); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "removed user %s\n", safe(words[0]))
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unknown users command %q", sub)
}

// liveUsers prints `users`: the running bridge's view of every user.
func (g *globals) liveUsers(socket string, asJSON bool) error {
	c, err := g.client(socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, stop := signalContext()
	defer stop()
	us, err := c.Users(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(g.stdout).Encode(us)
	}
	service.WriteUsers(g.stdout, us, time.Now())
	return nil
}

// safe drops control characters from text echoed back.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return -1
		}
		return r
	}, s)
}
