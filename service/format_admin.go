package service

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// The CLI's renderings of the admin answers (config, profiles, users,
// doctor). Text from the database passes safeWriter: a name stored before
// control characters were refused must not act on the terminal.

// WriteConfig prints `config list`: every setting (secrets masked, * for
// those set), every profile with its flags and user count, the user count.
func WriteConfig(w io.Writer, settings []psync.SettingValue, profiles []psync.Profile, users []psync.User) {
	w = safeWriter{w}
	fmt.Fprintln(w, "# settings (* = set in the database)")
	def := psync.DefaultProfileName
	for _, s := range settings {
		mark := " "
		if s.Set {
			mark = "*"
		}
		if s.Key == "default_profile" {
			def = s.Value
		}
		fmt.Fprintf(w, "%s %-22s = %-34q # %s\n", mark, s.Key, s.Value, s.Help)
	}
	count := profileCounts(users, def)
	fmt.Fprintln(w, "\n# profiles")
	for _, p := range profiles {
		fmt.Fprintf(w, "profile %s (%d users)\n", p.Name, count[p.Name])
		for _, f := range psync.ProfileFlags {
			v, _ := p.Flag(f.Flag)
			fmt.Fprintf(w, "  %-34s = %-5v # %s\n", f.Flag, v, f.Help)
		}
	}
	fmt.Fprintf(w, "\n# users: %d (presencebridge users list shows them)\n", len(users))
}

func profileCounts(users []psync.User, def string) map[string]int {
	count := map[string]int{}
	for _, u := range users {
		p := u.Profile
		if p == "" {
			p = def
		}
		count[p]++
	}
	return count
}

// WriteProfiles prints `profiles list`.
func WriteProfiles(w io.Writer, profiles []psync.Profile, users []psync.User, def string) {
	w = safeWriter{w}
	count := profileCounts(users, def)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tUSERS\tFLAGS ON")
	for _, p := range profiles {
		name := p.Name
		if name == def {
			name += " (default)"
		}
		var on []string
		for _, f := range psync.ProfileFlags {
			if v, _ := p.Flag(f.Flag); v {
				on = append(on, string(f.Flag))
			}
		}
		flags := strings.Join(on, ", ")
		if flags == "" {
			flags = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", name, count[p.Name], flags)
	}
	tw.Flush()
}

// WriteConfiguredUsers prints `users list`.
func WriteConfiguredUsers(w io.Writer, users []psync.User) {
	w = safeWriter{w}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tEXTENSION\tUPN\tTEAMS ID\tPROFILE")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, dash(u.DisplayName), dash(u.Extension), dash(u.UPN), dash(u.TeamsID), dash(u.Profile))
	}
	tw.Flush()
}

// WriteChanges prints what an import changed (or, dry, would change).
func WriteChanges(w io.Writer, ch store.Changes, dry bool) {
	w = safeWriter{w}
	switch {
	case ch.Empty() && dry:
		fmt.Fprintln(w, "dry run: the import would change nothing")
		return
	case ch.Empty():
		fmt.Fprintln(w, "nothing changed: the database already holds this configuration")
		return
	case dry:
		fmt.Fprintln(w, "dry run: nothing was written; the import would make these changes:")
	}
	for _, sec := range []struct {
		name string
		cs   []store.Change
	}{{"settings", ch.Settings}, {"profiles", ch.Profiles}, {"users", ch.Users}} {
		n := map[string]int{}
		for _, c := range sec.cs {
			n[c.Op]++
		}
		if len(sec.cs) == 0 {
			fmt.Fprintf(w, "%s: no changes\n", sec.name)
			continue
		}
		fmt.Fprintf(w, "%s: %d added, %d changed, %d removed\n", sec.name, n[store.OpAdded], n[store.OpChanged], n[store.OpRemoved])
		for _, c := range sec.cs {
			mark := map[string]string{store.OpAdded: "+", store.OpChanged: "~", store.OpRemoved: "-"}[c.Op]
			if c.Detail == "" {
				fmt.Fprintf(w, "  %s %s\n", mark, c.Name)
			} else if c.Op == store.OpAdded && strings.HasPrefix(c.Detail, "= ") {
				fmt.Fprintf(w, "  %s %s %s\n", mark, c.Name, c.Detail)
			} else {
				fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Detail)
			}
		}
	}
}

// WriteDoctorCheck prints one check of `doctor` as it arrives.
func WriteDoctorCheck(w io.Writer, c psync.Check) {
	w = safeWriter{w}
	state := c.State()
	if c.Failed() {
		state = "FAILED"
	}
	took := ""
	if c.Took >= time.Second {
		took = fmt.Sprintf(" (%.1f s)", c.Took.Seconds())
	}
	fmt.Fprintf(w, "%-5s %-6s %s: %s%s\n", c.Side, state, c.Name, c.Detail, took)
	if c.Fix != "" {
		fmt.Fprintf(w, "             fix: %s\n", c.Fix)
	}
}
