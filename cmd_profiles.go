package main

import (
	"encoding/json"
	"fmt"

	"github.com/presencebridge/presencebridge/service"
	psync "github.com/presencebridge/presencebridge/sync"
)

const profilesUsage = `profiles [subcommand] [arguments] [--db FILE] [--socket PATH]

  profiles [list] [--json]       every profile, its users and the flags that are on
  profiles add NAME [--from P]   a new profile with a new profile's flags, or P's
  profiles rename OLD NEW        rename; its users and default_profile move along
  profiles remove NAME           remove a profile no user is on

A profile's flags: presencebridge config set profile.NAME.FLAG on|off
(config list shows every flag with what it does).`

func cmdProfiles(g *globals, _ string, args []string) error {
	sub, rest := subcommand(args, "db", "socket", "from")
	fs := newFlags("profiles", profilesUsage, g.stderr)
	w := g.whereFlags(fs)
	var (
		words []string
		err   error
	)
	switch sub {
	case "", "list":
		asJSON := fs.Bool("json", false, "print the profiles as JSON")
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
		ps, err := a.api.Profiles(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(g.stdout).Encode(ps)
		}
		us, err := a.api.ConfiguredUsers(ctx)
		if err != nil {
			return err
		}
		def, err := a.api.Get(ctx, "default_profile")
		if err != nil {
			return err
		}
		service.WriteProfiles(g.stdout, ps, us, def)
		return nil
	case "add":
		from := fs.String("from", "", "copy the flags of this profile")
		if words, err = parseN(fs, rest, 1, "the profile's name"); err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		a, err := g.openAdmin(ctx, w, writing)
		if err != nil {
			return err
		}
		defer a.close()
		p := psync.NewProfile(words[0])
		if *from != "" {
			ps, err := a.api.Profiles(ctx)
			if err != nil {
				return err
			}
			found := false
			for _, q := range ps {
				if q.Name == *from {
					p, found = q, true
					p.Name = words[0]
				}
			}
			if !found {
				return fmt.Errorf("--from: no profile %q", safe(*from))
			}
		}
		if err := a.api.AddProfile(ctx, p); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "added profile %s; its flags: presencebridge config set profile.%s.FLAG on|off\n", p.Name, p.Name)
		return nil
	case "rename":
		if words, err = parseN(fs, rest, 2, "OLD and NEW names"); err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		a, err := g.openAdmin(ctx, w, writing)
		if err != nil {
			return err
		}
		defer a.close()
		return a.api.RenameProfile(ctx, words[0], words[1])
	case "remove":
		if words, err = parseN(fs, rest, 1, "the profile's name"); err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		a, err := g.openAdmin(ctx, w, writing)
		if err != nil {
			return err
		}
		defer a.close()
		return a.api.DeleteProfile(ctx, words[0])
	}
	fs.Usage()
	return fmt.Errorf("unknown profiles command %q", sub)
}
