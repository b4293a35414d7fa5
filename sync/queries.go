package sync

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// What the console and the control API read: answered on the engine
// goroutine, so every answer is one consistent picture.

// UserStatus is a user as the engine sees it now, for the console and API.
type UserStatus struct {
	User        User          `json:"user"`
	Profile     string        `json:"profile"`
	Teams       TeamsPresence `json:"teams"`
	TeamsKnown  bool          `json:"teams_known"`
	TeamsState  TeamsState    `json:"teams_state"`
	Colour      Colour        `json:"colour"`
	Text        string        `json:"text"`
	Echo        bool          `json:"echo"`          // the Teams state is the bridge's own session
	AlsoInTeams bool          `json:"also_in_teams"` // "possibly also in Teams"
	Overridden  bool          `json:"overridden"`    // "overridden by the user in Teams"
	Phone       PhoneState    `json:"phone"`
	PhoneKnown  bool          `json:"phone_known"`
	Holds       []HoldStatus  `json:"holds"`
	LastChange  time.Time     `json:"last_change"` // null: never
	LastSide    Side          `json:"last_side"`
	Links       DeepLinks     `json:"links"`
}

// HoldStatus is a hold and whether the side has confirmed it.
type HoldStatus struct {
	Hold
	Confirmed    bool // the side has shown the value back
	HeldByBridge bool // no expiry on the other side: restored on shutdown/start
}

// Status is the engine as a whole.
type Status struct {
	Teams    SideHealth `json:"teams"`
	Phone    SideHealth `json:"phone"`
	Stats    Stats      `json:"stats"`
	Holds    int        `json:"holds"`
	Orphans  []Hold     `json:"orphans"`
	Stopping bool       `json:"stopping"`
	InFlight int        `json:"in_flight"` // commands sent to a side and not answered yet
	Queued   int        `json:"queued"`    // events and results waiting for the engine
}

func (e *Engine) query(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case e.queries <- func() { f(); close(done) }:
	case <-e.dead:
		return errors.New("engine: not running")
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done
	return nil
}

// Users returns every user's status, in configuration order.
func (e *Engine) Users(ctx context.Context) ([]UserStatus, error) {
	var out []UserStatus
	err := e.query(ctx, func() {
		out = make([]UserStatus, 0, len(e.users))
		for _, u := range e.users {
			out = append(out, u.status())
		}
	})
	return out, err
}

// User returns one user's status.
func (e *Engine) User(ctx context.Context, id UserID) (UserStatus, error) {
	var out UserStatus
	found := false
	err := e.query(ctx, func() {
		if u, ok := e.byID[id]; ok {
			out, found = u.status(), true
		}
	})
	if err == nil && !found {
		err = fmt.Errorf("no user %q: %w", id, ErrNotFound)
	}
	return out, err
}

// Status returns the health of both sides and the engine's counters.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	var s Status
	err := e.query(ctx, func() {
		s = Status{Teams: e.health[SideTeams], Phone: e.health[SidePhone], Stats: e.stats, Holds: e.holdCount(), Orphans: append([]Hold(nil), e.orphans...), Stopping: e.stopping,
			InFlight: e.inflight, Queued: len(e.teamsIn) + len(e.phoneIn) + len(e.results)}
	})
	return s, err
}

func (u *userRT) status() UserStatus {
	st := ClassifyTeams(u.teams)
	col, text := TeamsChannel(st)
	s := UserStatus{
		User: u.user, Profile: u.prof.Name,
		Teams: u.teams, TeamsKnown: u.teamsKnown, TeamsState: st, Colour: col, Text: text,
		Echo: u.teamsEcho, AlsoInTeams: u.alsoTeams, Overridden: u.overridden,
		Phone: u.phone.Clone(), PhoneKnown: u.phoneKnown,
		LastChange: u.lastChange, LastSide: u.lastSide,
		Links: LinksFor(u.user.UPN),
	}
	add := func(h *held) {
		if h != nil {
			s.Holds = append(s.Holds, HoldStatus{Hold: h.record(u.user.ID), Confirmed: h.echoSeen, HeldByBridge: h.target.until.IsZero()})
		}
	}
	add(u.teamsHold)
	add(u.presHold)
	for _, h := range u.devHolds {
		add(h)
	}
	return s
}
