package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

// screen names one screen; the detail screen has no tab of its own, it is
// opened from the users screen.
type screen int

const (
	scrDashboard screen = iota
	scrUsers
	scrProfiles
	scrSettings
	scrEvents
	scrDetail
	scrDecision // one decision in full, over the screen it was opened from
)

var screenNames = []string{"Dashboard", "Users", "Profiles", "Settings", "Events"}

// overlay is what covers the body: help, a confirmation, the profile picker
// or the sign-in code. Only one at a time, and it takes every key.
type overlay int

const (
	ovNone overlay = iota
	ovHelp
	ovConfirm
	ovPicker
	ovSignIn
)

// Minimum terminal size below which only a notice is drawn.
const minWidth, minHeight = 40, 10

// model is the root: it owns the shared state (common), routes keys to the
// active screen and data to the screens that show it, and draws the frame
// (tabs, status line, key hints) and overlays.
type model struct {
	c *common

	active   screen
	dash     dashboardModel
	users    usersModel
	detail   detailModel
	profiles profilesModel
	settings settingsModel
	events   eventsModel
	decision decisionModel

	overlay overlay
	confirm confirmMsg
	picker  pickerModel
	signIn  psync.SignInPrompt

	roster      roster          // every user, kept up to date by changes
	profileList []psync.Profile // for the picker
	status      string
	lastErr     string
	lastErrAt   time.Time
	errFrom     string // what failed: a later success of the same clears it
	errSeq      int    // which of error and status is newer
	statusSeq   int
	seq         int
	updated     time.Time // last good Users answer
	pending     int       // periodic loads in flight
	stream      string    // "connecting", "live", "reconnecting"
	quitting    bool
	tally       tally // for the Summary at the end
}

func newModel(ctx context.Context, ctrl Controller, opts Options) *model {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	c := &common{
		ctrl: ctrl, ctx: ctx, cancel: cancel,
		st: newStyles(opts.Renderer), keys: newKeyMap(),
		now: opts.Now, opts: opts, timeout: opts.Timeout,
	}
	m := &model{
		c:        c,
		active:   scrDashboard,
		dash:     dashboardModel{c: c},
		users:    newUsersModel(c),
		detail:   detailModel{c: c},
		profiles: newProfilesModel(c),
		settings: newSettingsModel(c),
		events:   eventsModel{c: c, follow: true},
		stream:   "connecting",
		tally:    tally{opened: opts.Now()},
	}
	if opts.Notice != "" {
		m.setStatus(cleanText(opts.Notice))
	}
	return m
}

// Init loads everything once, subscribes to the live events and starts the
// refresh tick.
func (m *model) Init() tea.Cmd {
	m.pending = 2
	return tea.Batch(
		m.c.fetchOverview(), m.c.fetchUsers(0), m.c.fetchProfiles(), m.c.fetchSettings(),
		m.c.fetchAudit(), m.c.openEvents(), tick(m.c.opts.Refresh),
	)
}

// setErr puts an error into the status line. from names the load or action
// that failed, so that its next success can take the error away again: a
// service that came back must not look broken.
func (m *model) setErr(from string, err error) {
	if err == nil {
		return
	}
	m.lastErr, m.lastErrAt, m.errFrom = cleanText(err.Error()), m.c.now(), from
	m.seq++
	m.errSeq = m.seq
}

func (m *model) clearErr(from string) {
	if m.errFrom == from {
		m.lastErr, m.errFrom = "", ""
	}
}

func (m *model) setStatus(s string) {
	m.status = s
	m.seq++
	m.statusSeq = m.seq
}

// Update is the router.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, nil
	case tea.KeyMsg:
		return m.key(msg)

	case tickMsg:
		return m, tea.Batch(m.reload(), tick(m.c.opts.Refresh))

	case overviewMsg:
		m.pending = max(0, m.pending-1)
		if msg.err != nil {
			m.setErr("overview", fmt.Errorf("overview: %w", msg.err))
			return m, nil
		}
		m.dash.ov, m.dash.loaded = msg.ov, true
		m.tally.overview(msg.ov)
		m.clearErr("overview")
		return m, nil
	case usersMsg:
		m.pending = max(0, m.pending-1)
		if msg.err != nil {
			m.setErr("users", fmt.Errorf("users: %w", msg.err))
			return m, nil
		}
		m.updated = m.c.now()
		m.clearErr("users")
		if m.roster.apply(msg.ch) {
			// Filtering and sorting everyone waits until the table shows.
			m.users.setUsers(m.roster.list, m.active == scrUsers)
			m.profiles.users = m.roster.list
			m.dash.users = m.roster.list
		}
		return m, nil
	case userMsg:
		if msg.id != m.detail.id {
			return m, nil
		}
		if msg.err != nil {
			m.setErr("user", fmt.Errorf("user %s: %w", msg.id, msg.err))
			return m, nil
		}
		m.detail.st, m.detail.loaded = msg.st, true
		m.clearErr("user")
		return m, nil
	case historyMsg:
		if msg.id != m.detail.id {
			return m, nil
		}
		if msg.err != nil {
			m.setErr("history", fmt.Errorf("history of %s: %w", msg.id, msg.err))
			return m, nil
		}
		m.detail.history, m.detail.historyLoaded = msg.ds, true
		m.clearErr("history")
		return m, nil
	case profilesMsg:
		if msg.err != nil {
			m.setErr("profiles", fmt.Errorf("profiles: %w", msg.err))
			return m, nil
		}
		m.profileList = msg.profiles
		m.clearErr("profiles")
		m.profiles.setProfiles(msg.profiles)
		if m.overlay == ovPicker {
			m.picker.setProfiles(msg.profiles)
		}
		return m, nil
	case settingsMsg:
		if msg.err != nil {
			m.setErr("settings", fmt.Errorf("settings: %w", msg.err))
			return m, nil
		}
		m.settings.setSettings(msg.settings)
		m.clearErr("settings")
		return m, nil
	case auditMsg:
		if msg.err != nil {
			m.setErr("audit", fmt.Errorf("audit: %w", msg.err))
			return m, nil
		}
		m.events.addBacklog(msg.ds)
		m.clearErr("audit")
		return m, nil

	case eventsOpenedMsg:
		if msg.err != nil || msg.ch == nil {
			if msg.err != nil {
				m.setErr("live", fmt.Errorf("live events: %w", msg.err))
			}
			m.stream = "reconnecting"
			return m, m.reconnect()
		}
		m.stream = "live"
		m.clearErr("live")
		return m, waitEvents(msg.ch)
	case eventsMsg:
		m.events.add(msg.ds)
		m.tally.decisions(msg.ds)
		cmds := []tea.Cmd{waitEvents(msg.ch)}
		if msg.ch == nil {
			m.stream = "reconnecting"
			cmds = append(cmds, m.reconnect())
		}
		// Instant update: reload what the decisions touched instead of
		// waiting for the next tick (skipped while a load is in flight;
		// that one will show the change).
		if m.pending == 0 {
			m.pending = 1
			cmds = append(cmds, m.c.fetchUsers(m.roster.version))
		}
		for _, d := range msg.ds {
			if m.active == scrDetail && d.User == m.detail.id {
				cmds = append(cmds, m.c.fetchUser(m.detail.id), m.c.fetchHistory(m.detail.id))
				break
			}
		}
		return m, tea.Batch(cmds...)
	case eventsClosedMsg:
		m.stream = "reconnecting"
		return m, m.reconnect()
	case reconnectMsg:
		if m.c.ctx.Err() != nil {
			return m, nil
		}
		m.stream = "connecting"
		return m, m.c.openEvents()

	case doneMsg:
		if msg.err != nil {
			m.setErr("action", msg.err)
		} else {
			m.setStatus(msg.what)
		}
		return m, m.reloadAfter(msg.refresh)
	case settingSavedMsg:
		var cmd tea.Cmd
		m.settings, cmd = m.settings.saved(msg)
		if msg.err == nil {
			if len(msg.cleared) > 0 {
				// The important half first: a narrow status line cuts the end.
				m.setStatus(strings.Join(msg.cleared, ", ") + " cleared: set it again (" + msg.key + " saved)")
			} else {
				m.setStatus(msg.key + " saved")
			}
		}
		return m, tea.Batch(cmd, m.c.fetchSettings())
	case signInMsg:
		if msg.err != nil {
			m.setErr("action", fmt.Errorf("sign-in: %w", msg.err))
			return m, nil
		}
		m.signIn, m.overlay = msg.prompt, ovSignIn
		return m, nil
	case statusMsg:
		m.setStatus(string(msg))
		return m, nil

	case confirmMsg:
		m.confirm, m.overlay = msg, ovConfirm
		return m, nil
	case pickProfileMsg:
		m.picker = newPicker(msg, m.profileList)
		m.picker.c = m.c
		m.overlay = ovPicker
		// The list may be stale or not loaded yet.
		return m, m.c.fetchProfiles()
	case openDecisionMsg:
		from := m.active
		if from == scrDecision {
			from = m.decision.from
		}
		m.decision = decisionModel{c: m.c, d: msg.d, from: from}
		m.active = scrDecision
		return m, nil
	case openUserMsg:
		m.detail = detailModel{c: m.c, id: msg.id}
		if u, ok := m.roster.get(msg.id); ok {
			m.detail.st, m.detail.loaded = u, true
		}
		m.active = scrDetail
		return m, tea.Batch(m.c.fetchUser(msg.id), m.c.fetchHistory(msg.id))
	}
	// Anything else (e.g. the text input's blink) goes to the active screen.
	return m.routeToScreen(msg)
}

func (m *model) resize(w, h int) {
	m.c.width, m.c.height = w, h
	m.c.bodyW, m.c.bodyH = max(0, w), max(0, h-3)
	m.users.layout()
	m.settings.layout()
}

// reload is the periodic refresh: the dashboard, the users that changed
// since the last answer (cheap whatever the size of the office), and the
// open user when there is one.
func (m *model) reload() tea.Cmd {
	var cmds []tea.Cmd
	if m.pending == 0 {
		m.pending = 2
		cmds = append(cmds, m.c.fetchOverview(), m.c.fetchUsers(m.roster.version))
	}
	if m.active == scrDetail && m.detail.id != "" {
		cmds = append(cmds, m.c.fetchUser(m.detail.id))
		// The history changes only with a decision about this user, and
		// the live stream brings each one (eventsMsg fetches it then):
		// reading the audit log every second instead cost the daemon about
		// 10 % of a core at 10,000 users. Without the stream, it is polled.
		if m.stream != "live" {
			cmds = append(cmds, m.c.fetchHistory(m.detail.id))
		}
	}
	return tea.Batch(cmds...)
}

func (m *model) reloadAfter(r refresh) tea.Cmd {
	var cmds []tea.Cmd
	if r&refUsers != 0 {
		cmds = append(cmds, m.c.fetchUsers(m.roster.version))
		m.pending++
	}
	if r&refProfiles != 0 {
		cmds = append(cmds, m.c.fetchProfiles())
	}
	if r&refSettings != 0 {
		cmds = append(cmds, m.c.fetchSettings())
	}
	if r&refDetail != 0 && m.detail.id != "" {
		cmds = append(cmds, m.c.fetchUser(m.detail.id), m.c.fetchHistory(m.detail.id))
	}
	return tea.Batch(cmds...)
}

func (m *model) reconnect() tea.Cmd {
	if m.c.ctx.Err() != nil {
		return nil
	}
	return reconnectAfter(2 * time.Second)
}

func (m *model) quit() (tea.Model, tea.Cmd) {
	m.quitting = true
	// Ends the event stream (and any call still running) with the console.
	m.c.cancel()
	return m, tea.Quit
}

// switchTo changes the screen and loads what it shows.
func (m *model) switchTo(s screen) tea.Cmd {
	m.active = s
	switch s {
	case scrUsers:
		m.users.refresh()
	case scrProfiles:
		return m.c.fetchProfiles()
	case scrSettings:
		return m.c.fetchSettings()
	}
	return nil
}

// tabIndex is the tab lit for the active screen (detail belongs to Users,
// a decision to the screen it was opened from).
func (m *model) tabIndex() int {
	s := m.active
	if s == scrDecision {
		s = m.decision.from
	}
	if s == scrDetail {
		return int(scrUsers)
	}
	return int(s)
}

func (m *model) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.c.keys
	// Bubble Tea delivers letters that arrive in one read (fast typing, key
	// repeat, a slow SSH link) as one multi-rune key; outside a text field
	// each is a command of its own. Sent one by one, a rune that opens a
	// text field (/) passes the rest on as text.
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && !m.capturing() && m.overlay != ovPicker {
		var cmds []tea.Cmd
		for _, r := range msg.Runes {
			_, cmd := m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt})
			cmds = append(cmds, cmd)
		}
		return m, tea.Batch(cmds...)
	}
	if key.Matches(msg, k.ForceQuit) {
		return m.quit()
	}
	switch m.overlay {
	case ovHelp:
		if key.Matches(msg, k.Help, k.Back, k.Quit) {
			m.overlay = ovNone
		}
		return m, nil
	case ovConfirm:
		switch {
		case key.Matches(msg, k.Yes):
			m.overlay = ovNone
			yes := m.confirm.yes
			m.confirm = confirmMsg{}
			return m, yes
		case key.Matches(msg, k.No), key.Matches(msg, k.Quit):
			m.overlay = ovNone
			m.confirm = confirmMsg{}
			m.setStatus("cancelled")
		}
		return m, nil
	case ovPicker:
		var cmd tea.Cmd
		var done bool
		m.picker, cmd, done = m.picker.update(msg)
		if done {
			m.overlay = ovNone
		}
		return m, cmd
	case ovSignIn:
		if key.Matches(msg, k.Back, k.Open, k.Quit) {
			m.overlay = ovNone
		}
		return m, nil
	}

	// A screen typing into a text field gets every key, q and digits included.
	if !m.capturing() {
		switch {
		case key.Matches(msg, k.Quit):
			return m.quit()
		case key.Matches(msg, k.Help):
			m.overlay = ovHelp
			return m, nil
		case key.Matches(msg, k.Refresh):
			m.setStatus("refreshing")
			return m, tea.Batch(m.reload(), m.c.fetchProfiles(), m.c.fetchSettings())
		case key.Matches(msg, k.Next):
			return m, m.switchTo(screen((m.tabIndex() + 1) % len(screenNames)))
		case key.Matches(msg, k.Prev):
			return m, m.switchTo(screen((m.tabIndex() + len(screenNames) - 1) % len(screenNames)))
		}
		for i, b := range k.Screen {
			if key.Matches(msg, b) {
				return m, m.switchTo(screen(i))
			}
		}
		if m.active == scrDetail && key.Matches(msg, k.Back) {
			return m, m.switchTo(scrUsers)
		}
		if m.active == scrDecision && key.Matches(msg, k.Back) {
			if m.decision.from == scrDetail {
				m.active = scrDetail
				return m, nil
			}
			return m, m.switchTo(m.decision.from)
		}
	}
	return m.routeToScreen(msg)
}

func (m *model) capturing() bool {
	switch m.active {
	case scrUsers:
		return m.users.filtering || m.users.adding
	case scrProfiles:
		return m.profiles.creating
	case scrSettings:
		return m.settings.editing != editNone
	}
	return false
}

func (m *model) routeToScreen(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	switch m.active {
	case scrDashboard:
		m.dash, cmd = m.dash.update(msg)
	case scrUsers:
		m.users, cmd = m.users.update(msg)
	case scrDetail:
		m.detail, cmd = m.detail.update(msg)
	case scrProfiles:
		m.profiles, cmd = m.profiles.update(msg)
	case scrSettings:
		m.settings, cmd = m.settings.update(msg)
	case scrEvents:
		m.events, cmd = m.events.update(msg)
	case scrDecision:
		m.decision, cmd = m.decision.update(msg)
	}
	return m, cmd
}

// --- view ---------------------------------------------------------------------

// View draws exactly the terminal's size: header, body, status line, key
// hints. The body is clipped, so a screen can never scroll the frame away.
func (m *model) View() string {
	if m.quitting {
		return ""
	}
	w, h := m.c.width, m.c.height
	if w == 0 || h == 0 {
		return "presencebridge: starting…"
	}
	if w < minWidth || h < minHeight {
		return truncate(fmt.Sprintf("presencebridge: the terminal is %d×%d; the console needs at least %d×%d.", w, h, minWidth, minHeight), w)
	}
	var body string
	switch m.overlay {
	case ovHelp:
		body = m.helpView()
	case ovConfirm:
		body = m.confirmView()
	case ovPicker:
		body = m.picker.view()
	case ovSignIn:
		body = m.signInView()
	default:
		body = m.screenView()
	}
	if m.overlay != ovNone {
		body = lipgloss.Place(m.c.bodyW, m.c.bodyH, lipgloss.Center, lipgloss.Center, body)
	}
	body = fit(m.c.st, body, m.c.bodyW, m.c.bodyH)
	return lipgloss.JoinVertical(lipgloss.Left, m.headerView(), body, m.statusView(), m.hintsView())
}

// fit clips styled text to w×h and pads it to exactly that size.
func fit(st *styles, s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	clip := st.r.NewStyle().MaxWidth(w)
	for i, l := range lines {
		if lipgloss.Width(l) > w {
			l = clip.Render(l)
		}
		lines[i] = padStyled(l, w)
	}
	for len(lines) < h {
		lines = append(lines, strings.Repeat(" ", w))
	}
	return strings.Join(lines, "\n")
}

func (m *model) screenView() string {
	switch m.active {
	case scrDashboard:
		return m.dash.view()
	case scrUsers:
		return m.users.view()
	case scrDetail:
		return m.detail.view()
	case scrProfiles:
		return m.profiles.view()
	case scrSettings:
		return m.settings.view()
	case scrEvents:
		return m.events.view()
	case scrDecision:
		return m.decision.view()
	}
	return ""
}

func (m *model) headerView() string {
	st := m.c.st
	brand := "presencebridge"
	if m.c.opts.Version != "" && m.c.width >= 100 {
		brand += " " + m.c.opts.Version
	}
	parts := []string{st.Brand.Render(brand)}
	for i, n := range screenNames {
		label := fmt.Sprintf("%d %s", i+1, n)
		if i == m.tabIndex() {
			parts = append(parts, st.TabActive.Render(label))
		} else {
			parts = append(parts, st.Tab.Render(label))
		}
	}
	line := strings.Join(parts, "")
	if lipgloss.Width(line) > m.c.width {
		// Narrow: the numbers alone still tell where one is.
		parts = parts[:1]
		for i := range screenNames {
			label := fmt.Sprintf("%d", i+1)
			if i == m.tabIndex() {
				label = fmt.Sprintf("%d %s", i+1, screenNames[i])
				parts = append(parts, st.TabActive.Render(label))
			} else {
				parts = append(parts, st.Tab.Render(label))
			}
		}
		line = strings.Join(parts, "")
	}
	return fit(st, line, m.c.width, 1)
}

// statusView shows the last error (it stays until something newer
// succeeds or is said), else the last action, and on the right how fresh
// the data is and the state of the live stream.
func (m *model) statusView() string {
	st := m.c.st
	now := m.c.now()
	right := "updated " + ago(now, m.updated) + " · events " + m.stream
	if m.events.paused {
		right += " (paused)"
	}
	left := ""
	switch {
	case m.lastErr != "" && (m.status == "" || m.errSeq > m.statusSeq):
		left = st.StatusErr.Render("✗ " + truncate(m.lastErr+" ("+ago(now, m.lastErrAt)+")", max(0, m.c.width-lipgloss.Width(right)-4)))
	case m.status != "":
		left = st.OK.Render("✓ " + truncate(m.status, max(0, m.c.width-lipgloss.Width(right)-4)))
	}
	gap := m.c.width - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		return fit(st, left, m.c.width, 1)
	}
	return left + strings.Repeat(" ", gap) + st.StatusBar.Render(right)
}

// hintsView is one line of the most useful keys for where the user is.
func (m *model) hintsView() string {
	var bs []key.Binding
	k := m.c.keys
	switch m.overlay {
	case ovHelp:
		bs = []key.Binding{k.Back}
	case ovConfirm:
		bs = []key.Binding{k.Yes, k.No}
	case ovPicker:
		bs = []key.Binding{k.Up, k.Down, k.Submit, k.Cancel}
	case ovSignIn:
		bs = []key.Binding{k.Back}
	default:
		bs = m.screenHints()
		if !m.capturing() {
			// "? help" and "q quit" always show; the screen's keys get the
			// rest of the line, "tab" only when there is room.
			tail := renderHints(m.c.st, []key.Binding{k.Help, k.Quit}, m.c.width)
			room := m.c.width - lipgloss.Width(tail) - 3
			head := renderHints(m.c.st, append(bs, k.Next), room)
			if head == "" {
				return fit(m.c.st, tail, m.c.width, 1)
			}
			return fit(m.c.st, head+m.c.st.HelpDesc.Render(" · ")+tail, m.c.width, 1)
		}
	}
	return fit(m.c.st, renderHints(m.c.st, bs, m.c.width), m.c.width, 1)
}

func (m *model) screenHints() []key.Binding {
	switch m.active {
	case scrDashboard:
		return m.dash.hints()
	case scrUsers:
		return m.users.hints()
	case scrDetail:
		return m.detail.hints()
	case scrProfiles:
		return m.profiles.hints()
	case scrSettings:
		return m.settings.hints()
	case scrEvents:
		return m.events.hints()
	case scrDecision:
		return m.decision.hints()
	}
	return nil
}

// renderHints draws "key desc · key desc" and stops before overflowing.
func renderHints(st *styles, bs []key.Binding, w int) string {
	var out string
	for _, b := range bs {
		h := b.Help()
		item := st.HelpKey.Render(h.Key) + " " + st.HelpDesc.Render(h.Desc)
		sep := ""
		if out != "" {
			sep = st.HelpDesc.Render(" · ")
		}
		if lipgloss.Width(out+sep+item) > w {
			break
		}
		out += sep + item
	}
	return out
}

func (m *model) helpView() string {
	st := m.c.st
	k := m.c.keys
	cols := [][]key.Binding{
		{k.Next, k.Prev, k.Screen[0], k.Screen[1], k.Screen[2], k.Screen[3], k.Screen[4], k.Refresh, k.Help, k.Quit},
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.Open, k.Back},
		m.fullHints(),
	}
	titles := []string{"Everywhere", "Moving", screenTitle(m.active)}
	var blocks []string
	for i, col := range cols {
		lines := []string{st.Section.Render(titles[i])}
		for _, b := range col {
			h := b.Help()
			lines = append(lines, st.HelpKey.Render(pad(h.Key, 10))+st.HelpDesc.Render(h.Desc))
		}
		blocks = append(blocks, strings.Join(lines, "\n"))
	}
	var body string
	if m.c.bodyW >= 100 {
		body = lipgloss.JoinHorizontal(lipgloss.Top, blocks[0], "    ", blocks[1], "    ", blocks[2])
	} else {
		// 80×24: two columns, the screen's keys first.
		body = lipgloss.JoinHorizontal(lipgloss.Top, blocks[2], "   ", blocks[0])
	}
	return st.Modal.Render(st.Title.Render("Keys") + "   " + st.Dim.Render("? or esc closes") + "\n\n" + body)
}

func screenTitle(s screen) string {
	if s == scrDetail {
		return "User detail"
	}
	if s == scrDecision {
		return "Decision"
	}
	if int(s) < len(screenNames) {
		return screenNames[s]
	}
	return ""
}

func (m *model) fullHints() []key.Binding {
	k := m.c.keys
	switch m.active {
	case scrUsers:
		return []key.Binding{k.Open, k.Filter, k.Sort, k.Reverse, k.Assign}
	case scrDetail:
		return []key.Binding{k.Assign, k.Back, k.Up, k.Down, k.Open}
	case scrDecision:
		return []key.Binding{k.Back, k.Up, k.Down, k.PageUp, k.PageDown}
	case scrProfiles:
		return []key.Binding{k.Toggle, k.Left, k.Right, k.New, k.Delete}
	case scrSettings:
		return []key.Binding{k.Edit, k.Unset, k.SignIn, k.Submit, k.Cancel}
	case scrEvents:
		return []key.Binding{k.Open, k.Pause, k.Follow, k.Clear}
	}
	return []key.Binding{k.Up, k.Down}
}

func (m *model) confirmView() string {
	st := m.c.st
	w := min(60, max(20, m.c.bodyW-8))
	lines := []string{st.Err.Bold(true).Render("⚠ " + truncate(m.confirm.prompt, w-2))}
	if m.confirm.detail != "" {
		for _, l := range wrap(m.confirm.detail, w) {
			lines = append(lines, st.Dim.Render(l))
		}
	}
	lines = append(lines, "", st.Key.Render("y")+" yes   "+st.Key.Render("n")+"/"+st.Key.Render("esc")+" no")
	return st.DangerBox.Render(strings.Join(lines, "\n"))
}

func (m *model) signInView() string {
	st := m.c.st
	p := m.signIn
	w := min(70, max(24, m.c.bodyW-8))
	lines := []string{
		st.Title.Render("Sign in the service account " + truncate(orDash(p.Account), w-30)),
		"",
		st.Label.Render("1. open   ") + m.link(p.URL, truncate(orDash(p.URL), w-10)),
		st.Label.Render("2. enter  ") + st.Code.Render(orDash(p.Code)),
		"",
	}
	for _, l := range wrap(p.Message, w) {
		if p.Message != "" {
			lines = append(lines, st.Dim.Render(l))
		}
	}
	if !p.Expires.IsZero() {
		lines = append(lines, st.Warn.Render("the code expires in "+countdown(m.c.now(), p.Expires)))
	}
	lines = append(lines, "", st.Dim.Render("esc closes; the service finishes the sign-in by itself"))
	return st.Modal.Render(strings.Join(lines, "\n"))
}

// link is a terminal hyperlink when the terminal gets escape codes at all.
func (m *model) link(url, text string) string { return m.c.link(url, text) }

func (c *common) link(url, text string) string {
	if url == "" || !c.st.hyperlinks {
		return text
	}
	return hyperlink(url, text)
}
