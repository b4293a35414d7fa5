package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

// eventCap bounds the log in memory: a console left open for a week must
// not grow without end.
const eventCap = 2000

// eventsModel is the live decision log, newest at the bottom like a
// terminal. A cursor picks a decision (enter opens it in full); it stays on
// the newest, following the log, until moved up or paused; paused, the log
// keeps what arrives aside and shows it on resume.
type eventsModel struct {
	c      *common
	log    []psync.Decision // oldest first
	held   []psync.Decision // arrived while paused
	paused bool
	follow bool
	sel    int // the decision under the cursor, when not following
	off    int // first visible line when not following
}

// addBacklog puts the audit trail (newest first) before what the stream
// has delivered already.
func (m *eventsModel) addBacklog(ds []psync.Decision) {
	var first psync.Decision
	if len(m.log) > 0 {
		first = m.log[0]
	}
	back := make([]psync.Decision, 0, len(ds))
	for i := len(ds) - 1; i >= 0; i-- {
		if len(m.log) > 0 && !ds[i].At.Before(first.At) {
			continue // the stream has it already
		}
		back = append(back, ds[i])
	}
	m.log = append(back, m.log...)
	m.sel += len(back)
	m.off += len(back)
	m.trim()
}

func (m *eventsModel) add(ds []psync.Decision) {
	if m.paused {
		m.held = append(m.held, ds...)
		if len(m.held) > eventCap {
			m.held = m.held[len(m.held)-eventCap:]
		}
		return
	}
	m.log = append(m.log, ds...)
	m.trim()
}

func (m *eventsModel) trim() {
	if n := len(m.log) - eventCap; n > 0 {
		m.log = m.log[n:]
		m.off = max(0, m.off-n)
		m.sel = max(0, m.sel-n)
	}
}

func (m eventsModel) rows() int { return max(1, m.c.bodyH-2) }

// window is the first visible line and the selected one.
func (m eventsModel) window() (off, sel int) {
	h := m.rows()
	last := max(0, len(m.log)-h)
	if m.follow {
		return last, len(m.log) - 1
	}
	sel = max(0, min(m.sel, len(m.log)-1))
	off = max(0, min(m.off, last))
	return off, sel
}

func (m eventsModel) update(msg tea.Msg) (eventsModel, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	k := m.c.keys
	h := m.rows()
	m.off, m.sel = m.window()
	switch {
	case key.Matches(km, k.Pause):
		m.paused = !m.paused
		if !m.paused {
			m.log = append(m.log, m.held...)
			m.held = nil
			m.trim()
			return m, send(statusMsg("event log resumed"))
		}
		return m, send(statusMsg("event log paused; new events are kept aside"))
	case key.Matches(km, k.Clear):
		m.log, m.off, m.sel, m.follow = nil, 0, 0, true
		return m, nil
	case key.Matches(km, k.Open):
		if m.sel >= 0 && m.sel < len(m.log) {
			return m, send(openDecisionMsg{d: m.log[m.sel]})
		}
		return m, nil
	case key.Matches(km, k.Up):
		m.sel--
	case key.Matches(km, k.Down):
		m.sel++
	case key.Matches(km, k.PageUp):
		m.sel -= h - 1
		m.off -= h - 1
	case key.Matches(km, k.PageDown):
		m.sel += h - 1
		m.off += h - 1
	case key.Matches(km, k.Top):
		m.sel, m.off = 0, 0
	case key.Matches(km, k.Follow):
		m.sel = len(m.log) - 1
	default:
		return m, nil
	}
	last := max(0, len(m.log)-h)
	m.sel = max(0, min(m.sel, len(m.log)-1))
	m.off = max(0, min(m.off, last))
	if m.sel < m.off {
		m.off = m.sel
	}
	if m.sel >= m.off+h {
		m.off = m.sel - h + 1
	}
	m.follow = m.sel >= len(m.log)-1
	return m, nil
}

func (m eventsModel) hints() []key.Binding {
	k := m.c.keys
	return []key.Binding{k.Open, k.Pause, k.Up, k.Down, k.Follow, k.Clear}
}

func (m eventsModel) view() string {
	st := m.c.st
	w := m.c.bodyW
	h := m.rows()
	state := st.OK.Render("● following")
	switch {
	case m.paused:
		state = st.Warn.Render(fmt.Sprintf("❚❚ paused, %d new", len(m.held)))
	case !m.follow:
		state = st.Info.Render("scrolled · G follows")
	}
	lines := []string{state + st.Dim.Render(fmt.Sprintf("  %d decisions, newest at the bottom · enter shows one in full", len(m.log)))}
	lines = append(lines, st.Header.Render(pad("  time      who", 30)))
	off, sel := m.window()
	if len(m.log) == 0 {
		lines = append(lines, st.Dim.Render("  nothing yet: decisions appear here as the bridge makes them"))
	}
	for i := off; i < len(m.log) && i < off+h; i++ {
		lines = append(lines, m.line(m.log[i], w, i == sel))
	}
	return strings.Join(lines, "\n")
}

func (m eventsModel) line(d psync.Decision, w int, selected bool) string {
	st := m.c.st
	oc := string(d.Outcome)
	ocs, ok := st.Outcome[d.Outcome]
	if !ok {
		ocs = st.Dim
	}
	name := d.Name
	if name == "" {
		name = string(d.User)
	}
	if name == "" {
		name = "bridge"
	}
	nameW := 16
	if w >= 110 {
		nameW = 22
	}
	cursor := "  "
	if selected {
		cursor = st.Cursor.Render("▸ ")
	}
	prefix := clock(d.At) + "  "
	who := pad(name, nameW) + " "
	rest := decisionText(psync.Decision{Side: d.Side, What: d.What, Old: d.Old, New: d.New, Reason: d.Reason, Rule: d.Rule, Flag: d.Flag, Profile: d.Profile, Err: d.Err}, false)
	room := max(0, w-2-lipgloss.Width(prefix)-nameW-1-len(oc)-2)
	if selected {
		return cursor + st.Selected.Render(prefix+who+pad(rest, room)) + " " + ocs.Render(oc)
	}
	return cursor + st.Dim.Render(prefix) + st.Bold.Render(who) + pad(rest, room) + " " + ocs.Render(oc)
}
