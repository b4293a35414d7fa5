package tui

import (
	"slices"

	psync "github.com/presencebridge/presencebridge/sync"
)

// roster is the console's copy of every user, in configuration order. It is
// loaded whole once, then kept up to date from the users that changed
// (Controller.UsersSince): a console open on 10,000 users costs the bridge
// and the socket only what changes, not the whole office every second.
type roster struct {
	version uint64 // of the last answer; 0: nothing loaded yet
	list    []psync.UserStatus
	at      map[psync.UserID]int // index into list
}

// apply takes one answer and says whether anything changed.
func (r *roster) apply(ch psync.UserChanges) bool {
	if !ch.Full && ch.Version < r.version {
		return false // overtaken by a newer answer on its way
	}
	defer func() { r.version = ch.Version }()
	if ch.Full {
		r.list = ch.Users
		r.index()
		return true
	}
	if len(ch.Users) == 0 && len(ch.Removed) == 0 {
		return false
	}
	// A new slice, so that screens holding the old one never see it change
	// under them between two Updates.
	list := slices.Clone(r.list)
	if len(ch.Removed) > 0 {
		gone := make(map[psync.UserID]bool, len(ch.Removed))
		for _, id := range ch.Removed {
			gone[id] = true
		}
		list = slices.DeleteFunc(list, func(u psync.UserStatus) bool { return gone[u.User.ID] })
		r.list = list
		r.index()
	}
	for _, u := range ch.Users {
		if i, ok := r.at[u.User.ID]; ok {
			list[i] = u
			continue
		}
		// New users come last, as the engine adds them.
		r.at[u.User.ID] = len(list)
		list = append(list, u)
	}
	r.list = list
	return true
}

func (r *roster) index() {
	r.at = make(map[psync.UserID]int, len(r.list))
	for i, u := range r.list {
		r.at[u.User.ID] = i
	}
}

// get is one user's status, if loaded.
func (r *roster) get(id psync.UserID) (psync.UserStatus, bool) {
	if i, ok := r.at[id]; ok {
		return r.list[i], true
	}
	return psync.UserStatus{}, false
}
