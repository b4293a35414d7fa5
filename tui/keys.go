package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every binding of the console in one place, so that the help
// overlay, the footer and the Update functions can never disagree.
type keyMap struct {
	// global
	Next, Prev, Help, Quit, ForceQuit, Refresh key.Binding
	Screen                                     [5]key.Binding

	// lists
	Up, Down, PageUp, PageDown, Top, Bottom, Open, Back key.Binding

	// users / detail
	Filter, Sort, Reverse, Assign, AddUser, RemoveUser key.Binding

	// profiles
	Toggle, Left, Right, New, Delete, Rename key.Binding

	// settings
	Edit, Unset, SignIn key.Binding

	// events
	Pause, Follow, Clear key.Binding

	// dialogs
	Yes, No, Submit, Cancel key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, help, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	k := keyMap{
		Next:      b([]string{"tab"}, "tab", "next screen"),
		Prev:      b([]string{"shift+tab"}, "shift+tab", "previous screen"),
		Help:      b([]string{"?"}, "?", "help"),
		Quit:      b([]string{"q"}, "q", "quit"),
		ForceQuit: b([]string{"ctrl+c"}, "ctrl+c", "quit"),
		Refresh:   b([]string{"ctrl+r", "f5"}, "ctrl+r", "refresh now"),

		Up:       b([]string{"up", "k"}, "↑/k", "up"),
		Down:     b([]string{"down", "j"}, "↓/j", "down"),
		PageUp:   b([]string{"pgup", "ctrl+b"}, "pgup", "page up"),
		PageDown: b([]string{"pgdown", "ctrl+f"}, "pgdn", "page down"),
		Top:      b([]string{"home", "g"}, "g", "top"),
		Bottom:   b([]string{"end", "G"}, "G", "bottom"),
		Open:     b([]string{"enter"}, "enter", "open"),
		Back:     b([]string{"esc", "backspace"}, "esc", "back"),

		Filter:  b([]string{"/"}, "/", "filter"),
		Sort:    b([]string{"s"}, "s", "sort by next column"),
		Reverse: b([]string{"S"}, "S", "reverse order"),
		Assign:  b([]string{"p"}, "p", "assign profile"),
		AddUser: b([]string{"a"}, "a", "add user"),
		// x, not d: d is the profiles' delete, and removing a person
		// should not be one habit away.
		RemoveUser: b([]string{"x", "delete"}, "x", "remove user"),

		Toggle: b([]string{" ", "enter"}, "space", "toggle flag"),
		Left:   b([]string{"left", "h"}, "←/h", "profiles"),
		Right:  b([]string{"right", "l"}, "→/l", "flags"),
		New:    b([]string{"n"}, "n", "new profile"),
		Delete: b([]string{"d", "delete"}, "d", "delete profile"),
		Rename: b([]string{"r"}, "r", "rename profile"),

		Edit:   b([]string{"enter", "e"}, "enter", "edit"),
		Unset:  b([]string{"u"}, "u", "reset to default"),
		SignIn: b([]string{"i"}, "i", "sign in service account"),

		Pause:  b([]string{" ", "p"}, "space", "pause/resume"),
		Follow: b([]string{"end", "G"}, "G", "follow newest"),
		Clear:  b([]string{"c"}, "c", "clear log"),

		Yes:    b([]string{"y", "Y"}, "y", "yes"),
		No:     b([]string{"n", "N", "esc"}, "n/esc", "no"),
		Submit: b([]string{"enter"}, "enter", "save"),
		Cancel: b([]string{"esc"}, "esc", "cancel"),
	}
	for i, name := range screenNames {
		n := string(rune('1' + i))
		k.Screen[i] = b([]string{n}, n, name)
	}
	return k
}
