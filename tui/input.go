package tui

import (
	"strings"
	"unicode"

	tea "github.com/charmbracelet/bubbletea"
)

// lineInput is a one-line text field. bubbles/textinput would do, but it
// pulls in a clipboard library the module does not carry; a terminal pastes
// through bracketed paste (a KeyRunes message) anyway. The cursor does not
// blink: over SSH a blink is a redraw twice a second, and tests need a
// steady picture.
type lineInput struct {
	st          *styles
	Prompt      string
	Placeholder string
	Mask        bool // secrets: every character shows as •
	Width       int  // cells for the text; 0 = unbounded
	CharLimit   int
	value       []rune
	pos         int
	focused     bool
}

func newInput(c *common, prompt, placeholder string) lineInput {
	return lineInput{st: c.st, Prompt: prompt, Placeholder: placeholder, CharLimit: 4096} // long UPN lists fit; nothing is cut silently
}

func (in *lineInput) Focus()       { in.focused = true }
func (in *lineInput) Blur()        { in.focused = false }
func (in lineInput) Focused() bool { return in.focused }
func (in lineInput) Value() string { return string(in.value) }
func (in *lineInput) CursorEnd()   { in.pos = len(in.value) }
func (in *lineInput) SetValue(s string) {
	in.value = []rune(s)
	if in.CharLimit > 0 && len(in.value) > in.CharLimit {
		in.value = in.value[:in.CharLimit]
	}
	in.pos = len(in.value)
}

// Update edits the value on the usual readline keys.
func (in lineInput) Update(msg tea.Msg) (lineInput, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok || !in.focused {
		return in, nil
	}
	switch km.Type {
	case tea.KeyRunes, tea.KeySpace:
		rs := km.Runes
		if km.Type == tea.KeySpace {
			rs = []rune{' '}
		}
		in.insert(rs)
	case tea.KeyBackspace, tea.KeyCtrlH:
		if in.pos > 0 {
			in.value = append(in.value[:in.pos-1], in.value[in.pos:]...)
			in.pos--
		}
	case tea.KeyDelete, tea.KeyCtrlD:
		if in.pos < len(in.value) {
			in.value = append(in.value[:in.pos], in.value[in.pos+1:]...)
		}
	case tea.KeyLeft, tea.KeyCtrlB:
		in.pos = max(0, in.pos-1)
	case tea.KeyRight, tea.KeyCtrlF:
		in.pos = min(len(in.value), in.pos+1)
	case tea.KeyHome, tea.KeyCtrlA:
		in.pos = 0
	case tea.KeyEnd, tea.KeyCtrlE:
		in.pos = len(in.value)
	case tea.KeyCtrlU:
		in.value = append([]rune(nil), in.value[in.pos:]...)
		in.pos = 0
	case tea.KeyCtrlK:
		in.value = in.value[:in.pos]
	case tea.KeyCtrlW:
		i := in.pos
		for i > 0 && unicode.IsSpace(in.value[i-1]) {
			i--
		}
		for i > 0 && !unicode.IsSpace(in.value[i-1]) {
			i--
		}
		in.value = append(in.value[:i], in.value[in.pos:]...)
		in.pos = i
	}
	return in, nil
}

func (in *lineInput) insert(rs []rune) {
	clean := make([]rune, 0, len(rs))
	for _, r := range rs {
		// A paste may carry newlines and tabs; a one-line value cannot.
		if r == '\n' || r == '\r' || r == '\t' {
			r = ' '
		}
		if unicode.IsControl(r) {
			continue
		}
		clean = append(clean, r)
	}
	if in.CharLimit > 0 {
		room := in.CharLimit - len(in.value)
		if room <= 0 {
			return
		}
		if len(clean) > room {
			clean = clean[:room]
		}
	}
	v := make([]rune, 0, len(in.value)+len(clean))
	v = append(v, in.value[:in.pos]...)
	v = append(v, clean...)
	v = append(v, in.value[in.pos:]...)
	in.value = v
	in.pos += len(clean)
}

// View shows the prompt and the part of the value around the cursor.
func (in lineInput) View() string {
	st := in.st
	prompt := st.Key.Render(in.Prompt)
	cur := st.r.NewStyle().Reverse(true)
	if len(in.value) == 0 {
		if in.Placeholder == "" {
			if in.focused {
				return prompt + cur.Render(" ")
			}
			return prompt
		}
		ph := in.Placeholder
		if in.Width > 0 {
			ph = truncate(ph, in.Width)
		}
		if in.focused {
			first := []rune(ph)
			return prompt + cur.Render(string(first[0])) + st.Dim.Render(string(first[1:]))
		}
		return prompt + st.Dim.Render(ph)
	}
	shown := in.value
	if in.Mask {
		shown = []rune(strings.Repeat("•", len(in.value)))
	}
	// Scroll horizontally so that the cursor stays visible.
	start := 0
	if in.Width > 0 && in.pos >= in.Width {
		start = in.pos - in.Width + 1
	}
	end := len(shown)
	if in.Width > 0 {
		end = min(end, start+in.Width)
	}
	var b strings.Builder
	b.WriteString(prompt)
	for i := start; i < end; i++ {
		ch := string(shown[i])
		if in.focused && i == in.pos {
			b.WriteString(cur.Render(ch))
		} else {
			b.WriteString(ch)
		}
	}
	if in.focused && in.pos >= end {
		b.WriteString(cur.Render(" "))
	}
	return b.String()
}
