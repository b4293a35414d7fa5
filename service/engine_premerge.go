package service

import (
	"context"
	"slices"

	psync "github.com/presencebridge/presencebridge/sync"
)

// engineOf adapts the engine to the admin rules. This engine applies
// profile edits and assignments live; the rest of the admin API of the
// engine (users, settings, profile removal and rename) arrives with the
// engine's next version, and until then applies at the bridge's next start
// or is refused while it runs.
func engineOf(e *psync.Engine) engineAPI { return engineNow{e} }

type engineNow struct{ *psync.Engine }

func (e engineNow) DeleteProfile(context.Context, string) error {
	return nil // the engine keeps an unused profile until it restarts
}

func (e engineNow) RenameProfile(context.Context, string, string) error {
	return errorf(ErrUnavailable, "the running bridge cannot rename a profile yet; stop it, rename, start it again")
}

func (e engineNow) PutUser(ctx context.Context, u psync.User) error {
	us, err := e.Users(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(us, func(s psync.UserStatus) bool { return s.User.ID == u.ID })
	if i < 0 {
		return errorf(ErrUnavailable, "the running bridge cannot add a user yet; stop it, add the user, start it again")
	}
	if us[i].User.Profile != u.Profile {
		return e.AssignProfile(ctx, u.ID, u.Profile)
	}
	return nil
}

func (e engineNow) RemoveUser(context.Context, psync.UserID) error {
	return errorf(ErrUnavailable, "the running bridge cannot remove a user yet; stop it, remove the user, start it again")
}

func (e engineNow) SetSettings(context.Context, psync.Settings) error {
	return nil // the engine reads its settings at its start
}
