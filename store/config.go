package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Settings returns the settings an admin set, by key, in canonical form and
// with secrets in clear (the service needs them; output masks them with
// psync's SettingSpec.Show). Keys not returned take their default.
func (db *DB) Settings() (map[string]string, error) {
	var (
		out        map[string]string
		unreadable map[string]error
	)
	err := db.bolt.View(func(tx *bolt.Tx) (err error) {
		out, unreadable, err = readSettingsReport(tx, db.sealer)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: settings: %w", err)
	}
	for k, err := range unreadable {
		db.log.Warn("a stored secret cannot be read on this machine and counts as not set; set it again (presencebridge config set KEY -)",
			"key", k, "err", err)
	}
	return out, nil
}

// SetSetting validates a value through psync's registry, stores its
// canonical form and keeps the rules that span keys (a keep-alive shorter
// than its lease, an existing default profile): a value that would break one
// is refused and nothing is written.
func (db *DB) SetSetting(key, value string) error {
	spec, err := psync.LookupSetting(key)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if spec.Kind == psync.KindSecret && strings.TrimSpace(value) == psync.Mask {
		return fmt.Errorf("store: %s: %q is the mask shown in place of the secret; give the secret itself", key, psync.Mask)
	}
	canon, err := spec.Normalize(value)
	if err == nil {
		err = psync.CheckText(key, canon)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	var all map[string]string
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if all, err = readSettings(tx, db.sealer); err != nil {
			return err
		}
		all[key] = canon
		if err := checkSettings(tx, all, nil); err != nil {
			return err
		}
		return putSetting(tx, db.sealer, key, canon)
	})
	if err != nil {
		return fmt.Errorf("store: set %s: %w", key, err)
	}
	db.followSettings(all)
	return nil
}

// UnsetSetting removes a setting so that it takes its default again; that
// default must still fit the other settings. Unsetting a key that is not set
// is not an error.
func (db *DB) UnsetSetting(key string) error {
	var all map[string]string
	err := db.bolt.Update(func(tx *bolt.Tx) (err error) {
		if all, err = readSettings(tx, db.sealer); err != nil {
			return err
		}
		if _, ok := all[key]; !ok {
			// A key no longer in the registry can still be removed.
			_, err := psync.LookupSetting(key)
			return err
		}
		delete(all, key)
		if err := checkSettings(tx, all, nil); err != nil {
			return fmt.Errorf("its default would not fit: %w", err)
		}
		return tx.Bucket(bucketSettings).Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("store: unset %s: %w", key, err)
	}
	db.followSettings(all)
	return nil
}

// readSettings returns the stored settings in clear. A sealed secret that
// cannot be unsealed here is left out, as if it were not set, so that the
// service says it is missing and `config set` can replace it.
func readSettings(tx *bolt.Tx, sl sealer) (map[string]string, error) {
	out, _, err := readSettingsReport(tx, sl)
	return out, err
}

// readSettingsReport is readSettings that also says which secrets it left
// out, and why.
func readSettingsReport(tx *bolt.Tx, sl sealer) (map[string]string, map[string]error, error) {
	out := make(map[string]string)
	var unreadable map[string]error
	err := tx.Bucket(bucketSettings).ForEach(func(k, v []byte) error {
		var s string
		if err := decodeRecord(recSetting, string(k), v, &s); err != nil {
			return err
		}
		plain, err := unsealSetting(sl, s)
		if err != nil {
			if unreadable == nil {
				unreadable = map[string]error{}
			}
			unreadable[string(k)] = err
			return nil
		}
		out[string(k)] = plain
		return nil
	})
	return out, unreadable, err
}

// putSetting stores a setting, sealing a secret where the OS can.
func putSetting(tx *bolt.Tx, sl sealer, key, value string) error {
	stored, err := sealSetting(sl, key, value)
	if err != nil {
		return err
	}
	v, err := encodeRecord(recSetting, stored)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketSettings).Put([]byte(key), v)
}

// checkSettings checks the settings as a whole: psync's cross-key rules and
// that the default profile exists, in the stored profiles or in extra.
func checkSettings(tx *bolt.Tx, all map[string]string, extra map[string]bool) error {
	s, err := psync.ParseSettings(all)
	if err != nil {
		return err
	}
	if !extra[s.DefaultProfile] && tx.Bucket(bucketProfiles).Get([]byte(s.DefaultProfile)) == nil {
		return fmt.Errorf("default_profile: profile %q does not exist", s.DefaultProfile)
	}
	return nil
}

// defaultProfile is the profile of users that name none.
func defaultProfile(tx *bolt.Tx) (string, error) {
	all, err := readSettings(tx, nil) // no secret is needed here
	if err != nil {
		return "", err
	}
	s, err := psync.ParseSettings(all)
	if err != nil {
		return "", err
	}
	return s.DefaultProfile, nil
}

// Profiles returns every profile, sorted by name.
func (db *DB) Profiles() ([]psync.Profile, error) {
	var out []psync.Profile
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProfiles).ForEach(func(k, v []byte) error {
			var p psync.Profile
			if err := decodeRecord(recProfile, string(k), v, &p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: profiles: %w", err)
	}
	return out, nil
}

// Profile returns one profile; a missing one is ErrNotFound.
func (db *DB) Profile(name string) (psync.Profile, error) {
	var p psync.Profile
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketProfiles).Get([]byte(name))
		if v == nil {
			return ErrNotFound
		}
		return decodeRecord(recProfile, name, v, &p)
	})
	if err != nil {
		return psync.Profile{}, fmt.Errorf("store: profile %q: %w", name, err)
	}
	return p, nil
}

// PutProfile creates or replaces a profile.
func (db *DB) PutProfile(p psync.Profile) error {
	if err := psync.ValidateProfileName(p.Name); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	v, err := encodeRecord(recProfile, p)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProfiles).Put([]byte(p.Name), v)
	})
	if err != nil {
		return fmt.Errorf("store: put profile %q: %w", p.Name, err)
	}
	return nil
}

// DeleteProfile deletes a profile that is neither the default nor in use.
func (db *DB) DeleteProfile(name string) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		profiles := tx.Bucket(bucketProfiles)
		if profiles.Get([]byte(name)) == nil {
			return ErrNotFound
		}
		def, err := defaultProfile(tx)
		if err != nil {
			return err
		}
		if name == def {
			return errors.New("it is the default profile (setting default_profile); make another profile the default first")
		}
		var users []string
		err = tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var u psync.User
			if err := decodeRecord(recUser, string(k), v, &u); err != nil {
				return err
			}
			if u.Profile == name {
				users = append(users, string(u.ID))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("users %s are on it; move them to another profile first", nameList(users))
		}
		return profiles.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("store: delete profile %q: %w", name, err)
	}
	return nil
}

// nameList renders names for an error message, at most ten of them.
func nameList(names []string) string {
	const most = 10
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
}

// Users returns every user, ordered by id.
func (db *DB) Users() ([]psync.User, error) {
	var out []psync.User
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var u psync.User
			if err := decodeRecord(recUser, string(k), v, &u); err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: users: %w", err)
	}
	return out, nil
}

// PutUser creates or replaces a user. Its profile must exist ("" is the
// default profile).
func (db *DB) PutUser(u psync.User) error {
	if err := u.Validate(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := checkUserText(u); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	v, err := encodeRecord(recUser, u)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if u.Profile != "" && tx.Bucket(bucketProfiles).Get([]byte(u.Profile)) == nil {
			return fmt.Errorf("profile %q does not exist", u.Profile)
		}
		return tx.Bucket(bucketUsers).Put([]byte(u.ID), v)
	})
	if err != nil {
		return fmt.Errorf("store: put user %s: %w", u.ID, err)
	}
	return nil
}

// checkUserText refuses a user whose fields hold text that would break a
// terminal or a log line (control characters, broken UTF-8). The formats
// (a GUID Teams id, a UPN) are checked where an admin enters them
// (psync.ValidateUser); the store only keeps what it holds printable.
func checkUserText(u psync.User) error {
	for _, f := range []struct{ name, v string }{
		{"id", string(u.ID)}, {"extension", u.Extension}, {"teams_id", u.TeamsID},
		{"upn", u.UPN}, {"name", u.DisplayName}, {"profile", u.Profile},
	} {
		if err := psync.CheckText("user "+f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

// DeleteUser deletes a user and its last-known state. Its holds stay: what
// the bridge imposed on the user's behalf must still be given back.
func (db *DB) DeleteUser(id psync.UserID) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error { return deleteUser(tx, id) })
	if err != nil {
		return fmt.Errorf("store: delete user %s: %w", id, err)
	}
	return nil
}

func deleteUser(tx *bolt.Tx, id psync.UserID) error {
	users := tx.Bucket(bucketUsers)
	if users.Get([]byte(id)) == nil {
		return ErrNotFound
	}
	lk := tx.Bucket(bucketLastKnown)
	for _, side := range [][]byte{bucketLastKnownTeams, bucketLastKnownPhone} {
		if err := lk.Bucket(side).Delete([]byte(id)); err != nil {
			return err
		}
	}
	return users.Delete([]byte(id))
}

// User returns one user; a missing one is ErrNotFound.
func (db *DB) User(id psync.UserID) (psync.User, error) {
	var u psync.User
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsers).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		return decodeRecord(recUser, string(id), v, &u)
	})
	if err != nil {
		return psync.User{}, fmt.Errorf("store: user %q: %w", id, err)
	}
	return u, nil
}

// RenameProfile gives a profile a new name in one transaction: the users
// on it move along, and so does default_profile when it named the old one.
func (db *DB) RenameProfile(old, name string) error {
	if err := psync.ValidateProfileName(name); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	var all map[string]string
	err := db.bolt.Update(func(tx *bolt.Tx) (err error) {
		profiles := tx.Bucket(bucketProfiles)
		v := profiles.Get([]byte(old))
		if v == nil {
			return ErrNotFound
		}
		if profiles.Get([]byte(name)) != nil {
			return fmt.Errorf("profile %q already exists: %w", name, ErrExists)
		}
		var p psync.Profile
		if err := decodeRecord(recProfile, old, v, &p); err != nil {
			return err
		}
		p.Name = name
		nv, err := encodeRecord(recProfile, p)
		if err != nil {
			return err
		}
		if err := profiles.Put([]byte(name), nv); err != nil {
			return err
		}
		if err := profiles.Delete([]byte(old)); err != nil {
			return err
		}
		users := tx.Bucket(bucketUsers)
		var moved []psync.User
		if err := users.ForEach(func(k, v []byte) error {
			var u psync.User
			if err := decodeRecord(recUser, string(k), v, &u); err != nil {
				return err
			}
			if u.Profile == old {
				u.Profile = name
				moved = append(moved, u)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, u := range moved {
			uv, err := encodeRecord(recUser, u)
			if err != nil {
				return err
			}
			if err := users.Put([]byte(u.ID), uv); err != nil {
				return err
			}
		}
		if all, err = readSettings(tx, db.sealer); err != nil {
			return err
		}
		if def, err := defaultProfile(tx); err != nil {
			return err
		} else if def == old {
			all["default_profile"] = name
			if err := putSetting(tx, db.sealer, "default_profile", name); err != nil {
				return err
			}
		}
		return checkSettings(tx, all, nil)
	})
	if err != nil {
		return fmt.Errorf("store: rename profile %q to %q: %w", old, name, err)
	}
	db.followSettings(all)
	return nil
}

// UpdateSettings sets and unsets several settings in one transaction, so
// that rules spanning keys (a keep-alive shorter than its lease) are checked
// on the result rather than on each step.
func (db *DB) UpdateSettings(set map[string]string, unset []string) error {
	canon := make(map[string]string, len(set))
	for k, v := range set {
		spec, err := psync.LookupSetting(k)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if spec.Kind == psync.KindSecret && strings.TrimSpace(v) == psync.Mask {
			return fmt.Errorf("store: %s: %q is the mask shown in place of the secret; give the secret itself", k, psync.Mask)
		}
		if canon[k], err = spec.Normalize(v); err == nil {
			err = psync.CheckText(k, canon[k])
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	var all map[string]string
	err := db.bolt.Update(func(tx *bolt.Tx) (err error) {
		if all, err = readSettings(tx, db.sealer); err != nil {
			return err
		}
		for _, k := range unset {
			delete(all, k)
			if err := tx.Bucket(bucketSettings).Delete([]byte(k)); err != nil {
				return err
			}
		}
		for k, v := range canon {
			all[k] = v
			if err := putSetting(tx, db.sealer, k, v); err != nil {
				return err
			}
		}
		return checkSettings(tx, all, nil)
	})
	if err != nil {
		return fmt.Errorf("store: settings: %w", err)
	}
	db.followSettings(all)
	return nil
}

// Subscription is a Microsoft Graph change-notification subscription the
// bridge created, kept so that after a restart a still-valid one is reused
// rather than duplicated (sync/RULES.md §4.4).
type Subscription struct {
	ID          string    `json:"id"`
	Resource    string    `json:"resource"`
	Account     string    `json:"account,omitempty"`
	ClientState string    `json:"client_state,omitempty"`
	UserIDs     []string  `json:"user_ids,omitempty"`
	NotifyURL   string    `json:"notify_url,omitempty"`
	Expires     time.Time `json:"expires"`
	Created     time.Time `json:"created"`
}

// PutSubscription creates or replaces a subscription.
func (db *DB) PutSubscription(s Subscription) error {
	if strings.TrimSpace(s.ID) == "" {
		return errors.New("store: subscription: the id is empty")
	}
	v, err := encodeRecord(recSubscription, s)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSubscriptions).Put([]byte(s.ID), v)
	})
	if err != nil {
		return fmt.Errorf("store: put subscription %s: %w", s.ID, err)
	}
	return nil
}

// Subscriptions returns every subscription, ordered by id.
func (db *DB) Subscriptions() ([]Subscription, error) {
	var out []Subscription
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSubscriptions).ForEach(func(k, v []byte) error {
			var s Subscription
			if err := decodeRecord(recSubscription, string(k), v, &s); err != nil {
				return err
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: subscriptions: %w", err)
	}
	return out, nil
}

// DeleteSubscription forgets a subscription; forgetting one that is not
// there is not an error (Graph may have dropped it first).
func (db *DB) DeleteSubscription(id string) error {
	if id == "" {
		return errors.New("store: delete subscription: the id is empty")
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSubscriptions).Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("store: delete subscription %s: %w", id, err)
	}
	return nil
}
