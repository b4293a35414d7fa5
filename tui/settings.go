package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

// editMode says what the settings screen's input is for.
type editMode int

const (
	editNone    editMode = iota
	editValue            // a setting's value
	editBound            // a secret bound to the value just typed (psync.SecretsBoundTo)
	editAccount          // the service account to sign in
)

// settingsModel lists every setting with its help, edits one at a time and
// shows the service's validation error under the input. Secrets are never
// shown: the list has the mask, and editing one starts empty and masked.
type settingsModel struct {
	c       *common
	list    []psync.SettingValue
	cursor  int
	offset  int
	editing editMode
	editKey string
	saving  bool
	// While editBound: the change being built (editKey's new value and the
	// bound secrets typed so far) and the secrets still to ask for; the
	// one being typed (or, while saving, the last one) is bound[0], so
	// bound is never empty then.
	change  map[string]string
	bound   []string
	input   lineInput
	editErr string
}

func newSettingsModel(c *common) settingsModel {
	return settingsModel{c: c, input: newInput(c, "", "")}
}

// layout fits the input to the body, after its prompt (the key).
func (m *settingsModel) layout() {
	m.input.Width = max(10, m.c.bodyW-lipgloss.Width(m.input.Prompt)-2)
}

func (m *settingsModel) setSettings(ss []psync.SettingValue) {
	key := ""
	if s, ok := m.current(); ok {
		key = s.Key
	}
	// Only the settings of the phone system in use (and the rest): the
	// other systems' dozen keys would bury the ones that matter.
	system := ""
	for _, s := range ss {
		if s.Key == "phone.system" {
			system = s.Value
		}
	}
	list := make([]psync.SettingValue, 0, len(ss))
	for _, s := range ss {
		if !psync.ForOtherPhoneSystem(s.Key, system) {
			list = append(list, s)
		}
	}
	m.list, ss = list, list
	for i, s := range ss {
		if s.Key == key {
			m.cursor = i
		}
	}
	m.sync()
}

func (m settingsModel) current() (psync.SettingValue, bool) {
	if m.cursor < 0 || m.cursor >= len(m.list) {
		return psync.SettingValue{}, false
	}
	return m.list[m.cursor], true
}

// panelLines is the height of the panel under the table (help, input, error).
const panelLines = 7

func (m settingsModel) tableRows() int { return max(1, m.c.bodyH-2-panelLines) }

func (m *settingsModel) sync() {
	if len(m.list) == 0 {
		m.cursor, m.offset = 0, 0
		return
	}
	m.cursor = max(0, min(m.cursor, len(m.list)-1))
	h := m.tableRows()
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+h {
		m.offset = m.cursor - h + 1
	}
	m.offset = max(0, min(m.offset, len(m.list)-h))
}

// saved takes SetSetting's answer: on success the editor closes, on an
// error it stays open with the error under the input so it can be fixed.
func (m settingsModel) saved(msg settingSavedMsg) (settingsModel, tea.Cmd) {
	if msg.key != m.editKey || (m.editing != editValue && m.editing != editBound) {
		return m, nil
	}
	m.saving = false
	if msg.err != nil {
		if m.editing == editBound {
			// Back to the value, which is what the error is about.
			m.startEdit(m.editKey, m.change[m.editKey], false)
		}
		m.editErr = cleanText(msg.err.Error())
		return m, nil
	}
	m.close()
	return m, nil
}

// close ends any edit.
func (m *settingsModel) close() {
	m.editing, m.editKey, m.editErr, m.saving = editNone, "", "", false
	m.change, m.bound = nil, nil
	m.input.Blur()
	m.input.SetValue("")
}

// startEdit opens the editor on key with value; a secret starts empty
// and masked, since it is never shown back.
func (m *settingsModel) startEdit(key, value string, secret bool) {
	m.editing, m.editKey, m.editErr = editValue, key, ""
	m.input.Prompt = key + " = "
	m.layout()
	m.input.Mask = secret
	m.input.SetValue(value)
	m.input.Placeholder = "new secret (not shown)"
	if !secret {
		m.input.Placeholder = "—"
		if s, ok := m.lookup(key); ok {
			m.input.Placeholder = orDash(s.Default)
		}
	}
	m.input.CursorEnd()
	m.input.Focus()
}

func (m settingsModel) lookup(key string) (psync.SettingValue, bool) {
	for _, s := range m.list {
		if s.Key == key {
			return s, true
		}
	}
	return psync.SettingValue{}, false
}

// boundSecrets are the stored secrets that saving key = value would clear:
// the value changes where they are sent (psync.SecretsBoundTo), so the
// service drops them unless they come in the same change.
func (m settingsModel) boundSecrets(key, value string) []string {
	s, ok := m.lookup(key)
	if !ok {
		return nil
	}
	if spec, err := psync.LookupSetting(key); err == nil {
		if v, err := spec.Normalize(value); err == nil {
			value = v
		}
	}
	now := s.Default
	if s.Set {
		now = s.Value
	}
	if value == now {
		return nil
	}
	var out []string
	for _, sec := range psync.SecretsBoundTo(key) {
		if sv, ok := m.lookup(sec); ok && sv.Set {
			out = append(out, sec)
		}
	}
	return out
}

// askBound prompts for the next bound secret of the change.
func (m *settingsModel) askBound() {
	m.editing, m.editErr = editBound, ""
	m.input.Prompt = m.bound[0] + " = "
	m.layout()
	m.input.Mask = true
	m.input.SetValue("")
	m.input.Placeholder = "for the new " + m.editKey + " (empty: clear it)"
	m.input.Focus()
}

func (m settingsModel) update(msg tea.Msg) (settingsModel, tea.Cmd) {
	k := m.c.keys
	if m.editing != editNone {
		if km, ok := msg.(tea.KeyMsg); ok {
			switch {
			case key.Matches(km, k.Submit):
				v := m.input.Value()
				if m.editing == editAccount {
					if strings.TrimSpace(v) == "" {
						m.editErr = "type the account to sign in, e.g. bridge@contoso.example"
						return m, nil
					}
					m.editing, m.editErr = editNone, ""
					m.input.Blur()
					m.input.SetValue("")
					return m, tea.Batch(m.c.startSignIn(strings.TrimSpace(v)), send(statusMsg("starting the sign-in of "+strings.TrimSpace(v)+"…")))
				}
				if m.saving {
					return m, nil
				}
				if m.editing == editValue {
					m.change = map[string]string{m.editKey: v}
					if m.bound = m.boundSecrets(m.editKey, v); len(m.bound) > 0 {
						m.askBound()
						return m, nil
					}
				} else { // editBound
					if v != "" {
						m.change[m.bound[0]] = v
					}
					if len(m.bound) > 1 {
						m.bound = m.bound[1:]
						m.askBound()
						return m, nil
					}
					// The last one stays in bound: the panel names it
					// while the change is saved.
					m.input.SetValue("")
				}
				m.saving, m.editErr = true, ""
				return m, m.c.setSettings(m.editKey, m.change)
			case key.Matches(km, k.Cancel):
				m.close()
				return m, nil
			}
		}
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		return m, cmd
	}
	km, ok := msg.(tea.KeyMsg)
	if !ok {
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
		m.cursor = len(m.list) - 1
	case key.Matches(km, k.Edit):
		s, ok := m.current()
		if !ok {
			return m, nil
		}
		if s.Secret {
			// A secret is never shown back, so it cannot be edited in
			// place: typing starts from nothing, masked.
			m.startEdit(s.Key, "", true)
		} else {
			m.startEdit(s.Key, s.Value, false)
		}
		return m, nil
	case key.Matches(km, k.Unset):
		s, ok := m.current()
		if !ok {
			return m, nil
		}
		if !s.Set {
			return m, send(statusMsg(s.Key + " already has its default"))
		}
		def := orDash(s.Default)
		detail := "The stored value is removed; the default " + def + " applies."
		if bound := m.boundSecrets(s.Key, s.Default); len(bound) > 0 {
			// The service clears them with it: the default is another address.
			detail += " This also clears the stored " + strings.Join(bound, ", ") + ", which belongs to the old value; set it again afterwards."
		}
		return m, send(confirmMsg{
			prompt: "Reset " + s.Key + " to its default?",
			detail: detail,
			yes:    m.c.unsetSetting(s.Key),
		})
	case key.Matches(km, k.SignIn):
		m.editing, m.editKey, m.editErr = editAccount, "", ""
		m.input.Prompt = "account: "
		m.layout()
		m.input.Mask = false
		m.input.SetValue("")
		m.input.Placeholder = "service account UPN, e.g. bridge@contoso.example"
		m.input.Focus()
		return m, nil
	default:
		return m, nil
	}
	m.sync()
	return m, nil
}

func (m settingsModel) hints() []key.Binding {
	k := m.c.keys
	if m.editing != editNone {
		return []key.Binding{k.Submit, k.Cancel}
	}
	return []key.Binding{k.Up, k.Down, k.Edit, k.Unset, k.SignIn}
}

func (m settingsModel) view() string {
	st := m.c.st
	w := m.c.bodyW
	keyW, kindW, valW := m.columns()
	var lines []string
	legend := "● stored · ○ default · ◐ stored, not in effect yet · secrets are never shown · i signs in the Teams service account"
	if lipgloss.Width(legend) > w {
		legend = "● stored · ○ default · ◐ not in effect yet · secrets never shown"
	}
	lines = append(lines, st.Dim.Render(truncate(legend, w)))
	header := "  " + pad("Setting", keyW) + " " + pad("Value", valW)
	if kindW > 0 {
		header += " " + pad("Kind", kindW)
	}
	lines = append(lines, st.Header.Render(header))
	if len(m.list) == 0 {
		lines = append(lines, st.Dim.Render("  loading settings…"))
	}
	end := min(len(m.list), m.offset+m.tableRows())
	for i := m.offset; i < end; i++ {
		s := m.list[i]
		mark := st.Dim.Render("○ ")
		switch {
		case s.Pending != "":
			mark = st.Warn.Render("◐ ")
		case s.Set:
			mark = st.OK.Render("● ")
		}
		val := s.Value
		var valS string
		switch {
		case s.Secret && s.Set:
			valS = st.Dim.Render(pad(psync.Mask, valW))
		case s.Secret:
			valS = st.Warn.Render(pad("not set", valW))
		case !s.Set && val == "":
			valS = st.Dim.Render(pad("—", valW))
		case !s.Set:
			valS = st.Dim.Render(pad(val, valW))
		default:
			valS = pad(val, valW)
		}
		kind := ""
		if kindW > 0 {
			kind = " " + st.Dim.Render(pad(s.Kind, kindW))
		}
		if i == m.cursor {
			lines = append(lines, st.Cursor.Render("▸ ")+st.Selected.Render(pad(s.Key, keyW))+" "+valS+kind)
		} else {
			lines = append(lines, mark+pad(s.Key, keyW)+" "+valS+kind)
		}
	}
	for len(lines) < 2+m.tableRows() {
		lines = append(lines, "")
	}
	lines = append(lines, m.panel(w)...)
	return strings.Join(lines, "\n")
}

// columns sizes the table: the key column fits the longest key, so that
// keys that differ only at their end (teams.client_certificate and
// teams.client_certificate_password) are told apart; on a narrow terminal
// the kind column goes first (the panel below names the kind too).
func (m settingsModel) columns() (keyW, kindW, valW int) {
	w := m.c.bodyW
	keyW = len("Setting")
	for _, s := range m.list {
		keyW = max(keyW, lipgloss.Width(s.Key))
	}
	kindW = 9
	const minVal = 16
	if 2+keyW+1+minVal+1+kindW > w {
		kindW = 0
	}
	keyW = min(keyW, max(10, w-2-1-minVal))
	valW = max(8, w-2-keyW-1)
	if kindW > 0 {
		valW -= kindW + 1
	}
	return keyW, kindW, valW
}

// panel explains the highlighted setting or holds the editor.
func (m settingsModel) panel(w int) []string {
	st := m.c.st
	out := []string{st.Dim.Render(strings.Repeat("─", max(0, w)))}
	if m.editing == editAccount {
		out = append(out, st.Section.Render("Sign in the Teams service account (device code)"),
			m.input.View(),
			st.Dim.Render(truncate("enter starts the sign-in; the code and the URL to open are shown next", w)))
	} else if m.editing == editBound {
		out = append(out, st.Bold.Render(m.editKey+" = "+m.change[m.editKey]))
		for _, l := range wrap("Changing "+m.editKey+" clears the stored "+m.bound[0]+", so that it is never sent to the new address unless you give it. Type it for the new "+m.editKey+" (hidden), or leave it empty to clear it.", w) {
			out = append(out, st.Warn.Render(l))
		}
		out = append(out, m.input.View())
		if m.saving {
			out = append(out, st.Dim.Render("saving…"))
		}
	} else if s, ok := m.current(); ok {
		out = append(out, st.Bold.Render(s.Key)+st.Dim.Render("  "+s.Kind))
		for i, l := range wrap(orDash(s.Help), w) {
			if i >= 2 {
				break
			}
			out = append(out, l)
		}
		// The value in full, which the table may have had to cut.
		info := "value " + orDash(s.Value) + " · default " + orDash(s.Default)
		if s.Secret {
			info = "secret: editing starts empty and the input is masked"
		}
		if len(s.Enum) > 0 {
			var vs []string
			for _, e := range s.Enum {
				vs = append(vs, orDash(e))
			}
			info += " · one of " + strings.Join(vs, ", ")
		}
		for _, l := range wrap(info, w) {
			out = append(out, st.Dim.Render(l))
		}
		if s.Pending != "" {
			for _, l := range wrap("◐ stored, not in effect yet: "+s.Pending, w) {
				out = append(out, st.Warn.Render(l))
			}
		}
		if m.editing == editValue {
			out = append(out, m.input.View())
			if m.saving {
				out = append(out, st.Dim.Render("saving…"))
			}
		}
	}
	if m.editErr != "" {
		for _, l := range wrap("✗ "+m.editErr, w) {
			out = append(out, st.Err.Render(l))
		}
	}
	return out
}
