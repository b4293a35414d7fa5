package tui

import (
	"context"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Controller is everything the console may ask of a running bridge. It is
// implemented by the control-API client (service.Client, over the local
// socket) and, for `demo`, in process (service.Local). The console never
// opens the database.
//
// Every method may be slow or fail (the service may be restarting): the
// console calls them only from tea.Cmds and shows errors, never panics.
type Controller interface {
	// Overview is the dashboard: engine status, both sides' reports, event rate.
	Overview(ctx context.Context) (psync.Overview, error)
	// UsersSince is every configured user's live status, in configuration
	// order, for since 0 (or whenever the answer says Full); else only the
	// users that changed since the Version of an earlier answer, and those
	// removed. The console asks with the version it has, so that a quiet
	// office costs nearly nothing to watch.
	UsersSince(ctx context.Context, since uint64) (psync.UserChanges, error)
	// User is one user's live status.
	User(ctx context.Context, id psync.UserID) (psync.UserStatus, error)
	// History is one user's last transitions and decisions, newest first.
	History(ctx context.Context, id psync.UserID, limit int) ([]psync.Decision, error)
	// Audit is everyone's last decisions, newest first.
	Audit(ctx context.Context, limit int) ([]psync.Decision, error)

	// Profiles lists the profiles, sorted by name.
	Profiles(ctx context.Context) ([]psync.Profile, error)
	// PutProfile creates or replaces a profile; it applies at once.
	PutProfile(ctx context.Context, p psync.Profile) error
	// DeleteProfile removes a profile no user is on.
	DeleteProfile(ctx context.Context, name string) error
	// RenameProfile renames a profile; its users move along.
	RenameProfile(ctx context.Context, old, name string) error
	// AssignProfile moves a user to a profile ("" = the default profile).
	AssignProfile(ctx context.Context, user psync.UserID, profile string) error

	// AddUser adds a user to the configuration (refused when the id exists).
	AddUser(ctx context.Context, u psync.User) error
	// RemoveUser removes a user; the bridge first gives back what it holds
	// for them.
	RemoveUser(ctx context.Context, id psync.UserID) error

	// Settings lists every setting, secrets masked.
	Settings(ctx context.Context) ([]psync.SettingValue, error)
	// SetSettings validates and stores settings as one change; the error
	// says what is wrong. A setting that decides where a secret is sent
	// (psync.SecretsBoundTo) clears that secret unless it is in the same
	// change; the answer names the secrets it cleared.
	SetSettings(ctx context.Context, set map[string]string) (cleared []string, err error)
	// UnsetSetting returns a setting to its default.
	UnsetSetting(ctx context.Context, key string) error

	// StartSignIn starts the device-code sign-in of a Teams service account
	// (subscribe mode) and returns the code and URL to show the admin.
	StartSignIn(ctx context.Context, account string) (psync.SignInPrompt, error)

	// Events streams decisions as they happen until ctx ends or the
	// connection drops; the channel is then closed.
	Events(ctx context.Context) (<-chan psync.Decision, error)
}
