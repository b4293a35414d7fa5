package sync

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRulesDoc_InStepWithTheCode keeps RULES.md, which the console and the
// audit log cite, in step with the code: every section a decision cites
// exists; every Teams state the bridge names is in the §1 table; every
// profile flag is in the §3 table with the default a new profile has; and
// every function, type and file a "Code:" line names exists.
func TestRulesDoc_InStepWithTheCode(t *testing.T) {
	doc, err := os.ReadFile("RULES.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, part := range regexp.MustCompile(`(?m)^## `).Split(string(doc), -1)[1:] {
		if m := regexp.MustCompile(`^(§\d)`).FindString(part); m != "" {
			sections[m] = part
		}
	}

	// Sections cited by the code ("§1 Teams call", "§2 connected call").
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var source strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		source.Write(b)
		for _, cite := range regexp.MustCompile(`"(§\d)`).FindAllStringSubmatch(string(b), -1) {
			if sections[cite[1]] == "" {
				t.Errorf("%s cites %s, which RULES.md does not have", f, cite[1])
			}
		}
	}

	for _, name := range teamsStateNames {
		if !strings.Contains(sections["§1"], name) {
			t.Errorf("Teams state %q (cited as §1 %s) is not in the §1 table", name, name)
		}
	}

	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (on|off) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(sections["§3"], -1) {
		documented[m[1]] = m[2]
	}
	def := NewProfile("x")
	for _, f := range ProfileFlags {
		on, err := def.Flag(f.Flag)
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "on", false: "off"}[on]
		switch got, ok := documented[string(f.Flag)]; {
		case !ok:
			t.Errorf("profile flag %s is not in the §3 table", f.Flag)
		case got != want:
			t.Errorf("§3 says %s defaults to %s; a new profile has it %s", f.Flag, got, want)
		}
		delete(documented, string(f.Flag))
	}
	for name := range documented {
		t.Errorf("§3 documents a profile flag %s that the code does not have", name)
	}

	// "Code: `Name` in `file.go`" and "`file.go` (...)".
	for _, line := range regexp.MustCompile("(?ms)^Code: .*?(?:\n\n|\\z)").FindAllString(string(doc), -1) {
		for _, m := range regexp.MustCompile("`([A-Za-z_.]+)`").FindAllStringSubmatch(line, -1) {
			name := m[1]
			if strings.HasSuffix(name, ".go") {
				if _, err := os.Stat(name); err != nil {
					t.Errorf("RULES.md names the file %s: %v", name, err)
				}
				continue
			}
			decl := regexp.MustCompile(`(?m)^(func( \([^)]*\))?|type) ` + regexp.QuoteMeta(name) + `\b`)
			if !decl.MatchString(source.String()) {
				t.Errorf("RULES.md names %s, which the package does not declare", name)
			}
		}
	}
}
