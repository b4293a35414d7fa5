package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

// detailModel is one person: both sides now, what the bridge imposes and
// why (rule and profile flag), the state flags in words, the last
// transitions and the Teams deep links.
type detailModel struct {
	c             *common
	id            psync.UserID
	st            psync.UserStatus
	loaded        bool
	history       []psync.Decision
	historyLoaded bool
	pager         pager
}

func (d detailModel) update(msg tea.Msg) (detailModel, tea.Cmd) {
	if km, ok := msg.(tea.KeyMsg); ok && key.Matches(km, d.c.keys.Assign) && d.loaded {
		return d, send(pickProfileMsg{user: d.id, name: d.st.User.Name(), current: d.st.Profile})
	}
	d.pager.update(msg, d.c.keys, len(d.lines()), d.c.bodyH)
	return d, nil
}

func (d detailModel) hints() []key.Binding {
	k := d.c.keys
	return []key.Binding{k.Back, k.Assign, k.Up, k.Down}
}

func (d detailModel) view() string {
	return d.pager.window(d.c.st, d.lines(), d.c.bodyH)
}

func (d detailModel) lines() []string {
	st := d.c.st
	w := d.c.bodyW
	if !d.loaded {
		return []string{"", st.Dim.Render("  loading " + string(d.id) + "…")}
	}
	now := d.c.now()
	u := d.st
	var out []string

	// Who: name, then the ways to find them.
	ids := []string{}
	if u.User.Extension != "" {
		ids = append(ids, "ext "+u.User.Extension)
	}
	ids = append(ids, "id "+string(u.User.ID))
	if u.User.UPN != "" {
		ids = append(ids, u.User.UPN)
	}
	ids = append(ids, "profile "+orDash(u.Profile))
	out = append(out, st.Title.Render(truncate(u.User.Name(), w))+"  "+st.Dim.Render(truncate(strings.Join(ids, " · "), max(0, w-lipgloss.Width(u.User.Name())-2))))
	out = append(out, strings.Split(d.links(w), "\n")...)

	// Both sides now.
	teams, phone := d.teamsCard(), d.phoneCard()
	if w >= 76 {
		cw := (w - 1) / 2
		a, b := d.c.box(teams, cw), d.c.box(phone, cw)
		h := max(lipgloss.Height(a), lipgloss.Height(b))
		a, b = d.c.box(teams, cw, h), d.c.box(phone, cw, h)
		out = append(out, strings.Split(lipgloss.JoinHorizontal(lipgloss.Top, a, " ", b), "\n")...)
	} else {
		out = append(out, strings.Split(d.c.box(teams, w), "\n")...)
		out = append(out, strings.Split(d.c.box(phone, w), "\n")...)
	}
	out = append(out, st.Label.Render("last sync ")+truncate(syncWords(u.LastSide)+" · "+ago(now, u.LastChange), max(0, w-10)))

	// What the bridge imposes, and why.
	out = append(out, "", st.Section.Render(fmt.Sprintf("What the bridge imposes (%d)", len(u.Holds))))
	if len(u.Holds) == 0 {
		out = append(out, st.Dim.Render("  nothing: both sides show what the person set"))
	}
	for _, h := range u.Holds {
		out = append(out, d.holdLines(h, w)...)
	}

	// The state flags in words.
	if flags := d.flagLines(w); len(flags) > 0 {
		out = append(out, "", st.Section.Render("Notes"))
		out = append(out, flags...)
	}

	// History.
	out = append(out, "", st.Section.Render(fmt.Sprintf("Last transitions (newest first, up to %d)", historyLimit)))
	switch {
	case !d.historyLoaded:
		out = append(out, st.Dim.Render("  loading…"))
	case len(d.history) == 0:
		out = append(out, st.Dim.Render("  nothing recorded yet"))
	}
	for _, h := range d.history {
		out = append(out, d.historyLine(h, w))
	}
	return out
}

// links shows the §5 deep links as terminal hyperlinks, or as the plain URL
// where the terminal gets no escape codes.
func (d detailModel) links(w int) string {
	st := d.c.st
	l := d.st.Links
	if l.Chat == "" && l.Call == "" {
		return st.Dim.Render("no Teams links: the user has no UPN")
	}
	if d.c.st.hyperlinks {
		parts := []string{
			d.c.link(l.Chat, st.Key.Render("chat in Teams ↗")),
			d.c.link(l.Call, st.Key.Render("call in Teams ↗")),
		}
		if l.ChatApp != "" {
			parts = append(parts, d.c.link(l.ChatApp, st.Info.Render("chat (app) ↗")), d.c.link(l.CallApp, st.Info.Render("call (app) ↗")))
		}
		return st.Label.Render("Teams ") + strings.Join(parts, st.Dim.Render(" · "))
	}
	return st.Label.Render("chat ") + truncate(l.Chat, max(0, w-5)) + "\n" + st.Label.Render("call ") + truncate(l.Call, max(0, w-5))
}

func (d detailModel) teamsCard() card {
	st := d.c.st
	u := d.st
	now := d.c.now()
	var lines []string
	dot := st.teamsDot(u)
	if m := teamsMarks(u); m != "" {
		dot += " " + m
	}
	lines = append(lines, dot)
	if !u.TeamsKnown {
		lines = append(lines, st.Dim.Render("no presence received yet"))
		return card{title: st.Title.Render("Teams"), lines: lines}
	}
	row := func(label, value string) {
		lines = append(lines, st.Label.Render(pad(label, 13))+value)
	}
	row("availability", orDash(u.Teams.Availability))
	row("activity", orDash(u.Teams.Activity))
	row("§1 row", u.TeamsState.String())
	if u.Teams.OutOfOffice {
		row("out of office", "yes")
	}
	row("received", ago(now, u.Teams.Observed))
	return card{title: st.Title.Render("Teams"), lines: lines}
}

func (d detailModel) phoneCard() card {
	st := d.c.st
	u := d.st
	var lines []string
	row := func(label, value string) {
		lines = append(lines, st.Label.Render(pad(label, 10))+value)
	}
	if !u.PhoneKnown {
		lines = append(lines, st.Dim.Render("no phone state received yet"))
	} else {
		row("presence", st.Bold.Render(u.Phone.Presence.String()))
	}
	// Which devices the bridge protects, to tell its DND from the person's.
	byBridge := map[string]bool{}
	for _, h := range u.Holds {
		if h.Kind == psync.HoldDeviceProtection {
			byBridge[h.Device] = true
		}
	}
	for i, dv := range u.Phone.Devices {
		label := ""
		if i == 0 {
			label = "devices"
		}
		v := pad(orDash(dv.ID), 10) + " "
		if dv.DND {
			v += st.Err.Render("DND on")
			if byBridge[dv.ID] {
				v += st.Dim.Render(" (by the bridge)")
			}
		} else {
			v += st.Dim.Render("DND off")
		}
		row(label, v)
	}
	if len(u.Phone.Devices) == 0 && u.PhoneKnown {
		row("devices", st.Dim.Render("none reported"))
	}
	for i, c := range u.Phone.Calls {
		label := ""
		if i == 0 {
			label = "calls"
		}
		row(label, st.Warn.Render(c.State.String())+" on "+orDash(c.Device)+st.Dim.Render(" ("+orDash(c.ID)+")"))
	}
	if len(u.Phone.Calls) == 0 && u.PhoneKnown {
		row("calls", st.Dim.Render("none"))
	}
	return card{title: st.Title.Render("Phone system"), lines: lines}
}

// holdLines explains one hold: what, why (reason, rule, flag with its help
// and the profile), since when, and how it ends.
func (d detailModel) holdLines(h psync.HoldStatus, w int) []string {
	st := d.c.st
	now := d.c.now()
	state := st.Warn.Render("waiting for the side to confirm")
	if h.Confirmed {
		state = st.OK.Render("confirmed")
	}
	head := st.Cursor.Render("▸ ") + st.Bold.Render(holdValue(h.Hold)) + "  " + state
	out := []string{fit(st, head, w, 1)}
	row := func(label, value string) {
		for i, l := range wrap(value, max(10, w-11)) {
			if i == 0 {
				out = append(out, "  "+st.Label.Render(pad(label, 8))+" "+l)
			} else {
				out = append(out, strings.Repeat(" ", 11)+l)
			}
		}
	}
	row("why", join(orDash(h.Reason), "rule "+orDash(h.Rule)))
	if h.Flag != "" {
		flag := h.Flag
		if help := flagHelp(h.Flag); help != "" {
			flag += ": " + help
		}
		if h.Profile != "" {
			flag = "profile " + h.Profile + ", " + flag
		}
		row("allowed", flag)
	}
	row("since", clock(h.Since)+" ("+ago(now, h.Since)+")")
	if h.HeldByBridge || h.Lease.IsZero() {
		row("ends", "held by the bridge: the "+h.Side().String()+" side has no expiry; restored on shutdown and on the next start")
	} else {
		row("lease", countdown(now, h.Lease)+" left (until "+clock(h.Lease)+"); the "+h.Side().String()+" side drops it by itself unless refreshed")
	}
	return out
}

// flagLines says the engine's flags in words (presence-rules.md §2, §4.2).
func (d detailModel) flagLines(w int) []string {
	st := d.c.st
	u := d.st
	var out []string
	add := func(mark, text string) {
		for i, l := range wrap(text, max(10, w-4)) {
			if i == 0 {
				out = append(out, "  "+st.Key.Render(mark)+" "+l)
			} else {
				out = append(out, "    "+l)
			}
		}
	}
	if u.Echo {
		add("↺", "The Teams call shown is the bridge's own session coming back (it set it for the phone call); it does not count as a Teams call.")
	}
	if u.AlsoInTeams {
		add("?", "Possibly also in a Teams call: Teams reports a call while the bridge's session is active. It is known for sure when the phone call ends.")
	}
	if u.Overridden {
		add("✎", "Overridden by the user in Teams: a state picked by hand wins in Teams. The bridge keeps its session and does not fight it.")
	}
	return out
}

func (d detailModel) historyLine(h psync.Decision, w int) string {
	st := d.c.st
	oc := string(h.Outcome)
	ocs, ok := st.Outcome[h.Outcome]
	if !ok {
		ocs = st.Dim
	}
	prefix := "  " + clock(h.At) + "  "
	outcome := " " + ocs.Render(oc)
	text := truncate(decisionText(h, false), max(0, w-lipgloss.Width(prefix)-len(oc)-1))
	return st.Dim.Render(prefix) + text + outcome
}
