package tui

import (
	"time"

	tea "github.com/charmbracelet/bubbletea"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Every answer from the Controller arrives as one of these messages, carrying
// its error instead of failing: the service may be restarting, and the
// console keeps showing the last good data with the error in the status line.

type overviewMsg struct {
	ov  psync.Overview
	err error
}

// usersMsg answers UsersSince: the users changed since the roster's version.
type usersMsg struct {
	ch  psync.UserChanges
	err error
}

type userMsg struct {
	id  psync.UserID
	st  psync.UserStatus
	err error
}

type historyMsg struct {
	id  psync.UserID
	ds  []psync.Decision
	err error
}

type profilesMsg struct {
	profiles []psync.Profile
	err      error
}

type settingsMsg struct {
	settings []psync.SettingValue
	err      error
}

// auditMsg is the backlog the event log starts with.
type auditMsg struct {
	ds  []psync.Decision
	err error
}

// eventsOpenedMsg carries the live stream; the Cmd that waits on it is
// re-armed after every burst (waitEvents).
type eventsOpenedMsg struct {
	ch  <-chan psync.Decision
	err error
}

// eventsMsg is a burst of decisions read from the stream in one go, so a
// busy office costs one Update and one redraw per burst, not per decision.
type eventsMsg struct {
	ch <-chan psync.Decision
	ds []psync.Decision
}

// eventsClosedMsg says the stream ended (service restarting, connection lost).
type eventsClosedMsg struct{}

// reconnectMsg asks for the event stream to be opened again.
type reconnectMsg struct{}

// tickMsg drives the periodic refresh and the countdowns.
type tickMsg time.Time

// refresh says what to load again after an action.
type refresh uint8

const (
	refUsers refresh = 1 << iota
	refProfiles
	refSettings
	refDetail
)

// doneMsg is the result of an action (save, delete, assign): the status line
// shows what or the error, and the named data is loaded again.
type doneMsg struct {
	what    string
	err     error
	refresh refresh
}

// settingSavedMsg is the answer to SetSettings; its error is shown inline
// under the input (it says what is wrong with the value). cleared are the
// secrets the change cleared because they were bound to the old value.
type settingSavedMsg struct {
	key     string
	cleared []string
	err     error
}

type signInMsg struct {
	prompt psync.SignInPrompt
	err    error
}

// confirmMsg asks the root model to show a confirmation; yes runs on "y".
type confirmMsg struct {
	prompt string
	detail string
	yes    tea.Cmd
}

// pickProfileMsg asks the root model for the profile picker for one user.
type pickProfileMsg struct {
	user    psync.UserID
	name    string
	current string
}

// openUserMsg opens the detail screen of one user.
type openUserMsg struct{ id psync.UserID }

// openDecisionMsg shows one decision (an event or a transition) in full.
type openDecisionMsg struct{ d psync.Decision }

// statusMsg puts a line into the status bar without an error.
type statusMsg string

func send(m tea.Msg) tea.Cmd { return func() tea.Msg { return m } }
