package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// allocated is what fn allocates on the heap, in bytes.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// usersYAML is n users as an office has them, in the form ExportYAML writes.
func usersYAML(n int) []byte {
	var b bytes.Buffer
	b.WriteString("profiles:\n  - name: default\n  - name: call-center\nusers:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: user%05d\n    extension: \"%d\"\n    teams_id: 0a1b2c3d-4e5f-6789-abcd-ef01234%05d\n"+
			"    upn: firstname.lastname%05d@contoso-holding.onmicrosoft.com\n    name: Firstname Lastname-Doublename %05d\n    profile: call-center\n",
			i, 20000+i, i, i, i)
	}
	return b.Bytes()
}

// flowSequence is a hostile YAML flow sequence of about size bytes.
func flowSequence(head string, size int) []byte {
	b := make([]byte, 0, size+8)
	b = append(b, head...)
	b = append(b, '[')
	for len(b) < size-2 {
		b = append(b, "1,"...)
	}
	return append(b, "1]"...)
}

func TestParseConfigYAML_BoundsSizeAndItems(t *testing.T) {
	// 10,000 users fit well inside the limit.
	office := usersYAML(10_000)
	if len(office) > store.MaxImportSize*3/5 {
		t.Fatalf("10,000 users take %d bytes, too close to the %d limit", len(office), store.MaxImportSize)
	}
	c, err := store.ParseConfigYAML(bytes.NewReader(office))
	if err != nil || len(c.Users) != 10_000 {
		t.Fatalf("10,000 users: %d, %v", len(c.Users), err)
	}

	for _, tc := range []struct {
		name string
		doc  []byte
		say  string
	}{
		// Each of these cost gigabytes before it was refused.
		{"15 MiB flow sequence", flowSequence("users: ", 15<<20), "larger than 4 MiB"},
		{"4 MiB flow sequence", flowSequence("users: ", store.MaxImportSize-16), "YAML items"},
		{"4 MiB of profiles", flowSequence("profiles: ", store.MaxImportSize-16), "YAML items"},
		{"4 MiB of block entries", bytes.Repeat([]byte("- "), store.MaxImportSize/2-8), "YAML items"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = store.ParseConfigYAML(bytes.NewReader(tc.doc)) })
			if err == nil || !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("error %v, want one saying %q", err, tc.say)
			}
			t.Logf("%d bytes refused after allocating %d MB: %v", len(tc.doc), n>>20, err)
			if n > 32<<20 {
				t.Fatalf("refusing %d bytes allocated %d MB", len(tc.doc), n>>20)
			}
		})
	}
}

func TestParseConfigYAML_ErrorsFitATerminal(t *testing.T) {
	// yaml.v3 keeps one error per element of the wrong type: the import
	// reports the first few and how many more there were.
	doc := flowSequence("users: ", 2000)
	_, err := store.ParseConfigYAML(bytes.NewReader(doc))
	if err == nil || !strings.Contains(err.Error(), "cannot unmarshal") || !strings.Contains(err.Error(), "and 991 more") {
		t.Fatalf("error %v", err)
	}
	if len(err.Error()) > 1000 {
		t.Fatalf("the error is %d bytes long", len(err.Error()))
	}

	// yaml.v3 quotes unknown keys and values as they are: an escape
	// sequence in the file must not reach the admin's terminal.
	for _, doc := range []string{
		"users:\n  - id: \"1\"\n    \"\\e[2J\\e]0;owned\\a\": 1\n",
		"profiles:\n  - name: p\n    \"\\e[2J\": true\n",
		"users:\n  - id: [\"\\e[31m\"]\n",
		"users: \"\\e[2J\\r\\n\"\n",
		"settings:\n  teams.lease: [\"\\e[2J\"]\n",
		"users:\n  - id: \"1\"\n    name: \"\xff\xfe\"\n",
	} {
		_, err := store.ParseConfigYAML(strings.NewReader(doc))
		if err == nil {
			t.Errorf("%q was accepted", doc)
			continue
		}
		if psync.CheckText("", strings.ReplaceAll(err.Error(), "\n", " ")) != nil {
			t.Errorf("%q: the error carries raw control characters or broken UTF-8: %q", doc, err)
		}
	}
}

func TestDB_StoreRefusesControlCharacters(t *testing.T) {
	db := openTemp(t, store.Options{})
	for _, u := range []psync.User{
		{ID: "1", DisplayName: "Ann\x1b[2J"},
		{ID: "2\r\n3"},
		{ID: "4", Extension: "4\x00"},
		{ID: "5", UPN: "a@b\u009b1m"},
	} {
		if err := db.PutUser(u); err == nil || !strings.Contains(err.Error(), "control character") {
			t.Errorf("PutUser(%q): %v", u, err)
		}
	}
	if err := db.SetSetting("ucserver.user", "svc\x1b[2J"); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("SetSetting: %v", err)
	}
	if err := db.UpdateSettings(map[string]string{"teams.service_accounts": "a@b\x1b[2J"}, nil); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("UpdateSettings: %v", err)
	}
	if us, err := db.Users(); err != nil || len(us) != 0 {
		t.Fatalf("users %v, %v", us, err)
	}
	if s, err := db.Settings(); err != nil || s["ucserver.user"] != "" || s["teams.service_accounts"] != "" {
		t.Fatalf("settings %v, %v", s, err)
	}
}
