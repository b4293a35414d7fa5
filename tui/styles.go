package tui

import (
	"github.com/charmbracelet/lipgloss"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Colours are given for every profile (CompleteAdaptiveColor) instead of
// letting lipgloss degrade a hex value: the automatic 16-colour fallback picks
// the nearest ANSI colour, which turns Teams' orange-yellow into red or white
// on many palettes. The Teams dot must stay recognisable over an SSH session
// with 16 colours, so its ANSI values are chosen by hand.
var (
	colRed = lipgloss.CompleteAdaptiveColor{
		Light: lipgloss.CompleteColor{TrueColor: "#C4314B", ANSI256: "161", ANSI: "1"},
		Dark:  lipgloss.CompleteColor{TrueColor: "#E9546A", ANSI256: "203", ANSI: "9"},
	}
	colYellow = lipgloss.CompleteAdaptiveColor{
		Light: lipgloss.CompleteColor{TrueColor: "#B8860B", ANSI256: "136", ANSI: "3"},
		Dark:  lipgloss.CompleteColor{TrueColor: "#FFAA44", ANSI256: "214", ANSI: "11"},
	}
	colGreen = lipgloss.CompleteAdaptiveColor{
		Light: lipgloss.CompleteColor{TrueColor: "#237B4B", ANSI256: "29", ANSI: "2"},
		Dark:  lipgloss.CompleteColor{TrueColor: "#6BB700", ANSI256: "112", ANSI: "10"},
	}
	colBlue = lipgloss.CompleteAdaptiveColor{
		Light: lipgloss.CompleteColor{TrueColor: "#4F52B2", ANSI256: "61", ANSI: "4"},
		Dark:  lipgloss.CompleteColor{TrueColor: "#9EA2FF", ANSI256: "147", ANSI: "12"},
	}
	colNeutral = lipgloss.CompleteAdaptiveColor{
		Light: lipgloss.CompleteColor{TrueColor: "#424242", ANSI256: "238", ANSI: "0"},
		Dark:  lipgloss.CompleteColor{TrueColor: "#D6D6D6", ANSI256: "252", ANSI: "7"},
	}
	colDim = lipgloss.CompleteAdaptiveColor{
		Light: lipgloss.CompleteColor{TrueColor: "#8A8A8A", ANSI256: "245", ANSI: "8"},
		Dark:  lipgloss.CompleteColor{TrueColor: "#7A7A7A", ANSI256: "243", ANSI: "8"},
	}
	colAccent = lipgloss.CompleteAdaptiveColor{ // Teams purple
		Light: lipgloss.CompleteColor{TrueColor: "#5B5FC7", ANSI256: "62", ANSI: "5"},
		Dark:  lipgloss.CompleteColor{TrueColor: "#7F85F5", ANSI256: "105", ANSI: "13"},
	}
	colAccentFg = lipgloss.CompleteAdaptiveColor{
		Light: lipgloss.CompleteColor{TrueColor: "#FFFFFF", ANSI256: "231", ANSI: "15"},
		Dark:  lipgloss.CompleteColor{TrueColor: "#FFFFFF", ANSI256: "231", ANSI: "15"},
	}
	colSelBg = lipgloss.CompleteAdaptiveColor{
		Light: lipgloss.CompleteColor{TrueColor: "#E8EBFA", ANSI256: "189", ANSI: "7"},
		Dark:  lipgloss.CompleteColor{TrueColor: "#2F2F4A", ANSI256: "237", ANSI: "8"},
	}
)

// styles is every style the console uses, built from one renderer so that a
// console served to another terminal (SSH) gets that terminal's colour
// profile, not the server's (the soft-serve pattern).
type styles struct {
	r *lipgloss.Renderer

	App        lipgloss.Style
	Brand      lipgloss.Style
	Tab        lipgloss.Style
	TabActive  lipgloss.Style
	Title      lipgloss.Style
	Section    lipgloss.Style
	Label      lipgloss.Style
	Dim        lipgloss.Style
	Bold       lipgloss.Style
	Key        lipgloss.Style
	Selected   lipgloss.Style
	Cursor     lipgloss.Style
	Header     lipgloss.Style
	OK         lipgloss.Style
	Warn       lipgloss.Style
	Err        lipgloss.Style
	Info       lipgloss.Style
	Box        lipgloss.Style
	Modal      lipgloss.Style
	DangerBox  lipgloss.Style
	Code       lipgloss.Style
	StatusBar  lipgloss.Style
	StatusErr  lipgloss.Style
	HelpKey    lipgloss.Style
	HelpDesc   lipgloss.Style
	TeamsRed   lipgloss.Style
	TeamsYel   lipgloss.Style
	TeamsNeu   lipgloss.Style
	TeamsUnk   lipgloss.Style
	Outcome    map[psync.Outcome]lipgloss.Style
	hyperlinks bool
}

func newStyles(r *lipgloss.Renderer) *styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	s := &styles{r: r}
	n := r.NewStyle
	s.App = n()
	s.Brand = n().Bold(true).Foreground(colAccentFg).Background(colAccent).Padding(0, 1)
	s.Tab = n().Foreground(colDim).Padding(0, 1)
	s.TabActive = n().Bold(true).Foreground(colAccent).Underline(true).Padding(0, 1)
	s.Title = n().Bold(true)
	s.Section = n().Bold(true).Foreground(colAccent)
	s.Label = n().Foreground(colDim)
	s.Dim = n().Foreground(colDim)
	s.Bold = n().Bold(true)
	s.Key = n().Bold(true).Foreground(colAccent)
	s.Selected = n().Background(colSelBg).Bold(true)
	s.Cursor = n().Foreground(colAccent).Bold(true)
	s.Header = n().Bold(true).Foreground(colDim)
	s.OK = n().Foreground(colGreen)
	s.Warn = n().Foreground(colYellow)
	s.Err = n().Foreground(colRed)
	s.Info = n().Foreground(colBlue)
	s.Box = n().Border(lipgloss.RoundedBorder()).BorderForeground(colDim).Padding(0, 1)
	s.Modal = n().Border(lipgloss.RoundedBorder()).BorderForeground(colAccent).Padding(0, 2)
	s.DangerBox = n().Border(lipgloss.RoundedBorder()).BorderForeground(colRed).Padding(0, 2)
	s.Code = n().Bold(true).Foreground(colAccentFg).Background(colAccent).Padding(0, 2)
	s.StatusBar = n().Foreground(colDim)
	s.StatusErr = n().Foreground(colRed).Bold(true)
	s.HelpKey = n().Foreground(colAccent)
	s.HelpDesc = n().Foreground(colDim)
	s.TeamsRed = n().Foreground(colRed)
	s.TeamsYel = n().Foreground(colYellow)
	s.TeamsNeu = n().Foreground(colNeutral)
	s.TeamsUnk = n().Foreground(colDim)
	s.Outcome = map[psync.Outcome]lipgloss.Style{
		psync.OutcomeApplied:  n().Foreground(colGreen),
		psync.OutcomeReleased: n().Foreground(colBlue),
		psync.OutcomeYielded:  n().Foreground(colYellow),
		psync.OutcomeFailed:   n().Foreground(colRed).Bold(true),
		psync.OutcomeObserved: n().Foreground(colDim),
	}
	// A terminal without colour (NO_COLOR, a pipe, TERM=dumb) is also the
	// one least likely to understand OSC 8; it gets the plain URL instead.
	// Asking the renderer whether it colours anything avoids importing termenv.
	s.hyperlinks = n().Foreground(lipgloss.Color("1")).Render("x") != "x"
	return s
}

// teamsDot renders the Teams channel as the admin knows it from Teams: a
// coloured dot and the channel text. Unknown and offline get a hollow dot so
// that the state is readable without colour too.
func (s *styles) teamsDot(st psync.UserStatus) string {
	dot, style := "●", s.TeamsNeu
	switch st.Colour {
	case psync.ColourRed:
		style = s.TeamsRed
	case psync.ColourYellow:
		style = s.TeamsYel
	}
	if !st.TeamsKnown || st.TeamsState == psync.TeamsUnknown || st.TeamsState == psync.TeamsOffline {
		dot, style = "○", s.TeamsUnk
	}
	text := st.Text
	if text == "" {
		text = "Unknown"
	}
	return style.Render(dot + " " + text)
}
