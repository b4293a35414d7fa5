package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// The admin rules, in one place: what may be set, added, renamed and
// removed, and in which order the store and a running engine learn of it.
// The service runs them for the control API and the console; the CLI runs
// the very same type over a database it opened itself when no service
// runs. They answer with errors of a kind (errors.go), never with HTTP
// statuses.

// AdminConfig is what an Admin is built from.
type AdminConfig struct {
	DB *store.DB
	// Engine is the running bridge; nil when none runs on DB (the CLI
	// opened the database itself). With an engine every change applies at
	// once; without one, at the bridge's next start.
	Engine *psync.Engine
	// Sides is what the environment adds to the stored settings when the
	// admin rules reach a side themselves (doctor, import-group); the
	// service runs with none, demo points them at its simulators.
	Sides AdapterOptions
	// Doctor runs the checks of both sides; nil: RealDoctor(Sides).
	Doctor DoctorFunc
	// Live applies the sides' settings and the user list to the running
	// sides; nil without a running bridge.
	Live   liveApplier
	Logger *slog.Logger
}

// liveApplier is what the admin rules ask of the running sides.
type liveApplier interface {
	// Apply rebuilds the sides whose settings changed in next; an error
	// means nothing changed and names why.
	Apply(ctx context.Context, next map[string]string) error
	// Watch restarts the sides' watching with a new user list.
	Watch(users []psync.User)
	// Pending names the stored settings not in effect yet, and why.
	Pending() map[string]string
}

// engineAPI is what the admin rules ask of a running engine.
type engineAPI interface {
	PutProfile(ctx context.Context, p psync.Profile) error
	DeleteProfile(ctx context.Context, name string) error
	RenameProfile(ctx context.Context, old, name string) error
	AssignProfile(ctx context.Context, id psync.UserID, profile string) error
	PutUser(ctx context.Context, u psync.User) error
	RemoveUser(ctx context.Context, id psync.UserID) error
	SetSettings(ctx context.Context, s psync.Settings) error
}

// engineOf is the running engine as the admin rules use it.
func engineOf(e *psync.Engine) engineAPI { return e }

// Admin applies the admin rules to a database and, when one runs, to the
// bridge's engine. Changes go to the store first (so they survive a
// restart) and then to the engine (so they apply at once); when the engine
// refuses, the store is put back. Removing a user goes the other way round:
// the engine first gives back what it holds for them.
type Admin struct {
	db     *store.DB
	engine engineAPI   // nil: no bridge runs on db
	live   liveApplier // nil: no bridge runs on db
	sides  AdapterOptions
	doctor DoctorFunc
	log    *slog.Logger

	// mu serialises changes, so two admins editing at once cannot leave
	// the store and the engine disagreeing.
	mu sync.Mutex
}

// NewAdmin returns the admin rules over cfg.DB.
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	if cfg.DB == nil {
		return nil, errors.New("service: Admin needs a database")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Admin{db: cfg.DB, sides: cfg.Sides, doctor: cfg.Doctor, log: cfg.Logger.With("component", "admin")}
	if cfg.Engine != nil {
		a.engine = engineOf(cfg.Engine)
	}
	if cfg.Live != nil {
		a.live = cfg.Live
	}
	if a.doctor == nil {
		a.doctor = RealDoctor(cfg.Sides)
	}
	return a, nil
}

// DatabaseInfo says which database the admin rules work on.
type DatabaseInfo struct {
	Path string `json:"path"`
	// BridgeRunning: a running bridge answers (changes apply at once);
	// false when the CLI opened the database itself.
	BridgeRunning bool `json:"bridge_running"`
}

// Database says which database the rules work on.
func (a *Admin) Database(context.Context) (DatabaseInfo, error) {
	return DatabaseInfo{Path: a.db.Path(), BridgeRunning: a.engine != nil}, nil
}

// storeErr names the database in an error the store gave unexpectedly.
func (a *Admin) storeErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("database %s: %w", a.db.Path(), err)
}

// engineErr turns an engine's refusal into what the admin is told: its
// own kind when it has one, else "not running".
func engineErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if codeOf(err) != "internal" {
		return err
	}
	return &adminError{kind: ErrUnavailable, msg: fmt.Sprintf("the bridge engine is not running (%v)", err), cause: err}
}

// --- settings ------------------------------------------------------------------

// Settings implements tui.Controller: every setting, secrets masked.
func (a *Admin) Settings(context.Context) ([]psync.SettingValue, error) {
	stored, err := a.db.Settings()
	if err != nil {
		return nil, a.storeErr(err)
	}
	vs := psync.SettingValues(stored)
	if a.live != nil {
		pending := a.live.Pending()
		for i := range vs {
			vs[i].Pending = pending[vs[i].Key]
		}
	}
	return vs, nil
}

// checkValue checks one value for a setting and returns its canonical form.
func checkValue(key, value string) (psync.SettingSpec, string, error) {
	spec, err := psync.LookupSetting(key)
	if err != nil {
		return spec, "", kindErr(ErrNotFound, err)
	}
	if spec.Kind == psync.KindSecret && strings.TrimSpace(value) == psync.Mask {
		return spec, "", errorf(ErrInvalid, "%s: %q is the mask shown in place of the secret; give the secret itself", key, psync.Mask)
	}
	canon, err := spec.Normalize(value)
	if err == nil {
		err = psync.ValidateSetting(key, canon)
	}
	if err != nil {
		return spec, "", invalid(err)
	}
	return spec, canon, nil
}

// checkSettings checks settings as a whole: psync's rules across keys and
// the default profile.
func (a *Admin) checkSettings(all map[string]string) (psync.Settings, error) {
	s, err := psync.ParseSettings(all)
	if err != nil {
		return s, invalid(err)
	}
	if err := psync.CheckSideSettings(all); err != nil {
		return s, invalid(err)
	}
	if _, err := a.db.Profile(s.DefaultProfile); errors.Is(err, store.ErrNotFound) {
		return s, errorf(ErrInvalid, "default_profile: profile %q does not exist (profiles: %s); create it first: presencebridge profiles add %s",
			s.DefaultProfile, a.profileNames(), s.DefaultProfile)
	} else if err != nil {
		return s, a.storeErr(err)
	}
	return s, nil
}

// SetSetting changes one setting. The value is checked by the
// setting's own rules, psync.ValidateSetting and the rules that span
// settings; a secret is never logged or echoed. A setting that decides
// where a secret is sent clears that secret (see SetSettings).
func (a *Admin) SetSetting(ctx context.Context, key, value string) error {
	_, err := a.SetSettings(ctx, map[string]string{key: value})
	return err
}

// SetSettings implements tui.Controller: it changes several settings as
// one change, checked together.
// Changing a setting that decides where a secret is sent (ucserver.url,
// teams.authority_url, …: psync.SecretsBoundTo) clears that secret unless
// it is given in the same change, so that whoever may change settings but
// not read secrets cannot send them elsewhere; a new Entra authority also
// drops the service accounts' sign-ins. It returns what it cleared.
func (a *Admin) SetSettings(ctx context.Context, set map[string]string) (cleared []string, err error) {
	if len(set) == 0 {
		return nil, errorf(ErrInvalid, "no setting given")
	}
	canon := make(map[string]string, len(set))
	secret := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(set)) {
		spec, v, err := checkValue(key, set[key])
		if err != nil {
			return nil, err
		}
		canon[key], secret[key] = v, spec.Kind == psync.KindSecret
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	stored, err := a.db.Settings()
	if err != nil {
		return nil, a.storeErr(err)
	}
	next := maps.Clone(stored)
	maps.Copy(next, canon)
	unset, dropSignIns := clearBoundSecrets(slices.Sorted(maps.Keys(canon)), stored, next, canon)
	if _, err := a.checkSettings(next); err != nil {
		return nil, err
	}
	if err := a.db.UpdateSettings(canon, unset); err != nil {
		return nil, a.storeErr(err)
	}
	if dropSignIns {
		cleared = a.dropSignIns(next)
	}
	if err := a.applySettings(ctx, stored, next); err != nil {
		return nil, err
	}
	for _, key := range slices.Sorted(maps.Keys(canon)) {
		a.log.Info("setting changed", "key", key, "secret", secret[key])
	}
	if len(unset) > 0 || dropSignIns {
		a.log.Warn("secrets cleared: the setting that decides where they are sent changed", "cleared", append(unset, cleared...))
	}
	return append(unset, cleared...), nil
}

// clearBoundSecrets removes from next the secrets whose endpoint one of
// keys moved (its effective value differs between stored and next),
// unless given holds them, and returns them; dropSignIns is whether the
// Entra authority moved.
func clearBoundSecrets(keys []string, stored, next, given map[string]string) (unset []string, dropSignIns bool) {
	for _, key := range keys {
		spec, _ := psync.LookupSetting(key)
		if effective(stored, spec) == effective(next, spec) {
			continue
		}
		for _, sec := range psync.SecretsBoundTo(key) {
			if _, ok := given[sec]; !ok && next[sec] != "" && !slices.Contains(unset, sec) {
				delete(next, sec)
				unset = append(unset, sec)
			}
		}
		if key == "teams.authority_url" {
			dropSignIns = true
		}
	}
	return unset, dropSignIns
}

// dropSignIns forgets the service accounts' sign-ins (their refresh tokens
// belong to the old authority) and returns what it dropped.
func (a *Admin) dropSignIns(settings map[string]string) (dropped []string) {
	for _, acct := range strings.Split(settings["teams.service_accounts"], ",") {
		if acct = strings.TrimSpace(acct); acct != "" {
			if err := a.db.PutTokenCache(acct, nil); err != nil {
				a.log.Error("a service account's sign-in could not be dropped", "account", acct, "err", err)
			} else {
				dropped = append(dropped, "the sign-in of "+acct)
			}
		}
	}
	return dropped
}

// effective is a setting's value in values, or its default.
func effective(values map[string]string, spec psync.SettingSpec) string {
	if v, ok := values[spec.Key]; ok {
		return v
	}
	return spec.Default
}

// UnsetSetting implements tui.Controller: the setting takes its default
// again, which must fit the others.
func (a *Admin) UnsetSetting(ctx context.Context, key string) error {
	if _, err := psync.LookupSetting(key); err != nil {
		return kindErr(ErrNotFound, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	stored, err := a.db.Settings()
	if err != nil {
		return a.storeErr(err)
	}
	if _, ok := stored[key]; !ok {
		return nil
	}
	next := maps.Clone(stored)
	delete(next, key)
	// The default is another endpoint as much as a new value is.
	unset, dropSignIns := clearBoundSecrets([]string{key}, stored, next, nil)
	if _, err := a.checkSettings(next); err != nil {
		return errorf(ErrInvalid, "%s: its default would not fit: %v", key, err)
	}
	if err := a.db.UpdateSettings(nil, append([]string{key}, unset...)); err != nil {
		return a.storeErr(err)
	}
	var dropped []string
	if dropSignIns {
		dropped = a.dropSignIns(next)
	}
	if err := a.applySettings(ctx, stored, next); err != nil {
		return err
	}
	a.log.Info("setting reset to its default", "key", key)
	if len(unset) > 0 || dropSignIns {
		a.log.Warn("secrets cleared: the setting that decides where they are sent changed", "cleared", append(unset, dropped...))
	}
	return nil
}

// applySettings brings the running bridge in line with the stored
// settings next: the sides whose settings changed are rebuilt (the Teams
// adapter, the phone connector), the engine takes its own (leases,
// keep-alives, retry). Holds are kept either way. When a part refuses, the
// store is put back to old and the error says why. The caller holds a.mu.
func (a *Admin) applySettings(ctx context.Context, old, next map[string]string) error {
	if a.live != nil {
		if err := a.live.Apply(ctx, next); err != nil {
			if undo := a.restoreSettings(old, next); undo != nil {
				a.log.Error("settings half applied: stored, not running", "err", undo)
			}
			return invalid(err)
		}
	}
	if a.engine == nil {
		return nil
	}
	was, err1 := psync.ParseSettings(old)
	now, err2 := psync.ParseSettings(next)
	if err2 != nil {
		return invalid(err2)
	}
	if err1 == nil && was == now {
		return nil // a setting of the sides, not of the engine
	}
	if err := a.engine.SetSettings(ctx, now); err != nil {
		if undo := a.restoreSettings(old, next); undo != nil {
			a.log.Error("settings half applied: stored, not running", "err", undo)
		}
		if a.live != nil {
			if err := a.live.Apply(ctx, old); err != nil {
				a.log.Error("the sides could not go back to the old settings", "err", err)
			}
		}
		return engineErr(ctx, err)
	}
	return nil
}

// rewatch hands the running sides the stored user list, after users were
// added or removed, or their Entra identity changed. The caller holds a.mu.
func (a *Admin) rewatch() {
	if a.live == nil {
		return
	}
	users, err := a.db.Users()
	if err != nil {
		a.log.Error("the sides keep the old user list", "err", err)
		return
	}
	a.live.Watch(users)
}

// restoreSettings writes old back over next.
func (a *Admin) restoreSettings(old, next map[string]string) error {
	var unset []string
	for k := range next {
		if _, ok := old[k]; !ok {
			unset = append(unset, k)
		}
	}
	return a.db.UpdateSettings(old, unset)
}

// --- profiles ------------------------------------------------------------------

// Profiles implements tui.Controller: the stored profiles, sorted by name.
func (a *Admin) Profiles(context.Context) ([]psync.Profile, error) {
	ps, err := a.db.Profiles()
	if err != nil {
		return nil, a.storeErr(err)
	}
	slices.SortFunc(ps, func(x, y psync.Profile) int { return strings.Compare(x.Name, y.Name) })
	return ps, nil
}

// profileNames lists the stored profiles for an error message.
func (a *Admin) profileNames() string {
	ps, err := a.db.Profiles()
	if err != nil || len(ps) == 0 {
		return "none"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	slices.Sort(names)
	return short(names)
}

// noProfile is the error for a profile that does not exist: it lists the
// ones that do and says how to make it.
func (a *Admin) noProfile(name string) error {
	return errorf(ErrNotFound, "no profile %q (profiles: %s); create it with: presencebridge profiles add %s", name, a.profileNames(), name)
}

// profile returns a stored profile or the error that names the others.
func (a *Admin) profile(name string) (psync.Profile, error) {
	p, err := a.db.Profile(name)
	if errors.Is(err, store.ErrNotFound) {
		return p, a.noProfile(name)
	}
	return p, a.storeErr(err)
}

func checkProfileName(name string) error {
	if err := psync.ValidateProfileName(name); err != nil {
		return invalid(err)
	}
	return nil
}

// PutProfile implements tui.Controller: creates or replaces a profile,
// applied to the users on it at once.
func (a *Admin) PutProfile(ctx context.Context, p psync.Profile) error {
	if err := checkProfileName(p.Name); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.putProfile(ctx, p)
}

// AddProfile creates a profile; one of that name must not exist.
func (a *Admin) AddProfile(ctx context.Context, p psync.Profile) error {
	if err := checkProfileName(p.Name); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.db.Profile(p.Name); err == nil {
		return errorf(ErrConflict, "profile %q already exists; change its flags with: presencebridge config set profile.%s.FLAG on|off", p.Name, p.Name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return a.storeErr(err)
	}
	return a.putProfile(ctx, p)
}

// putProfile stores p and hands it to the engine. The caller holds a.mu.
func (a *Admin) putProfile(ctx context.Context, p psync.Profile) error {
	old, oldErr := a.db.Profile(p.Name)
	if oldErr != nil && !errors.Is(oldErr, store.ErrNotFound) {
		return a.storeErr(oldErr)
	}
	if err := a.db.PutProfile(p); err != nil {
		return a.storeErr(err)
	}
	if a.engine != nil {
		if err := a.engine.PutProfile(ctx, p); err != nil {
			// Put the store back so that it says what the engine runs with.
			var undo error
			if oldErr == nil {
				undo = a.db.PutProfile(old)
			} else {
				undo = a.db.DeleteProfile(p.Name)
			}
			if undo != nil {
				a.log.Error("profile change half applied: stored, not running", "profile", p.Name, "err", undo)
			}
			return engineErr(ctx, err)
		}
	}
	a.log.Info("profile changed", "profile", p.Name)
	return nil
}

// usersOn lists the stored users on a profile (the default profile's
// include those that name none).
func (a *Admin) usersOn(name string) ([]string, error) {
	users, err := a.db.Users()
	if err != nil {
		return nil, a.storeErr(err)
	}
	stored, err := a.db.Settings()
	if err != nil {
		return nil, a.storeErr(err)
	}
	def := psync.DefaultProfileName
	if s, err := psync.ParseSettings(stored); err == nil {
		def = s.DefaultProfile
	}
	var on []string
	for _, u := range users {
		if u.Profile == name || u.Profile == "" && name == def {
			on = append(on, string(u.ID))
		}
	}
	return on, nil
}

// DeleteProfile implements tui.Controller: refused for the default profile
// and while any user is on it.
func (a *Admin) DeleteProfile(ctx context.Context, name string) error {
	if err := checkProfileName(name); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	old, err := a.profile(name)
	if err != nil {
		return err
	}
	s, err := a.settings()
	if err != nil {
		return err
	}
	if s.DefaultProfile == name {
		return errorf(ErrConflict, "profile %q is the default profile (setting default_profile); make another one the default first: presencebridge config set default_profile OTHER", name)
	}
	on, err := a.usersOn(name)
	if err != nil {
		return err
	}
	if len(on) > 0 {
		return errorf(ErrConflict, "profile %q is in use by %d users (%s); move them to another profile first (presencebridge config set user.ID.profile OTHER)", name, len(on), short(on))
	}
	if a.engine != nil {
		if err := a.engine.DeleteProfile(ctx, name); err != nil {
			return engineErr(ctx, err)
		}
	}
	if err := a.db.DeleteProfile(name); err != nil {
		if a.engine != nil {
			if undo := a.engine.PutProfile(context.WithoutCancel(ctx), old); undo != nil {
				a.log.Error("profile deletion half applied: gone from the running bridge, still stored", "profile", name, "err", undo)
			}
		}
		return a.storeErr(err)
	}
	a.log.Info("profile deleted", "profile", name)
	return nil
}

// RenameProfile gives a profile a new name; its users move along, and so
// does default_profile when it names it.
func (a *Admin) RenameProfile(ctx context.Context, old, name string) error {
	if err := checkProfileName(old); err != nil {
		return err
	}
	if err := checkProfileName(name); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.profile(old); err != nil {
		return err
	}
	if _, err := a.db.Profile(name); err == nil {
		return errorf(ErrConflict, "profile %q already exists; pick another name", name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return a.storeErr(err)
	}
	if a.engine != nil {
		if err := a.engine.RenameProfile(ctx, old, name); err != nil {
			return engineErr(ctx, err)
		}
	}
	if err := a.db.RenameProfile(old, name); err != nil {
		if a.engine != nil {
			if undo := a.engine.RenameProfile(context.WithoutCancel(ctx), name, old); undo != nil {
				a.log.Error("profile rename half applied: running, not stored", "profile", old, "err", undo)
			}
		}
		return a.storeErr(err)
	}
	a.log.Info("profile renamed", "profile", old, "to", name)
	return nil
}

// AssignProfile implements tui.Controller ("" = the default profile).
func (a *Admin) AssignProfile(ctx context.Context, id psync.UserID, profile string) error {
	if profile != "" {
		if err := checkProfileName(profile); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u, err := a.user(id)
	if err != nil {
		return err
	}
	u.Profile = profile
	return a.updateUser(ctx, u)
}

func (a *Admin) settings() (psync.Settings, error) {
	stored, err := a.db.Settings()
	if err != nil {
		return psync.Settings{}, a.storeErr(err)
	}
	s, err := psync.ParseSettings(stored)
	if err != nil {
		return s, a.storeErr(err)
	}
	return s, nil
}

// --- users ---------------------------------------------------------------------

// ConfiguredUsers returns the users of the configuration, ordered by id
// (the engine's live view of them is Local.Users).
func (a *Admin) ConfiguredUsers(context.Context) ([]psync.User, error) {
	us, err := a.db.Users()
	if err != nil {
		return nil, a.storeErr(err)
	}
	return us, nil
}

// ConfiguredUser returns one user of the configuration.
func (a *Admin) ConfiguredUser(_ context.Context, id psync.UserID) (psync.User, error) {
	return a.user(id)
}

func (a *Admin) user(id psync.UserID) (psync.User, error) {
	if err := psync.CheckText("user id", string(id)); err != nil {
		return psync.User{}, invalid(err)
	}
	u, err := a.db.User(id)
	if errors.Is(err, store.ErrNotFound) {
		return u, errorf(ErrNotFound, "no user %q (presencebridge users list shows them)", id)
	}
	return u, a.storeErr(err)
}

// checkUser checks a user as entered, and that its profile exists.
func (a *Admin) checkUser(u psync.User) error {
	if err := psync.ValidateUser(u); err != nil {
		return invalid(err)
	}
	if u.Profile != "" {
		if _, err := a.profile(u.Profile); err != nil {
			return err
		}
	}
	return nil
}

// AddUser adds a user to the configuration and to the running bridge.
func (a *Admin) AddUser(ctx context.Context, u psync.User) error {
	if err := psync.ValidateUser(u); err != nil {
		return invalid(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.db.User(u.ID); err == nil {
		return errorf(ErrConflict, "user %q already exists; change it with: presencebridge users set %s ...", u.ID, u.ID)
	} else if !errors.Is(err, store.ErrNotFound) {
		return a.storeErr(err)
	}
	if err := a.addUser(ctx, u); err != nil {
		return err
	}
	a.rewatch()
	return nil
}

// addUser stores a new user and hands it to the engine. The caller holds
// a.mu and found no user of that id.
func (a *Admin) addUser(ctx context.Context, u psync.User) error {
	if err := a.checkUser(u); err != nil {
		return err
	}
	if err := a.db.PutUser(u); err != nil {
		return a.storeErr(err)
	}
	if a.engine != nil {
		if err := a.engine.PutUser(ctx, u); err != nil {
			if undo := a.db.DeleteUser(u.ID); undo != nil {
				a.log.Error("user addition half applied: stored, not running", "user", u.ID, "err", undo)
			}
			return engineErr(ctx, err)
		}
	}
	a.log.Info("user added", "user", u.ID)
	return nil
}

// UpdateUser replaces an existing user's record (name, extension, UPN,
// Teams id, profile).
func (a *Admin) UpdateUser(ctx context.Context, u psync.User) error {
	if err := psync.ValidateUser(u); err != nil {
		return invalid(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	old, err := a.user(u.ID)
	if err != nil {
		return err
	}
	if err := a.updateUser(ctx, u); err != nil {
		return err
	}
	if old.UPN != u.UPN || old.TeamsID != u.TeamsID {
		a.rewatch() // the sides look the user up anew
	}
	return nil
}

// updateUser stores u over the existing record and hands it to the
// engine. The caller holds a.mu and found the user.
func (a *Admin) updateUser(ctx context.Context, u psync.User) error {
	if err := a.checkUser(u); err != nil {
		return err
	}
	old, err := a.db.User(u.ID)
	if err != nil {
		return a.storeErr(err)
	}
	if old == u {
		return nil
	}
	if err := a.db.PutUser(u); err != nil {
		return a.storeErr(err)
	}
	if a.engine != nil {
		var err error
		if old.Profile != u.Profile && withProfile(old, u.Profile) == u {
			err = a.engine.AssignProfile(ctx, u.ID, u.Profile)
		} else {
			err = a.engine.PutUser(ctx, u)
		}
		if err != nil {
			if undo := a.db.PutUser(old); undo != nil {
				a.log.Error("user change half applied: stored, not running", "user", u.ID, "err", undo)
			}
			return engineErr(ctx, err)
		}
	}
	a.log.Info("user changed", "user", u.ID, "change", store.UserDiff(old, u))
	return nil
}

func withProfile(u psync.User, p string) psync.User { u.Profile = p; return u }

// RemoveUser removes a user. A running bridge first gives back everything
// it holds for them (sync/RULES.md §4); when it cannot before ctx ends
// the user stays and the error matches ErrHoldsKept. Without a running
// bridge, a user the journal still holds something for stays too: only the
// bridge can give it back.
func (a *Admin) RemoveUser(ctx context.Context, id psync.UserID) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.user(id); err != nil {
		return err
	}
	if err := a.removeUser(ctx, id); err != nil {
		return err
	}
	a.rewatch()
	a.log.Info("user removed", "user", id)
	return nil
}

// removeWait bounds how long a removal waits for the sides to take back
// what the bridge holds for the user.
const removeWait = 10 * time.Second

// removeUser releases (through the engine) and deletes one user. The
// caller holds a.mu.
func (a *Admin) removeUser(ctx context.Context, id psync.UserID) error {
	if a.engine != nil {
		// Bounded below the client's own timeout, so that an admin hears
		// that the user stays (and why) rather than a timeout.
		rctx, cancel := context.WithTimeout(ctx, removeWait)
		err := a.engine.RemoveUser(rctx, id)
		cancel()
		if err != nil {
			return engineErr(ctx, err)
		}
	} else if err := a.checkNoHolds([]psync.UserID{id}); err != nil {
		return err
	}
	if err := a.db.DeleteUser(id); err != nil {
		if a.engine != nil {
			// Released and gone from the engine: the next start brings
			// the user back from the database, with nothing held.
			a.log.Error("user removed from the running bridge but not from the database", "user", id, "err", err)
		}
		return a.storeErr(err)
	}
	return nil
}

// checkNoHolds refuses to drop users the journal still holds something
// for, when no bridge runs to give it back.
func (a *Admin) checkNoHolds(ids []psync.UserID) error {
	if len(ids) == 0 {
		return nil
	}
	holds, err := a.db.Holds()
	if err != nil {
		return a.storeErr(err)
	}
	gone := make(map[psync.UserID]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	var held []string
	for _, h := range holds {
		if gone[h.User] {
			held = append(held, h.Key().String())
		}
	}
	if len(held) == 0 {
		return nil
	}
	return errorf(ErrHoldsKept, "the bridge still holds %d thing(s) it imposed for these users in its last run (%s); "+
		"only the bridge can give them back: start it (presencebridge start, or presencebridge run) and remove the users through it", len(held), short(held))
}

// --- generic keys: config get/set/unset ----------------------------------------

// userFields are the fields of user.ID.FIELD keys.
var userFields = []string{"name", "extension", "upn", "teams_id", "profile"}

func userField(u *psync.User, field string) (*string, bool) {
	switch field {
	case "name":
		return &u.DisplayName, true
	case "extension":
		return &u.Extension, true
	case "upn":
		return &u.UPN, true
	case "teams_id":
		return &u.TeamsID, true
	case "profile":
		return &u.Profile, true
	}
	return nil, false
}

// splitKey splits profile.NAME.FLAG and user.ID.FIELD keys; a user id may
// hold dots (sip:anna@contoso.com), the field never does.
func splitKey(key string) (kind, name, field string, ok bool) {
	for _, k := range []string{"profile.", "user."} {
		if rest, found := strings.CutPrefix(key, k); found {
			i := strings.LastIndex(rest, ".")
			if i <= 0 || i == len(rest)-1 {
				return "", "", "", false
			}
			return strings.TrimSuffix(k, "."), rest[:i], rest[i+1:], true
		}
	}
	return "", "", "", false
}

func flagNames() string {
	names := make([]string, len(psync.ProfileFlags))
	for i, f := range psync.ProfileFlags {
		names[i] = string(f.Flag)
	}
	return strings.Join(names, ", ")
}

func unknownFlag(key, field string) error {
	return errorf(ErrNotFound, "%s: unknown profile setting %q (known: %s)", key, field, flagNames())
}

func unknownUserField(key, field string) error {
	return errorf(ErrNotFound, "%s: unknown user field %q (known: %s)", key, field, strings.Join(userFields, ", "))
}

// Get reads one key as `config get` does: a setting (secrets masked),
// profile.NAME.FLAG or user.ID.FIELD.
func (a *Admin) Get(_ context.Context, key string) (string, error) {
	if err := psync.CheckText("key", key); err != nil {
		return "", invalid(err)
	}
	if kind, name, field, ok := splitKey(key); ok {
		switch kind {
		case "profile":
			if err := checkProfileName(name); err != nil {
				return "", err
			}
			p, err := a.profile(name)
			if err != nil {
				return "", err
			}
			v, err := p.Flag(psync.ProfileFlag(field))
			if err != nil {
				return "", unknownFlag(key, field)
			}
			return strconv.FormatBool(v), nil
		case "user":
			u, err := a.user(psync.UserID(name))
			if err != nil {
				return "", err
			}
			p, ok := userField(&u, field)
			if !ok {
				return "", unknownUserField(key, field)
			}
			return *p, nil
		}
	}
	spec, err := psync.LookupSetting(key)
	if err != nil {
		return "", kindErr(ErrNotFound, err)
	}
	stored, err := a.db.Settings()
	if err != nil {
		return "", a.storeErr(err)
	}
	v, ok := stored[key]
	if !ok {
		v = spec.Default
	}
	return spec.Show(v), nil
}

// parseOnOff reads a profile flag's value.
func parseOnOff(key, value string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "true", "on", "yes", "1":
		return true, nil
	case "false", "off", "no", "0":
		return false, nil
	}
	return false, errorf(ErrInvalid, "%s: %q is not on or off", key, clip(value))
}

// Set changes one key as `config set` does. A profile flag of a profile
// that does not exist is refused (it names the profiles and the command
// that creates one): a typo must not create a profile.
func (a *Admin) Set(ctx context.Context, key, value string) error {
	if err := psync.CheckText("key", key); err != nil {
		return invalid(err)
	}
	kind, name, field, ok := splitKey(key)
	if !ok {
		return a.SetSetting(ctx, key, value)
	}
	switch kind {
	case "profile":
		if err := checkProfileName(name); err != nil {
			return err
		}
		on, err := parseOnOff(key, value)
		if err != nil {
			return err
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		p, err := a.profile(name)
		if err != nil {
			return err
		}
		if err := p.SetFlag(psync.ProfileFlag(field), on); err != nil {
			return unknownFlag(key, field)
		}
		return a.putProfile(ctx, p)
	default: // user
		a.mu.Lock()
		defer a.mu.Unlock()
		u, err := a.user(psync.UserID(name))
		if err != nil {
			return err
		}
		p, ok := userField(&u, field)
		if !ok {
			return unknownUserField(key, field)
		}
		*p = strings.TrimSpace(value)
		return a.updateUser(ctx, u)
	}
}

// Unset returns a key to its default: a setting to the registry's, a
// profile flag to a new profile's, a user field to empty.
func (a *Admin) Unset(ctx context.Context, key string) error {
	if err := psync.CheckText("key", key); err != nil {
		return invalid(err)
	}
	kind, name, field, ok := splitKey(key)
	if !ok {
		return a.UnsetSetting(ctx, key)
	}
	switch kind {
	case "profile":
		if err := checkProfileName(name); err != nil {
			return err
		}
		def, err := psync.NewProfile(name).Flag(psync.ProfileFlag(field))
		if err != nil {
			return unknownFlag(key, field)
		}
		return a.Set(ctx, key, strconv.FormatBool(def))
	default:
		var u psync.User
		if _, ok := userField(&u, field); !ok {
			return unknownUserField(key, field)
		}
		return a.Set(ctx, key, "")
	}
}

// --- audit -----------------------------------------------------------------------

// Limits of the audit queries: enough for any screen, bounded so one
// request cannot make the service decode a ten-million-entry log.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10_000
)

func auditLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultAuditLimit, nil
	case limit < 0 || limit > MaxAuditLimit:
		return 0, errorf(ErrInvalid, "limit must be between 1 and %d, not %d", MaxAuditLimit, limit)
	}
	return limit, nil
}

// History implements tui.Controller: the user's audit entries, newest first.
func (a *Admin) History(_ context.Context, id psync.UserID, limit int) ([]psync.Decision, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return nil, err
	}
	if _, err := a.user(id); err != nil {
		return nil, err
	}
	ds, err := a.db.Audit(limit, id)
	if err != nil {
		return nil, a.storeErr(err)
	}
	slices.Reverse(ds) // the store answers oldest first
	return ds, nil
}

// Audit implements tui.Controller: everyone's audit entries, newest first.
func (a *Admin) Audit(_ context.Context, limit int) ([]psync.Decision, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return nil, err
	}
	ds, err := a.db.Audit(limit, "")
	if err != nil {
		return nil, a.storeErr(err)
	}
	slices.Reverse(ds)
	return ds, nil
}

// --- export and import -------------------------------------------------------

// Export writes the configuration as YAML, secrets masked.
func (a *Admin) Export(_ context.Context, w io.Writer) error {
	return a.storeErr(a.db.ExportYAML(w, false))
}

// Import reads a configuration (the YAML of Export and of the README) and
// applies it: each section the file has replaces the stored one unless
// o.Merge, and o.DryRun only reports. It returns what changes. Without a
// running bridge everything is written in one transaction. With one, the
// changes are applied in an order that keeps every step valid: new and
// changed profiles, the settings, new and changed users, removed users
// (each released first), removed profiles. When a step fails, what came
// before it stays applied and the error says so; importing the same file
// again finishes the rest.
func (a *Admin) Import(ctx context.Context, r io.Reader, o store.ImportOptions) (store.Changes, error) {
	c, err := store.ParseConfigYAML(r)
	if err != nil {
		return store.Changes{}, a.importErr(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	plan, err := a.db.PlanImport(c, o)
	if err != nil {
		return store.Changes{}, a.importErr(err)
	}
	stored, err := a.db.Settings()
	if err != nil {
		return store.Changes{}, a.storeErr(err)
	}
	dropSignIns := boundSecrets(&plan, stored, c.Settings)
	if dropSignIns {
		for _, acct := range strings.Split(plan.Settings["teams.service_accounts"], ",") {
			if acct = strings.TrimSpace(acct); acct != "" {
				plan.Changes.Settings = append(plan.Changes.Settings, store.Change{Op: store.OpRemoved, Name: "the sign-in of " + acct,
					Detail: "teams.authority_url changed, and a sign-in is not sent to a new authority; sign in again: presencebridge signin " + acct})
			}
		}
	}
	if a.engine == nil {
		if err := a.checkNoHolds(plan.DeleteUsers); err != nil {
			return store.Changes{}, err
		}
	}
	if o.DryRun {
		return plan.Changes, nil
	}
	if dropSignIns {
		// Before the Teams side is rebuilt on the new authority, which
		// would otherwise redeem the refresh tokens there.
		a.dropSignIns(plan.Settings)
	}
	if a.engine == nil {
		if err := a.db.ApplyImport(plan); err != nil {
			return store.Changes{}, a.importErr(err)
		}
	} else if err := a.applyStepwise(ctx, plan); err != nil {
		return store.Changes{}, err
	}
	a.log.Info("configuration imported", "settings", len(plan.Changes.Settings), "profiles", len(plan.Changes.Profiles), "users", len(plan.Changes.Users))
	return plan.Changes, nil
}

// boundSecrets applies SetSettings' rule to an import: a setting that
// decides where a secret is sent and changes (also back to its default,
// left out of a file that replaces the settings) clears that secret, unless
// the file gives it in clear (a masked one only keeps the stored value).
// It returns whether the Entra authority moved, which drops the sign-ins.
func boundSecrets(plan *store.ImportPlan, stored, written map[string]string) (dropSignIns bool) {
	keys := maps.Clone(stored)
	maps.Copy(keys, plan.Settings)
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		spec, err := psync.LookupSetting(key)
		if err != nil || effective(stored, spec) == effective(plan.Settings, spec) {
			continue
		}
		if key == "teams.authority_url" {
			dropSignIns = true
		}
		for _, sec := range psync.SecretsBoundTo(key) {
			if v, given := written[sec]; given && v != psync.Mask {
				continue
			}
			if _, has := plan.Settings[sec]; !has {
				continue
			}
			delete(plan.Settings, sec)
			delete(plan.SetSettings, sec)
			if !slices.Contains(plan.UnsetSettings, sec) {
				plan.UnsetSettings = append(plan.UnsetSettings, sec)
			}
			plan.Changes.Settings = slices.DeleteFunc(plan.Changes.Settings, func(c store.Change) bool { return c.Name == sec })
			plan.Changes.Settings = append(plan.Changes.Settings, store.Change{Op: store.OpRemoved, Name: sec,
				Detail: "cleared: " + key + " changed, and a secret is not sent to a new endpoint unless given again in clear"})
		}
	}
	return dropSignIns
}

func (a *Admin) importErr(err error) error {
	if errors.Is(err, store.ErrInvalid) {
		return invalid(err)
	}
	return a.storeErr(err)
}

// applyStepwise applies an import plan to the store and the running
// engine, one change at a time. The caller holds a.mu.
func (a *Admin) applyStepwise(ctx context.Context, p store.ImportPlan) error {
	total := len(p.PutProfiles) + len(p.PutUsers) + len(p.DeleteUsers) + len(p.DeleteProfiles)
	if len(p.SetSettings)+len(p.UnsetSettings) > 0 {
		total++
	}
	done := 0
	if len(p.PutUsers)+len(p.DeleteUsers) > 0 {
		defer a.rewatch() // also after a stop part-way: the users so far run
	}
	stop := func(what string, err error) error {
		msg := fmt.Sprintf("import stopped at %s after %d of %d changes: %v; what came before stays applied, and importing the same file again applies the rest", what, done, total, err)
		return &adminError{kind: kindOrNil(err), msg: msg, cause: err}
	}
	for _, pr := range p.PutProfiles {
		if err := a.putProfile(ctx, pr); err != nil {
			return stop("profile "+pr.Name, err)
		}
		done++
	}
	if len(p.SetSettings)+len(p.UnsetSettings) > 0 {
		old, err := a.db.Settings()
		if err != nil {
			return stop("the settings", a.storeErr(err))
		}
		if err := a.db.UpdateSettings(p.SetSettings, p.UnsetSettings); err != nil {
			return stop("the settings", invalid(err))
		}
		if err := a.applySettings(ctx, old, p.Settings); err != nil {
			return stop("the settings", err)
		}
		done++
	}
	for _, u := range p.PutUsers {
		var err error
		if _, gerr := a.db.User(u.ID); gerr == nil {
			err = a.updateUser(ctx, u)
		} else {
			err = a.addUser(ctx, u)
		}
		if err != nil {
			return stop("user "+string(u.ID), err)
		}
		done++
	}
	for _, id := range p.DeleteUsers {
		if err := a.removeUser(ctx, id); err != nil {
			return stop("removing user "+string(id), err)
		}
		done++
	}
	for _, name := range p.DeleteProfiles {
		if err := a.engine.DeleteProfile(ctx, name); err != nil {
			return stop("removing profile "+name, engineErr(ctx, err))
		}
		if err := a.db.DeleteProfile(name); err != nil {
			return stop("removing profile "+name, a.storeErr(err))
		}
		done++
	}
	return nil
}

// kindOrNil is the sentinel err matches, or nil.
func kindOrNil(err error) error {
	return kindOfCode(codeOf(err))
}

func short(ids []string) string {
	if len(ids) <= 10 {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:10], ", "), len(ids)-10)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
