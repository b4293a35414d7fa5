package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

// profilesModel edits profiles: a list on the left, the selected profile's
// flags with their help on the right. Every change is one PutProfile of the
// whole profile, which the bridge applies at once.
type profilesModel struct {
	c        *common
	list     []psync.Profile
	users    []psync.UserStatus // to say who is on a profile
	cursor   int
	selected string
	inFlags  bool // the flag list has the keys
	flag     int
	creating bool
	renaming string // the profile being renamed, while creating (the input holds the new name)
	input    lineInput
	inputErr string
}

func newProfilesModel(c *common) profilesModel {
	return profilesModel{c: c, input: newInput(c, "name: ", "e.g. reception, sales_team")}
}

func (m *profilesModel) setProfiles(ps []psync.Profile) {
	m.list = ps
	m.cursor = 0
	for i, p := range ps {
		if p.Name == m.selected {
			m.cursor = i
		}
	}
	m.sync()
}

func (m *profilesModel) sync() {
	if len(m.list) == 0 {
		m.cursor, m.inFlags = 0, false
		return
	}
	m.cursor = max(0, min(m.cursor, len(m.list)-1))
	m.selected = m.list[m.cursor].Name
	m.flag = max(0, min(m.flag, len(psync.ProfileFlags)-1))
}

func (m profilesModel) current() (psync.Profile, bool) {
	if m.cursor < 0 || m.cursor >= len(m.list) {
		return psync.Profile{}, false
	}
	return m.list[m.cursor], true
}

func (m profilesModel) usersOn(name string) []string {
	var out []string
	for _, u := range m.users {
		if u.Profile == name {
			out = append(out, u.User.Name())
		}
	}
	return out
}

func (m profilesModel) update(msg tea.Msg) (profilesModel, tea.Cmd) {
	k := m.c.keys
	if m.creating {
		if km, ok := msg.(tea.KeyMsg); ok {
			switch {
			case key.Matches(km, k.Submit):
				name := strings.TrimSpace(m.input.Value())
				// Checked here too so the admin sees the rule while typing
				// instead of after a round trip; the service checks again.
				if err := psync.ValidateProfileName(name); err != nil {
					m.inputErr = cleanText(err.Error())
					return m, nil
				}
				for _, p := range m.list {
					if p.Name == name {
						m.inputErr = fmt.Sprintf("profile %q exists already", name)
						return m, nil
					}
				}
				old := m.renaming
				m.creating, m.renaming, m.inputErr = false, "", ""
				m.input.Blur()
				m.selected = name
				if old != "" {
					return m, m.c.renameProfile(old, name)
				}
				return m, m.c.putProfile(psync.NewProfile(name), "profile "+name+" created with the defaults of §3")
			case key.Matches(km, k.Cancel):
				m.creating, m.renaming, m.inputErr = false, "", ""
				m.input.Blur()
				return m, nil
			}
		}
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		m.inputErr = ""
		return m, cmd
	}
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	switch {
	case key.Matches(km, k.New):
		m.creating = true
		m.input.SetValue("")
		m.input.Focus()
		return m, nil
	case key.Matches(km, k.Rename):
		p, ok := m.current()
		if !ok {
			return m, nil
		}
		m.creating, m.renaming = true, p.Name
		m.input.SetValue(p.Name)
		m.input.CursorEnd()
		m.input.Focus()
		return m, nil
	case key.Matches(km, k.Delete):
		p, ok := m.current()
		if !ok {
			return m, nil
		}
		detail := "No user is on it."
		if on := m.usersOn(p.Name); len(on) > 0 {
			detail = fmt.Sprintf("%d users are on it (%s); the bridge will refuse until they are moved.", len(on), strings.Join(on, ", "))
		}
		return m, send(confirmMsg{prompt: "Delete profile " + p.Name + "?", detail: detail, yes: m.c.deleteProfile(p.Name)})
	}
	if m.inFlags {
		switch {
		case key.Matches(km, k.Up):
			m.flag = max(0, m.flag-1)
		case key.Matches(km, k.Down):
			m.flag = min(len(psync.ProfileFlags)-1, m.flag+1)
		case key.Matches(km, k.Left), key.Matches(km, k.Back):
			m.inFlags = false
		case key.Matches(km, k.Toggle):
			cmd := m.toggle()
			// Flip the local copy too: a second toggle before the reload
			// must build on this one, not undo it.
			if cmd != nil && m.cursor >= 0 && m.cursor < len(m.list) {
				f := psync.ProfileFlags[m.flag].Flag
				if v, err := m.list[m.cursor].Flag(f); err == nil {
					_ = m.list[m.cursor].SetFlag(f, !v)
				}
			}
			return m, cmd
		}
		return m, nil
	}
	switch {
	case key.Matches(km, k.Up):
		m.cursor--
	case key.Matches(km, k.Down):
		m.cursor++
	case key.Matches(km, k.Top):
		m.cursor = 0
	case key.Matches(km, k.Bottom):
		m.cursor = len(m.list) - 1
	case key.Matches(km, k.Right), key.Matches(km, k.Open):
		if len(m.list) > 0 {
			m.inFlags = true
		}
	}
	m.sync()
	return m, nil
}

// toggle flips the highlighted flag and sends the whole profile.
func (m profilesModel) toggle() tea.Cmd {
	p, ok := m.current()
	if !ok || m.flag >= len(psync.ProfileFlags) {
		return nil
	}
	f := psync.ProfileFlags[m.flag].Flag
	v, err := p.Flag(f)
	if err != nil {
		return send(doneMsg{err: err})
	}
	if err := p.SetFlag(f, !v); err != nil {
		return send(doneMsg{err: err})
	}
	state := "off"
	if !v {
		state = "on"
	}
	return m.c.putProfile(p, fmt.Sprintf("profile %s: %s %s", p.Name, f, state))
}

func (m profilesModel) hints() []key.Binding {
	k := m.c.keys
	if m.creating {
		return []key.Binding{k.Submit, k.Cancel}
	}
	if m.inFlags {
		return []key.Binding{k.Toggle, k.Up, k.Down, k.Left, k.New, k.Delete, k.Rename}
	}
	return []key.Binding{k.Up, k.Down, k.Right, k.New, k.Delete, k.Rename}
}

func (m profilesModel) view() string {
	st := m.c.st
	w, h := m.c.bodyW, m.c.bodyH
	listW := min(28, max(14, w/4))
	flagsW := max(10, w-listW-3)

	// Left: the profiles.
	left := []string{st.Section.Render("Profiles")}
	if len(m.list) == 0 {
		left = append(left, st.Dim.Render("none loaded"))
	}
	for i, p := range m.list {
		n := len(m.usersOn(p.Name))
		label := pad(p.Name, listW-6) + st.Dim.Render(fmt.Sprintf("%4d", n))
		if i == m.cursor {
			style := st.Selected
			if m.inFlags {
				style = st.Bold
			}
			left = append(left, st.Cursor.Render("▸ ")+style.Render(label))
		} else {
			left = append(left, "  "+label)
		}
	}
	left = append(left, "", st.Dim.Render(truncate("number: users on it", listW)))
	if m.creating {
		title := "New profile"
		if m.renaming != "" {
			title = "Rename " + m.renaming
		}
		left = append(left, "", st.Section.Render(truncate(title, listW)))
		m.input.Width = max(4, listW-8)
		left = append(left, m.input.View())
		if m.inputErr != "" {
			for _, l := range wrap(m.inputErr, listW) {
				left = append(left, st.Err.Render(l))
			}
		}
	}

	// Right: the flags of the selected profile.
	var right []string
	if p, ok := m.current(); ok {
		right = append(right, st.Section.Render("Flags of "+truncate(p.Name, flagsW-10)))
		// One line per flag and its help below when there is room; on a
		// short terminal the help of the highlighted flag only.
		roomy := h >= 2+2*len(psync.ProfileFlags)+3
		for i, pf := range psync.ProfileFlags {
			on, _ := p.Flag(pf.Flag)
			box := st.Dim.Render("[ ]")
			if on {
				box = st.OK.Render("[x]")
			}
			name := truncate(string(pf.Flag), flagsW-6)
			line := box + " " + name
			if m.inFlags && i == m.flag {
				line = st.Cursor.Render("▸ ") + box + " " + st.Selected.Render(name)
			} else {
				line = "  " + line
			}
			right = append(right, line)
			if roomy || (m.inFlags && i == m.flag) {
				right = append(right, "      "+st.Dim.Render(truncate(pf.Help, flagsW-6)))
			}
		}
		on := m.usersOn(p.Name)
		who := "nobody is on this profile"
		if len(on) > 0 {
			who = "on it: " + strings.Join(on, ", ")
		}
		right = append(right, "", st.Dim.Render(truncate(who, flagsW)))
		if !m.inFlags {
			right = append(right, st.Dim.Render(truncate("→ or enter to change flags", flagsW)))
		}
	}
	sep := make([]string, max(1, h))
	for i := range sep {
		sep[i] = " " + st.Dim.Render("│") + " "
	}
	return lipgloss.JoinHorizontal(lipgloss.Top,
		st.r.NewStyle().Width(listW).Render(strings.Join(left, "\n")),
		strings.Join(sep, "\n"),
		strings.Join(right, "\n"))
}
