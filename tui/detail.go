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
//
// ↑/↓ pick one of the transitions (the page follows the pick; above the
// first, the page goes back to its top) and enter shows it in full;
// pgup/pgdn, g and G scroll the page.
type detailModel struct {
	c             *common
	id            psync.UserID
	st            psync.UserStatus
	loaded        bool
	history       []psync.Decision
	historyLoaded bool
	sel           int  // the picked transition, when picked
	picked        bool // the zero model picks none
	pager         pager
}

func (d detailModel) update(msg tea.Msg) (detailModel, tea.Cmd) {
	km, isKey := msg.(tea.KeyMsg)
	k := d.c.keys
	if isKey && key.Matches(km, k.Assign) && d.loaded {
		return d, send(pickProfileMsg{user: d.id, name: d.st.User.Name(), current: d.st.Profile})
	}
	lines, at := d.render()
	if isKey && len(d.history) > 0 {
		switch {
		case key.Matches(km, k.Open):
			if d.picked {
				return d, send(openDecisionMsg{d: d.history[d.sel]})
			}
			return d, nil
		case key.Matches(km, k.Up), key.Matches(km, k.Down):
			d.move(key.Matches(km, k.Down))
			lines, at = d.render()
			rows := max(1, d.c.bodyH-1) // the pager's last row says where one is
			if !d.picked {
				d.pager.off = 0
			} else if line := at + d.sel; line < d.pager.off || line >= d.pager.off+rows {
				d.pager.off = max(0, line-rows+1)
				if line < d.pager.off {
					d.pager.off = line
				}
			}
			d.pager.clamp(len(lines), rows)
			return d, nil
		}
	}
	d.pager.update(msg, k, len(lines), d.c.bodyH)
	return d, nil
}

// move picks the next (or previous) transition; above the first, none.
func (d *detailModel) move(down bool) {
	switch {
	case !d.picked && down:
		d.sel, d.picked = 0, true
	case !d.picked:
	case down:
		d.sel = min(d.sel+1, len(d.history)-1)
	case d.sel == 0:
		d.picked = false
	default:
		d.sel--
	}
}

func (d detailModel) hints() []key.Binding {
	k := d.c.keys
	if len(d.history) > 0 {
		return []key.Binding{k.Back, k.Assign, k.Up, k.Down, k.Open}
	}
	return []key.Binding{k.Back, k.Assign, k.Up, k.Down}
}

func (d detailModel) view() string {
	lines, _ := d.render()
	return d.pager.window(d.c.st, lines, d.c.bodyH)
}

func (d detailModel) lines() []string {
	lines, _ := d.render()
	return lines
}

// render draws the screen and says at which line the transitions begin.
func (d detailModel) render() ([]string, int) {
	st := d.c.st
	w := d.c.bodyW
	if !d.loaded {
		return []string{"", st.Dim.Render("  loading " + string(d.id) + "…")}, 0
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
	who := []string{st.Title.Render(u.User.Name()) + "  " + st.Dim.Render(ids[0])}
	for _, id := range ids[1:] {
		who = append(who, st.Dim.Render(id))
	}
	out = append(out, flow(who, st.Dim.Render(" · "), w)...)
	out = append(out, strings.Split(d.links(w), "\n")...)

	// Both sides now: next to each other on a wide terminal, else stacked
	// at full width, so that device names read in one line.
	cw := w
	if w >= sideBySide {
		cw = (w - 1) / 2
	}
	teams, phone := d.teamsCard(), d.phoneCard(cw-4)
	if w >= sideBySide {
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
	title := fmt.Sprintf("Last transitions (newest first, up to %d)", historyLimit)
	if len(d.history) > 0 {
		title += st.Dim.Render(" · ↑↓ pick one, enter shows it in full")
	}
	out = append(out, "", st.Section.Render(title))
	switch {
	case !d.historyLoaded:
		out = append(out, st.Dim.Render("  loading…"))
	case len(d.history) == 0:
		out = append(out, st.Dim.Render("  nothing recorded yet"))
	}
	at := len(out)
	for i, h := range d.history {
		out = append(out, d.historyLine(h, w, d.picked && i == d.sel))
	}
	return out, at
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

func (d detailModel) phoneCard(inner int) card {
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
	// Devices by the phone system's own name for them, in full, after
	// their state (short, so the names line up).
	room := max(8, inner-10)
	for i, dv := range u.Phone.Devices {
		label := ""
		if i == 0 {
			label = "devices"
		}
		state := st.Dim.Render("DND off") + " "
		if dv.DND {
			state = st.Err.Render("DND on") + "  "
		}
		name := dv.Label()
		if dv.DND && byBridge[dv.ID] {
			name += " (by the bridge)"
		}
		for k, l := range wrap(name, max(8, room-8)) {
			if k > 0 {
				label, state = "", "        "
			}
			row(label, state+l)
		}
	}
	if len(u.Phone.Devices) == 0 && u.PhoneKnown {
		row("devices", st.Dim.Render("none reported"))
	}
	for i, c := range u.Phone.Calls {
		label := ""
		if i == 0 {
			label = "calls"
		}
		for k, l := range wrap(c.State.String()+" on "+deviceName(u, c.Device)+" ("+orDash(c.ID)+")", room) {
			if k > 0 {
				label = ""
			}
			row(label, st.Warn.Render(l))
		}
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
	var out []string
	what := holdValueNamed(h.Hold, deviceName(d.st, h.Device))
	ls := wrap(what, max(10, w-4))
	for i, l := range ls {
		if i == 0 {
			out = append(out, st.Key.Render("• ")+st.Bold.Render(l))
		} else {
			out = append(out, "  "+st.Bold.Render(l))
		}
	}
	if last := len(out) - 1; lipgloss.Width(out[last])+2+lipgloss.Width(state) <= w {
		out[last] += "  " + state
	} else {
		out = append(out, "  "+state)
	}
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

// flagLines says the engine's flags in words (sync/RULES.md §2, §4.2).
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

func (d detailModel) historyLine(h psync.Decision, w int, picked bool) string {
	st := d.c.st
	oc := string(h.Outcome)
	ocs, ok := st.Outcome[h.Outcome]
	if !ok {
		ocs = st.Dim
	}
	prefix := clock(h.At) + "  "
	outcome := " " + ocs.Render(oc)
	text := pad(decisionText(h, false), max(0, w-2-lipgloss.Width(prefix)-len(oc)-1))
	if picked {
		return st.Cursor.Render("▸ ") + st.Selected.Render(prefix+text) + outcome
	}
	return "  " + st.Dim.Render(prefix) + text + outcome
}
