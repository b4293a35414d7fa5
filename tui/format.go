package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Formatting helpers. They take plain text (no escape codes) unless they say
// otherwise, and never return something wider than asked: a long name must
// not push a table column out of line.

// truncate shortens plain text to w cells, ending in "…" when cut.
func truncate(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if lipgloss.Width(s) <= w {
		return s
	}
	var b strings.Builder
	used := 0
	for _, r := range s {
		rw := lipgloss.Width(string(r))
		if used+rw > w-1 {
			break
		}
		b.WriteRune(r)
		used += rw
	}
	return b.String() + "…"
}

// pad truncates or right-pads plain text to exactly w cells.
func pad(s string, w int) string {
	s = truncate(s, w)
	if n := w - lipgloss.Width(s); n > 0 {
		s += strings.Repeat(" ", n)
	}
	return s
}

// padStyled right-pads already styled text to w cells (it is never cut:
// callers style text they truncated first).
func padStyled(s string, w int) string {
	if n := w - lipgloss.Width(s); n > 0 {
		s += strings.Repeat(" ", n)
	}
	return s
}

// short renders a duration the way an admin reads a countdown: the two
// largest units, no fractions ("9m58s", "2h05m", "3d4h").
func short(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// ago says how long ago t was; the zero time is "never" rather than 2000 years.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < time.Second && d > -time.Second {
		return "now"
	}
	if d < 0 {
		return "in " + short(d)
	}
	return short(d) + " ago"
}

// age is ago for a table cell: no "ago", at most six cells ("2h05m").
func age(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 10*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	case d < 72*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// countdown says how long until t: "9m58s", "expired 3s ago", "—".
func countdown(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := t.Sub(now)
	if d <= 0 {
		return "expired " + short(d) + " ago"
	}
	return short(d)
}

// clock renders a time of day; zero stays "—".
func clock(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Format("15:04:05")
}

// hyperlink wraps text in an OSC 8 terminal hyperlink. Terminals that do not
// know OSC 8 ignore the sequence and show the text.
func hyperlink(url, text string) string {
	return "\x1b]8;;" + url + "\x1b\\" + text + "\x1b]8;;\x1b\\"
}

// callBadge summarises a user's calls: the state of the most relevant call
// and a count when there are several.
func callBadge(calls []psync.Call) string {
	if len(calls) == 0 {
		return ""
	}
	best := calls[0].State
	rank := map[psync.CallState]int{psync.CallConference: 4, psync.CallConnected: 3, psync.CallHeld: 2, psync.CallRinging: 1}
	for _, c := range calls[1:] {
		if rank[c.State] > rank[best] {
			best = c.State
		}
	}
	names := map[psync.CallState]string{psync.CallConference: "conf", psync.CallConnected: "call", psync.CallHeld: "held", psync.CallRinging: "ring"}
	n, ok := names[best]
	if !ok {
		n = best.String()
	}
	if len(calls) > 1 {
		n += fmt.Sprintf("×%d", len(calls))
	}
	return "☏" + n
}

// phoneText is the phone column: the presence the person picked and a call
// indicator (calls are not part of the presence on the phone system).
func phoneText(st psync.UserStatus) string {
	p := "unknown"
	if st.PhoneKnown {
		p = st.Phone.Presence.String()
	}
	if b := callBadge(st.Phone.Calls); b != "" {
		p += " " + b
	}
	return p
}

// syncArrow shows which way the bridge last wrote: LastSide is the side it
// changed, so the change flowed from the other side towards it.
func syncArrow(s psync.Side) string {
	switch s {
	case psync.SideTeams:
		return "☏→T"
	case psync.SidePhone:
		return "T→☏"
	}
	return "—"
}

// syncWords is syncArrow for the detail screen.
func syncWords(s psync.Side) string {
	switch s {
	case psync.SideTeams:
		return "phone → Teams (the bridge last changed Teams)"
	case psync.SidePhone:
		return "Teams → phone (the bridge last changed the phone system)"
	}
	return "nothing synced yet"
}

// teamsMarks are the one-character hints next to the Teams state; the
// users screen explains them in its legend.
func teamsMarks(st psync.UserStatus) string {
	var m string
	if st.Echo {
		m += "↺"
	}
	if st.AlsoInTeams {
		m += "?"
	}
	if st.Overridden {
		m += "✎"
	}
	return m
}

// holdsText summarises a user's holds for the table: how many, and the
// lease that runs out first or "held" when one has no expiry.
func holdsText(now time.Time, holds []psync.HoldStatus) string {
	if len(holds) == 0 {
		return "—"
	}
	held := false
	var first time.Time
	for _, h := range holds {
		if h.HeldByBridge || h.Lease.IsZero() {
			held = true
			continue
		}
		if first.IsZero() || h.Lease.Before(first) {
			first = h.Lease
		}
	}
	s := fmt.Sprintf("%d", len(holds))
	if !first.IsZero() {
		s += " " + countdown(now, first)
	}
	if held {
		s += " held"
	}
	return s
}

// holdValue renders what a hold imposes, in the words of its kind.
func holdValue(h psync.Hold) string { return holdValueNamed(h, h.Device) }

// holdValueNamed is holdValue with the device by the name the phone system
// gives it.
func holdValueNamed(h psync.Hold, device string) string {
	set, old := orDash(h.Set), orDash(h.Replaced)
	switch h.Kind {
	case psync.HoldTeamsSession:
		return "Teams session Busy/" + set
	case psync.HoldPhonePresence:
		return "phone presence " + set + " (was " + old + ")"
	case psync.HoldDeviceProtection:
		return "call protection on " + orDash(device) + ": " + set + " (was " + old + ")"
	}
	return h.Kind.String() + " " + set
}

// deviceName is a user's device by the phone system's name for it (a
// UCServer line's display name), or its id when it has none or is unknown.
func deviceName(u psync.UserStatus, id string) string {
	for _, d := range u.Phone.Devices {
		if d.ID == id {
			return d.Label()
		}
	}
	return id
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}

// flagHelp is the help text of a profile flag, "" for an unknown one.
func flagHelp(f string) string {
	for _, pf := range psync.ProfileFlags {
		if string(pf.Flag) == f {
			return pf.Help
		}
	}
	return ""
}

// wrap breaks plain text into lines of at most w cells at spaces. A word
// longer than a line (a URL, a path) is broken across lines rather than
// cut: wrapped text is there to be read whole.
func wrap(s string, w int) []string {
	if w < 8 {
		w = 8
	}
	var lines []string
	var cur string
	for _, word := range strings.Fields(s) {
		if lipgloss.Width(word) > w && cur != "" {
			// A long word starts a line of its own, so that it reads in
			// as few pieces as it can.
			lines = append(lines, cur)
			cur = ""
		}
		for lipgloss.Width(word) > w {
			head, rest := cutCells(word, w)
			lines = append(lines, head)
			word = rest
		}
		if word == "" {
			continue
		}
		switch {
		case cur == "":
			cur = word
		case lipgloss.Width(cur)+1+lipgloss.Width(word) <= w:
			cur += " " + word
		default:
			lines = append(lines, cur)
			cur = word
		}
	}
	if cur != "" || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}

// cutCells splits s after at most w cells.
func cutCells(s string, w int) (string, string) {
	used := 0
	for i, r := range s {
		rw := lipgloss.Width(string(r))
		if used+rw > w {
			return s[:i], s[i:]
		}
		used += rw
	}
	return s, ""
}

// flow lays out items (plain or styled) on as few lines of w cells as it
// takes, joined by sep: numbers that do not fit move to the next line
// instead of being cut.
func flow(items []string, sep string, w int) []string {
	var lines []string
	cur := ""
	for _, it := range items {
		switch {
		case cur == "":
			cur = it
		case lipgloss.Width(cur)+lipgloss.Width(sep)+lipgloss.Width(it) <= w:
			cur += sep + it
		default:
			lines = append(lines, cur)
			cur = it
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// decisionText is one decision as a single line for the log and history.
func decisionText(d psync.Decision, withName bool) string {
	var b strings.Builder
	if withName {
		name := d.Name
		if name == "" {
			name = string(d.User)
		}
		if name == "" {
			name = "bridge"
		}
		b.WriteString(name + "  ")
	}
	if d.Side != 0 {
		b.WriteString(d.Side.String() + " ")
	}
	b.WriteString(orDash(d.What) + ": " + orDash(d.Old) + " → " + orDash(d.New))
	why := d.Reason
	if d.Rule != "" {
		why = join(why, d.Rule)
	}
	if d.Flag != "" {
		why = join(why, "profile "+orDash(d.Profile)+": "+d.Flag)
	}
	if why != "" {
		b.WriteString(" (" + why + ")")
	}
	if d.Err != "" {
		b.WriteString(" error: " + d.Err)
	}
	return b.String()
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}
