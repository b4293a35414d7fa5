package tui

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"
)

// The golden tests run the real program (teatest) against the fake office
// at the two sizes that matter: 80×24 (SSH, a default terminal) and 120×40.
// They compare the final View, plain text (ASCII profile, fixed clock), with
// testdata/<test>/<size>.golden; `go test ./tui -update` rewrites them.

var goldenSizes = [][2]int{{80, 24}, {120, 40}}

type goldenCase struct {
	keys []string // pressed once the console has loaded
	// wait: all of these on screen before the picture is taken, per width
	// (what is visible differs), or for every size under 0.
	wait map[int][]string
}

func runGolden(t *testing.T, c goldenCase) {
	for _, size := range goldenSizes {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			f := newFake()
			m := New(f, Options{Now: fixedNow, Version: "1.4.0", Refresh: time.Hour, Renderer: asciiRenderer()})
			tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(size[0], size[1]))
			// Loaded means: the users answered and the live stream is open.
			wait := append(c.wait[0], c.wait[size[0]]...)
			if len(c.keys) == 0 {
				// Nothing changes after loading: wait in one go, or the
				// first wait would swallow what the second looks for.
				wait = append(wait, "updated now", "events live")
			} else {
				waitAll(t, tm, "updated now", "events live")
				for _, k := range c.keys {
					tm.Send(keyMsg(k))
				}
			}
			if len(wait) > 0 {
				waitAll(t, tm, wait...)
			}
			if err := tm.Quit(); err != nil {
				t.Fatal(err)
			}
			final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second))
			view := final.View()
			checkFrame(t, view, size[0], size[1])
			teatest.RequireEqualOutput(t, []byte(view))
		})
	}
}

func waitAll(t *testing.T, tm *teatest.TestModel, wants ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, w := range wants {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
}

// checkFrame: the picture is exactly the terminal, nothing cut mid-cell.
func checkFrame(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("%d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if lipgloss.Width(l) != w {
			t.Errorf("line %d is %d wide, want %d: %q", i, lipgloss.Width(l), w, l)
		}
		if strings.ContainsRune(l, '\x1b') {
			t.Errorf("line %d has escape codes under the ASCII profile: %q", i, l)
		}
	}
}

func TestGolden_Dashboard(t *testing.T) {
	// 80 columns: the cards are stacked, the phone system's below the
	// fold, its state in the line above the cards.
	runGolden(t, goldenCase{wait: map[int][]string{0: {"Microsoft Graph", "7 failed"}, 80: {"Phone system  ● down"}, 120: {"estos UCServer"}}})
}

func TestGolden_Users(t *testing.T) {
	runGolden(t, goldenCase{keys: []string{"2"}, wait: map[int][]string{0: {"12 of 12 users"}}})
}

func TestGolden_UserDetail(t *testing.T) {
	// Ben: a Teams call, DND on the phone and call protection on every
	// device, by his profile "sales".
	runGolden(t, goldenCase{keys: []string{"2", "j", "enter"}, wait: map[int][]string{0: {"Softphone (ProCall) (by the bridge)"}, 120: {"What the bridge imposes (3)", "of 38 lines"}, 80: {"of 50 lines"}}})
}

func TestGolden_UserDetailEcho(t *testing.T) {
	// Anna: a phone call, the bridge's Teams session comes back as its echo.
	runGolden(t, goldenCase{keys: []string{"2", "enter"}, wait: map[int][]string{0: {"connected on Desk phone (c-7781)"}, 120: {"What the bridge imposes (1)", "seen on the phone system"}, 80: {"of 36 lines"}}})
}

func TestGolden_Profiles(t *testing.T) {
	runGolden(t, goldenCase{keys: []string{"3", "j", "l"}, wait: map[int][]string{0: {"Flags of default", "▸ [x] set_presence_in_teams", "on it: Anna"}}})
}

func TestGolden_Settings(t *testing.T) {
	runGolden(t, goldenCase{keys: []string{"4"}, wait: map[int][]string{0: {"audit.limit", "teams.client_id"}}})
}

func TestGolden_Events(t *testing.T) {
	runGolden(t, goldenCase{keys: []string{"5"}, wait: map[int][]string{0: {"3 decisions, newest at the bottom"}}})
}
