package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

// sideBySide is the narrowest body with the two sides' cards next to each
// other: below it a card would be too narrow for an endpoint or an error.
const sideBySide = 100

// dashboardModel shows the bridge at a glance: the engine, both sides'
// connections with what expires when, and the last errors with their fix.
type dashboardModel struct {
	c      *common
	ov     psync.Overview
	loaded bool
	users  []psync.UserStatus
	pager  pager
}

func (d dashboardModel) update(msg tea.Msg) (dashboardModel, tea.Cmd) {
	d.pager.update(msg, d.c.keys, len(d.lines()), d.c.bodyH)
	return d, nil
}

func (d dashboardModel) hints() []key.Binding {
	k := d.c.keys
	return []key.Binding{k.Up, k.Down, k.Screen[1]}
}

func (d dashboardModel) view() string {
	return d.pager.window(d.c.st, d.lines(), d.c.bodyH)
}

func (d dashboardModel) lines() []string {
	st := d.c.st
	w := d.c.bodyW
	if !d.loaded {
		return []string{"", st.Dim.Render("  waiting for the bridge…")}
	}
	now := d.c.now()
	ov := d.ov
	e := ov.Engine

	// The engine, the counters and the office: each a run of short items
	// that flows onto a second line rather than losing one at the edge.
	sep := st.Dim.Render(" · ")
	head := []string{st.Section.Render("Bridge") + " " + st.Dim.Render(strings.TrimSpace(fmt.Sprintf("%s · %s · up %s", orDash(ov.Version), orDash(ov.Mode), upFor(now, ov.Started))))}
	if e.Stopping {
		head = append(head, st.Warn.Render("stopping"))
	}
	head = append(head,
		st.Bold.Render(fmt.Sprintf("%.1f", ov.EventRate))+" events/s",
		st.Bold.Render(fmt.Sprint(e.Holds))+" holds",
	)
	if n := len(e.Orphans); n > 0 {
		head = append(head, st.Warn.Render(fmt.Sprintf("%d orphans", n)))
	} else {
		head = append(head, "0 orphans")
	}
	out := flow(head, sep, w)
	s := e.Stats
	count := func(n uint64, what string, bad lipgloss.Style) string {
		if n > 0 {
			return bad.Render(fmt.Sprintf("%d %s", n, what))
		}
		return st.Dim.Render(fmt.Sprintf("%d %s", n, what))
	}
	counters := []string{
		st.Dim.Render(fmt.Sprintf("in flight %d", e.InFlight)),
		st.Dim.Render(fmt.Sprintf("queued %d", e.Queued)),
		st.Dim.Render(fmt.Sprintf("events %d Teams, %d phone, %d stale", s.TeamsEvents, s.PhoneEvents, s.Stale)),
		st.Dim.Render(fmt.Sprintf("commands %d", s.Commands)),
		count(s.Failures, "failed", st.Err),
		count(s.Yields, "yielded", st.Warn),
		count(s.DroppedRecords, "records dropped", st.Err),
	}
	out = append(out, flow(counters, sep, w)...)
	out = append(out, flow(d.userSummary(), sep, w)...)

	// The two sides: next to each other from sideBySide columns; narrower,
	// stacked at full width, so that URLs and errors read in whole lines,
	// with both sides' state in one line first.
	teams := d.sideCard(psync.SideTeams, e.Teams)
	phone := d.sideCard(psync.SidePhone, e.Phone)
	if w < sideBySide {
		out = append(out, flow([]string{teams.title, phone.title}, "    ", w)...)
	}
	out = append(out, "")
	if w >= sideBySide {
		cw := (w - 1) / 2
		a, b := d.box(teams, cw), d.box(phone, cw)
		h := max(lipgloss.Height(a), lipgloss.Height(b))
		a, b = d.box(teams, cw, h), d.box(phone, cw, h)
		out = append(out, strings.Split(lipgloss.JoinHorizontal(lipgloss.Top, a, " ", b), "\n")...)
	} else {
		out = append(out, strings.Split(d.box(teams, w), "\n")...)
		out = append(out, strings.Split(d.box(phone, w), "\n")...)
	}

	if len(e.Orphans) > 0 {
		out = append(out, "", st.Section.Render("Orphans")+st.Dim.Render(" holds of users no longer configured; restored on the next start"))
		for _, h := range e.Orphans {
			out = append(out, truncate(fmt.Sprintf("  %s  %s  since %s", h.User, holdValue(h), ago(now, h.Since)), w))
		}
	}
	return out
}

func upFor(now, started time.Time) string {
	if started.IsZero() {
		return "—"
	}
	return short(now.Sub(started))
}

// userSummary counts the office by what matters to the admin.
func (d dashboardModel) userSummary() []string {
	if len(d.users) == 0 {
		return nil
	}
	var phoneCalls, teamsCalls, held, unknown int
	for _, u := range d.users {
		if len(u.Phone.Calls) > 0 {
			phoneCalls++
		}
		if u.TeamsState == psync.TeamsInCall && !u.Echo {
			teamsCalls++
		}
		if len(u.Holds) > 0 {
			held++
		}
		if !u.TeamsKnown || !u.PhoneKnown {
			unknown++
		}
	}
	return []string{
		fmt.Sprintf("%d users", len(d.users)), fmt.Sprintf("%d on the phone", phoneCalls), fmt.Sprintf("%d in Teams calls", teamsCalls),
		fmt.Sprintf("%d with holds", held), fmt.Sprintf("%d not fully known", unknown),
	}
}

// card is one side's block before it is boxed.
type card struct {
	title string
	lines []string // plain or styled, each fitting the inner width
}

func (d dashboardModel) box(c card, w int, h ...int) string { return d.c.box(c, w, h...) }

// box draws a card in a rounded border exactly w wide (and h high when
// given); lines wider than the inside are cut, never wrapped, so the two
// cards of a row stay aligned.
func (c *common) box(cd card, w int, h ...int) string {
	st := c.st
	inner := max(4, w-4)
	lines := []string{cd.title}
	for _, l := range cd.lines {
		if lipgloss.Width(l) > inner {
			l = st.r.NewStyle().MaxWidth(inner).Render(l)
		}
		lines = append(lines, l)
	}
	b := st.Box.Width(max(1, w-2))
	if len(h) > 0 {
		b = b.Height(max(1, h[0]-2))
	}
	return b.Render(strings.Join(lines, "\n"))
}

// report finds a side's report in the Overview; adapters that cannot
// describe themselves have none, and the card shows the engine's health only.
func (d dashboardModel) report(side psync.Side) (psync.SideReport, bool) {
	for _, r := range d.ov.Sides {
		if r.Side == side {
			return r, true
		}
	}
	return psync.SideReport{}, false
}

func (d dashboardModel) sideCard(side psync.Side, h psync.SideHealth) card {
	st := d.c.st
	now := d.c.now()
	// The inside of the box the card goes into (see lines and box).
	inner := max(4, (d.c.bodyW-1)/2-4)
	if d.c.bodyW < sideBySide {
		inner = max(4, d.c.bodyW-4)
	}
	r, ok := d.report(side)
	name := "Teams"
	if side == psync.SidePhone {
		name = "Phone system"
	}
	var badge string
	switch {
	case !h.Known && !ok:
		badge = st.Dim.Render("○ unknown")
	case h.Healthy && (!ok || r.Connected):
		badge = st.OK.Render("● connected")
	case ok && r.Connected:
		badge = st.Warn.Render("● degraded")
	default:
		badge = st.Err.Render("● down")
	}
	title := st.Title.Render(name) + "  " + badge
	var lines []string
	row := func(label, value string) {
		for i, l := range wrap(value, inner-10) {
			if i == 0 {
				lines = append(lines, st.Label.Render(pad(label, 10))+l)
			} else {
				lines = append(lines, strings.Repeat(" ", 10)+l)
			}
		}
	}
	if ok {
		if via := strings.TrimSpace(r.Name + " " + paren(r.Mode)); via != "" {
			row("via", via)
		}
		if r.Endpoint != "" {
			row("endpoint", r.Endpoint)
		}
	}
	health := "not reported yet"
	if h.Known {
		health = "unhealthy"
		if h.Healthy {
			health = "healthy"
		}
		if h.Synced {
			health += ", synced"
		} else {
			health += ", syncing"
		}
		if !h.Since.IsZero() {
			health += " for " + short(now.Sub(h.Since))
		}
	}
	row("health", health)
	detail := h.Detail
	if ok && slices.ContainsFunc(r.Errors, func(p psync.Problem) bool { return psync.SameProblem(detail, p.What) }) {
		detail = "the last error, below" // shown once, with its fix
	}
	if detail != "" {
		for _, l := range wrap(detail, inner-10) {
			lines = append(lines, strings.Repeat(" ", 10)+st.Dim.Render(l))
		}
	}
	if ok && r.Throttled.After(now) {
		for i, l := range wrap("until "+clock(r.Throttled)+" ("+countdown(now, r.Throttled)+")", inner-10) {
			label := ""
			if i == 0 {
				label = "throttled"
			}
			lines = append(lines, st.Label.Render(pad(label, 10))+st.Warn.Render(l))
		}
	}
	if ok {
		for _, f := range r.Facts {
			lines = append(lines, d.factLines(f, inner)...)
		}
		lines = append(lines, d.problemLines(r.Errors, inner)...)
	}
	return card{title: title, lines: lines}
}

// problemLines shows a side's errors once each, however often they
// happened, in full and with their fix: a broken setup fails the same way
// on every retry, and the admin needs the one message and what to do.
func (d dashboardModel) problemLines(errs []psync.Problem, inner int) []string {
	st := d.c.st
	ps := psync.MergeProblems(errs)
	if len(ps) == 0 {
		return nil
	}
	var lines []string
	title := "last error"
	if len(ps) > 1 {
		title = fmt.Sprintf("last errors (%d)", len(ps))
	}
	lines = append(lines, st.Err.Render(title))
	limit := 3
	if d.c.bodyH < 30 {
		limit = 2
	}
	for i, p := range ps {
		if i == limit {
			lines = append(lines, st.Dim.Render(fmt.Sprintf("  … %d older: presencebridge status lists them", len(ps)-limit)))
			break
		}
		head := clock(p.At)
		if p.Count > 1 {
			head += fmt.Sprintf(" (×%d)", p.Count)
		}
		for i, l := range wrap(head+" "+p.What, inner-2) {
			if i == 0 {
				lines = append(lines, st.Err.Render("✗ ")+l)
			} else {
				lines = append(lines, "  "+l)
			}
		}
		if p.Fix != "" {
			for i, l := range wrap(p.Fix, inner-4) {
				prefix := "    "
				if i == 0 {
					prefix = "  → "
				}
				lines = append(lines, st.Info.Render(prefix+l))
			}
		}
	}
	return lines
}

// factLines shows one fact, its value wrapped under itself; an expiry is
// counted down and turns into a warning in its last ten minutes or when the
// adapter says so.
func (d dashboardModel) factLines(f psync.Fact, inner int) []string {
	st := d.c.st
	now := d.c.now()
	labelW := d.labelW(inner)
	value := f.Value
	warn := f.Warn
	if !f.Until.IsZero() {
		left := f.Until.Sub(now)
		cd := "in " + countdown(now, f.Until)
		if left <= 0 {
			cd = countdown(now, f.Until)
			warn = true
		} else if left < 10*time.Minute {
			warn = true
		}
		value = join(value, cd)
		value = strings.Replace(value, "; ", " · ", 1)
	}
	var out []string
	label := f.Label
	if lipgloss.Width(label) > labelW-1 {
		// A label longer than the column gets a line of its own.
		out = append(out, st.Label.Render(label))
		label = ""
	}
	for _, v := range wrap(orDash(value), inner-labelW) {
		if warn {
			v = st.Warn.Render(v)
		}
		out = append(out, st.Label.Render(pad(label, labelW-1))+" "+v)
		label = ""
	}
	return out
}

// labelW fits the longest fact label of either side, so the two cards line
// up, but leaves at least half of the card to the values.
func (d dashboardModel) labelW(inner int) int {
	w := 10
	for _, r := range d.ov.Sides {
		for _, f := range r.Facts {
			w = max(w, lipgloss.Width(f.Label)+1)
		}
	}
	return min(w, max(6, inner/2))
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}
