package tui

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

func TestModel_ScreenKeys(t *testing.T) {
	m := testModel(t, newFake(), 120, 40)
	for _, c := range []struct {
		keys []string
		want screen
	}{
		{[]string{"2"}, scrUsers},
		{[]string{"tab"}, scrProfiles},
		{[]string{"tab", "tab"}, scrEvents},
		{[]string{"tab"}, scrDashboard}, // wraps around
		{[]string{"shift+tab"}, scrEvents},
		{[]string{"4"}, scrSettings},
		{[]string{"1"}, scrDashboard},
	} {
		press(t, m, c.keys...)
		if m.active != c.want {
			t.Fatalf("after %v: screen %v, want %v", c.keys, m.active, c.want)
		}
	}
}

func TestUsers_SortCyclesColumnsAndReverses(t *testing.T) {
	m := testModel(t, newFake(), 120, 40)
	press(t, m, "2")
	names := userNames(m)
	if len(names) != 12 || names[0] != "Anna Schmidt" || names[11] != "Maximilian Alexander von Hohenzollern-Sigmaringen" {
		t.Fatalf("by name: %q", names)
	}
	if !slices.IsSortedFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) }) {
		t.Fatalf("not sorted by name: %q", names)
	}

	press(t, m, "s") // phone state: available first, unknown last
	names = userNames(m)
	if names[0] != "Dmitri Volkov" || names[3] != "Anna Schmidt" || names[len(names)-1] != "Ingrid Berg" {
		t.Fatalf("by phone: %q", names)
	}
	mustContain(t, m.statusView(), "sorted by phone state")

	press(t, m, "s") // Teams state: neutral first, red last, unknown at the very end
	names = userNames(m)
	if names[0] != "Elif Yılmaz" || names[len(names)-1] != "Ingrid Berg" {
		t.Fatalf("by Teams: %q", names)
	}
	if i, j := slices.Index(names, "Lena Nowak"), slices.Index(names, "Ben Okafor"); i > j {
		t.Fatalf("yellow (Lena) must come before red (Ben): %q", names)
	}

	press(t, m, "s") // last change: most recent first, never-changed last
	names = userNames(m)
	if names[0] != "Hiro Tanaka" {
		t.Fatalf("by change: %q", names)
	}
	press(t, m, "S")
	if got := userNames(m); got[len(got)-1] != "Hiro Tanaka" {
		t.Fatalf("reversed: %q", got)
	}
	press(t, m, "s")
	if m.users.sort != sortName {
		t.Fatalf("sort did not cycle back to name: %v", m.users.sort)
	}
}

func TestUsers_FilterTypesEveryKeyAndClears(t *testing.T) {
	m := testModel(t, newFake(), 120, 40)
	press(t, m, "2", "/")
	if !m.users.filtering {
		t.Fatal("/ did not open the filter")
	}
	// "q" and digits are text while filtering, not quit or screen keys.
	typeText(t, m, "sales")
	if m.quitting || m.active != scrUsers {
		t.Fatal("typing in the filter triggered a global key")
	}
	if got := userNames(m); !slices.Equal(got, []string{"Ben Okafor", "Hiro Tanaka"}) {
		t.Fatalf("filter sales: %q", got)
	}
	press(t, m, "enter")
	if m.users.filtering {
		t.Fatal("enter did not close the filter")
	}
	mustContain(t, m.View(), "filter: sales", "2 of 12 users")

	press(t, m, "esc") // esc on the list clears the filter
	if len(m.users.rows) != 12 {
		t.Fatalf("esc did not clear: %d rows", len(m.users.rows))
	}

	// Teams text and phone state are searchable too.
	press(t, m, "/")
	typeText(t, m, "out of office")
	if got := userNames(m); !slices.Equal(got, []string{"Jamal Haddad"}) {
		t.Fatalf("filter out of office: %q", got)
	}
	press(t, m, "esc")
	if m.users.filtering || m.users.filter.Value() != "" || len(m.users.rows) != 12 {
		t.Fatal("esc while typing must cancel the filter")
	}

	press(t, m, "/")
	typeText(t, m, "zzz-nobody")
	press(t, m, "enter")
	mustContain(t, m.View(), "nobody matches the filter")
	press(t, m, "enter", "p") // nothing selected: no crash, no call
	if m.overlay != ovNone {
		t.Fatal("an action on an empty list opened an overlay")
	}
}

func TestUsers_CursorStaysOnPersonAcrossReloads(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	press(t, m, "2", "j", "j") // Chiara
	if u, _ := m.users.current(); u.User.Name() != "Chiara Rossi" {
		t.Fatalf("cursor on %q", u.User.Name())
	}
	// Someone new sorts before her; the cursor must follow Chiara.
	f.mu.Lock()
	f.users = append(f.users, status("213", "213", "Aaron Aalto", "", "default", psync.TeamsPresence{}, psync.PhoneState{}, 0, 0))
	f.mu.Unlock()
	feed(t, m, m.c.fetchUsers(m.roster.version))
	if u, _ := m.users.current(); u.User.Name() != "Chiara Rossi" {
		t.Fatalf("after reload cursor on %q", u.User.Name())
	}
	press(t, m, "G")
	if m.users.cursor != 12 {
		t.Fatalf("G: cursor %d", m.users.cursor)
	}
	press(t, m, "down", "down")
	if m.users.cursor != 12 {
		t.Fatalf("moved past the end: %d", m.users.cursor)
	}
}

func TestUsers_EnterOpensDetailAndLoadsHistory(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	press(t, m, "2", "j", "enter")
	if m.active != scrDetail || m.detail.id != "202" {
		t.Fatalf("screen %v user %q", m.active, m.detail.id)
	}
	for _, call := range []string{"User(202)", "History(202, 50)"} {
		if !f.Called(call) {
			t.Errorf("no %s in %q", call, f.Calls())
		}
	}
	if !m.detail.historyLoaded || len(m.detail.history) != 5 {
		t.Fatalf("history: loaded %v, %d", m.detail.historyLoaded, len(m.detail.history))
	}
	v := m.View()
	mustContain(t, v, "Ben Okafor", "What the bridge imposes (3)",
		"phone presence dnd (was available)",
		"profile sales, dnd_protection_controls_presence: during a Teams call the phone presence",
		"held by the bridge", "2m14s left", "DND on  Desk phone Yealink T54W, room 2.14", "DND on  Softphone (ProCall) (by the bridge)")
	// tapi2 had DND before: it is the person's, not the bridge's.
	for _, l := range strings.Split(v, "\n") {
		if strings.Contains(l, "tel:202-tapi2") && strings.Contains(l, "by the bridge") {
			t.Errorf("tapi2 is not the bridge's: %q", l)
		}
	}
	press(t, m, "esc")
	if m.active != scrUsers {
		t.Fatalf("esc: screen %v", m.active)
	}
}

func TestDetail_FlagsInWordsAndNoLinksWithoutUPN(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	for _, c := range []struct {
		id    psync.UserID
		wants []string
	}{
		{"201", []string{"bridge's own session coming back", "connected call on desk", "7m00s left"}},
		{"207", []string{"Overridden by the user in Teams", "held on desk (c-7790)"}},
		{"208", []string{"Possibly also in a Teams call", "conference on desk", "ringing on soft"}},
		{"209", []string{"no Teams links: the user has no UPN", "no presence received yet", "no phone state received yet", "nothing: both sides show"}},
		{"211", []string{"waiting for the side to confirm", "calendar_meetings_as_calls"}},
	} {
		send := openUserMsg{id: c.id}
		deliver(t, m, send, 3)
		v := strings.Join(m.detail.lines(), "\n")
		mustContain(t, v, c.wants...)
	}
}

func TestDetail_PAssignsFromDetail(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	deliver(t, m, openUserMsg{id: "204"}, 3) // Dmitri, on calendar
	press(t, m, "p")
	if m.overlay != ovPicker || m.picker.current != "calendar" {
		t.Fatalf("overlay %v picker %+v", m.overlay, m.picker)
	}
	press(t, m, "j", "enter") // calendar → default
	if !f.Called("AssignProfile(204, default)") {
		t.Fatalf("calls %q", f.Calls())
	}
	if m.detail.st.Profile != "default" {
		t.Fatalf("detail not reloaded: profile %q", m.detail.st.Profile)
	}
	mustContain(t, m.statusView(), "Dmitri Volkov is now on profile default")
}

func TestAssign_PickerFromUsersAndCancel(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	press(t, m, "2", "j", "p") // Ben, on sales
	if m.overlay != ovPicker {
		t.Fatal("p did not open the picker")
	}
	if got := m.picker.options[m.picker.cursor].Name; got != "sales" {
		t.Fatalf("picker starts on %q, want the current profile", got)
	}
	mustContain(t, m.View(), "Profile for Ben Okafor", "sales (current)")
	press(t, m, "esc")
	if m.overlay != ovNone || slices.ContainsFunc(f.Calls(), func(c string) bool { return strings.HasPrefix(c, "AssignProfile") }) {
		t.Fatal("esc must close the picker without assigning")
	}
	press(t, m, "p", "enter") // same profile: nothing to do
	if slices.ContainsFunc(f.Calls(), func(c string) bool { return strings.HasPrefix(c, "AssignProfile") }) {
		t.Fatal("assigning the current profile must not call the service")
	}
	press(t, m, "p", "k", "k", "enter")
	if !f.Called("AssignProfile(202, calendar)") {
		t.Fatalf("calls %q", f.Calls())
	}
}

func TestProfiles_ToggleSendsWholeProfileWithOneFlagFlipped(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	press(t, m, "3", "j") // calendar, default, sales: default
	if p, _ := m.profiles.current(); p.Name != "default" {
		t.Fatalf("on %q", p.Name)
	}
	press(t, m, "l", "j", "j", "j", "j") // the fifth flag
	if got := psync.ProfileFlags[m.profiles.flag].Flag; got != psync.FlagCrossDeviceBusy {
		t.Fatalf("on flag %s", got)
	}
	press(t, m, "space")
	if len(f.puts) != 1 {
		t.Fatalf("PutProfile calls: %d (%q)", len(f.puts), f.Calls())
	}
	want := psync.NewProfile("default")
	want.CrossDeviceBusyOnBusy = true
	if f.puts[0] != want {
		t.Fatalf("put %+v, want %+v", f.puts[0], want)
	}
	// The reload shows it, and enter toggles back.
	if p, _ := m.profiles.current(); !p.CrossDeviceBusyOnBusy {
		t.Fatal("profiles were not reloaded after the change")
	}
	mustContain(t, m.statusView(), "profile default: cross_device_busy_on_busy on")
	press(t, m, "enter")
	if len(f.puts) != 2 || f.puts[1] != psync.NewProfile("default") {
		t.Fatalf("second put %+v", f.puts)
	}
	v := m.View()
	mustContain(t, v, "[ ] cross_device_busy_on_busy", "during a Teams call every phone device rejects calls", "[x] set_presence_in_teams")
}

func TestProfiles_ToggleErrorIsShown(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	f.Err = func(method string) error {
		if method == "PutProfile" {
			return errors.New("control socket: connection refused")
		}
		return nil
	}
	press(t, m, "3", "l", "space")
	mustContain(t, m.statusView(), "connection refused")
}

func TestProfiles_CreateValidatesName(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	press(t, m, "3", "n")
	if !m.capturing() {
		t.Fatal("n did not open the name input")
	}
	typeText(t, m, "front desk")
	press(t, m, "enter")
	mustContain(t, m.profiles.inputErr, "only letters, digits, - and _")
	mustContain(t, m.View(), "only letters")
	if slices.ContainsFunc(f.Calls(), func(c string) bool { return strings.HasPrefix(c, "PutProfile") }) {
		t.Fatal("an invalid name reached the service")
	}
	press(t, m, "ctrl+u")
	typeText(t, m, "sales")
	press(t, m, "enter")
	mustContain(t, m.profiles.inputErr, "exists already")

	press(t, m, "ctrl+u")
	typeText(t, m, "front_desk")
	press(t, m, "enter")
	if len(f.puts) != 1 || f.puts[0] != psync.NewProfile("front_desk") {
		t.Fatalf("puts %+v", f.puts)
	}
	if p, _ := m.profiles.current(); p.Name != "front_desk" {
		t.Fatalf("the new profile is not selected: %q", p.Name)
	}
}

func TestProfiles_DeleteAsksFirst(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	press(t, m, "3", "d") // calendar: Dmitri and Kai are on it
	if m.overlay != ovConfirm {
		t.Fatal("d did not ask")
	}
	mustContain(t, m.View(), "Delete profile calendar?", "2 users are on it (Dmitri Volkov, Kai Müller)")
	press(t, m, "n")
	if m.overlay != ovNone || f.Called("DeleteProfile(calendar)") {
		t.Fatal("n must cancel")
	}
	press(t, m, "d", "y")
	if !f.Called("DeleteProfile(calendar)") {
		t.Fatalf("y did not delete: %q", f.Calls())
	}
	mustContain(t, m.statusView(), `profile "calendar" is in use by Dmitri Volkov`)

	// An unused profile goes, and the list follows.
	press(t, m, "n")
	typeText(t, m, "temp")
	press(t, m, "enter", "d", "y")
	if !f.Called("DeleteProfile(temp)") {
		t.Fatalf("calls %q", f.Calls())
	}
	for _, p := range m.profiles.list {
		if p.Name == "temp" {
			t.Fatal("deleted profile still listed")
		}
	}
	mustContain(t, m.statusView(), "profile temp deleted")
}

// selectSetting moves the settings cursor to key.
func selectSetting(t *testing.T, m *model, key string) {
	t.Helper()
	press(t, m, "4", "g")
	for range m.settings.list {
		if s, _ := m.settings.current(); s.Key == key {
			return
		}
		press(t, m, "j")
	}
	t.Fatalf("no setting %s", key)
}

func TestSettings_SecretsAreMaskedAndStartEmpty(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	v := m.View()
	selectSetting(t, m, "teams.client_secret")
	v = m.View()
	mustNotContain(t, v, "s3cr3t", "hunter2")
	mustContain(t, v, psync.Mask)
	press(t, m, "enter")
	if m.settings.editing != editValue || m.settings.input.Value() != "" || !m.settings.input.Mask {
		t.Fatalf("secret editor: mode %v value %q mask %v", m.settings.editing, m.settings.input.Value(), m.settings.input.Mask)
	}
	typeText(t, m, "new-secret q1")
	v = m.View()
	mustNotContain(t, v, "new-secret")
	mustContain(t, v, strings.Repeat("•", len("new-secret q1")))
	press(t, m, "enter")
	if !f.Called("SetSettings(teams.client_secret=new-secret q1)") {
		t.Fatalf("calls %q", f.Calls())
	}
	if m.settings.editing != editNone {
		t.Fatal("a saved value must close the editor")
	}
	mustContain(t, m.statusView(), "teams.client_secret saved")
}

func TestSettings_ValidationErrorInlineThenFix(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 80, 24)
	selectSetting(t, m, "teams.lease")
	press(t, m, "e")
	if got := m.settings.input.Value(); got != "15m0s" {
		t.Fatalf("editor starts with %q, want the current value", got)
	}
	press(t, m, "ctrl+u")
	typeText(t, m, "2m")
	press(t, m, "enter")
	if m.settings.editing != editValue {
		t.Fatal("the editor closed on an error")
	}
	mustContain(t, m.settings.editErr, "out of range 5m0s..4h0m0s")
	mustContain(t, m.View(), "✗ teams.lease: 2m0s is out of range")
	press(t, m, "backspace", "backspace")
	typeText(t, m, "20m")
	press(t, m, "enter")
	if m.settings.editing != editNone || m.settings.editErr != "" {
		t.Fatalf("not closed: %v %q", m.settings.editing, m.settings.editErr)
	}
	if s, _ := m.settings.current(); s.Value != "20m0s" {
		t.Fatalf("not reloaded: %q", s.Value)
	}
	// esc drops an edit without a call.
	n := len(f.Calls())
	press(t, m, "enter", "x", "esc")
	if m.settings.editing != editNone || len(f.Calls()) != n {
		t.Fatal("esc must cancel without saving")
	}
}

// A new ucserver.url would clear the stored ucserver.password (it must not
// be sent to an address it was not given for), so the console asks for it
// in the same change; left empty, it is cleared and the status says so.
func TestSettings_EndpointChangeAsksForItsSecret(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 80, 24)
	selectSetting(t, m, "ucserver.url")
	press(t, m, "enter", "ctrl+u")
	typeText(t, m, "https://ucserver2.office.example:7225")
	press(t, m, "enter")
	if m.settings.editing != editBound || len(f.Calls()) > 0 && strings.HasPrefix(f.Calls()[len(f.Calls())-1], "SetSettings") {
		t.Fatalf("a new ucserver.url was saved without asking for ucserver.password: mode %v, calls %q", m.settings.editing, f.Calls())
	}
	if !m.settings.input.Mask || m.settings.input.Value() != "" {
		t.Fatal("the bound secret must be asked for empty and masked")
	}
	v := m.View()
	mustContain(t, v, "ucserver.password =", "clears the stored")
	typeText(t, m, "pw-for-the-new-one")
	mustNotContain(t, m.View(), "pw-for-the-new-one")
	// The screen while the change is on its way (the real service answers
	// later than the fake).
	_, save := m.Update(keyMsg("enter"))
	mustContain(t, m.View(), "saving…")
	feed(t, m, save)
	if !f.Called("SetSettings(ucserver.password=pw-for-the-new-one, ucserver.url=https://ucserver2.office.example:7225)") {
		t.Fatalf("not one change: calls %q", f.Calls())
	}
	if m.settings.editing != editNone {
		t.Fatal("a saved change must close the editor")
	}
	mustContain(t, m.statusView(), "ucserver.url saved")
	if f.stored["ucserver.password"] != "pw-for-the-new-one" {
		t.Fatalf("password %q", f.stored["ucserver.password"])
	}

	// Left empty: the secret is cleared, and the status says so first.
	selectSetting(t, m, "ucserver.url")
	press(t, m, "enter", "ctrl+u")
	typeText(t, m, "https://ucserver3.office.example:7225")
	press(t, m, "enter", "enter")
	if !f.Called("SetSettings(ucserver.url=https://ucserver3.office.example:7225)") {
		t.Fatalf("calls %q", f.Calls())
	}
	mustContain(t, m.statusView(), "ucserver.password cleared: set it again")
	if _, ok := f.stored["ucserver.password"]; ok {
		t.Fatal("password kept")
	}

	// The same value again (or a setting bound to nothing) asks nothing.
	f.stored["ucserver.password"] = "again"
	n := len(f.Calls())
	selectSetting(t, m, "ucserver.url")
	press(t, m, "enter", "enter")
	if m.settings.editing != editNone || !slices.Contains(f.Calls()[n:], "SetSettings(ucserver.url=https://ucserver3.office.example:7225)") {
		t.Fatalf("an unchanged url asked for the password: mode %v calls %q", m.settings.editing, f.Calls()[n:])
	}

	// esc while asking for the secret saves nothing.
	n = len(f.Calls())
	selectSetting(t, m, "teams.graph_url")
	press(t, m, "enter", "ctrl+u")
	typeText(t, m, "https://graph.microsoft.us/v1.0")
	press(t, m, "enter")
	if m.settings.editing != editBound {
		t.Fatal("a new teams.graph_url must ask for teams.client_secret")
	}
	mustContain(t, m.View(), "teams.client_secret =")
	press(t, m, "esc")
	for _, c := range f.Calls()[n:] {
		if strings.HasPrefix(c, "SetSettings") {
			t.Fatalf("esc saved: %q", c)
		}
	}
}

// Resetting where a secret is sent clears the secret too (the service does
// it); the question says so before anything happens.
func TestSettings_UnsetOfAnEndpointSaysItClearsItsSecret(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	selectSetting(t, m, "ucserver.url")
	press(t, m, "u")
	if m.overlay != ovConfirm {
		t.Fatal("u must ask before resetting")
	}
	mustContain(t, m.View(), "also clears the stored ucserver.password")
	press(t, m, "n")
	selectSetting(t, m, "ucserver.user")
	press(t, m, "u")
	mustNotContain(t, m.View(), "also clears")
	press(t, m, "n")
}

func TestSettings_UnsetAsksFirst(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	selectSetting(t, m, "retry.min") // not set: nothing to reset
	press(t, m, "u")
	if m.overlay != ovNone {
		t.Fatal("reset of a default asked for confirmation")
	}
	mustContain(t, m.statusView(), "retry.min already has its default")

	selectSetting(t, m, "ucserver.user")
	press(t, m, "u")
	if m.overlay != ovConfirm || f.Called("UnsetSetting(ucserver.user)") {
		t.Fatal("u must ask before resetting")
	}
	mustContain(t, m.View(), "Reset ucserver.user to its default?")
	press(t, m, "esc")
	if f.Called("UnsetSetting(ucserver.user)") {
		t.Fatal("esc reset the setting")
	}
	press(t, m, "u", "y")
	if !f.Called("UnsetSetting(ucserver.user)") {
		t.Fatalf("calls %q", f.Calls())
	}
	if s, _ := m.settings.current(); s.Set {
		t.Fatal("settings not reloaded after the reset")
	}
}

func TestSettings_SignInShowsCodeAndURL(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 80, 24)
	press(t, m, "4", "i")
	press(t, m, "enter")
	mustContain(t, m.settings.editErr, "type the account")
	typeText(t, m, "bridge@contoso.example")
	press(t, m, "enter")
	if !f.Called("StartSignIn(bridge@contoso.example)") {
		t.Fatalf("calls %q", f.Calls())
	}
	if m.overlay != ovSignIn {
		t.Fatal("no sign-in overlay")
	}
	mustContain(t, m.View(), "F7KQ-2MXP", "https://microsoft.com/devicelogin", "the code expires in 14m52s")
	press(t, m, "esc")
	if m.overlay != ovNone {
		t.Fatal("esc did not close the sign-in")
	}
}

func TestEvents_StreamIsRearmedAndPauses(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	backlog := len(m.events.log)
	if backlog != 3 {
		t.Fatalf("audit backlog: %d", backlog)
	}
	if m.events.log[0].Name != "Elif Yılmaz" {
		t.Fatalf("backlog must be oldest first: %+v", m.events.log[0])
	}
	_, wait := m.Update(eventsOpenedMsg{ch: f.events})
	if m.stream != "live" {
		t.Fatalf("stream %q", m.stream)
	}
	d := psync.Decision{At: now, User: "201", Name: "Anna Schmidt", Side: psync.SideTeams, What: "session", Old: "InACall", New: "", Reason: "the last call ended", Rule: "§2 last call ended", Outcome: psync.OutcomeReleased}
	f.events <- d
	f.events <- d
	msgs := exec(wait)
	if len(msgs) != 1 {
		t.Fatalf("wait returned %v", msgs)
	}
	burst, ok := msgs[0].(eventsMsg)
	if !ok || len(burst.ds) != 2 {
		t.Fatalf("want one burst of two, got %#v", msgs[0])
	}
	n := len(f.Calls())
	_, next := m.Update(burst)
	if len(m.events.log) != backlog+2 {
		t.Fatalf("log %d", len(m.events.log))
	}
	// Re-armed: the next decision comes through the returned Cmd, and the
	// users are reloaded at once.
	f.events <- d
	got := exec(next)
	var rearmed, reloaded bool
	for _, msg := range got {
		if e, ok := msg.(eventsMsg); ok && len(e.ds) == 1 {
			rearmed = true
		}
		if _, ok := msg.(usersMsg); ok {
			reloaded = true
		}
	}
	if !rearmed || !reloaded || !slices.Contains(f.Calls()[n:], fmt.Sprintf("UsersSince(%d)", m.roster.version)) {
		t.Fatalf("rearmed %v reloaded %v (%v)", rearmed, reloaded, got)
	}

	press(t, m, "5", "space")
	if !m.events.paused {
		t.Fatal("space did not pause")
	}
	m.Update(eventsMsg{ch: f.events, ds: []psync.Decision{d}})
	if len(m.events.held) != 1 || len(m.events.log) != backlog+2 {
		t.Fatalf("paused log grew: held %d log %d", len(m.events.held), len(m.events.log))
	}
	mustContain(t, m.View(), "paused, 1 new", "events live (paused)")
	press(t, m, "space")
	if m.events.paused || len(m.events.log) != backlog+3 {
		t.Fatalf("resume: paused %v log %d", m.events.paused, len(m.events.log))
	}
	mustContain(t, m.View(), "Anna Schmidt", "session: InACall → — (the last call ended; §2 last call ended)", "released")

	// The stream ends (service restart): the console says so and retries.
	close(f.events)
	for _, msg := range exec(waitEvents(f.events)) {
		_, cmd := m.Update(msg)
		if cmd == nil {
			t.Fatal("no reconnect scheduled")
		}
	}
	if m.stream != "reconnecting" {
		t.Fatalf("stream %q", m.stream)
	}
	m.Update(reconnectMsg{})
	if m.stream != "connecting" {
		t.Fatalf("stream %q", m.stream)
	}
}

func TestEvents_ScrollLeavesAndResumesFollow(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 80, 24)
	var ds []psync.Decision
	for i := range 100 {
		ds = append(ds, psync.Decision{At: now.Add(time.Duration(i) * time.Second), Name: fmt.Sprintf("user %03d", i), What: "presence", Outcome: psync.OutcomeApplied})
	}
	m.Update(eventsMsg{ch: nil, ds: ds})
	press(t, m, "5")
	mustContain(t, m.View(), "user 099")
	press(t, m, "pgup")
	if m.events.follow {
		t.Fatal("pgup kept following")
	}
	v := m.View()
	mustNotContain(t, v, "user 099")
	mustContain(t, v, "scrolled")
	press(t, m, "G")
	if !m.events.follow {
		t.Fatal("G did not follow")
	}
	press(t, m, "c")
	if len(m.events.log) != 0 {
		t.Fatal("c did not clear")
	}
}

func TestModel_ErrorsGoToTheStatusLineAndKeepData(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	f.Err = func(method string) error {
		if method == "UsersSince" {
			return errors.New("dial unix /run/presencebridge.sock: connection refused")
		}
		return nil
	}
	feed(t, m, m.c.fetchUsers(m.roster.version))
	mustContain(t, m.statusView(), "✗ users: dial unix /run/presencebridge.sock: connection refused")
	if len(m.users.all) != 12 {
		t.Fatal("an error dropped the last good data")
	}
	if m.pending != 0 {
		t.Fatalf("pending %d after an error: the refresh would stop", m.pending)
	}
}

func TestModel_TickReloadsWithoutPilingUp(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	count := func(call string) int {
		n := 0
		for _, c := range f.Calls() {
			if c == call {
				n++
			}
		}
		return n
	}
	call := fmt.Sprintf("UsersSince(%d)", m.roster.version) // only what changed since the first load
	before := count(call)
	_, cmd := m.Update(tickMsg(now))
	if m.pending != 2 {
		t.Fatalf("pending %d", m.pending)
	}
	// A second tick while the first loads adds nothing.
	_, cmd2 := m.Update(tickMsg(now))
	for _, msg := range exec(cmd2) {
		if _, ok := msg.(usersMsg); ok {
			t.Fatal("the second tick loaded again")
		}
	}
	for _, msg := range exec(cmd) {
		m.Update(msg)
	}
	if got := count(call); got != before+1 {
		t.Fatalf("Users called %d times, want %d", got, before+1)
	}
	if m.pending != 0 {
		t.Fatalf("pending %d", m.pending)
	}
	// On the detail screen the tick also reloads that user.
	deliver(t, m, openUserMsg{id: "203"}, 3)
	_, cmd = m.Update(tickMsg(now))
	exec(cmd)
	if !f.Called("User(203)") {
		t.Fatalf("calls %q", f.Calls())
	}
}

func TestModel_QuitKeysAndHelp(t *testing.T) {
	m := testModel(t, newFake(), 80, 24)
	press(t, m, "?")
	if m.overlay != ovHelp {
		t.Fatal("? did not open help")
	}
	mustContain(t, m.View(), "Keys", "next screen", "quit")
	press(t, m, "q") // closes the overlay, does not quit
	if m.quitting || m.overlay != ovNone {
		t.Fatal("q in help must close help only")
	}
	_, cmd := m.Update(keyMsg("q"))
	if _, ok := cmd().(tea.QuitMsg); !ok || !m.quitting {
		t.Fatal("q did not quit")
	}
	if m.c.ctx.Err() == nil {
		t.Fatal("quitting must end the event stream's context")
	}

	m = testModel(t, newFake(), 80, 24)
	press(t, m, "2", "/")
	_, cmd = m.Update(keyMsg("ctrl+c"))
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("ctrl+c must quit even while typing")
	}
}

// Every screen and overlay, at every size, with full and with empty data,
// draws exactly the terminal's size and never panics.
func TestView_AlwaysFitsTheTerminal(t *testing.T) {
	empty := &fakeController{stored: map[string]string{}, history: map[psync.UserID][]psync.Decision{}}
	empty.users = []psync.UserStatus{{}} // a user with nothing at all
	for _, f := range []*fakeController{newFake(), empty} {
		for _, size := range [][2]int{{80, 24}, {120, 40}, {200, 60}, {60, 16}, {40, 10}, {39, 10}, {20, 5}, {1, 1}} {
			w, h := size[0], size[1]
			m := testModel(t, f, w, h)
			check := func(where string) {
				t.Helper()
				v := m.View()
				lines := strings.Split(v, "\n")
				if w >= minWidth && h >= minHeight && len(lines) != h {
					t.Errorf("%dx%d %s: %d lines", w, h, where, len(lines))
				}
				for i, l := range lines {
					if lw := lipgloss.Width(l); lw > w || (w >= minWidth && h >= minHeight && lw != w) {
						t.Errorf("%dx%d %s: line %d is %d wide: %q", w, h, where, i, lw, l)
					}
				}
			}
			for _, k := range []string{"1", "2", "3", "4", "5"} {
				press(t, m, k)
				check("screen " + k)
			}
			press(t, m, "2", "enter")
			check("detail")
			press(t, m, "j", "j")
			check("detail with a transition picked")
			press(t, m, "enter")
			check("a transition in full")
			press(t, m, "esc", "5", "k", "enter")
			check("an event in full")
			m.Update(openDecisionMsg{d: psync.Decision{What: strings.Repeat("x", 500), Reason: strings.Repeat("why ", 100), Err: strings.Repeat("e", 300)}})
			check("a long decision in full")
			press(t, m, "esc", "2", "enter", "p")
			check("picker")
			press(t, m, "esc", "?")
			check("help")
			press(t, m, "esc", "3", "d")
			check("confirm")
			press(t, m, "esc", "4", "enter")
			check("settings editor")
			press(t, m, "esc")
			m.Update(signInMsg{prompt: psync.SignInPrompt{Code: "X", URL: "https://microsoft.com/devicelogin", Message: strings.Repeat("long ", 40)}})
			check("sign-in")
		}
	}
}

func TestStyles_TeamsDotKeepsItsColourIn16Colours(t *testing.T) {
	st := newStyles(ansiRenderer())
	f := newFake()
	byName := map[string]psync.UserStatus{}
	for _, u := range f.users {
		byName[u.User.Name()] = u
	}
	for _, c := range []struct {
		name, seq string
	}{
		{"Ben Okafor", "\x1b[91m"},  // red, "In call"
		{"Lena Nowak", "\x1b[93m"},  // yellow, "Absent"
		{"Elif Yılmaz", "\x1b[37m"}, // neutral, "Present"
		{"Ingrid Berg", "\x1b[90m"}, // unknown: dim and hollow
	} {
		got := st.teamsDot(byName[c.name])
		if !strings.Contains(got, c.seq) {
			t.Errorf("%s: %q lacks %q", c.name, got, c.seq)
		}
	}
	if got := st.teamsDot(byName["Ingrid Berg"]); !strings.Contains(got, "○ Unknown") {
		t.Errorf("unknown must be hollow: %q", got)
	}
}

func TestDetail_DeepLinksAreHyperlinks(t *testing.T) {
	f := newFake()
	m := newModel(t.Context(), f, Options{Now: fixedNow, Refresh: time.Hour, Renderer: ansiRenderer()})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	feed(t, m, m.c.fetchUsers(m.roster.version))
	deliver(t, m, openUserMsg{id: "201"}, 3)
	v := m.View()
	mustContain(t, v,
		"\x1b]8;;https://teams.microsoft.com/l/chat/0/0?users=anna.schmidt@contoso.example\x1b\\",
		"\x1b]8;;https://teams.microsoft.com/l/call/0/0?users=anna.schmidt@contoso.example\x1b\\",
		"\x1b]8;;msteams:/l/chat/0/0?users=anna.schmidt@contoso.example\x1b\\",
		"\x1b]8;;\x1b\\")
	// The hyperlink does not count towards the width.
	for _, l := range strings.Split(v, "\n") {
		if lipgloss.Width(l) != 120 {
			t.Fatalf("line is %d wide: %q", lipgloss.Width(l), l)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{countdown(now, now.Add(9*time.Minute+58*time.Second+400*time.Millisecond)), "9m58s"},
		{countdown(now, now.Add(-3*time.Second)), "expired 3s ago"},
		{countdown(now, time.Time{}), "—"},
		{ago(now, time.Time{}), "—"},
		{ago(now, now.Add(-26*time.Hour)), "26h00m ago"},
		{ago(now, now.Add(-50*time.Hour)), "2d2h ago"},
		{ago(now, now.Add(300*time.Millisecond)), "now"},
		{truncate("Maximilian Alexander", 10), "Maximilia…"},
		{truncate("Elif Yılmaz", 20), "Elif Yılmaz"},
		{truncate("abc", 0), ""},
		{pad("ab", 4), "ab  "},
		{holdsText(now, nil), "—"},
		{callBadge([]psync.Call{{State: psync.CallRinging}, {State: psync.CallConference}}), "☏conf×2"},
		{syncArrow(0), "—"},
		{fmt.Sprint(wrap("", 10)), "[]"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	for _, l := range wrap(strings.Repeat("x", 30)+" word", 10) {
		if lipgloss.Width(l) > 10 {
			t.Errorf("wrapped line too wide: %q", l)
		}
	}
}

// Letters that arrive in one read come as one key; each still counts.
func TestModel_RunesInOneReadAreSeparateKeys(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	press(t, m, "2", "jj") // two downs in one read
	if u, _ := m.users.current(); u.User.Name() != "Chiara Rossi" {
		t.Fatalf("cursor on %q", u.User.Name())
	}
	press(t, m, "/an") // opens the filter; the rest is text
	if !m.users.filtering || m.users.filter.Value() != "an" {
		t.Fatalf("filtering %v %q", m.users.filtering, m.users.filter.Value())
	}
}

// Two toggles before any reload build on each other.
func TestProfiles_SecondToggleBeforeReloadKeepsTheFirst(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	press(t, m, "3", "j", "l", "j", "j", "j", "j")
	// Toggle without running the save (no reload arrives in between).
	m.Update(keyMsg("space"))
	m.Update(keyMsg("k"))
	m.Update(keyMsg("space"))
	p, _ := m.profiles.current()
	def := psync.NewProfile("default")
	if p.CrossDeviceBusyOnBusy == def.CrossDeviceBusyOnBusy || p.PresentingToPhoneDND == def.PresentingToPhoneDND {
		t.Fatalf("local copy after two toggles: %+v", p)
	}
}

func TestClean_ControlCharactersNeverReachTheScreen(t *testing.T) {
	d := []psync.Decision{{What: "presence", New: "Busy\x1b]52;c;ZXZpbA==\x07", Err: "line1\nline2\u009b31m"}}
	clean(&d)
	if d[0].New != "Busy]52;c;ZXZpbA==" || d[0].Err != "line1 line231m" {
		t.Fatalf("cleaned %q %q", d[0].New, d[0].Err)
	}
	u := psync.UserStatus{User: psync.User{DisplayName: "Eve\x1b[2J"}, Teams: psync.TeamsPresence{Activity: "In\x00ACall"}}
	clean(&u)
	if u.User.DisplayName != "Eve[2J" || u.Teams.Activity != "InACall" {
		t.Fatalf("cleaned %+v", u)
	}
}

// TestUsers_RefreshAsksOnlyForChanges: everyone once, then the refresh
// asks with the version it has and takes in only what changed: a changed
// person, a removed one, an added one; an answer overtaken by a newer one
// is not applied over it.
func TestUsers_RefreshAsksOnlyForChanges(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	if !f.Called("UsersSince(0)") || m.roster.version == 0 || len(m.users.all) != 12 {
		t.Fatalf("first load: calls %q, version %d, %d users", f.Calls(), m.roster.version, len(m.users.all))
	}
	v := m.roster.version
	f.mu.Lock()
	f.users[1].Phone.Presence = psync.PhoneAway // Ben
	f.users = slices.Delete(f.users, 2, 3)      // Chiara leaves
	f.users = append(f.users, status("299", "299", "Zoe Zander", "", "default", psync.TeamsPresence{}, psync.PhoneState{}, 0, 0))
	f.mu.Unlock()
	_, cmd := m.Update(tickMsg(now))
	var got psync.UserChanges
	for _, msg := range exec(cmd) {
		if um, ok := msg.(usersMsg); ok {
			got = um.ch
		}
		m.Update(msg)
	}
	if !f.Called(fmt.Sprintf("UsersSince(%d)", v)) {
		t.Fatalf("the refresh did not ask since %d: %q", v, f.Calls())
	}
	if got.Full || len(got.Users) != 2 {
		t.Fatalf("the answer: full %v, %d users; want Ben and Zoe only", got.Full, len(got.Users))
	}
	press(t, m, "2") // the table is made again when it shows
	mustContain(t, strings.Join(userNames(m), ","), "Zoe Zander", "Ben Okafor")
	mustNotContain(t, strings.Join(userNames(m), ","), "Chiara Rossi")
	if len(m.users.all) != 12 {
		t.Fatalf("%d users, want 12", len(m.users.all))
	}
	if u, _ := m.roster.get("202"); u.Phone.Presence != psync.PhoneAway {
		t.Fatalf("Ben's phone presence %s, want away", u.Phone.Presence)
	}

	// An older answer arriving late changes nothing.
	stale := psync.UserChanges{Version: v, Users: []psync.UserStatus{status("202", "202", "Ben Okafor", "", "sales", psync.TeamsPresence{}, psync.PhoneState{}, 0, 0)}}
	m.Update(usersMsg{ch: stale})
	if u, _ := m.roster.get("202"); u.Phone.Presence != psync.PhoneAway {
		t.Fatal("an overtaken answer was applied over a newer one")
	}
}

// TestConsole_NothingImportantIsCutAt80x24: at the smallest size the
// console is made for, the dashboard shows every counter (the failed
// commands too), the user detail every device by its name on the phone
// system, and the settings every key in full.
func TestConsole_NothingImportantIsCutAt80x24(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 80, 24)
	dash := m.View()
	mustContain(t, dash, "7 failed", "3 yielded", "commands 1411", "events 18234 Teams, 9120 phone, 12 stale", "12 users")

	press(t, m, "2", "j", "enter") // Ben
	whole := strings.Join(m.detail.lines(), "\n")
	mustContain(t, whole, "Desk phone Yealink T54W, room 2.14", "Softphone (ProCall)", "tel:202-tapi2",
		"call protection on Desk phone Yealink T54W, room 2.14: on (was off)")
	mustNotContain(t, whole, "tel:202-d…")
	m = testModel(t, newFake(), 120, 40)
	press(t, m, "2", "j", "enter")
	mustContain(t, m.View(), "Desk phone Yealink T54W, room 2.14", "Softphone (ProCall)")

	m = testModel(t, newFake(), 80, 24)
	press(t, m, "4")
	for _, k := range []string{"teams.client_certificate_password", "teams.client_certificate", "teams.client_secret"} {
		selectSetting(t, m, k)
		row := cursorLine(m.View())
		if !strings.HasPrefix(row, "▸ "+k+" ") {
			t.Errorf("the row of %s reads %q", k, row)
		}
	}
}

func cursorLine(v string) string {
	for _, l := range strings.Split(v, "\n") {
		if strings.HasPrefix(l, "▸ ") {
			return l
		}
	}
	return ""
}

// TestDashboard_AnErrorOnceWithItsFix: five times the same long error is
// one error, in full, with how often it happened and its fix.
func TestDashboard_AnErrorOnceWithItsFix(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		f := newFake()
		// The side's health says the same (the adapter's last error).
		f.overview.Engine.Teams = psync.SideHealth{Known: true, Detail: f.overview.Sides[0].Errors[0].What}
		m := testModel(t, f, size[0], size[1])
		whole := strings.Join(m.dash.lines(), "\n")
		card := m.dash.sideCard(psync.SideTeams, m.dash.ov.Engine.Teams)
		flat := strings.Join(strings.Fields(strings.Join(card.lines, " ")), " ")
		if n := strings.Count(whole, "AADSTS7000215"); n != 1 {
			t.Errorf("%dx%d: the error shows %d times, want once", size[0], size[1], n)
		}
		mustContain(t, flat, "(×5)", "not the client secret ID, for a secret added to app",
			"teams.client_secret is wrong or expired: create a new client secret for the app registration and set it")
	}
}

// TestEvents_EnterOpensTheDecisionInFull: an event cut on its line opens
// to every word of it, and esc goes back to the log.
func TestEvents_EnterOpensTheDecisionInFull(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 80, 24)
	press(t, m, "5")
	mustContain(t, m.View(), "(in a cal… failed") // cut on its line
	press(t, m, "k", "enter")                     // the newest is Ben's; one up is Kai's failure
	if m.active != scrDecision {
		t.Fatalf("enter: screen %v", m.active)
	}
	v := m.View()
	mustContain(t, v, "Kai Müller (id 211)", "available → busy", "§1 calendar meeting (sync/RULES.md)",
		"profile calendar, calendar_meetings_as_calls", "UCServer unreachable", "failed: the side refused or failed")
	mustContain(t, m.headerView(), "5 Events")
	press(t, m, "esc")
	if m.active != scrEvents {
		t.Fatalf("esc: screen %v", m.active)
	}
}

// TestDetail_TransitionsOpenInFull: ↓ picks the newest transition, the
// next ↓ the one after; enter shows it whole; above the first, nothing is
// picked and the page is back at its top.
func TestDetail_TransitionsOpenInFull(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 80, 24)
	press(t, m, "2", "j", "enter") // Ben
	press(t, m, "j", "j")
	if !m.detail.picked || m.detail.sel != 1 {
		t.Fatalf("picked %v sel %d", m.detail.picked, m.detail.sel)
	}
	mustContain(t, m.View(), "▸ 10:22:00") // the pick is on screen
	press(t, m, "enter")
	if m.active != scrDecision || m.decision.d.What != "device tel:202-desk" {
		t.Fatalf("enter: screen %v, decision %+v", m.active, m.decision.d)
	}
	mustContain(t, m.View(), "cross_device_busy_on_busy", "§1 Teams call, call protection")
	mustContain(t, m.headerView(), "2 Users")
	press(t, m, "esc")
	if m.active != scrDetail {
		t.Fatalf("esc: screen %v", m.active)
	}
	press(t, m, "k", "k", "k")
	if m.detail.picked || m.detail.pager.off != 0 {
		t.Fatalf("above the first: picked %v, page at %d", m.detail.picked, m.detail.pager.off)
	}
	mustContain(t, m.View(), "Ben Okafor  ext 202")
}

// TestPager_ReachesTheLastLine: G and pgdn go to the very end of a long
// screen (the pager's position line must not hide the last one).
func TestPager_ReachesTheLastLine(t *testing.T) {
	for _, k := range []string{"G", "pgdown"} {
		m := testModel(t, newFake(), 80, 24)
		press(t, m, "1")
		for range 5 {
			press(t, m, k)
		}
		last := m.dash.lines()[len(m.dash.lines())-1]
		mustContain(t, m.View(), strings.TrimSpace(last))
	}
}

// TestUsers_TableIsMadeWhenItShows: a change that arrives while another
// screen shows reaches the table when it is shown, and one that arrives
// while it shows, at once.
func TestUsers_TableIsMadeWhenItShows(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	rename := func(name string) {
		f.mu.Lock()
		f.users[0].User.DisplayName = name
		f.mu.Unlock()
		feed(t, m, m.c.fetchUsers(m.roster.version))
	}
	rename("Zelda Zorn")
	if !m.users.stale {
		t.Fatal("the table was made while the dashboard showed")
	}
	press(t, m, "2")
	mustContain(t, strings.Join(userNames(m), ","), "Zelda Zorn")
	rename("Yara Young")
	mustContain(t, strings.Join(userNames(m), ","), "Yara Young")
	press(t, m, "enter", "esc") // to the detail and back
	if m.active != scrUsers || m.users.stale {
		t.Fatalf("back from the detail: screen %v, stale %v", m.active, m.users.stale)
	}
}

// TestSettings_WhatIsNotInEffectSaysSo: a stored setting the running
// bridge does not use yet is marked, and its panel says why.
func TestSettings_WhatIsNotInEffectSaysSo(t *testing.T) {
	m := testModel(t, newFake(), 80, 24)
	press(t, m, "4")
	selectSetting(t, m, "phone.system")
	v := m.View()
	mustContain(t, v, "◐ not in effect yet", "◐ stored, not in effect yet: applies at the next start (presencebridge restart)")
	selectSetting(t, m, "teams.lease")
	mustContain(t, m.View(), "◐ phone.system ")
}

// r renames the selected profile in place; its users move along.
func TestProfiles_Rename(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 80, 24)
	press(t, m, "3", "r") // calendar, the first
	if !m.capturing() || m.profiles.input.Value() != "calendar" {
		t.Fatalf("r did not open the name input with the name: %q", m.profiles.input.Value())
	}
	mustContain(t, m.View(), "Rename calendar")
	press(t, m, "ctrl+u")
	typeText(t, m, "sales")
	press(t, m, "enter")
	mustContain(t, m.profiles.inputErr, "exists already")
	press(t, m, "ctrl+u")
	typeText(t, m, "meetings")
	press(t, m, "enter")
	if !f.Called("RenameProfile(calendar, meetings)") {
		t.Fatalf("calls %q", f.Calls())
	}
	if p, _ := m.profiles.current(); p.Name != "meetings" {
		t.Fatalf("the renamed profile is not selected: %q", p.Name)
	}
	mustContain(t, m.statusView(), "profile calendar is now meetings")
	mustContain(t, m.View(), "Dmitri Volkov") // still on it
}

// a adds a user from one line (id, UPN, name); x removes one after asking,
// saying that the bridge gives back what it holds first.
func TestUsers_AddAndRemove(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 80, 24)
	press(t, m, "2", "a")
	if !m.capturing() {
		t.Fatal("a did not open the input")
	}
	typeText(t, m, "q") // text, not quit
	press(t, m, "ctrl+u", "enter")
	mustContain(t, m.View(), "type the user's id first")
	typeText(t, m, "sip:zoe@contoso.example zoe@contoso.example Zoë Quist")
	press(t, m, "enter")
	if !f.Called("AddUser(sip:zoe@contoso.example, zoe@contoso.example, Zoë Quist)") {
		t.Fatalf("calls %q", f.Calls())
	}
	if !slices.Contains(userNames(m), "Zoë Quist") {
		t.Fatalf("not listed: %q", userNames(m))
	}
	if u, _ := m.users.current(); u.User.ID != "sip:zoe@contoso.example" {
		t.Fatalf("cursor not on the new user: %q", u.User.ID)
	}
	// Again: the service refuses, and says why.
	press(t, m, "a")
	typeText(t, m, "sip:zoe@contoso.example")
	press(t, m, "enter")
	mustContain(t, m.lastErr, "already exists")

	press(t, m, "x")
	if m.overlay != ovConfirm {
		t.Fatal("x did not ask")
	}
	mustContain(t, m.View(), "Remove user Zoë Quist", "gives back")
	press(t, m, "n")
	if f.Called("RemoveUser(sip:zoe@contoso.example)") {
		t.Fatal("n removed")
	}
	press(t, m, "x", "y")
	if !f.Called("RemoveUser(sip:zoe@contoso.example)") {
		t.Fatalf("calls %q", f.Calls())
	}
	if slices.Contains(userNames(m), "Zoë Quist") {
		t.Fatalf("still listed: %q", userNames(m))
	}
	mustContain(t, m.statusView(), "user Zoë Quist removed")
}

func TestUsers_ParseNewUser(t *testing.T) {
	for _, tc := range []struct {
		line string
		want psync.User
		err  string
	}{
		{"201", psync.User{ID: "201"}, ""},
		{"sip:a@b.example Anna Berg", psync.User{ID: "sip:a@b.example", DisplayName: "Anna Berg"}, ""},
		{"  sip:a@b.example a@b.example  Anna  ", psync.User{ID: "sip:a@b.example", UPN: "a@b.example", DisplayName: "Anna"}, ""},
		{"   ", psync.User{}, "id first"},
	} {
		u, err := parseNewUser(tc.line)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v", tc.line, err)
			}
			continue
		}
		if err != nil || u != tc.want {
			t.Errorf("%q: %+v %v", tc.line, u, err)
		}
	}
}

// A user's detail reads their history when it opens and when a decision
// about them arrives on the live stream, not on every tick: at 10,000
// users the audit read each second was most of what the console cost the
// daemon. Without the stream the history is polled.
func TestDetail_HistoryOnlyOnTheirDecisions(t *testing.T) {
	f := newFake()
	m := testModel(t, f, 120, 40)
	_, _ = m.Update(eventsOpenedMsg{ch: f.events})
	press(t, m, "2", "enter") // Anna
	if !f.Called("History(201, 50)") {
		t.Fatalf("opening did not load the history: %q", f.Calls())
	}
	histories := func() int {
		n := 0
		for _, c := range f.Calls() {
			if strings.HasPrefix(c, "History(") {
				n++
			}
		}
		return n
	}
	before, users := histories(), len(slices.DeleteFunc(f.Calls(), func(c string) bool { return c != "User(201)" }))
	for range 3 {
		_, cmd := m.Update(tickMsg(now))
		feed(t, m, cmd)
	}
	if got := histories(); got != before {
		t.Fatalf("3 ticks read the history %d times", got-before)
	}
	if n := len(slices.DeleteFunc(f.Calls(), func(c string) bool { return c != "User(201)" })); n != users+3 {
		t.Fatalf("3 ticks reloaded the user %d times, want 3", n-users)
	}
	// Someone else's decision: no read; hers: one.
	feed(t, m, send(eventsMsg{ds: []psync.Decision{{At: now, User: "202", Outcome: psync.OutcomeApplied}}, ch: f.events}))
	if got := histories(); got != before {
		t.Fatalf("another user's decision read her history")
	}
	feed(t, m, send(eventsMsg{ds: []psync.Decision{{At: now, User: "201", Outcome: psync.OutcomeApplied}}, ch: f.events}))
	if got := histories(); got != before+1 {
		t.Fatalf("her decision read the history %d times, want 1", got-before)
	}
	// The stream gone: the tick polls it again.
	m.stream = "reconnecting"
	_, cmd := m.Update(tickMsg(now))
	feed(t, m, cmd)
	if got := histories(); got != before+2 {
		t.Fatalf("without the stream the tick did not read the history (%d reads)", got-before-1)
	}
}

// The settings screen lists the settings of the phone system in use, not
// the other systems' keys.
func TestSettings_OnlyThePhoneSystemInUse(t *testing.T) {
	m := newSettingsModel(&common{})
	m.setSettings([]psync.SettingValue{
		{Key: "asterisk.host"}, {Key: "phone.lease"}, {Key: "phone.system", Value: "ucserver"},
		{Key: "sip.server"}, {Key: "teams.mode"}, {Key: "ucserver.url"},
	})
	var keys []string
	for _, s := range m.list {
		keys = append(keys, s.Key)
	}
	if got := strings.Join(keys, " "); got != "phone.lease phone.system teams.mode ucserver.url" {
		t.Fatalf("listed: %s", got)
	}
	m.setSettings([]psync.SettingValue{{Key: "phone.system"}, {Key: "sip.server"}, {Key: "ucserver.url"}})
	if len(m.list) != 3 {
		t.Fatalf("with no phone system chosen every setting is listed, got %d", len(m.list))
	}
}
