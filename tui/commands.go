package tui

import (
	"context"
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	psync "github.com/presencebridge/presencebridge/sync"
)

// All I/O of the console is here: each function returns a tea.Cmd that calls
// the Controller once, bounded by a timeout so that a hung service shows up
// as an error instead of a frozen screen, and answers with a typed message.

// historyLimit is how many transitions the detail screen shows.
const historyLimit = 50

// auditBacklog is how many past decisions the event log starts with.
const auditBacklog = 200

// burstMax bounds how many buffered decisions one eventsMsg carries.
const burstMax = 256

func (c *common) call(f func(ctx context.Context) tea.Msg) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
		defer cancel()
		return f(ctx)
	}
}

func (c *common) fetchOverview() tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		ov, err := c.ctrl.Overview(ctx)
		clean(&ov)
		return overviewMsg{ov: ov, err: err}
	})
}

// fetchUsers asks for the users changed since the roster's version.
func (c *common) fetchUsers(since uint64) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		ch, err := c.ctrl.UsersSince(ctx, since)
		clean(&ch)
		return usersMsg{ch: ch, err: err}
	})
}

func (c *common) fetchUser(id psync.UserID) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		st, err := c.ctrl.User(ctx, id)
		clean(&st)
		return userMsg{id: id, st: st, err: err}
	})
}

func (c *common) fetchHistory(id psync.UserID) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		ds, err := c.ctrl.History(ctx, id, historyLimit)
		clean(&ds)
		return historyMsg{id: id, ds: ds, err: err}
	})
}

func (c *common) fetchProfiles() tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		ps, err := c.ctrl.Profiles(ctx)
		clean(&ps)
		return profilesMsg{profiles: ps, err: err}
	})
}

func (c *common) fetchSettings() tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		ss, err := c.ctrl.Settings(ctx)
		clean(&ss)
		return settingsMsg{settings: ss, err: err}
	})
}

func (c *common) fetchAudit() tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		ds, err := c.ctrl.Audit(ctx, auditBacklog)
		clean(&ds)
		return auditMsg{ds: ds, err: err}
	})
}

// openEvents subscribes to the live stream. It is not bounded by the call
// timeout: the stream lives as long as the console (c.ctx).
func (c *common) openEvents() tea.Cmd {
	return func() tea.Msg {
		ch, err := c.ctrl.Events(c.ctx)
		return eventsOpenedMsg{ch: ch, err: err}
	}
}

// waitEvents blocks for the next decision, then takes whatever else is
// already buffered. The root model re-arms it after every eventsMsg; this is
// the only Cmd that waits for long, and it ends when the stream is closed.
func waitEvents(ch <-chan psync.Decision) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		d, ok := <-ch
		if !ok {
			return eventsClosedMsg{}
		}
		ds := []psync.Decision{d}
		for len(ds) < burstMax {
			select {
			case d, ok := <-ch:
				if !ok {
					clean(&ds)
					return eventsMsg{ch: nil, ds: ds}
				}
				ds = append(ds, d)
			default:
				clean(&ds)
				return eventsMsg{ch: ch, ds: ds}
			}
		}
		clean(&ds)
		return eventsMsg{ch: ch, ds: ds}
	}
}

// reconnectAfter reopens the stream after a pause, so a restarting service
// is not hammered.
func reconnectAfter(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return reconnectMsg{} })
}

func tick(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// --- actions ------------------------------------------------------------------

func (c *common) putProfile(p psync.Profile, what string) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		return doneMsg{what: what, err: c.ctrl.PutProfile(ctx, p), refresh: refProfiles | refUsers | refDetail}
	})
}

func (c *common) deleteProfile(name string) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		err := c.ctrl.DeleteProfile(ctx, name)
		if err != nil {
			err = fmt.Errorf("delete profile %s: %w", name, err)
		}
		return doneMsg{what: "profile " + name + " deleted", err: err, refresh: refProfiles}
	})
}

func (c *common) renameProfile(old, name string) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		err := c.ctrl.RenameProfile(ctx, old, name)
		if err != nil {
			err = fmt.Errorf("rename profile %s: %w", old, err)
		}
		return doneMsg{what: "profile " + old + " is now " + name, err: err, refresh: refProfiles | refUsers}
	})
}

func (c *common) addUser(u psync.User) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		err := c.ctrl.AddUser(ctx, u)
		if err != nil {
			err = fmt.Errorf("add user %s: %w", u.ID, err)
		}
		return doneMsg{what: "user " + string(u.ID) + " added (p assigns a profile)", err: err, refresh: refUsers | refProfiles}
	})
}

func (c *common) removeUser(id psync.UserID, name string) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		err := c.ctrl.RemoveUser(ctx, id)
		if err != nil {
			err = fmt.Errorf("remove user %s: %w", name, err)
		}
		return doneMsg{what: "user " + name + " removed", err: err, refresh: refUsers | refProfiles}
	})
}

func (c *common) assignProfile(id psync.UserID, name, profile string) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		err := c.ctrl.AssignProfile(ctx, id, profile)
		if err != nil {
			err = fmt.Errorf("assign %s to %s: %w", name, profile, err)
		}
		return doneMsg{what: name + " is now on profile " + profile, err: err, refresh: refUsers | refProfiles | refDetail}
	})
}

// setSettings saves key and, in the same change, the secrets bound to it
// that the admin typed again (secrets), so that none is cleared by
// accident.
func (c *common) setSettings(key string, set map[string]string) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		cleared, err := c.ctrl.SetSettings(ctx, set)
		return settingSavedMsg{key: key, cleared: cleared, err: err}
	})
}

func (c *common) unsetSetting(key string) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		err := c.ctrl.UnsetSetting(ctx, key)
		if err != nil {
			err = fmt.Errorf("reset %s: %w", key, err)
		}
		return doneMsg{what: key + " reset to its default", err: err, refresh: refSettings}
	})
}

func (c *common) startSignIn(account string) tea.Cmd {
	return c.call(func(ctx context.Context) tea.Msg {
		p, err := c.ctrl.StartSignIn(ctx, account)
		return signInMsg{prompt: p, err: err}
	})
}
