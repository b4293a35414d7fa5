package tui

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

func TestMain(m *testing.M) {
	// Nothing may depend on the terminal the tests run in.
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

// asciiRenderer renders no escape codes at all: goldens are plain text.
func asciiRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	r.SetHasDarkBackground(true)
	return r
}

// ansiRenderer is a 16-colour terminal on a dark background (an SSH session
// to a plain xterm).
func ansiRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.ANSI)
	r.SetHasDarkBackground(true)
	return r
}

// testModel is the root model over f at w×h with everything loaded, the
// way the first second of a real console goes.
func testModel(t *testing.T, f *fakeController, w, h int) *model {
	t.Helper()
	m := newModel(t.Context(), f, Options{Now: fixedNow, Version: "test", Refresh: time.Hour, Renderer: asciiRenderer()})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	feed(t, m, m.c.fetchOverview(), m.c.fetchUsers(m.roster.version), m.c.fetchProfiles(), m.c.fetchSettings(), m.c.fetchAudit())
	return m
}

// exec runs a Cmd and returns its messages, batches flattened. Cmds that
// wait (the refresh tick, the event stream) are given up after a moment:
// a unit test drives those by hand.
func exec(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	select {
	case msg := <-ch:
		if b, ok := msg.(tea.BatchMsg); ok {
			var out []tea.Msg
			for _, c := range b {
				out = append(out, exec(c)...)
			}
			return out
		}
		if msg == nil {
			return nil
		}
		return []tea.Msg{msg}
	case <-time.After(150 * time.Millisecond):
		return nil
	}
}

// feed runs the Cmds, hands their messages to the model and follows the
// Cmds those return, a few levels deep: an action, its reload, the answer.
func feed(t *testing.T, m *model, cmds ...tea.Cmd) {
	t.Helper()
	for _, c := range cmds {
		for _, msg := range exec(c) {
			deliver(t, m, msg, 4)
		}
	}
}

func deliver(t *testing.T, m *model, msg tea.Msg, depth int) {
	t.Helper()
	if _, quit := msg.(tea.QuitMsg); quit {
		return
	}
	_, cmd := m.Update(msg)
	if depth == 0 {
		return
	}
	for _, next := range exec(cmd) {
		deliver(t, m, next, depth-1)
	}
}

// keyMsg turns "enter", "ctrl+c", "space" or plain text into a key press.
func keyMsg(k string) tea.KeyMsg {
	special := map[string]tea.KeyType{
		"enter": tea.KeyEnter, "esc": tea.KeyEscape, "tab": tea.KeyTab, "shift+tab": tea.KeyShiftTab,
		"up": tea.KeyUp, "down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight,
		"space": tea.KeySpace, "backspace": tea.KeyBackspace, "ctrl+c": tea.KeyCtrlC, "ctrl+u": tea.KeyCtrlU,
		"pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp, "home": tea.KeyHome, "end": tea.KeyEnd,
	}
	if t, ok := special[k]; ok {
		return tea.KeyMsg{Type: t}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

// press sends keys one by one and runs what each returns.
func press(t *testing.T, m *model, keys ...string) {
	t.Helper()
	for _, k := range keys {
		deliver(t, m, keyMsg(k), 4)
	}
}

// typeText types s character by character, as a person does.
func typeText(t *testing.T, m *model, s string) {
	t.Helper()
	for _, r := range s {
		deliver(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}, 4)
	}
}

func userNames(m *model) []string {
	var out []string
	for _, u := range m.users.rows {
		out = append(out, u.User.Name())
	}
	return out
}

func mustContain(t *testing.T, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("missing %q in:\n%s", w, s)
		}
	}
}

func mustNotContain(t *testing.T, s string, nots ...string) {
	t.Helper()
	for _, n := range nots {
		if strings.Contains(s, n) {
			t.Errorf("unexpected %q in:\n%s", n, s)
		}
	}
}
