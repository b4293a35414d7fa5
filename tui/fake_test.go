package tui

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	gosync "sync"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// now is the fixed clock of every test: countdowns and ages are exact.
var now = time.Date(2026, 3, 10, 10, 30, 0, 0, time.UTC)

func fixedNow() time.Time { return now }

// fakeController is an in-memory bridge: it answers from realistic data,
// applies changes the way the service does (validation included, through
// the real psync functions) and records every call. Err, when set, makes a
// method fail, to test what the admin sees when the service does.
type fakeController struct {
	mu       gosync.Mutex
	overview psync.Overview
	users    []psync.UserStatus
	history  map[psync.UserID][]psync.Decision
	audit    []psync.Decision
	profiles []psync.Profile
	stored   map[string]string
	pending  map[string]string // settings stored but not in effect, and why
	prompt   psync.SignInPrompt
	events   chan psync.Decision
	calls    []string
	puts     []psync.Profile
	// what UsersSince last saw of each user, and when each changed
	seen map[psync.UserID]psync.UserStatus
	vers map[psync.UserID]uint64
	gone []psync.UserChanges // removals, by version
	ver  uint64

	// Err returns the error a method should fail with ("" method = none).
	Err func(method string) error
}

var _ Controller = (*fakeController)(nil)

func (f *fakeController) record(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := fmt.Sprintf(format, args...)
	f.calls = append(f.calls, call)
	if f.Err != nil {
		method, _, _ := strings.Cut(call, "(")
		return f.Err(method)
	}
	return nil
}

// Calls returns the calls so far, in order.
func (f *fakeController) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Called reports whether a call with this exact text was made.
func (f *fakeController) Called(call string) bool {
	return slices.Contains(f.Calls(), call)
}

func (f *fakeController) Overview(ctx context.Context) (psync.Overview, error) {
	if err := f.record("Overview()"); err != nil {
		return psync.Overview{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.overview, nil
}

// UsersSince answers as the service does: everyone for since 0 or a
// version it never gave, else the users whose status differs from what it
// last saw of them (it notices changes the way psync.Changes does).
func (f *fakeController) UsersSince(ctx context.Context, since uint64) (psync.UserChanges, error) {
	if err := f.record("UsersSince(%d)", since); err != nil {
		return psync.UserChanges{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen, f.vers = map[psync.UserID]psync.UserStatus{}, map[psync.UserID]uint64{}
	}
	next, bumped := f.ver+1, false
	live := map[psync.UserID]bool{}
	for _, u := range f.users {
		live[u.User.ID] = true
		if old, ok := f.seen[u.User.ID]; !ok || !reflect.DeepEqual(old, u) {
			f.seen[u.User.ID], f.vers[u.User.ID], bumped = u, next, true
		}
	}
	for id := range f.seen {
		if !live[id] {
			delete(f.seen, id)
			f.gone = append(f.gone, psync.UserChanges{Version: next, Removed: []psync.UserID{id}})
			bumped = true
		}
	}
	if bumped {
		f.ver = next
	}
	full := since == 0 || since > f.ver
	out := psync.UserChanges{Version: f.ver, Full: full, Total: len(f.users)}
	for _, u := range f.users {
		if full || f.vers[u.User.ID] > since {
			out.Users = append(out.Users, u)
		}
	}
	for _, g := range f.gone {
		if !full && g.Version > since {
			out.Removed = append(out.Removed, g.Removed...)
		}
	}
	return out, nil
}

func (f *fakeController) User(ctx context.Context, id psync.UserID) (psync.UserStatus, error) {
	if err := f.record("User(%s)", id); err != nil {
		return psync.UserStatus{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.User.ID == id {
			return u, nil
		}
	}
	return psync.UserStatus{}, fmt.Errorf("no user %q", id)
}

func (f *fakeController) History(ctx context.Context, id psync.UserID, limit int) ([]psync.Decision, error) {
	if err := f.record("History(%s, %d)", id, limit); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.history[id]
	if len(h) > limit {
		h = h[:limit]
	}
	return slices.Clone(h), nil
}

func (f *fakeController) Audit(ctx context.Context, limit int) ([]psync.Decision, error) {
	if err := f.record("Audit(%d)", limit); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.audit), nil
}

func (f *fakeController) Profiles(ctx context.Context) ([]psync.Profile, error) {
	if err := f.record("Profiles()"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.profiles), nil
}

func (f *fakeController) PutProfile(ctx context.Context, p psync.Profile) error {
	if err := f.record("PutProfile(%s)", p.Name); err != nil {
		return err
	}
	if err := psync.ValidateProfileName(p.Name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, p)
	for i := range f.profiles {
		if f.profiles[i].Name == p.Name {
			f.profiles[i] = p
			return nil
		}
	}
	f.profiles = append(f.profiles, p)
	slices.SortFunc(f.profiles, func(a, b psync.Profile) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

func (f *fakeController) DeleteProfile(ctx context.Context, name string) error {
	if err := f.record("DeleteProfile(%s)", name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.Profile == name {
			return fmt.Errorf("profile %q is in use by %s", name, u.User.Name())
		}
	}
	i := slices.IndexFunc(f.profiles, func(p psync.Profile) bool { return p.Name == name })
	if i < 0 {
		return fmt.Errorf("no profile %q", name)
	}
	f.profiles = slices.Delete(f.profiles, i, i+1)
	return nil
}

func (f *fakeController) RenameProfile(ctx context.Context, old, name string) error {
	if err := f.record("RenameProfile(%s, %s)", old, name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.profiles, func(p psync.Profile) bool { return p.Name == old })
	if i < 0 {
		return fmt.Errorf("no profile %q", old)
	}
	f.profiles[i].Name = name
	for j := range f.users {
		if f.users[j].Profile == old {
			f.users[j].Profile, f.users[j].User.Profile = name, name
		}
	}
	return nil
}

func (f *fakeController) AddUser(ctx context.Context, u psync.User) error {
	if err := f.record("AddUser(%s, %s, %s)", u.ID, u.UPN, u.DisplayName); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.ContainsFunc(f.users, func(s psync.UserStatus) bool { return s.User.ID == u.ID }) {
		return fmt.Errorf("user %s already exists", u.ID)
	}
	f.users = append(f.users, psync.UserStatus{User: u, Profile: "default"})
	return nil
}

func (f *fakeController) RemoveUser(ctx context.Context, id psync.UserID) error {
	if err := f.record("RemoveUser(%s)", id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.users, func(s psync.UserStatus) bool { return s.User.ID == id })
	if i < 0 {
		return fmt.Errorf("no user %q", id)
	}
	f.users = slices.Delete(f.users, i, i+1)
	return nil
}

func (f *fakeController) AssignProfile(ctx context.Context, id psync.UserID, profile string) error {
	if err := f.record("AssignProfile(%s, %s)", id, profile); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.ContainsFunc(f.profiles, func(p psync.Profile) bool { return p.Name == profile }) {
		return fmt.Errorf("no profile %q", profile)
	}
	for i := range f.users {
		if f.users[i].User.ID == id {
			f.users[i].Profile = profile
			f.users[i].User.Profile = profile
			return nil
		}
	}
	return fmt.Errorf("no user %q", id)
}

func (f *fakeController) Settings(ctx context.Context) ([]psync.SettingValue, error) {
	if err := f.record("Settings()"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]psync.SettingValue, 0, len(fakeSpecs))
	for _, s := range fakeSpecs {
		v, set := f.stored[s.Key]
		if !set {
			v = s.Default
		}
		if s.Kind == psync.KindSecret && set {
			v = psync.Mask
		}
		out = append(out, psync.SettingValue{Key: s.Key, Value: v, Default: s.Default, Set: set,
			Secret: s.Kind == psync.KindSecret, Kind: s.Kind.String(), Enum: s.Enum, Help: s.Help, Pending: f.pending[s.Key]})
	}
	return out, nil
}

// fakeSpecs is a fixed copy of part of the settings registry: the goldens
// must not change when the service learns a new setting. Validation still
// goes through the real registry (psync.LookupSetting).
var fakeSpecs = []psync.SettingSpec{
	{Key: "audit.limit", Kind: psync.KindInt, Default: "10000", Help: "audit log entries kept (oldest dropped first)"},
	{Key: "default_profile", Kind: psync.KindString, Default: "default", Help: "profile of users that name none"},
	{Key: "phone.keepalive", Kind: psync.KindDuration, Default: "5m", Help: "refresh the phone presence this often while a Teams call lasts; must be shorter than phone.lease"},
	{Key: "phone.lease", Kind: psync.KindDuration, Default: "10m", Help: "expiry of a presence the bridge sets on the phone system (absent state until, PUBLISH Expires)"},
	{Key: "phone.system", Kind: psync.KindEnum, Enum: []string{"", "ucserver"}, Help: "which phone system to connect to"},
	{Key: "retry.max", Kind: psync.KindDuration, Default: "2m", Help: "longest wait between retries"},
	{Key: "retry.min", Kind: psync.KindDuration, Default: "1s", Help: "first wait before retrying a side that failed"},
	{Key: "teams.client_certificate", Kind: psync.KindString, Help: "path of a PEM or PFX file with the app's certificate and key (instead of a client secret)"},
	{Key: "teams.client_certificate_password", Kind: psync.KindSecret, Help: "password of the PFX/PEM key, if any"},
	{Key: "teams.client_id", Kind: psync.KindString, Help: "application (client) id of the bridge's app registration"},
	{Key: "teams.client_secret", Kind: psync.KindSecret, Help: "client secret of the app registration"},
	{Key: "teams.graph_url", Kind: psync.KindURL, Default: "https://graph.microsoft.com/v1.0", Help: "Microsoft Graph endpoint (national clouds differ)"},
	{Key: "teams.keepalive", Kind: psync.KindDuration, Default: "5m", Help: "re-send setPresence this often while a call lasts; must be shorter than teams.lease"},
	{Key: "teams.lease", Kind: psync.KindDuration, Default: "10m", Help: "expirationDuration of the bridge's Teams presence session (Graph allows PT5M-PT4H)"},
	{Key: "teams.tenant_id", Kind: psync.KindString, Help: "Entra tenant id (GUID) or domain"},
	{Key: "ucserver.password", Kind: psync.KindSecret, Help: "password of that service account"},
	{Key: "ucserver.url", Kind: psync.KindURL, Help: "UCServer web service, e.g. https://ucserver.example:7225"},
	{Key: "ucserver.user", Kind: psync.KindString, Help: "service account of the bridge on the UCServer"},
}

// SetSettings follows the service's rule: a change of where a secret is
// sent clears that secret unless the same change gives it.
func (f *fakeController) SetSettings(ctx context.Context, set map[string]string) ([]string, error) {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(set)) {
		parts = append(parts, k+"="+set[k])
	}
	if err := f.record("SetSettings(%s)", strings.Join(parts, ", ")); err != nil {
		return nil, err
	}
	canon := map[string]string{}
	for k, v := range set {
		spec, err := psync.LookupSetting(k)
		if err != nil {
			return nil, err
		}
		if canon[k], err = spec.Normalize(v); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var cleared []string
	for _, k := range slices.Sorted(maps.Keys(canon)) {
		if f.stored[k] == canon[k] {
			continue
		}
		for _, sec := range psync.SecretsBoundTo(k) {
			if _, given := canon[sec]; !given && f.stored[sec] != "" {
				delete(f.stored, sec)
				cleared = append(cleared, sec)
			}
		}
	}
	maps.Copy(f.stored, canon)
	return cleared, nil
}

func (f *fakeController) UnsetSetting(ctx context.Context, key string) error {
	if err := f.record("UnsetSetting(%s)", key); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.stored, key)
	return nil
}

func (f *fakeController) StartSignIn(ctx context.Context, account string) (psync.SignInPrompt, error) {
	if err := f.record("StartSignIn(%s)", account); err != nil {
		return psync.SignInPrompt{}, err
	}
	p := f.prompt
	p.Account = account
	return p, nil
}

// Events hands out the fake's one stream; tests push into f.events.
func (f *fakeController) Events(ctx context.Context) (<-chan psync.Decision, error) {
	if err := f.record("Events()"); err != nil {
		return nil, err
	}
	if f.events == nil {
		return nil, errors.New("no stream")
	}
	return f.events, nil
}

// --- the office -----------------------------------------------------------------

func teams(avail, act string, ago time.Duration) psync.TeamsPresence {
	return psync.TeamsPresence{Availability: avail, Activity: act, Observed: now.Add(-ago)}
}

// status builds a UserStatus the way the engine does: the Teams state,
// colour and text come from the real rule functions.
func status(id, ext, name, upn, profile string, tp psync.TeamsPresence, ph psync.PhoneState, side psync.Side, changed time.Duration, holds ...psync.HoldStatus) psync.UserStatus {
	st := psync.ClassifyTeams(tp)
	col, text := psync.TeamsChannel(st)
	u := psync.UserStatus{
		User:    psync.User{ID: psync.UserID(id), Extension: ext, DisplayName: name, UPN: upn, Profile: profile},
		Profile: profile, Teams: tp, TeamsKnown: tp.Availability != "", TeamsState: st, Colour: col, Text: text,
		Phone: ph, PhoneKnown: ph.Presence != psync.PhoneUnknown,
		Holds: holds, LastSide: side, Links: psync.LinksFor(upn),
	}
	if changed > 0 {
		u.LastChange = now.Add(-changed)
	}
	return u
}

func hold(user string, kind psync.HoldKind, device, set, replaced, reason, rule string, flag psync.ProfileFlag, profile string, since, lease time.Duration) psync.HoldStatus {
	h := psync.Hold{User: psync.UserID(user), Kind: kind, Device: device, Set: set, Replaced: replaced,
		Reason: reason, Rule: rule, Flag: string(flag), Profile: profile, Since: now.Add(-since)}
	if lease > 0 {
		h.Lease = now.Add(lease)
	}
	return psync.HoldStatus{Hold: h, Confirmed: true, HeldByBridge: lease == 0}
}

func phone(p psync.PhonePresence, devices []psync.Device, calls ...psync.Call) psync.PhoneState {
	return psync.PhoneState{Presence: p, Devices: devices, Calls: calls}
}

// devs makes devices from "id", "id!" (DND on) or "id|name" (the phone
// system's display name for the line).
func devs(ids ...string) []psync.Device {
	var out []psync.Device
	for _, id := range ids {
		dnd := strings.HasSuffix(id, "!")
		id, name, _ := strings.Cut(strings.TrimSuffix(id, "!"), "|")
		out = append(out, psync.Device{ID: id, Name: name, DND: dnd})
	}
	return out
}

func newFake() *fakeController {
	sales := psync.NewProfile("sales")
	sales.CrossDeviceBusyOnBusy = true
	sales.DNDProtectionControlsPresence = true
	cal := psync.NewProfile("calendar")
	cal.CalendarMeetingsAsCalls = true
	cal.PresentingToPhoneDND = false

	anna := status("201", "201", "Anna Schmidt", "anna.schmidt@contoso.example", "default",
		teams("Busy", "InACall", 3*time.Minute), phone(psync.PhoneAvailable, devs("tel:201-desk|Desk phone", "tel:201-soft|Softphone (ProCall)"), psync.Call{ID: "c-7781", Device: "tel:201-desk", State: psync.CallConnected}),
		psync.SideTeams, 3*time.Minute,
		hold("201", psync.HoldTeamsSession, "", "InACall", "", "connected call on desk", "§2 connected call", psync.FlagSetTeamsPresence, "default", 3*time.Minute, 7*time.Minute))
	anna.Echo = true

	ben := status("202", "202", "Ben Okafor", "ben.okafor@contoso.example", "sales",
		teams("Busy", "InACall", 8*time.Minute), phone(psync.PhoneDND, devs("tel:202-desk|Desk phone Yealink T54W, room 2.14!", "tel:202-soft|Softphone (ProCall)!", "tel:202-tapi2!")),
		psync.SidePhone, 8*time.Minute,
		hold("202", psync.HoldPhonePresence, "", "dnd", "available", "in a Teams call or meeting", "§1 Teams call", psync.FlagDNDControlsPresence, "sales", 8*time.Minute, 2*time.Minute+14*time.Second),
		hold("202", psync.HoldDeviceProtection, "tel:202-desk", "on", "off", "in a Teams call or meeting", "§1 Teams call, call protection", psync.FlagCrossDeviceBusy, "sales", 8*time.Minute, 0),
		hold("202", psync.HoldDeviceProtection, "tel:202-soft", "on", "off", "in a Teams call or meeting", "§1 Teams call, call protection", psync.FlagCrossDeviceBusy, "sales", 8*time.Minute, 0),
	)
	// tel:202-tapi2 had DND before the call: the person's own, not the
	// bridge's; it has no display name on the phone system.

	chiara := status("203", "203", "Chiara Rossi", "chiara.rossi@contoso.example", "default",
		teams("DoNotDisturb", "DoNotDisturb", 25*time.Minute), phone(psync.PhoneDND, devs("desk")),
		psync.SidePhone, 25*time.Minute,
		hold("203", psync.HoldPhonePresence, "", "dnd", "away", "do not disturb in Teams", "§1 do not disturb", psync.FlagTeamsDNDToPhoneDND, "default", 25*time.Minute, 9*time.Minute+30*time.Second))

	dmitri := status("204", "204", "Dmitri Volkov", "dmitri.volkov@contoso.example", "calendar",
		teams("DoNotDisturb", "Presenting", 90*time.Second), phone(psync.PhoneAvailable, devs("soft")),
		psync.SideTeams, 42*time.Minute)

	elif := status("205", "205", "Elif Yılmaz", "elif.yilmaz@contoso.example", "default",
		teams("Available", "Available", 12*time.Minute), phone(psync.PhoneAvailable, devs("desk", "soft")),
		psync.SidePhone, 2*time.Hour+5*time.Minute)

	long := status("206", "206", "Maximilian Alexander von Hohenzollern-Sigmaringen", "max.hohenzollern@contoso.example", "default",
		teams("Away", "Away", 40*time.Minute), phone(psync.PhoneAway, devs("desk")),
		0, 0)

	grace := status("207", "207", "Grace Hopper", "grace.hopper@contoso.example", "default",
		teams("Available", "Available", 30*time.Second), phone(psync.PhoneBusy, devs("desk"), psync.Call{ID: "c-7790", Device: "desk", State: psync.CallHeld}),
		psync.SideTeams, 6*time.Minute,
		hold("207", psync.HoldTeamsSession, "", "InACall", "", "connected call on desk", "§2 connected call", psync.FlagSetTeamsPresence, "default", 6*time.Minute, 4*time.Minute))
	grace.Overridden = true

	hiro := status("208", "208", "Hiro Tanaka", "hiro.tanaka@contoso.example", "sales",
		teams("Busy", "InACall", 50*time.Second), phone(psync.PhoneAvailable, devs("desk", "soft"),
			psync.Call{ID: "c-7795", Device: "desk", State: psync.CallConference}, psync.Call{ID: "c-7796", Device: "soft", State: psync.CallRinging}),
		psync.SideTeams, time.Minute,
		hold("208", psync.HoldTeamsSession, "", "InAConferenceCall", "", "conference call on desk", "§2 conference call", psync.FlagSetTeamsPresence, "sales", time.Minute, 9*time.Minute))
	hiro.AlsoInTeams = true

	ingrid := status("209", "209", "Ingrid Berg", "", "default", psync.TeamsPresence{}, psync.PhoneState{}, 0, 0)

	jamal := status("210", "210", "Jamal Haddad", "jamal.haddad@contoso.example", "default",
		teams("Offline", "OutOfOffice", 3*time.Hour), phone(psync.PhoneOffline, nil),
		0, 26*time.Hour)

	kai := status("211", "211", "Kai Müller", "kai.mueller@contoso.example", "calendar",
		teams("Busy", "InAMeeting", 4*time.Minute), phone(psync.PhoneBusy, devs("soft"), psync.Call{ID: "c-7801", Device: "soft", State: psync.CallRinging}),
		psync.SidePhone, 4*time.Minute,
		hold("211", psync.HoldPhonePresence, "", "busy", "available", "in a calendar meeting", "§1 calendar meeting", psync.FlagCalendarAsCalls, "calendar", 4*time.Minute, 6*time.Minute))
	kai.Holds[0].Confirmed = false

	lena := status("212", "212", "Lena Nowak", "lena.nowak@contoso.example", "default",
		teams("BeRightBack", "BeRightBack", 2*time.Minute), phone(psync.PhoneAvailable, devs("desk")),
		psync.SidePhone, 50*time.Minute)

	f := &fakeController{
		users:    []psync.UserStatus{anna, ben, chiara, dmitri, elif, long, grace, hiro, ingrid, jamal, kai, lena},
		profiles: []psync.Profile{cal, psync.NewProfile("default"), sales},
		stored: map[string]string{
			"teams.tenant_id":     "contoso.example",
			"teams.client_id":     "6f1c2a9e-8d4b-4e51-9a0f-3c7b2d1e5f48",
			"teams.client_secret": "s3cr3t-value-never-shown",
			"teams.lease":         "15m0s",
			"phone.system":        "ucserver",
			"ucserver.url":        "https://ucserver.office.example:7225",
			"ucserver.user":       "presencebridge",
			"ucserver.password":   "hunter2",
		},
		pending: map[string]string{"phone.system": "applies at the next start (presencebridge restart)"},
		prompt: psync.SignInPrompt{
			Code: "F7KQ-2MXP", URL: "https://microsoft.com/devicelogin",
			Message: "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code F7KQ-2MXP to authenticate.",
			Expires: now.Add(14*time.Minute + 52*time.Second),
		},
		history: map[psync.UserID][]psync.Decision{},
		events:  make(chan psync.Decision, 16),
	}
	f.overview = psync.Overview{
		Version: "1.4.0", Started: now.Add(-2*time.Hour - 5*time.Minute), Mode: "demo", EventRate: 3.4,
		Engine: psync.Status{
			Teams: psync.SideHealth{Known: true, Healthy: true, Synced: true, Since: now.Add(-2 * time.Hour)},
			Phone: psync.SideHealth{Known: true, Healthy: false, Synced: false, Detail: "websocket closed (1006); reconnecting in 4s", Since: now.Add(-40 * time.Second)},
			Stats: psync.Stats{TeamsEvents: 18234, PhoneEvents: 9120, Stale: 12, Commands: 1411, Failures: 7, Yields: 3},
			Holds: 9,
			Orphans: []psync.Hold{{User: "301", Kind: psync.HoldDeviceProtection, Device: "desk", Set: "on", Replaced: "off",
				Reason: "in a Teams call or meeting", Rule: "§1 Teams call, call protection", Since: now.Add(-26 * time.Hour)}},
			InFlight: 1,
		},
		Sides: []psync.SideReport{
			{Side: psync.SideTeams, Name: "Microsoft Graph", Mode: "subscribe", Endpoint: "https://graph.microsoft.com/v1.0", Connected: true,
				Facts: []psync.Fact{
					{Label: "token expires", Value: "app token", Until: now.Add(42*time.Minute + 10*time.Second)},
					{Label: "subscriptions", Value: "12 active", Until: now.Add(2*time.Hour + 50*time.Minute)},
					{Label: "sessions", Value: "3 presence sessions"},
				},
				Throttled: now.Add(35 * time.Second),
				// A broken setup: the adapter retries and meets the same
				// long error again and again.
				Errors: slices.Repeat([]psync.Problem{{At: now.Add(-3 * time.Minute), What: "app sign-in: POST https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token: " +
					"400 Bad Request: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, " +
					"not the client secret ID, for a secret added to app '6f1c2a9e-8d4b-4e51-9a0f-3c7b2d1e5f48'.",
					Fix: "teams.client_secret is wrong or expired: create a new client secret for the app registration and set it"}}, 5),
			},
			{Side: psync.SidePhone, Name: "estos UCServer", Mode: "websocket", Endpoint: "wss://ucserver.office.example:7225/ws/client/websocket", Connected: false,
				Facts: []psync.Fact{
					{Label: "session", Value: "presencebridge@local"},
					{Label: "subscribed users", Value: "12 of 12"},
					{Label: "line monitors", Value: "24 of 24"},
					{Label: "login expires", Until: now.Add(6 * time.Minute), Warn: true},
				},
				Errors: []psync.Problem{
					{At: now.Add(-40 * time.Second), What: "websocket: close 1006 (abnormal closure)", Fix: "Check that the UCServer web service runs and is reachable (ucserver.url)."},
					{At: now.Add(-time.Hour), What: "asnSetAbsentState 205: insufficient rights", Fix: "Give ucserver.user the right to change other users' presence."},
				},
			},
		},
	}
	f.history["202"] = []psync.Decision{
		{At: now.Add(-8 * time.Minute), User: "202", Name: "Ben Okafor", Side: psync.SidePhone, What: "device tel:202-soft", Old: "off", New: "on", Reason: "in a Teams call or meeting", Rule: "§1 Teams call, call protection", Flag: string(psync.FlagCrossDeviceBusy), Profile: "sales", Outcome: psync.OutcomeApplied},
		{At: now.Add(-8 * time.Minute), User: "202", Name: "Ben Okafor", Side: psync.SidePhone, What: "device tel:202-desk", Old: "off", New: "on", Reason: "in a Teams call or meeting", Rule: "§1 Teams call, call protection", Flag: string(psync.FlagCrossDeviceBusy), Profile: "sales", Outcome: psync.OutcomeApplied},
		{At: now.Add(-8 * time.Minute), User: "202", Name: "Ben Okafor", Side: psync.SidePhone, What: "presence", Old: "available", New: "dnd", Reason: "in a Teams call or meeting", Rule: "§1 Teams call", Flag: string(psync.FlagDNDControlsPresence), Profile: "sales", Outcome: psync.OutcomeApplied},
		{At: now.Add(-8*time.Minute - 2*time.Second), User: "202", Name: "Ben Okafor", Side: psync.SideTeams, What: "presence", Old: "Available/Available", New: "Busy/InACall", Reason: "seen in Teams", Outcome: psync.OutcomeObserved},
		{At: now.Add(-3 * time.Hour), User: "202", Name: "Ben Okafor", Side: psync.SidePhone, What: "presence", Old: "dnd", New: "available", Reason: "the Teams call ended", Rule: "§4.1 restore", Outcome: psync.OutcomeReleased},
	}
	f.history["201"] = []psync.Decision{
		{At: now.Add(-3 * time.Minute), User: "201", Name: "Anna Schmidt", Side: psync.SideTeams, What: "session", Old: "", New: "InACall", Reason: "connected call on desk", Rule: "§2 connected call", Flag: string(psync.FlagSetTeamsPresence), Profile: "default", Outcome: psync.OutcomeApplied},
		{At: now.Add(-3*time.Minute - time.Second), User: "201", Name: "Anna Schmidt", Side: psync.SidePhone, What: "call c-7781", Old: "ringing", New: "connected", Reason: "seen on the phone system", Outcome: psync.OutcomeObserved},
	}
	f.audit = []psync.Decision{
		f.history["202"][0],
		{At: now.Add(-9 * time.Minute), User: "211", Name: "Kai Müller", Side: psync.SidePhone, What: "presence", Old: "available", New: "busy", Reason: "in a calendar meeting", Rule: "§1 calendar meeting", Flag: string(psync.FlagCalendarAsCalls), Profile: "calendar", Outcome: psync.OutcomeFailed, Err: "UCServer unreachable"},
		{At: now.Add(-20 * time.Minute), User: "205", Name: "Elif Yılmaz", Side: psync.SidePhone, What: "presence", Old: "dnd", New: "available", Reason: "the user changed it", Outcome: psync.OutcomeYielded},
	}
	return f
}
