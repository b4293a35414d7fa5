package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// pager scrolls a block of rendered lines that may be taller than the body
// (dashboard, user detail). It keeps only the offset; the screen renders its
// lines afresh on every View, so the content can change under it.
type pager struct {
	off int
}

// update moves the offset on the moving keys and says whether it handled msg.
func (p *pager) update(msg tea.Msg, k keyMap, total, height int) bool {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return false
	}
	switch {
	case key.Matches(km, k.Up):
		p.off--
	case key.Matches(km, k.Down):
		p.off++
	case key.Matches(km, k.PageUp):
		p.off -= max(1, height-1)
	case key.Matches(km, k.PageDown):
		p.off += max(1, height-1)
	case key.Matches(km, k.Top):
		p.off = 0
	case key.Matches(km, k.Bottom):
		p.off = total
	default:
		return false
	}
	rows := height
	if total > height {
		rows = height - 1 // window's last row says where one is
	}
	p.clamp(total, rows)
	return true
}

func (p *pager) clamp(total, height int) {
	p.off = max(0, min(p.off, total-height))
}

// window returns the visible part of lines in height rows; when not all of
// it fits, the last row says where one is, so hidden content is never a
// surprise.
func (p *pager) window(st *styles, lines []string, height int) string {
	if height <= 0 {
		return ""
	}
	if len(lines) <= height {
		p.off = 0
		return strings.Join(lines, "\n")
	}
	rows := height - 1
	p.clamp(len(lines), rows)
	end := min(len(lines), p.off+rows)
	out := append([]string(nil), lines[p.off:end]...)
	more := fmt.Sprintf("── %d–%d of %d lines · ↑↓ pgup pgdn to scroll", p.off+1, end, len(lines))
	out = append(out, st.Dim.Render(more))
	return strings.Join(out, "\n")
}
