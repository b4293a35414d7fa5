package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

// sortBy names the column the users table is sorted by.
type sortBy int

const (
	sortName sortBy = iota
	sortPhone
	sortTeams
	sortChange
	nSorts
)

var sortNames = [...]string{"name", "phone state", "Teams state", "last change"}

// usersModel is the table of everyone: both sides, the direction of the last
// sync, what the bridge holds and since when something changed.
type usersModel struct {
	c         *common
	all       []psync.UserStatus // configuration order
	rows      []psync.UserStatus // filtered and sorted
	sort      sortBy
	reverse   bool
	filter    lineInput
	filtering bool // typing into the filter
	adding    bool // typing a new user into add
	add       lineInput
	addErr    string
	cursor    int
	selected  psync.UserID // keeps the cursor on a person across reloads
	offset    int
	stale     bool // all changed since rows were made
}

func newUsersModel(c *common) usersModel {
	ti := newInput(c, "filter: ", "name, extension, profile, state…")
	add := newInput(c, "new user: ", "ID [UPN] [name], e.g. sip:anna@contoso.example anna@contoso.example Anna Berg")
	return usersModel{c: c, filter: ti, add: add}
}

func (m *usersModel) layout() {
	m.filter.Width = max(10, m.c.bodyW-30)
	m.add.Width = max(10, m.c.bodyW-lipgloss.Width(m.add.Prompt)-2)
}

// setUsers takes the users; the table is filtered and sorted again at
// once when it shows, else when it is shown next (refresh): at 10,000
// users that is the console's dearest step.
func (m *usersModel) setUsers(us []psync.UserStatus, showing bool) {
	m.all = us
	m.stale = true
	if showing {
		m.refresh()
	}
}

// refresh filters and sorts what arrived while the table did not show.
func (m *usersModel) refresh() {
	if m.stale {
		m.apply()
	}
}

// apply filters and sorts, keeping the cursor on the selected person.
func (m *usersModel) apply() {
	q := strings.ToLower(strings.TrimSpace(m.filter.Value()))
	rows := make([]psync.UserStatus, 0, len(m.all))
	for _, u := range m.all {
		if q == "" || strings.Contains(searchText(u), q) {
			rows = append(rows, u)
		}
	}
	by := m.sort
	slices.SortStableFunc(rows, func(a, b psync.UserStatus) int {
		var c int
		switch by {
		case sortPhone:
			c = cmp.Compare(phoneRank(a), phoneRank(b))
		case sortTeams:
			c = cmp.Compare(teamsRank(a), teamsRank(b))
		case sortChange:
			// Most recent first reads naturally for "what just happened".
			c = b.LastChange.Compare(a.LastChange)
		}
		if c == 0 {
			c = cmp.Compare(strings.ToLower(a.User.Name()), strings.ToLower(b.User.Name()))
		}
		if c == 0 {
			c = cmp.Compare(a.User.ID, b.User.ID)
		}
		return c
	})
	if m.reverse {
		slices.Reverse(rows)
	}
	m.rows, m.stale = rows, false
	m.cursor = 0
	for i, u := range rows {
		if u.User.ID == m.selected {
			m.cursor = i
		}
	}
	m.sync()
}

// sync remembers who is under the cursor and scrolls them into view.
func (m *usersModel) sync() {
	if len(m.rows) == 0 {
		m.cursor, m.offset = 0, 0
		return
	}
	m.cursor = max(0, min(m.cursor, len(m.rows)-1))
	m.selected = m.rows[m.cursor].User.ID
	h := m.tableRows()
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+h {
		m.offset = m.cursor - h + 1
	}
	m.offset = max(0, min(m.offset, len(m.rows)-h))
}

// tableRows is how many users fit: the body less the filter line, the
// header and the legend.
func (m usersModel) tableRows() int { return max(1, m.c.bodyH-3) }

func searchText(u psync.UserStatus) string {
	return strings.ToLower(strings.Join([]string{
		u.User.Name(), string(u.User.ID), u.User.Extension, u.User.UPN, u.Profile,
		u.Text, u.TeamsState.String(), phoneText(u),
	}, "\x00"))
}

// phoneRank orders the phone column from "reachable" to "not there".
func phoneRank(u psync.UserStatus) int {
	if !u.PhoneKnown {
		return 100
	}
	r := int(u.Phone.Presence) * 2
	if len(u.Phone.Calls) > 0 {
		r++
	}
	return r
}

// teamsRank orders by channel (neutral, yellow, red), then state, unknown last.
func teamsRank(u psync.UserStatus) int {
	if !u.TeamsKnown || u.TeamsState == psync.TeamsUnknown {
		return 1000
	}
	colour := map[psync.Colour]int{psync.ColourNeutral: 0, psync.ColourYellow: 1, psync.ColourRed: 2}[u.Colour]
	return colour*100 + int(u.TeamsState)
}

func (m usersModel) current() (psync.UserStatus, bool) {
	if m.cursor < 0 || m.cursor >= len(m.rows) {
		return psync.UserStatus{}, false
	}
	return m.rows[m.cursor], true
}

func (m usersModel) update(msg tea.Msg) (usersModel, tea.Cmd) {
	k := m.c.keys
	km, isKey := msg.(tea.KeyMsg)
	if m.adding {
		if isKey {
			switch {
			case key.Matches(km, k.Submit):
				u, err := parseNewUser(m.add.Value())
				if err != nil {
					m.addErr = err.Error()
					return m, nil
				}
				m.adding, m.addErr = false, ""
				m.add.Blur()
				m.add.SetValue("")
				m.selected = u.ID
				return m, m.c.addUser(u)
			case key.Matches(km, k.Cancel):
				m.adding, m.addErr = false, ""
				m.add.Blur()
				m.add.SetValue("")
				return m, nil
			}
		}
		var cmd tea.Cmd
		m.add, cmd = m.add.Update(msg)
		m.addErr = ""
		return m, cmd
	}
	if m.filtering {
		if isKey {
			switch {
			case key.Matches(km, k.Submit):
				m.filtering = false
				m.filter.Blur()
				return m, nil
			case key.Matches(km, k.Cancel):
				m.filtering = false
				m.filter.Blur()
				m.filter.SetValue("")
				m.apply()
				return m, nil
			case km.Type == tea.KeyUp, km.Type == tea.KeyDown:
				// Arrows move in the list while typing; letters are text.
				if km.Type == tea.KeyUp {
					m.cursor--
				} else {
					m.cursor++
				}
				m.sync()
				return m, nil
			}
		}
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(msg)
		m.apply()
		return m, cmd
	}
	if !isKey {
		return m, nil
	}
	switch {
	case key.Matches(km, k.Up):
		m.cursor--
	case key.Matches(km, k.Down):
		m.cursor++
	case key.Matches(km, k.PageUp):
		m.cursor -= m.tableRows()
	case key.Matches(km, k.PageDown):
		m.cursor += m.tableRows()
	case key.Matches(km, k.Top):
		m.cursor = 0
	case key.Matches(km, k.Bottom):
		m.cursor = len(m.rows) - 1
	case key.Matches(km, k.Filter):
		m.filtering = true
		m.filter.Focus()
		return m, nil
	case key.Matches(km, k.Back):
		if m.filter.Value() != "" {
			m.filter.SetValue("")
			m.apply()
		}
		return m, nil
	case key.Matches(km, k.Sort):
		m.sort = (m.sort + 1) % nSorts
		m.apply()
		return m, send(statusMsg("sorted by " + sortNames[m.sort]))
	case key.Matches(km, k.Reverse):
		m.reverse = !m.reverse
		m.apply()
		return m, nil
	case key.Matches(km, k.Open):
		if u, ok := m.current(); ok {
			return m, send(openUserMsg{id: u.User.ID})
		}
		return m, nil
	case key.Matches(km, k.Assign):
		if u, ok := m.current(); ok {
			return m, send(pickProfileMsg{user: u.User.ID, name: u.User.Name(), current: u.Profile})
		}
		return m, nil
	case key.Matches(km, k.AddUser):
		m.adding, m.addErr = true, ""
		m.layout()
		m.add.SetValue("")
		m.add.Focus()
		return m, nil
	case key.Matches(km, k.RemoveUser):
		if u, ok := m.current(); ok {
			detail := "The bridge first gives back what it holds for them; then they are no longer bridged."
			if n := len(u.Holds); n > 0 {
				detail = fmt.Sprintf("The bridge first gives back the %d things it holds for them; then they are no longer bridged.", n)
			}
			return m, send(confirmMsg{prompt: "Remove user " + u.User.Name() + " (" + string(u.User.ID) + ")?", detail: detail,
				yes: m.c.removeUser(u.User.ID, u.User.Name())})
		}
		return m, nil
	default:
		return m, nil
	}
	m.sync()
	return m, nil
}

func (m usersModel) hints() []key.Binding {
	k := m.c.keys
	if m.filtering || m.adding {
		return []key.Binding{k.Submit, k.Cancel}
	}
	return []key.Binding{k.Open, k.Filter, k.Sort, k.Reverse, k.Assign, k.AddUser, k.RemoveUser}
}

// columns computes the widths for the body width: fixed columns shrink
// to their minimum first, the name takes what is left (capped so that a
// wide terminal spends its room on the hold countdowns, not on blanks).
type userCols struct {
	name, phone, teams, sync, holds, change, profile int
}

func (m usersModel) cols() userCols {
	w := m.c.bodyW - 2 // cursor gutter
	c := userCols{phone: 15, teams: 18, sync: 4, holds: 12, change: 7}
	if w >= 110 {
		c.profile = 12
		c.phone = 17
		c.teams = 20
		c.holds = 16
	}
	fixed := c.phone + c.teams + c.sync + c.holds + c.change + c.profile
	gaps := 6
	if c.profile > 0 {
		gaps = 7
	}
	c.name = w - fixed - gaps
	if c.name > 32 {
		c.holds += c.name - 32
		c.name = 32
	}
	if c.name < 10 {
		// Very narrow: the last-change column goes before the name suffers.
		c.name += c.change + 1
		c.change = 0
		c.name = max(6, c.name)
	}
	return c
}

func (m usersModel) view() string {
	st := m.c.st
	now := m.c.now()
	c := m.cols()
	var lines []string

	// Filter and sort line.
	sortDesc := "sorted by " + sortNames[m.sort]
	if m.reverse {
		sortDesc += ", reversed"
	}
	count := fmt.Sprintf("%d of %d users · %s", len(m.rows), len(m.all), sortDesc)
	switch {
	case m.adding && m.addErr != "":
		lines = append(lines, st.Err.Render(truncate("✗ "+m.addErr, m.c.bodyW)))
	case m.adding:
		lines = append(lines, m.add.View())
	case m.filtering:
		lines = append(lines, m.filter.View())
	case m.filter.Value() != "":
		lines = append(lines, st.Key.Render("filter: ")+m.filter.Value()+st.Dim.Render("  ·  "+count+" · esc clears"))
	default:
		lines = append(lines, st.Dim.Render(count+" · / to filter"))
	}

	cell := func(s string, w int) string {
		if w <= 0 {
			return ""
		}
		return pad(s, w) + " "
	}
	mark := func(s sortBy, title string) string {
		if m.sort == s {
			if m.reverse {
				return title + " ▲"
			}
			return title + " ▼"
		}
		return title
	}
	header := "  " + cell(mark(sortName, "Name"), c.name) + cell(mark(sortPhone, "Phone"), c.phone) +
		cell(mark(sortTeams, "Teams"), c.teams) + cell("Sync", c.sync) + cell("Holds lease", c.holds)
	if c.profile > 0 {
		header += cell("Profile", c.profile)
	}
	header += cell(mark(sortChange, "Changed"), c.change)
	lines = append(lines, st.Header.Render(strings.TrimRight(header, " ")))

	if len(m.rows) == 0 {
		msg := "no users configured"
		if len(m.all) > 0 {
			msg = "nobody matches the filter"
		}
		lines = append(lines, "", st.Dim.Render("  "+msg))
	}
	end := min(len(m.rows), m.offset+m.tableRows())
	for i := m.offset; i < end; i++ {
		u := m.rows[i]
		name := cell(u.User.Name(), c.name)
		phone := pad(phoneText(u), c.phone) + " "
		if len(u.Phone.Calls) > 0 {
			phone = st.Warn.Render(pad(phoneText(u), c.phone)) + " "
		} else if !u.PhoneKnown {
			phone = st.Dim.Render(pad(phoneText(u), c.phone)) + " "
		}
		// The Teams cell is styled, so it is measured before styling.
		text, marks := u.Text, teamsMarks(u)
		if marks != "" {
			text = truncate(orDash(text), c.teams-3-len([]rune(marks))) + " " + marks
		}
		tu := u
		tu.Text = truncate(text, c.teams-2)
		teams := padStyled(st.teamsDot(tu), c.teams) + " "
		syncS := cell(syncArrow(u.LastSide), c.sync)
		holds := holdsText(now, u.Holds)
		holdsS := cell(holds, c.holds)
		if len(u.Holds) > 0 {
			holdsS = st.Info.Render(pad(holds, c.holds)) + " "
		}
		row := name + phone + teams + syncS + holdsS
		if c.profile > 0 {
			row += st.Dim.Render(pad(orDash(u.Profile), c.profile)) + " "
		}
		row += st.Dim.Render(pad(age(now, u.LastChange), c.change))
		if i == m.cursor {
			lines = append(lines, st.Cursor.Render("▸ ")+st.Selected.Render(row))
		} else {
			lines = append(lines, "  "+row)
		}
	}
	// The legend for the one-character marks, at the bottom of the body.
	for len(lines) < m.c.bodyH-1 {
		lines = append(lines, "")
	}
	legend := "↺ bridge's own session · ? possibly also in Teams · ✎ overridden in Teams · ☏→T phone to Teams · T→☏ Teams to phone"
	if lipgloss.Width(legend) > m.c.bodyW {
		legend = "↺ own session · ? also in Teams · ✎ overridden · ☏→T / T→☏ last sync"
	}
	lines = append(lines, st.Dim.Render(truncate(legend, m.c.bodyW)))
	return strings.Join(lines, "\n")
}

// parseNewUser reads the add line: the id (the phone system's key, for the
// UCServer sip: + e-mail), then the UPN if the next word has an @, then the
// name. The rest (extension, Teams id) is for the CLI (users set); the
// profile is assigned with p.
func parseNewUser(line string) (psync.User, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return psync.User{}, fmt.Errorf("type the user's id first, e.g. sip:anna@contoso.example (the UCServer contact id)")
	}
	u := psync.User{ID: psync.UserID(f[0])}
	f = f[1:]
	if len(f) > 0 && strings.Contains(f[0], "@") {
		u.UPN, f = f[0], f[1:]
	}
	u.DisplayName = strings.Join(f, " ")
	if err := u.Validate(); err != nil {
		return psync.User{}, err
	}
	return u, nil
}
