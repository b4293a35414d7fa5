package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

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

	var out []string
	// The engine in one line; the most important numbers first so that a
	// narrow terminal keeps them.
	head := st.Section.Render("Bridge") + " " + st.Dim.Render(strings.TrimSpace(fmt.Sprintf("%s · %s · up %s", orDash(ov.Version), orDash(ov.Mode), upFor(now, ov.Started))))
	summary := []string{head}
	if e.Stopping {
		summary = append(summary, st.Warn.Render("stopping"))
	}
	summary = append(summary,
		st.Bold.Render(fmt.Sprintf("%.1f", ov.EventRate))+" events/s",
		st.Bold.Render(fmt.Sprint(e.Holds))+" holds",
	)
	if n := len(e.Orphans); n > 0 {
		summary = append(summary, st.Warn.Render(fmt.Sprintf("%d orphans", n)))
	} else {
		summary = append(summary, "0 orphans")
	}
	out = append(out, strings.Join(summary, st.Dim.Render(" · ")))
	s := e.Stats
	out = append(out, st.Dim.Render(truncate(fmt.Sprintf("in flight %d · queued %d · events teams %d phone %d stale %d · commands %d failed %d yielded %d · dropped records %d",
		e.InFlight, e.Queued, s.TeamsEvents, s.PhoneEvents, s.Stale, s.Commands, s.Failures, s.Yields, s.DroppedRecords), w)))
	if line := d.userSummary(); line != "" {
		out = append(out, truncate(line, w))
	}
	out = append(out, "")

	// The two sides: next to each other from 76 columns, else stacked.
	teams := d.sideCard(psync.SideTeams, e.Teams)
	phone := d.sideCard(psync.SidePhone, e.Phone)
	if w >= 76 {
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
func (d dashboardModel) userSummary() string {
	if len(d.users) == 0 {
		return ""
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
	return fmt.Sprintf("%d users · %d on the phone · %d in Teams calls · %d with holds · %d not fully known",
		len(d.users), phoneCalls, teamsCalls, held, unknown)
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
	inner := max(8, min(d.c.bodyW, d.c.bodyW/2)-4)
	if d.c.bodyW < 76 {
		inner = max(8, d.c.bodyW-4)
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
		lines = append(lines, st.Label.Render(pad(label, 10))+truncate(value, inner-10))
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
	if h.Detail != "" {
		for _, l := range wrap(h.Detail, inner-10) {
			lines = append(lines, strings.Repeat(" ", 10)+st.Dim.Render(l))
		}
	}
	if ok && r.Throttled.After(now) {
		lines = append(lines, st.Label.Render(pad("throttled", 10))+st.Warn.Render(truncate("until "+clock(r.Throttled)+" ("+countdown(now, r.Throttled)+")", inner-10)))
	}
	if ok {
		for _, f := range r.Facts {
			lines = append(lines, d.factLine(f, inner))
		}
		if len(r.Errors) > 0 {
			lines = append(lines, st.Err.Render(fmt.Sprintf("last errors (%d)", len(r.Errors))))
			shown := r.Errors
			limit := 3
			if d.c.bodyH < 30 {
				limit = 2
			}
			if len(shown) > limit {
				shown = shown[:limit]
			}
			for _, p := range shown {
				ws := wrap(clock(p.At)+" "+p.What, inner-2)
				for i, l := range ws {
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
		}
	}
	return card{title: title, lines: lines}
}

// factLine shows one fact; an expiry is counted down and turns into a
// warning in its last ten minutes or when the adapter says so.
func (d dashboardModel) factLine(f psync.Fact, inner int) string {
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
	v := truncate(orDash(value), inner-labelW)
	if warn {
		v = st.Warn.Render(v)
	}
	return st.Label.Render(pad(f.Label, labelW-1)) + " " + v
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
