package asterisk

import (
	"context"
	"sync"

	psync "github.com/presencebridge/presencebridge/sync"
)

// outbox keeps the engine-bound events in order without ever blocking the
// socket reader on the engine. It is bounded: a full queue makes the
// connector resync (Conn.pushLocked), which loses nothing.
type outbox struct {
	mu   sync.Mutex
	q    []psync.PhoneEvent
	max  int
	wake chan struct{}
}

const outboxMin = 1024

func newOutbox(max int) *outbox { return &outbox{max: max, wake: make(chan struct{}, 1)} }

func (o *outbox) push(ev psync.PhoneEvent) bool {
	o.mu.Lock()
	if len(o.q) >= o.max {
		o.mu.Unlock()
		return false
	}
	o.q = append(o.q, ev)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return true
}

func (o *outbox) reset() {
	o.mu.Lock()
	o.q = nil
	o.mu.Unlock()
}

func (o *outbox) run(ctx context.Context, events chan<- psync.PhoneEvent) {
	for {
		o.mu.Lock()
		batch := o.q
		o.q = nil
		o.mu.Unlock()
		for _, ev := range batch {
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-o.wake:
		case <-ctx.Done():
			return
		}
	}
}
