package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.yaml.in/yaml/v3"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The configuration as YAML: the settings an admin set, the profiles with
// every flag under its psync name, and the users under their psync.User json
// names. The profile flags are read from psync.ProfileFlags rather than a
// struct of our own, so a flag added in sync is exported and accepted here
// without a change.

// yamlUser is psync.User under the names of its json tags.
type yamlUser struct {
	ID          string `yaml:"id"`
	Extension   string `yaml:"extension,omitempty"`
	TeamsID     string `yaml:"teams_id,omitempty"`
	UPN         string `yaml:"upn,omitempty"`
	DisplayName string `yaml:"name,omitempty"`
	Profile     string `yaml:"profile,omitempty"`
}

func (u yamlUser) user() psync.User {
	return psync.User{ID: psync.UserID(u.ID), Extension: u.Extension, TeamsID: u.TeamsID,
		UPN: u.UPN, DisplayName: u.DisplayName, Profile: u.Profile}
}

func fromUser(u psync.User) yamlUser {
	return yamlUser{ID: string(u.ID), Extension: u.Extension, TeamsID: u.TeamsID,
		UPN: u.UPN, DisplayName: u.DisplayName, Profile: u.Profile}
}

// yamlDoc is the import's top level; profiles are read node by node.
type yamlDoc struct {
	Settings map[string]string `yaml:"settings"`
	Profiles []yaml.Node       `yaml:"profiles"`
	Users    []yamlUser        `yaml:"users"`
}

// maxImport bounds what ImportYAML reads; a configuration is kilobytes.
const maxImport = 16 << 20

// ExportYAML writes the configuration. Secrets are written as psync.Mask
// unless showSecrets; ImportYAML reads a masked secret as "keep the stored
// one", so an export can be edited and imported back.
func (db *DB) ExportYAML(w io.Writer, showSecrets bool) error {
	var (
		settings map[string]string
		profiles []psync.Profile
		users    []psync.User
		err      error
	)
	// Read everything in one transaction so the three parts agree; encode
	// after it.
	err = db.bolt.View(func(tx *bolt.Tx) error {
		if settings, err = readSettings(tx); err != nil {
			return err
		}
		if err := tx.Bucket(bucketProfiles).ForEach(func(k, v []byte) error {
			var p psync.Profile
			if err := decodeRecord(recProfile, string(k), v, &p); err != nil {
				return err
			}
			profiles = append(profiles, p)
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var u psync.User
			if err := decodeRecord(recUser, string(k), v, &u); err != nil {
				return err
			}
			users = append(users, u)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}

	root := &yaml.Node{Kind: yaml.MappingNode}
	sn := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		spec, err := psync.LookupSetting(k)
		if err != nil {
			// Not in this build's registry: its kind, so whether it is
			// a secret, is unknown; leave it out rather than risk it.
			db.log.Warn("export: leaving out a stored setting this build does not know", "key", k)
			continue
		}
		v := settings[k]
		if !showSecrets {
			v = spec.Show(v)
		}
		sn.Content = append(sn.Content, str(k), str(v))
	}
	pn := &yaml.Node{Kind: yaml.SequenceNode}
	for _, p := range profiles {
		m := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{str("name"), str(p.Name)}}
		for _, f := range psync.ProfileFlags {
			on, err := p.Flag(f.Flag)
			if err != nil {
				return fmt.Errorf("store: export profile %q: %w", p.Name, err)
			}
			m.Content = append(m.Content, str(string(f.Flag)),
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(on), LineComment: f.Help})
		}
		pn.Content = append(pn.Content, m)
	}
	un := &yaml.Node{Kind: yaml.SequenceNode}
	for _, u := range users {
		var n yaml.Node
		if err := n.Encode(fromUser(u)); err != nil {
			return fmt.Errorf("store: export user %s: %w", u.ID, err)
		}
		un.Content = append(un.Content, &n)
	}
	for _, n := range []*yaml.Node{sn, pn, un} {
		if len(n.Content) == 0 {
			n.Style = yaml.FlowStyle
		}
	}
	root.Content = append(root.Content, str("settings"), sn, str("profiles"), pn, str("users"), un)
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root},
		HeadComment: "presencebridge configuration (settings an admin set; the rest take their defaults)"}
	if !showSecrets {
		doc.HeadComment += "\nsecrets show as " + psync.Mask + "; importing that value keeps the stored secret"
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	return nil
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// ImportYAML reads a configuration written like ExportYAML's and merges it
// into the store: the settings, profiles and users it names are set, the
// others stay. Everything is checked against the merged result first and
// written in one transaction, so a bad file changes nothing. A profile flag
// the file leaves out takes psync.NewProfile's default.
func (db *DB) ImportYAML(r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, maxImport+1))
	if err != nil {
		return fmt.Errorf("store: import: %w", err)
	}
	if len(data) > maxImport {
		return fmt.Errorf("store: import: the file is larger than %d MiB", maxImport>>20)
	}
	var doc yamlDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil // an empty file imports nothing
	case err != nil:
		return fmt.Errorf("store: import: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("store: import: the file holds more than one YAML document")
	}

	profiles := make([]psync.Profile, 0, len(doc.Profiles))
	profileLine := make(map[string]int)
	for i := range doc.Profiles {
		p, line, err := parseProfile(&doc.Profiles[i])
		if err != nil {
			return fmt.Errorf("store: import: %w", err)
		}
		if first, dup := profileLine[p.Name]; dup {
			return fmt.Errorf("store: import: line %d: profile %q is given twice (first at line %d)", line, p.Name, first)
		}
		profileLine[p.Name] = line
		profiles = append(profiles, p)
	}

	var merged map[string]string
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		stored, err := readSettings(tx)
		if err != nil {
			return err
		}
		merged = maps.Clone(stored)
		set := make(map[string]string)
		for _, key := range slices.Sorted(maps.Keys(doc.Settings)) {
			spec, err := psync.LookupSetting(key)
			if err != nil {
				return fmt.Errorf("settings: %w", err)
			}
			value := doc.Settings[key]
			if spec.Kind == psync.KindSecret && strings.TrimSpace(value) == psync.Mask {
				if _, ok := stored[key]; !ok {
					db.log.Warn("import: a masked secret with none stored stays unset", "key", key)
				}
				continue
			}
			canon, err := spec.Normalize(value)
			if err != nil {
				return fmt.Errorf("settings: %w", err)
			}
			merged[key], set[key] = canon, canon
		}
		names := make(map[string]bool, len(profiles))
		for _, p := range profiles {
			names[p.Name] = true
		}
		if err := checkSettings(tx, merged, names); err != nil {
			return fmt.Errorf("settings: %w", err)
		}
		users := make([]psync.User, 0, len(doc.Users))
		seen := make(map[psync.UserID]bool)
		for _, yu := range doc.Users {
			u := yu.user()
			if err := u.Validate(); err != nil {
				return fmt.Errorf("users: %w", err)
			}
			if seen[u.ID] {
				return fmt.Errorf("users: user %s is given twice", u.ID)
			}
			seen[u.ID] = true
			if u.Profile != "" && !names[u.Profile] && tx.Bucket(bucketProfiles).Get([]byte(u.Profile)) == nil {
				return fmt.Errorf("users: user %s: profile %q does not exist (neither stored nor in the file)", u.ID, u.Profile)
			}
			users = append(users, u)
		}

		for _, key := range slices.Sorted(maps.Keys(set)) {
			if err := putSetting(tx, key, set[key]); err != nil {
				return fmt.Errorf("settings: %s: %w", key, err)
			}
		}
		for _, p := range profiles {
			v, err := encodeRecord(recProfile, p)
			if err == nil {
				err = tx.Bucket(bucketProfiles).Put([]byte(p.Name), v)
			}
			if err != nil {
				return fmt.Errorf("profiles: %q: %w", p.Name, err)
			}
		}
		for _, u := range users {
			v, err := encodeRecord(recUser, u)
			if err == nil {
				err = tx.Bucket(bucketUsers).Put([]byte(u.ID), v)
			}
			if err != nil {
				return fmt.Errorf("users: %s: %w", u.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: import (nothing was changed): %w", err)
	}
	db.followSettings(merged)
	return nil
}

// parseProfile reads one profile: name plus flags by their psync names.
func parseProfile(n *yaml.Node) (psync.Profile, int, error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	line := n.Line
	if n.Kind != yaml.MappingNode {
		return psync.Profile{}, line, fmt.Errorf("line %d: a profile is a mapping of name and flags", line)
	}
	var name string
	flags := make(map[psync.ProfileFlag]bool)
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if first, dup := seen[k.Value]; dup {
			return psync.Profile{}, line, fmt.Errorf("line %d: field %q is given twice (first at line %d)", k.Line, k.Value, first)
		}
		seen[k.Value] = k.Line
		if k.Value == "name" {
			if err := v.Decode(&name); err != nil || v.Kind != yaml.ScalarNode {
				return psync.Profile{}, line, fmt.Errorf("line %d: a profile name is a string", v.Line)
			}
			continue
		}
		f := psync.ProfileFlag(k.Value)
		var probe psync.Profile
		if err := probe.SetFlag(f, false); err != nil {
			return psync.Profile{}, line, fmt.Errorf("line %d: profile field %q is not known (known: name, %s)", k.Line, k.Value, flagNames())
		}
		var on bool
		if err := v.Decode(&on); err != nil {
			return psync.Profile{}, line, fmt.Errorf("line %d: profile field %s must be true or false", v.Line, k.Value)
		}
		flags[f] = on
	}
	if err := psync.ValidateProfileName(name); err != nil {
		return psync.Profile{}, line, fmt.Errorf("line %d: %w", line, err)
	}
	p := psync.NewProfile(name)
	for f, on := range flags {
		if err := p.SetFlag(f, on); err != nil {
			return psync.Profile{}, line, fmt.Errorf("line %d: profile %q: %w", line, name, err)
		}
	}
	return p, line, nil
}

func flagNames() string {
	names := make([]string, len(psync.ProfileFlags))
	for i, f := range psync.ProfileFlags {
		names[i] = string(f.Flag)
	}
	return strings.Join(names, ", ")
}
