package sync

import (
	"context"
	"hash/maphash"
	"math"
	"slices"
	"time"
)

// What changed since the console last asked. A console that reloads every
// user every second costs the service a full answer per second and
// second, however quiet the office: at 10,000 users several megabytes a
// second over the socket. Instead the console asks once for everyone and
// then only for the users whose status changed since the version it has.
//
// The engine keeps no version of its own per user: Changes notes a digest
// of everything a user's UserStatus is made from, and a user whose digest
// moved gets the next version. Whatever the console can see of a user is in
// the digest (a test walks the engine's user record to keep it so), so no
// change goes unnoticed, whichever part of the engine made it.

// UserChanges is the answer to UsersSince.
type UserChanges struct {
	// Version is what the caller passes as since next time.
	Version uint64 `json:"version"`
	// Full says Users is everyone: the caller replaces what it has. It is
	// the answer to since 0, and to a version this engine never gave (the
	// service restarted) or has forgotten.
	Full bool `json:"full"`
	// Total is how many users are configured now.
	Total int `json:"total"`
	// Users are the users that are new or changed since the version, in
	// configuration order.
	Users []UserStatus `json:"users"`
	// Removed are the users no longer configured since the version.
	Removed []UserID `json:"removed,omitempty"`
}

// Changes remembers what each user showed when last looked at. One Changes
// serves every caller of one engine; it is used on the engine goroutine
// only (through UsersSince), so it needs no lock.
type Changes struct {
	base    uint64 // the first version: every version this Changes gave is above it
	ver     uint64
	seed    maphash.Seed
	users   map[UserID]seen
	gone    []tombstone // oldest first
	forgot  uint64      // versions up to here may have lost tombstones
	scratch []byte
}

type seen struct {
	digest uint64
	ver    uint64
}

type tombstone struct {
	id  UserID
	ver uint64
}

// maxTombstones bounds what is kept of removed users; a caller further
// behind than that gets a full answer.
const maxTombstones = 4096

// NewChanges returns a Changes whose versions start above the time now, so
// that a version from before a restart of the service is never taken for
// one of the new engine's.
func NewChanges() *Changes {
	base := uint64(time.Now().UnixNano())
	return &Changes{base: base, ver: base, forgot: base, seed: maphash.MakeSeed(), users: map[UserID]seen{}}
}

// UsersSince returns the users whose status changed since the version
// since (0: everyone), and the version to ask from next time.
func (e *Engine) UsersSince(ctx context.Context, c *Changes, since uint64) (UserChanges, error) {
	var out UserChanges
	err := e.query(ctx, func() { out = c.scan(e.users, since) })
	return out, err
}

// scan brings every user's version up to date and answers since.
func (c *Changes) scan(users []*userRT, since uint64) UserChanges {
	next := c.ver + 1
	bumped := false
	known := len(c.users)
	still := 0 // of the known users, how many are still configured
	full := since == 0 || since < c.forgot || since > c.ver
	for _, u := range users {
		id := u.user.ID
		d := c.digest(u)
		s, ok := c.users[id]
		if ok {
			still++
		}
		if !ok || s.digest != d {
			c.users[id] = seen{digest: d, ver: next}
			bumped = true
		}
	}
	if still < known {
		live := make(map[UserID]struct{}, len(users))
		for _, u := range users {
			live[u.user.ID] = struct{}{}
		}
		for id := range c.users {
			if _, ok := live[id]; !ok {
				delete(c.users, id)
				c.gone = append(c.gone, tombstone{id: id, ver: next})
				bumped = true
			}
		}
		if n := len(c.gone) - maxTombstones; n > 0 {
			c.forgot = c.gone[n-1].ver
			c.gone = slices.Delete(c.gone, 0, n)
		}
	}
	if bumped {
		c.ver = next
	}
	out := UserChanges{Version: c.ver, Full: full, Total: len(users), Users: []UserStatus{}}
	for _, u := range users {
		if full || c.users[u.user.ID].ver > since {
			out.Users = append(out.Users, u.status())
		}
	}
	if !full {
		for _, t := range c.gone {
			if t.ver > since {
				out.Removed = append(out.Removed, t.id)
			}
		}
	}
	return out
}

// digest hashes everything status() reads of a user, without building the
// status: scanning 10,000 users this way takes a fraction of a millisecond,
// building their statuses tens of milliseconds. A test changes every field
// of userRT in turn and checks that whenever the status changes, so does
// the digest.
func (c *Changes) digest(u *userRT) uint64 {
	b := c.scratch[:0]
	str := func(v string) { b = append(append(b, v...), 0) }
	num := func(v uint64) {
		for range 8 {
			b = append(b, byte(v))
			v >>= 8
		}
	}
	flag := func(v bool) {
		if v {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	when := func(t time.Time) {
		if t.IsZero() {
			num(math.MaxUint64)
			return
		}
		num(uint64(t.UnixNano()))
	}
	mark := func(m mark) {
		str(m.activity)
		num(uint64(m.presence))
		flag(m.on)
		when(m.until)
	}
	hold := func(h *held) {
		flag(h != nil)
		if h == nil {
			return
		}
		num(uint64(h.kind))
		str(h.device)
		mark(h.target)
		mark(h.replaced)
		flag(h.shown != nil)
		if h.shown != nil {
			mark(*h.shown)
		}
		num(uint64(len(h.unsure)))
		for _, m := range h.unsure {
			mark(m)
		}
		str(h.why.Reason)
		str(h.why.Rule)
		str(string(h.why.Flag))
		str(h.profile)
		when(h.since)
		flag(h.echoSeen)
	}

	usr := u.user
	str(string(usr.ID))
	str(usr.Extension)
	str(usr.TeamsID)
	str(usr.UPN)
	str(usr.DisplayName)
	str(usr.Profile)
	if u.prof != nil {
		str(u.prof.Name)
	}
	t := u.teams
	str(t.Availability)
	str(t.Activity)
	str(t.Sequence)
	flag(t.OutOfOffice)
	when(t.Observed)
	flag(u.teamsKnown)
	flag(u.teamsEcho)
	flag(u.alsoTeams)
	flag(u.overridden)
	num(uint64(u.phone.Presence))
	when(u.phone.PresenceUntil)
	num(uint64(len(u.phone.Devices)))
	for _, d := range u.phone.Devices {
		str(d.ID)
		flag(d.DND)
		str(d.Name)
	}
	num(uint64(len(u.phone.Calls)))
	for _, k := range u.phone.Calls {
		str(k.ID)
		str(k.Device)
		num(uint64(k.State))
		flag(k.Conference)
	}
	flag(u.phoneKnown)
	hold(u.teamsHold)
	hold(u.presHold)
	num(uint64(len(u.devHolds)))
	for _, h := range u.devHolds {
		hold(h)
	}
	when(u.lastChange)
	num(uint64(u.lastSide))
	c.scratch = b
	return maphash.Bytes(c.seed, b)
}
