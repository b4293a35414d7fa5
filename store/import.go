package store

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	psync "github.com/presencebridge/presencebridge/sync"
)

// ImportOptions say how an import treats what the file does not name.
type ImportOptions struct {
	// Merge adds and changes what the file names and removes nothing. By
	// default each section the file has (settings, profiles, users)
	// replaces the stored one: what the section leaves out is removed (a
	// setting goes back to its default). A section the file leaves out is
	// never touched.
	Merge bool
	// DryRun plans and reports the changes without writing them.
	DryRun bool
}

// Change is one difference an import makes. Secrets are never shown.
type Change struct {
	Op     string `json:"op"`               // "added", "removed" or "changed"
	Name   string `json:"name"`             // setting key, profile name or user id
	Detail string `json:"detail,omitempty"` // what it was and becomes
}

// Change operations.
const (
	OpAdded   = "added"
	OpRemoved = "removed"
	OpChanged = "changed"
)

// Changes are an import's differences by section, each sorted by name.
type Changes struct {
	Settings []Change `json:"settings"`
	Profiles []Change `json:"profiles"`
	Users    []Change `json:"users"`
}

// Empty reports whether nothing changes.
func (c Changes) Empty() bool {
	return len(c.Settings) == 0 && len(c.Profiles) == 0 && len(c.Users) == 0
}

// ImportPlan is a checked import: the steps that turn the stored
// configuration into the imported one, and the changes they make.
type ImportPlan struct {
	SetSettings    map[string]string // canonical values, secrets in clear
	UnsetSettings  []string
	PutProfiles    []psync.Profile // new and changed
	DeleteProfiles []string
	PutUsers       []psync.User // new and changed
	DeleteUsers    []psync.UserID
	// Settings is every stored setting after the import.
	Settings map[string]string
	Changes  Changes
}

// PlanImport checks c against the stored configuration and returns the
// plan that applies it. Everything is checked against the result: each
// setting by its own rules and psync.ValidateSetting, the rules that span
// settings, the default profile, every user's profile. A secret written as
// psync.Mask keeps the stored value; one that has none is an error naming
// every such key, since importing it would silently drop the secret.
func (db *DB) PlanImport(c Config, o ImportOptions) (ImportPlan, error) {
	var (
		settings map[string]string
		profiles = map[string]psync.Profile{}
		users    = map[psync.UserID]psync.User{}
	)
	err := db.bolt.View(func(tx *bolt.Tx) (err error) {
		if settings, err = readSettings(tx, db.sealer); err != nil {
			return err
		}
		if err := tx.Bucket(bucketProfiles).ForEach(func(k, v []byte) error {
			var p psync.Profile
			if err := decodeRecord(recProfile, string(k), v, &p); err != nil {
				return err
			}
			profiles[p.Name] = p
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var u psync.User
			if err := decodeRecord(recUser, string(k), v, &u); err != nil {
				return err
			}
			users[u.ID] = u
			return nil
		})
	})
	if err != nil {
		return ImportPlan{}, fmt.Errorf("store: import: %w", err)
	}
	p, err := planImport(c, o, settings, profiles, users)
	if err != nil {
		return ImportPlan{}, invalidf("store: import (nothing was changed): %w", err)
	}
	return p, nil
}

func planImport(c Config, o ImportOptions, settings map[string]string, profiles map[string]psync.Profile, users map[psync.UserID]psync.User) (ImportPlan, error) {
	// The configuration after the import.
	wantSettings := maps.Clone(settings)
	if c.Settings != nil {
		if !o.Merge {
			wantSettings = map[string]string{}
		}
		var masked []string
		for _, key := range slices.Sorted(maps.Keys(c.Settings)) {
			spec, err := psync.LookupSetting(key)
			if err != nil {
				return ImportPlan{}, fmt.Errorf("settings: %w", err)
			}
			v := c.Settings[key]
			if spec.Kind == psync.KindSecret && strings.TrimSpace(v) == psync.Mask {
				if old, ok := settings[key]; ok {
					wantSettings[key] = old
				} else {
					masked = append(masked, key)
				}
				continue
			}
			canon, err := spec.Normalize(v)
			if old, ok := settings[key]; err == nil && (!ok || old != canon) {
				// Checked where entered: a value stored before a rule
				// existed does not block an import that keeps it.
				err = psync.ValidateSetting(key, canon)
			}
			if err != nil {
				return ImportPlan{}, fmt.Errorf("settings: %w", err)
			}
			wantSettings[key] = canon
		}
		if len(masked) > 0 {
			return ImportPlan{}, fmt.Errorf("settings: %s %s masked (%s) in the file and this database has no value to keep; "+
				"put the secret in the file, set it first with `presencebridge config set KEY -`, or delete the line",
				strings.Join(masked, ", "), isAre(len(masked)), psync.Mask)
		}
	}
	wantProfiles := maps.Clone(profiles)
	if c.Profiles != nil {
		if !o.Merge {
			wantProfiles = map[string]psync.Profile{}
		}
		for _, p := range c.Profiles {
			wantProfiles[p.Name] = p
		}
	}
	wantUsers := maps.Clone(users)
	if c.Users != nil {
		if !o.Merge {
			wantUsers = map[psync.UserID]psync.User{}
		}
		for _, u := range c.Users {
			wantUsers[u.ID] = u
		}
	}

	// The result must hold together.
	s, err := psync.ParseSettings(wantSettings)
	if err != nil {
		return ImportPlan{}, fmt.Errorf("settings: %w", err)
	}
	if _, ok := wantProfiles[s.DefaultProfile]; !ok {
		return ImportPlan{}, fmt.Errorf("default_profile: profile %q does not exist after the import (profiles: %s)", s.DefaultProfile, profileList(wantProfiles))
	}
	for _, id := range slices.Sorted(maps.Keys(wantUsers)) {
		u := wantUsers[id]
		if u.Profile != "" {
			if _, ok := wantProfiles[u.Profile]; !ok {
				return ImportPlan{}, fmt.Errorf("users: user %s: profile %q does not exist after the import (profiles: %s)", u.ID, u.Profile, profileList(wantProfiles))
			}
		}
	}

	p := ImportPlan{SetSettings: map[string]string{}, Settings: wantSettings}
	for _, key := range slices.Sorted(maps.Keys(wantSettings)) {
		v := wantSettings[key]
		old, had := settings[key]
		if had && old == v {
			continue
		}
		p.SetSettings[key] = v
		spec, _ := psync.LookupSetting(key)
		show := func(s string) string {
			if spec.Kind == psync.KindSecret {
				return "(secret)"
			}
			return fmt.Sprintf("%q", s)
		}
		if had {
			detail := show(old) + " -> " + show(v)
			if spec.Kind == psync.KindSecret {
				detail = "(secret changed)"
			}
			p.Changes.Settings = append(p.Changes.Settings, Change{Op: OpChanged, Name: key, Detail: detail})
		} else {
			p.Changes.Settings = append(p.Changes.Settings, Change{Op: OpAdded, Name: key, Detail: "= " + show(v)})
		}
	}
	for _, key := range slices.Sorted(maps.Keys(settings)) {
		if _, keep := wantSettings[key]; keep {
			continue
		}
		p.UnsetSettings = append(p.UnsetSettings, key)
		detail := "back to its default"
		if spec, err := psync.LookupSetting(key); err == nil && spec.Default != "" {
			detail = fmt.Sprintf("back to its default %q", spec.Default)
		}
		p.Changes.Settings = append(p.Changes.Settings, Change{Op: OpRemoved, Name: key, Detail: detail})
	}
	slices.SortFunc(p.Changes.Settings, func(a, b Change) int { return strings.Compare(a.Name, b.Name) })

	for _, name := range slices.Sorted(maps.Keys(wantProfiles)) {
		np := wantProfiles[name]
		op, had := profiles[name]
		switch {
		case !had:
			p.PutProfiles = append(p.PutProfiles, np)
			p.Changes.Profiles = append(p.Changes.Profiles, Change{Op: OpAdded, Name: name, Detail: profileFlags(np)})
		case op != np:
			p.PutProfiles = append(p.PutProfiles, np)
			p.Changes.Profiles = append(p.Changes.Profiles, Change{Op: OpChanged, Name: name, Detail: profileDiff(op, np)})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(profiles)) {
		if _, keep := wantProfiles[name]; !keep {
			p.DeleteProfiles = append(p.DeleteProfiles, name)
			p.Changes.Profiles = append(p.Changes.Profiles, Change{Op: OpRemoved, Name: name})
		}
	}
	slices.SortFunc(p.Changes.Profiles, func(a, b Change) int { return strings.Compare(a.Name, b.Name) })

	for _, id := range slices.Sorted(maps.Keys(wantUsers)) {
		nu := wantUsers[id]
		ou, had := users[id]
		switch {
		case !had:
			p.PutUsers = append(p.PutUsers, nu)
			p.Changes.Users = append(p.Changes.Users, Change{Op: OpAdded, Name: string(id), Detail: userSummary(nu)})
		case ou != nu:
			p.PutUsers = append(p.PutUsers, nu)
			p.Changes.Users = append(p.Changes.Users, Change{Op: OpChanged, Name: string(id), Detail: UserDiff(ou, nu)})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(users)) {
		if _, keep := wantUsers[id]; !keep {
			p.DeleteUsers = append(p.DeleteUsers, id)
			p.Changes.Users = append(p.Changes.Users, Change{Op: OpRemoved, Name: string(id), Detail: userSummary(users[id])})
		}
	}
	slices.SortFunc(p.Changes.Users, func(a, b Change) int { return strings.Compare(a.Name, b.Name) })
	return p, nil
}

// ApplyImport writes a plan in one transaction, checking once more that
// the result holds together (a change made since the plan may not).
func (db *DB) ApplyImport(p ImportPlan) error {
	var all map[string]string
	err := db.bolt.Update(func(tx *bolt.Tx) (err error) {
		sb := tx.Bucket(bucketSettings)
		for _, k := range p.UnsetSettings {
			if err := sb.Delete([]byte(k)); err != nil {
				return err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(p.SetSettings)) {
			if err := putSetting(tx, db.sealer, k, p.SetSettings[k]); err != nil {
				return fmt.Errorf("settings: %s: %w", k, err)
			}
		}
		pb := tx.Bucket(bucketProfiles)
		for _, pr := range p.PutProfiles {
			v, err := encodeRecord(recProfile, pr)
			if err == nil {
				err = pb.Put([]byte(pr.Name), v)
			}
			if err != nil {
				return fmt.Errorf("profiles: %q: %w", pr.Name, err)
			}
		}
		for _, name := range p.DeleteProfiles {
			if err := pb.Delete([]byte(name)); err != nil {
				return err
			}
		}
		for _, id := range p.DeleteUsers {
			if err := deleteUser(tx, id); err != nil {
				return fmt.Errorf("users: %s: %w", id, err)
			}
		}
		ub := tx.Bucket(bucketUsers)
		for _, u := range p.PutUsers {
			v, err := encodeRecord(recUser, u)
			if err == nil {
				err = ub.Put([]byte(u.ID), v)
			}
			if err != nil {
				return fmt.Errorf("users: %s: %w", u.ID, err)
			}
		}
		if all, err = readSettings(tx, db.sealer); err != nil {
			return err
		}
		if err := checkSettings(tx, all, nil); err != nil {
			return fmt.Errorf("settings: %w", err)
		}
		return ub.ForEach(func(k, v []byte) error {
			var u psync.User
			if err := decodeRecord(recUser, string(k), v, &u); err != nil {
				return err
			}
			if u.Profile != "" && pb.Get([]byte(u.Profile)) == nil {
				return fmt.Errorf("users: user %s: profile %q does not exist", u.ID, u.Profile)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("store: import (nothing was changed): %w", err)
	}
	db.followSettings(all)
	return nil
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func profileList(ps map[string]psync.Profile) string {
	if len(ps) == 0 {
		return "none"
	}
	return nameList(slices.Sorted(maps.Keys(ps)))
}

// profileFlags lists the flags that are on.
func profileFlags(p psync.Profile) string {
	var on []string
	for _, f := range psync.ProfileFlags {
		if v, _ := p.Flag(f.Flag); v {
			on = append(on, string(f.Flag))
		}
	}
	if len(on) == 0 {
		return "every flag off"
	}
	return "on: " + strings.Join(on, ", ")
}

func profileDiff(a, b psync.Profile) string {
	var d []string
	for _, f := range psync.ProfileFlags {
		x, _ := a.Flag(f.Flag)
		y, _ := b.Flag(f.Flag)
		if x != y {
			d = append(d, fmt.Sprintf("%s %v -> %v", f.Flag, x, y))
		}
	}
	return strings.Join(d, "; ")
}

func userSummary(u psync.User) string {
	s := u.Name()
	if u.Profile != "" {
		s += ", profile " + u.Profile
	}
	return s
}

// UserDiff says which fields of a user differ, for an admin to read.
func UserDiff(a, b psync.User) string {
	var d []string
	for _, f := range []struct{ name, x, y string }{
		{"name", a.DisplayName, b.DisplayName}, {"extension", a.Extension, b.Extension},
		{"upn", a.UPN, b.UPN}, {"teams_id", a.TeamsID, b.TeamsID}, {"profile", a.Profile, b.Profile},
	} {
		if f.x != f.y {
			d = append(d, fmt.Sprintf("%s %q -> %q", f.name, f.x, f.y))
		}
	}
	return strings.Join(d, "; ")
}
