package service

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The CLI's renderings of the control API's answers (the console has its
// own). Plain text for people; the commands' --json prints the answers.

// WriteOverview prints `presencebridge status`.
func WriteOverview(w io.Writer, ov psync.Overview, now time.Time) {
	w = safeWriter{w}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "bridge:\t%s %s, up %s (since %s)\n", ov.Mode, ov.Version, now.Sub(ov.Started).Round(time.Second), ov.Started.Local().Format("2006-01-02 15:04:05"))
	fmt.Fprintf(tw, "teams:\t%s\n", sideLine(ov.Engine.Teams))
	fmt.Fprintf(tw, "phone:\t%s\n", sideLine(ov.Engine.Phone))
	st := ov.Engine.Stats
	fmt.Fprintf(tw, "events:\t%d teams, %d phone, %.2f/s over the last minute\n", st.TeamsEvents, st.PhoneEvents, ov.EventRate)
	fmt.Fprintf(tw, "commands:\t%d sent, %d failed, %d in flight, %d queued\n", st.Commands, st.Failures, ov.Engine.InFlight, ov.Engine.Queued)
	fmt.Fprintf(tw, "holds:\t%d", ov.Engine.Holds)
	if n := len(ov.Engine.Orphans); n > 0 {
		fmt.Fprintf(tw, " (+%d of users no longer configured)", n)
	}
	fmt.Fprintln(tw)
	if ov.Engine.Stopping {
		fmt.Fprintln(tw, "state:\tstopping, releasing what the bridge holds")
	}
	tw.Flush()
	for _, s := range ov.Sides {
		conn := "connected"
		if !s.Connected {
			conn = "NOT connected"
		}
		fmt.Fprintf(w, "\n%s (%s", s.Name, conn)
		if s.Mode != "" {
			fmt.Fprintf(w, ", %s", s.Mode)
		}
		if s.Endpoint != "" {
			fmt.Fprintf(w, ", %s", s.Endpoint)
		}
		fmt.Fprintln(w, ")")
		if s.Throttled.After(now) {
			fmt.Fprintf(w, "  throttled for %s more\n", s.Throttled.Sub(now).Round(time.Second))
		}
		for _, f := range s.Facts {
			mark := " "
			if f.Warn {
				mark = "!"
			}
			v := f.Value
			if !f.Until.IsZero() {
				v += fmt.Sprintf(" (in %s)", f.Until.Sub(now).Round(time.Second))
			}
			fmt.Fprintf(w, " %s %s: %s\n", mark, f.Label, v)
		}
		for _, p := range psync.MergeProblems(s.Errors) {
			fmt.Fprintf(w, "  error %s: %s", p.At.Local().Format("15:04:05"), p.What)
			if p.Count > 1 {
				fmt.Fprintf(w, " (%d times)", p.Count)
			}
			if p.Fix != "" {
				fmt.Fprintf(w, " (fix: %s)", p.Fix)
			}
			fmt.Fprintln(w)
		}
	}
}

func sideLine(h psync.SideHealth) string {
	switch {
	case !h.Known:
		return "not connected yet"
	case h.Healthy:
		s := "healthy"
		if !h.Synced {
			s += ", first read not complete"
		}
		if h.Detail != "" {
			s += " (" + h.Detail + ")"
		}
		return s
	}
	return "UNHEALTHY: " + h.Detail
}

// WriteUsers prints `presencebridge users` as a table.
func WriteUsers(w io.Writer, us []psync.UserStatus, now time.Time) {
	w = safeWriter{w}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPROFILE\tTEAMS\tPHONE\tHELD BY THE BRIDGE")
	for _, u := range us {
		teams := "?"
		if u.TeamsKnown {
			teams = fmt.Sprintf("%s (%s)", u.Text, u.Colour)
			switch {
			case u.Echo:
				teams += " [bridge]"
			case u.Overridden:
				teams += " [overridden in Teams]"
			}
			if u.AlsoInTeams {
				teams += " [possibly also in Teams]"
			}
		}
		phone := "?"
		if u.PhoneKnown {
			phone = u.Phone.Presence.String()
			if n := len(u.Phone.Calls); n > 0 {
				phone += fmt.Sprintf(", %d call(s)", n)
			}
			var dnd []string
			for _, d := range u.Phone.Devices {
				if d.DND {
					dnd = append(dnd, d.ID)
				}
			}
			if len(dnd) > 0 {
				phone += ", DND " + strings.Join(dnd, "+")
			}
		}
		var holds []string
		for _, h := range u.Holds {
			s := h.Kind.String()
			if h.Device != "" {
				s += " " + h.Device
			}
			s += "=" + h.Set
			if h.Lease.IsZero() {
				s += " (no expiry)"
			} else {
				s += fmt.Sprintf(" (lease %s)", h.Lease.Sub(now).Round(time.Second))
			}
			holds = append(holds, s)
		}
		hold := "-"
		if len(holds) > 0 {
			hold = strings.Join(holds, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.User.ID, u.User.Name(), u.Profile, teams, phone, hold)
	}
	tw.Flush()
}

// WriteDecision prints one audit entry or live decision.
func WriteDecision(w io.Writer, d psync.Decision) {
	w = safeWriter{w}
	d.At = d.At.Local()
	fmt.Fprintf(w, "%s %s\n", d.At.Format("2006-01-02"), d.String())
}

// safeWriter drops control characters other than line breaks and tabs:
// names, Teams activities and adapter errors come from outside, and an ESC
// among them would act on the admin's terminal.
type safeWriter struct{ w io.Writer }

func (s safeWriter) Write(p []byte) (int, error) {
	clean := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return -1
		}
		return r
	}, string(p))
	if _, err := io.WriteString(s.w, clean); err != nil {
		return 0, err
	}
	return len(p), nil
}
