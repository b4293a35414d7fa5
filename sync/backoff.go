package sync

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff is the one retry schedule of the bridge: the engine's retries of a
// side, the phone connector's reconnects and the Teams reader's retries all
// use it. The wait doubles from Min to Max, each wait moved by up to ±Jitter
// of itself so that many users (or many bridges) do not retry in step; a
// side that says when to come back (RetryAfterError) is believed.
//
// A Backoff is not safe for concurrent use: each loop owns its own.
type Backoff struct {
	Min, Max time.Duration
	Jitter   float64 // 0.2 means ±20 %; 0 means none
	rng      *rand.Rand
}

// NewBackoff returns a schedule from min to max with ±20 % jitter, its
// jitter drawn from seed (tests pass a fixed one).
func NewBackoff(min, max time.Duration, seed uint64) *Backoff {
	return &Backoff{Min: min, Max: max, Jitter: 0.2, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

// Delay is the wait before attempt n+1 after n failures in a row (n ≥ 1).
// err may carry the side's own Retry-After, which wins.
func (b *Backoff) Delay(n int, err error) time.Duration {
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.Wait > 0 {
		return ra.Wait
	}
	d := b.Min << min(max(n-1, 0), 30)
	if d <= 0 || d > b.Max {
		d = b.Max
	}
	if b.Jitter > 0 {
		if b.rng == nil {
			b.rng = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15))
		}
		d = time.Duration(float64(d) * (1 - b.Jitter + 2*b.Jitter*b.rng.Float64()))
	}
	return d
}

// Sleep waits d on clock, or until ctx ends (false). A nil clock is the
// wall clock.
func Sleep(ctx context.Context, clock Clock, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	if clock == nil {
		clock = RealClock{}
	}
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}
