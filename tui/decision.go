package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	psync "github.com/presencebridge/presencebridge/sync"
)

// decisionModel shows one decision in full, every field on its own lines,
// wrapped and never cut: the event log and a user's transitions have room
// for one line each, and the reason or the error is often the part that
// matters. It is opened from both; esc goes back to where it was opened.
type decisionModel struct {
	c     *common
	d     psync.Decision
	from  screen // where esc goes back to
	pager pager
}

func (m decisionModel) update(msg tea.Msg) (decisionModel, tea.Cmd) {
	m.pager.update(msg, m.c.keys, len(m.lines()), m.c.bodyH)
	return m, nil
}

func (m decisionModel) hints() []key.Binding {
	k := m.c.keys
	return []key.Binding{k.Back, k.Up, k.Down}
}

func (m decisionModel) view() string {
	return m.pager.window(m.c.st, m.lines(), m.c.bodyH)
}

func (m decisionModel) lines() []string {
	st := m.c.st
	w := m.c.bodyW
	d := m.d
	name := d.Name
	if name == "" {
		name = string(d.User)
	}
	if name == "" {
		name = "the bridge"
	}
	ocs, ok := st.Outcome[d.Outcome]
	if !ok {
		ocs = st.Dim
	}
	out := []string{
		st.Title.Render("Decision") + "  " + st.Dim.Render(d.At.Format("2006-01-02 15:04:05.000 MST")) + "  " + ocs.Render(orDash(string(d.Outcome))),
		"",
	}
	const labelW = 10
	row := func(label, value string) {
		if strings.TrimSpace(value) == "" {
			return
		}
		for i, l := range wrap(value, max(10, w-labelW-2)) {
			if i == 0 {
				out = append(out, "  "+st.Label.Render(pad(label, labelW))+l)
			} else {
				out = append(out, "  "+strings.Repeat(" ", labelW)+l)
			}
		}
	}
	who := name
	if d.User != "" && string(d.User) != name {
		who += " (id " + string(d.User) + ")"
	}
	row("who", who)
	if d.Side != 0 {
		row("side", d.Side.String())
	}
	row("what", d.What)
	row("change", orDash(d.Old)+" → "+orDash(d.New))
	row("outcome", string(d.Outcome)+": "+outcomeWords(d.Outcome))
	row("why", d.Reason)
	if d.Rule != "" {
		row("rule", d.Rule+" (sync/RULES.md)")
	}
	if d.Flag != "" {
		flag := d.Flag
		if help := flagHelp(d.Flag); help != "" {
			flag += ": " + help
		}
		if d.Profile != "" {
			flag = "profile " + d.Profile + ", " + flag
		}
		row("allowed", flag)
	} else if d.Profile != "" {
		row("profile", d.Profile)
	}
	if d.Err != "" {
		out = append(out, "")
		for i, l := range wrap(d.Err, max(10, w-labelW-2)) {
			label := ""
			if i == 0 {
				label = "error"
			}
			out = append(out, "  "+st.Err.Render(pad(label, labelW)+l))
		}
	}
	return out
}

// outcomeWords says what an outcome means, for the decision screen.
func outcomeWords(o psync.Outcome) string {
	switch o {
	case psync.OutcomeApplied:
		return "the other side confirmed the change"
	case psync.OutcomeReleased:
		return "the bridge gave back what it held"
	case psync.OutcomeYielded:
		return "the person changed it; their change wins and the bridge let go"
	case psync.OutcomeFailed:
		return "the side refused or failed; the bridge retries"
	case psync.OutcomeObserved:
		return "a change seen, recorded"
	}
	return "—"
}
