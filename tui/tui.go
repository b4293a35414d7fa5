package tui

import (
	"context"
	"errors"
	"io"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// Options configure the console.
type Options struct {
	// Now is the clock of every countdown and age on screen; nil is
	// time.Now. Tests fix it so that views are byte-for-byte repeatable.
	Now func() time.Time
	// Version is shown in the header (the console's own; the service's
	// version comes with the Overview).
	Version string
	// Refresh is how often Overview, Users and the open user are reloaded
	// (default 1s). Events update the screens in between.
	Refresh time.Duration
	// Timeout bounds one Controller call (default 5s).
	Timeout time.Duration
	// Notice is shown in the status line when the console opens (the demo
	// says where its control socket is).
	Notice string
	// Renderer decides colours and whether hyperlinks are written. nil: for
	// New the default renderer (stdout), for Run a renderer on its out, so
	// a console on another terminal gets that terminal's colour profile.
	Renderer *lipgloss.Renderer
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	return o
}

// common is what every screen needs: the controller, the styles, the keys,
// the clock and the size of the body. The root model owns it and is the only
// one that changes it (on a resize), as glow's commonModel.
type common struct {
	ctrl    Controller
	ctx     context.Context
	cancel  context.CancelFunc
	st      *styles
	keys    keyMap
	now     func() time.Time
	opts    Options
	timeout time.Duration
	width   int // of the terminal
	height  int
	bodyW   int // of the area between header and footer
	bodyH   int
}

// New returns the console's root model. It starts nothing: Init returns the
// first loads and the event subscription as Cmds. The event stream is ended
// when the user quits.
func New(ctrl Controller, opts Options) tea.Model {
	return newModel(context.Background(), ctrl, opts)
}

// Run shows the console on out (alt screen) reading keys from in, until the
// user quits or ctx ends; the end of ctx is not an error. The console writes
// nothing but the screen to out, so callers must send logs elsewhere. It
// returns the session's Summary for the caller to print once the screen is
// given back.
func Run(ctx context.Context, ctrl Controller, opts Options, in io.Reader, out io.Writer) (Summary, error) {
	if opts.Renderer == nil {
		opts.Renderer = lipgloss.NewRenderer(out)
	}
	// Ask the terminal about its background now, before Bubble Tea owns the
	// input: the answer to that query would otherwise arrive as key presses.
	opts.Renderer.HasDarkBackground()
	m := newModel(ctx, ctrl, opts)
	defer m.c.cancel()
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out), tea.WithAltScreen())
	_, err := p.Run()
	// The program has stopped: the model is no longer updated.
	sum := m.tally.summary(m.c.now())
	if err != nil && errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return sum, nil
	}
	return sum, err
}
