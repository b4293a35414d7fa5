package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	psync "github.com/presencebridge/presencebridge/sync"
)

// pickerModel chooses a profile for one user (the "p" key on the users and
// detail screens). It is an overlay of the root model.
type pickerModel struct {
	c       *common
	user    psync.UserID
	name    string
	current string
	options []psync.Profile
	cursor  int
}

func newPicker(msg pickProfileMsg, profiles []psync.Profile) pickerModel {
	p := pickerModel{user: msg.user, name: msg.name, current: msg.current}
	p.setProfiles(profiles)
	return p
}

// setProfiles keeps the highlighted profile when the list is reloaded.
func (p *pickerModel) setProfiles(ps []psync.Profile) {
	want := p.current
	if p.cursor < len(p.options) {
		want = p.options[p.cursor].Name
	}
	p.options = ps
	p.cursor = 0
	for i, o := range ps {
		if o.Name == want {
			p.cursor = i
		}
	}
}

// update returns done when the picker should close.
func (p pickerModel) update(msg tea.KeyMsg) (pickerModel, tea.Cmd, bool) {
	k := p.c.keys
	switch {
	case key.Matches(msg, k.Up):
		if p.cursor > 0 {
			p.cursor--
		}
	case key.Matches(msg, k.Down):
		if p.cursor < len(p.options)-1 {
			p.cursor++
		}
	case key.Matches(msg, k.Submit):
		if len(p.options) == 0 {
			return p, nil, true
		}
		choice := p.options[p.cursor].Name
		if choice == p.current {
			return p, send(statusMsg(p.name + " stays on profile " + choice)), true
		}
		return p, p.c.assignProfile(p.user, p.name, choice), true
	case key.Matches(msg, k.Cancel), key.Matches(msg, k.Quit):
		return p, nil, true
	}
	return p, nil, false
}

func (p pickerModel) view() string {
	st := p.c.st
	w := min(50, max(24, p.c.bodyW-10))
	lines := []string{st.Title.Render(truncate("Profile for "+p.name, w)), ""}
	if len(p.options) == 0 {
		lines = append(lines, st.Dim.Render("loading profiles…"))
	}
	// Keep the list inside the body even with many profiles.
	visible := max(1, p.c.bodyH-8)
	start := 0
	if p.cursor >= visible {
		start = p.cursor - visible + 1
	}
	for i := start; i < len(p.options) && i < start+visible; i++ {
		o := p.options[i]
		label := truncate(o.Name, w-14)
		if o.Name == p.current {
			label += st.Dim.Render(" (current)")
		}
		if i == p.cursor {
			lines = append(lines, st.Cursor.Render("▸ ")+st.Selected.Render(label))
		} else {
			lines = append(lines, "  "+label)
		}
	}
	lines = append(lines, "", st.Dim.Render("enter assigns · esc cancels"))
	return st.Modal.Render(strings.Join(lines, "\n"))
}
