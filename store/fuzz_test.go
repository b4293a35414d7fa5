package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	psync "github.com/presencebridge/presencebridge/sync"
)

// FuzzParseConfigYAML: whatever a file holds, an import answers with a
// configuration whose text is fit for a terminal, or an error that is
// short and printable; never a panic.
func FuzzParseConfigYAML(f *testing.F) {
	for _, seed := range []string{
		"",
		"settings:\n  teams.lease: 20m\n  teams.client_secret: '********'\nprofiles:\n  - name: default\n    set_presence_in_teams: true\nusers:\n  - id: \"100\"\n    name: Ann\n    profile: default\n",
		"users:\n  - id: \"1\"\n    name: \"Ann\\e[2J\"\n",
		"users: [1, 2, {id: x}]\n",
		"profiles: [&a {name: p}, *a]\n",
		"settings: {a: b, c: [d]}\n",
		"users:\n  - id: \"1\"\n    \"\\e]0;x\\a\": 1\n",
		"- a\n- b\n",
		"settings: {}\n---\nsettings: {}\n",
		"a: &a [*a, *a]\n",
		"users: [[[[[[[[]]]]]]]]\n",
		"{? a : b}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfigYAML(bytes.NewReader(data))
		if err != nil {
			msg := err.Error()
			if len(msg) > 8<<10 {
				t.Fatalf("a %d-byte error", len(msg))
			}
			if !utf8.ValidString(msg) || strings.ContainsFunc(strings.ReplaceAll(msg, "\n", ""), func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) {
				t.Fatalf("the error carries control characters or broken UTF-8: %q", msg)
			}
			return
		}
		for _, u := range c.Users {
			if err := psync.ValidateUser(u); err != nil {
				t.Fatalf("accepted user %q: %v", u.ID, err)
			}
		}
		for _, p := range c.Profiles {
			if err := psync.ValidateProfileName(p.Name); err != nil {
				t.Fatalf("accepted profile %q: %v", p.Name, err)
			}
		}
	})
}

// FuzzBoltHeader: the reader of the database's head and page tree (run
// before bbolt may touch a file) answers every file with nil or an error,
// never a panic or a fault, and nil only for a file bbolt can open.
func FuzzBoltHeader(f *testing.F) {
	dir := f.TempDir()
	real := filepath.Join(dir, "seed.db")
	db, err := Open(real, Options{})
	if err != nil {
		f.Fatal(err)
	}
	if err := db.PutUser(psync.User{ID: "100", DisplayName: "Ann"}); err != nil {
		f.Fatal(err)
	}
	db.Close()
	good, err := os.ReadFile(real)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:4096])
	f.Add(good[:8192])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xed, 0xda, 0x0c, 0xed}, 2048))
	damaged := bytes.Clone(good)
	damaged[4096*2+10] ^= 0xff // a page header
	f.Add(damaged)
	f.Add(boltFile(nestedInline(55))) // walked in 2^55 steps before (header_test.go)

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		path := filepath.Join(t.TempDir(), "f.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := checkBoltHeader(path); err != nil {
			return
		}
		_ = checkBoltPages(path)
	})
}
