package service

import (
	"context"
	"io"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// AdminAPI is the admin's way to a configuration, whichever path it takes:
// *Client when the service runs (its control socket), *Admin when this
// process opened the database itself. Both run the same rules (Admin's)
// and answer with the same kinds of error (errors.go).
type AdminAPI interface {
	// Database says which database the answers come from.
	Database(ctx context.Context) (DatabaseInfo, error)

	Settings(ctx context.Context) ([]psync.SettingValue, error)
	// Get, Set and Unset take any key of `config get`: a setting,
	// profile.NAME.FLAG or user.ID.FIELD.
	Get(ctx context.Context, key string) (string, error)
	Set(ctx context.Context, key, value string) error
	// SetSettings changes several settings as one change; it returns the
	// secrets it cleared because a setting that decides where they are
	// sent changed (psync.SecretsBoundTo) and they were not given again.
	SetSettings(ctx context.Context, set map[string]string) (cleared []string, err error)
	Unset(ctx context.Context, key string) error

	Profiles(ctx context.Context) ([]psync.Profile, error)
	AddProfile(ctx context.Context, p psync.Profile) error
	PutProfile(ctx context.Context, p psync.Profile) error
	DeleteProfile(ctx context.Context, name string) error
	RenameProfile(ctx context.Context, old, name string) error
	AssignProfile(ctx context.Context, id psync.UserID, profile string) error

	ConfiguredUsers(ctx context.Context) ([]psync.User, error)
	ConfiguredUser(ctx context.Context, id psync.UserID) (psync.User, error)
	AddUser(ctx context.Context, u psync.User) error
	UpdateUser(ctx context.Context, u psync.User) error
	RemoveUser(ctx context.Context, id psync.UserID) error

	Export(ctx context.Context, w io.Writer) error
	Import(ctx context.Context, r io.Reader, o store.ImportOptions) (store.Changes, error)
	ImportGroup(ctx context.Context, group string) (GroupImport, error)

	Audit(ctx context.Context, limit int) ([]psync.Decision, error)
	History(ctx context.Context, id psync.UserID, limit int) ([]psync.Decision, error)
	Doctor(ctx context.Context, report func(psync.Check)) error
}

var (
	_ AdminAPI = (*Admin)(nil)
	_ AdminAPI = (*Client)(nil)
	_ AdminAPI = (*Local)(nil)
)
