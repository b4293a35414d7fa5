package teams

import (
	"context"
	"strings"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

func lower(s string) string { return strings.ToLower(s) }

// Run implements psync.Teams: it resolves the users, then reads presence in
// the configured mode until ctx ends.
func (c *Client) Run(ctx context.Context, us []psync.User, events chan<- psync.TeamsEvent) error {
	r := &runner{c: c, ctx: ctx, events: events}
	watched, err := r.resolve(us)
	if err != nil {
		return err
	}
	r.watched = watched
	if c.cfg.Mode == "subscribe" {
		return r.subscribe(watched)
	}
	return r.poll(watched, false)
}

// runner is one Run: the state of the loop that feeds the engine.
type runner struct {
	c       *Client
	ctx     context.Context
	events  chan<- psync.TeamsEvent
	healthy *bool
	synced  bool
	watched []psync.User
	retry   *psync.Backoff
}

func (r *runner) send(ev psync.TeamsEvent) bool {
	select {
	case r.events <- ev:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// health tells the engine about a change of the connection, once.
func (r *runner) health(ok bool, detail string) {
	if r.healthy != nil && *r.healthy == ok {
		return
	}
	r.healthy = &ok
	r.c.mu.Lock()
	r.c.connected = ok
	r.c.mu.Unlock()
	r.send(psync.TeamsEvent{Kind: psync.TeamsHealth, Healthy: ok, Detail: detail})
}

// sleep waits d on the configured clock, or until ctx ends (false).
func (r *runner) sleep(d time.Duration) bool { return psync.Sleep(r.ctx, r.c.cfg.Clock, d) }

// backoff is the wait after the n-th failure in a row (n from 0): Graph's
// Retry-After when it gave one, else the bridge's one schedule, 1 s
// doubling to 2 min with jitter.
func (r *runner) backoff(n int, err error) time.Duration {
	if r.retry == nil {
		r.retry = psync.NewBackoff(time.Second, 2*time.Minute, uint64(r.c.cfg.Now().UnixNano()))
	}
	return r.retry.Delay(n+1, err)
}

// resolve finds every user's object id. Users configured with one are
// trusted; the others are looked up by UPN, retrying while Graph cannot be
// reached (a wrong secret is fixed by the admin while the bridge waits).
func (r *runner) resolve(us []psync.User) ([]psync.User, error) {
	var known, lookup []psync.User
	for _, u := range us {
		if u.TeamsID != "" {
			r.c.remember(u)
			known = append(known, u)
		} else {
			lookup = append(lookup, u)
		}
	}
	for n := 0; len(lookup) > 0; n++ {
		ok, _, err := r.c.ResolveUsers(r.ctx, lookup)
		if err == nil {
			known = append(known, ok...)
			break
		}
		if r.ctx.Err() != nil {
			return nil, r.ctx.Err()
		}
		r.health(false, err.Error())
		if !r.sleep(r.backoff(n, err)) {
			return nil, r.ctx.Err()
		}
	}
	return known, nil
}

// pollGap is the time between two presence requests so that polling uses
// at most PollShare percent of the budget.
func (c *Client) pollGap() time.Duration {
	perWindow := max(c.cfg.Budget*c.cfg.PollShare/100, 1)
	return max(c.cfg.BudgetWindow/time.Duration(perWindow), c.cfg.MinPollInterval)
}

// chunks splits the watched users' object ids into requests of at most 650.
func chunks(us []psync.User) [][]string {
	var out [][]string
	for i := 0; i < len(us); i += maxIDsPerRequest {
		end := min(i+maxIDsPerRequest, len(us))
		ids := make([]string, 0, end-i)
		for _, u := range us[i:end] {
			ids = append(ids, u.TeamsID)
		}
		out = append(out, ids)
	}
	return out
}

// poll reads every chunk in turn, one request per gap, and sends the
// changes. once makes it stop after one full round (subscribe mode's
// catch-up).
func (r *runner) poll(watched []psync.User, once bool) error {
	cs := chunks(watched)
	if len(cs) == 0 {
		r.health(true, "no users to watch")
		r.send(psync.TeamsEvent{Kind: psync.TeamsSynced})
		<-r.ctx.Done()
		return nil
	}
	gap := r.c.pollGap()
	fails := 0
	for i := 0; ; {
		start := time.Now()
		if err := r.readChunk(cs[i]); err != nil {
			if r.ctx.Err() != nil {
				return nil
			}
			r.health(false, err.Error())
			if once && r.synced {
				// A catch-up read gives up until the next one: the
				// subscribe loop must go on renewing and delivering.
				return nil
			}
			if !r.sleep(r.backoff(fails, err)) {
				return nil
			}
			fails++
			continue // the same chunk again: nobody is skipped
		}
		fails = 0
		if once {
			r.health(true, "change notifications, full read every "+r.c.cfg.CatchUp.String())
		} else {
			r.health(true, "reading presence every "+(gap*time.Duration(len(cs))).String())
		}
		i++
		if i == len(cs) {
			i = 0
			if !r.synced {
				r.synced = true
				r.send(psync.TeamsEvent{Kind: psync.TeamsSynced})
			}
			if once {
				return nil
			}
		}
		if !r.sleep(gap - time.Since(start)) {
			return nil
		}
	}
}

// readChunk reads one chunk and sends what changed.
func (r *runner) readChunk(ids []string) error {
	ps, err := r.c.readPresences(r.ctx, ids)
	if err != nil {
		return err
	}
	r.c.mu.Lock()
	r.c.lastPoll = r.c.cfg.Now()
	r.c.mu.Unlock()
	for _, p := range ps {
		if ev, ok := r.c.accept(deref(p.GetId()), p); ok {
			if !r.send(ev) {
				return r.ctx.Err()
			}
		}
	}
	return nil
}
