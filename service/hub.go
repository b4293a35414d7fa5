package service

import (
	"sync"
	"sync/atomic"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Hub fans the engine's decisions out to any number of live streams. The
// engine calls Publish from its own goroutine (EngineConfig.Observe), so
// Publish never waits: a subscriber whose buffer is full misses the
// decision, and the miss is counted, rather than slowing the bridge down.
type Hub struct {
	mu      sync.Mutex
	subs    map[*subscription]struct{}
	closed  bool
	dropped atomic.Uint64
}

type subscription struct {
	ch      chan psync.Decision
	dropped atomic.Uint64
}

// hubBuffer is how many decisions a stream may be behind before it misses
// some: a burst of a whole office changing presence at once fits.
const hubBuffer = 1024

// NewHub returns a hub without subscribers.
func NewHub() *Hub {
	return &Hub{subs: make(map[*subscription]struct{})}
}

// Publish hands d to every subscriber that has room for it.
func (h *Hub) Publish(d psync.Decision) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- d:
		default:
			s.dropped.Add(1)
			h.dropped.Add(1)
		}
	}
}

// Subscribe returns a channel of decisions from now on and a function that
// ends the subscription (and closes the channel). After Close the channel
// is returned already closed.
func (h *Hub) Subscribe() (<-chan psync.Decision, func() (dropped uint64)) {
	s := &subscription{ch: make(chan psync.Decision, hubBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.ch)
		return s.ch, func() uint64 { return 0 }
	}
	h.subs[s] = struct{}{}
	var once sync.Once
	return s.ch, func() uint64 {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.subs[s]; ok {
				delete(h.subs, s)
				close(s.ch)
			}
		})
		return s.dropped.Load()
	}
}

// Dropped is how many decisions all subscribers together have missed.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Subscribers is how many streams are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close ends every subscription; streams see their channel closed, which
// lets the control server shut down without waiting for them.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.ch)
	}
}
