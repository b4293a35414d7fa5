package tui

import (
	"fmt"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Summary is what the console says when it ends, on one line: how long it
// was open, how long the bridge has been up, what the bridge saw and
// decided meanwhile, and what it still holds (it keeps running).
type Summary struct {
	Open     time.Duration
	BridgeUp time.Duration // 0: never reached the bridge
	Events   uint64        // events both sides reported while the console was open
	Outcomes psync.OutcomeCounts
	Holds    int
	Known    bool // the bridge answered at least once
}

func (s Summary) String() string {
	if !s.Known {
		return fmt.Sprintf("presencebridge console: open %s; the bridge never answered", short(s.Open))
	}
	return fmt.Sprintf("presencebridge console: open %s · bridge up %s · %d events · decisions: %s · %d holds left (the bridge keeps running)",
		short(s.Open), short(s.BridgeUp), s.Events, s.Outcomes, s.Holds)
}

// tally is what the root model counts for the Summary.
type tally struct {
	opened   time.Time
	first    psync.Overview // the first answer, for the events meanwhile
	last     psync.Overview
	known    bool
	outcomes psync.OutcomeCounts
}

func (t *tally) overview(ov psync.Overview) {
	if !t.known {
		t.first, t.known = ov, true
	}
	t.last = ov
}

func (t *tally) decisions(ds []psync.Decision) {
	if t.outcomes == nil {
		t.outcomes = psync.OutcomeCounts{}
	}
	for _, d := range ds {
		t.outcomes.Add(d)
	}
}

func (t *tally) summary(now time.Time) Summary {
	s := Summary{Open: now.Sub(t.opened), Known: t.known, Outcomes: t.outcomes}
	if s.Outcomes == nil {
		s.Outcomes = psync.OutcomeCounts{}
	}
	if !t.known {
		return s
	}
	events := func(ov psync.Overview) uint64 { return ov.Engine.Stats.TeamsEvents + ov.Engine.Stats.PhoneEvents }
	s.Events = events(t.last) - min(events(t.first), events(t.last))
	s.Holds = t.last.Engine.Holds
	if !t.last.Started.IsZero() {
		s.BridgeUp = now.Sub(t.last.Started)
	}
	return s
}
