package sync

import (
	"container/heap"
	"time"
)

// Keep-alives and retries: a heap of wake-ups per user on the injected clock,
// one timer armed for the earliest.

type wake struct {
	at time.Time
	u  *userRT
}

type wakeHeap []wake

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeHeap) Push(x any)        { *h = append(*h, x.(wake)) }
func (h *wakeHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}

func (e *Engine) schedule(u *userRT, at time.Time) {
	heap.Push(&e.wake, wake{at: at, u: u})
}

func (e *Engine) armTimer() {
	if len(e.wake) == 0 {
		return
	}
	next := e.wake[0].at
	if !e.timerAt.IsZero() && !next.Before(e.timerAt) {
		return
	}
	e.timer.Stop()
	e.timerAt = next
	e.timer.Reset(max(next.Sub(e.clock.Now()), 0))
}

func (e *Engine) onTimer() {
	now := e.clock.Now()
	for len(e.wake) > 0 && !e.wake[0].at.After(now) {
		w := heap.Pop(&e.wake).(wake)
		if e.byID[w.u.user.ID] == w.u { // not removed meanwhile
			e.reconcile(w.u)
		}
	}
}
