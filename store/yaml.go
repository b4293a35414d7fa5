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
	"unicode"
	"unicode/utf8"

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
	Settings *map[string]string `yaml:"settings"`
	Profiles *[]yaml.Node       `yaml:"profiles"`
	Users    *[]yamlUser        `yaml:"users"`
}

// MaxImportSize bounds the configuration an import reads. 10,000 users as
// ExportYAML writes them (GUID, UPN, name, profile) take 2.2 MiB; callers
// that receive a file for an import (the control API, the CLI) stop
// reading at the same size.
const MaxImportSize = 4 << 20

// maxImportNodes bounds the YAML nodes of an import, estimated before the
// file is parsed. yaml.v3 builds the whole node tree first, at about 500
// bytes a node, so a 4 MiB flow sequence [1,1,1,…] alone costs a
// gigabyte; 10,000 users as ExportYAML writes them are about 140,000.
const maxImportNodes = 300_000

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
		if settings, err = readSettings(tx, db.sealer); err != nil {
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

// Config is a configuration as a YAML file gives it, checked for shape
// (known fields, types, duplicates, valid names) but not yet against a
// database. A section the file leaves out is nil and is left alone by an
// import; an empty one ("users: []") is there and empty.
type Config struct {
	Settings map[string]string // as written; a secret may be psync.Mask
	Profiles []psync.Profile   // nil: no profiles section
	Users    []psync.User      // nil: no users section
}

// ParseConfigYAML reads a configuration written like ExportYAML's (and the
// README's user YAML). Errors name the line where the file has one.
func ParseConfigYAML(r io.Reader) (Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxImportSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("store: import: reading the file: %w", err)
	}
	if len(data) > MaxImportSize {
		return Config{}, invalidf("store: import: the file is larger than %d MiB (10,000 users take about 2.2 MiB)", MaxImportSize>>20)
	}
	if n, ok := countNodes(data, maxImportNodes); !ok {
		return Config{}, invalidf("store: import: the file holds more than %d YAML items (%d so far; 10,000 users are about 140,000); "+
			"split it and import the parts with --merge", maxImportNodes, n)
	}
	var doc yamlDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return Config{}, nil // an empty file names nothing
	case err != nil:
		return Config{}, invalidf("store: import: %w", yamlError(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, invalidf("store: import: the file holds more than one YAML document")
	}
	var c Config
	if doc.Settings != nil {
		c.Settings = *doc.Settings
		if c.Settings == nil {
			c.Settings = map[string]string{}
		}
	}
	if doc.Profiles != nil {
		c.Profiles = make([]psync.Profile, 0, len(*doc.Profiles))
		profileLine := make(map[string]int)
		for i := range *doc.Profiles {
			p, line, err := parseProfile(&(*doc.Profiles)[i])
			if err != nil {
				return Config{}, invalidf("store: import: %w", err)
			}
			if first, dup := profileLine[p.Name]; dup {
				return Config{}, invalidf("store: import: line %d: profile %q is given twice (first at line %d)", line, p.Name, first)
			}
			profileLine[p.Name] = line
			c.Profiles = append(c.Profiles, p)
		}
	}
	if doc.Users != nil {
		c.Users = make([]psync.User, 0, len(*doc.Users))
		seen := make(map[psync.UserID]bool)
		for _, yu := range *doc.Users {
			u := yu.user()
			if err := psync.ValidateUser(u); err != nil {
				return Config{}, invalidf("store: import: users: %w", err)
			}
			if seen[u.ID] {
				return Config{}, invalidf("store: import: users: user %s is given twice", u.ID)
			}
			seen[u.ID] = true
			c.Users = append(c.Users, u)
		}
	}
	return c, nil
}

// ImportYAML reads a configuration and applies it in one transaction (see
// PlanImport for what replace and merge do); a bad file changes nothing. It
// returns what changed.
func (db *DB) ImportYAML(r io.Reader, o ImportOptions) (Changes, error) {
	c, err := ParseConfigYAML(r)
	if err != nil {
		return Changes{}, err
	}
	p, err := db.PlanImport(c, o)
	if err != nil {
		return Changes{}, err
	}
	if o.DryRun {
		return p.Changes, nil
	}
	if err := db.ApplyImport(p); err != nil {
		return Changes{}, err
	}
	return p.Changes, nil
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

// countNodes returns an upper bound of the YAML nodes in data, stopping
// once it passes limit (ok is false then). Every node but the first is
// introduced by one of: a flow entry (',' and the first entry after '['
// or '{'), a block sequence entry ("- "), a mapping key or value (':',
// "? "). An entry without a value (a flow mapping's "{a, b}") adds a null
// node, so each mark counts twice. Marks inside quoted text or comments are
// counted too, which only makes the bound looser.
func countNodes(data []byte, limit int) (n int, ok bool) {
	n = 1
	for i, c := range data {
		switch c {
		case ',', '[', '{', ':':
		case '-', '?':
			if i+1 < len(data) {
				switch data[i+1] {
				case ' ', '\t', '\n', '\r':
				default:
					continue
				}
			}
		default:
			continue
		}
		if n += 2; n > limit {
			return n, false
		}
	}
	return n, true
}

// maxYAMLErrors is how many of yaml.v3's unmarshal errors an import
// reports: it keeps one per element, so a long sequence of the wrong type
// would make an error (and a log line) of many megabytes.
const maxYAMLErrors = 5

// yamlError makes a yaml.v3 error fit for a terminal: at most
// maxYAMLErrors unmarshal errors, and no control character or broken UTF-8
// from the file (yaml.v3 quotes keys and up to 7 bytes of values as they
// are).
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return errors.New(printable(err.Error()))
	}
	lines := te.Errors
	more := 0
	if len(lines) > maxYAMLErrors {
		lines, more = lines[:maxYAMLErrors], len(lines)-maxYAMLErrors
	}
	var b strings.Builder
	b.WriteString("yaml: unmarshal errors:")
	for _, l := range lines {
		b.WriteString("\n  ")
		b.WriteString(printable(l))
	}
	if more > 0 {
		fmt.Fprintf(&b, "\n  and %d more", more)
	}
	return errors.New(b.String())
}

// printable escapes control characters and invalid UTF-8 in s, the way %q
// would, and leaves the rest as it is.
func printable(s string) string {
	if psync.CheckText("", s) == nil {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
