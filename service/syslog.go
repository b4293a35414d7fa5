package service

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"

	ksvc "github.com/kardianos/service"
)

// SystemLogHandler is a slog.Handler writing to the service manager's log
// through kardianos (journald via syslog on Linux, the Event Log on
// Windows, syslog on macOS). Those logs stamp time and severity
// themselves, so a line is the message and its attributes only.
type SystemLogHandler struct {
	out   ksvc.Logger
	level slog.Leveler
	mu    *sync.Mutex
	buf   *bytes.Buffer
	text  slog.Handler
}

// NewSystemLogHandler returns a handler over a kardianos logger.
func NewSystemLogHandler(out ksvc.Logger, level slog.Leveler) *SystemLogHandler {
	if level == nil {
		level = slog.LevelInfo
	}
	buf := new(bytes.Buffer)
	return &SystemLogHandler{
		out: out, level: level, mu: new(sync.Mutex), buf: buf,
		text: slog.NewTextHandler(buf, &slog.HandlerOptions{
			Level: slog.LevelDebug, // the level check is ours
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
					return slog.Attr{}
				}
				return a
			},
		}),
	}
}

// Enabled implements slog.Handler.
func (h *SystemLogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// Handle implements slog.Handler.
func (h *SystemLogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.buf.Reset()
	err := h.text.Handle(ctx, r)
	line := strings.TrimSuffix(h.buf.String(), "\n")
	h.mu.Unlock()
	if err != nil {
		return err
	}
	switch {
	case r.Level >= slog.LevelError:
		return h.out.Error(line)
	case r.Level >= slog.LevelWarn:
		return h.out.Warning(line)
	}
	return h.out.Info(line)
}

// WithAttrs implements slog.Handler.
func (h *SystemLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.text = h.text.WithAttrs(as)
	return &c
}

// WithGroup implements slog.Handler.
func (h *SystemLogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.text = h.text.WithGroup(name)
	return &c
}
