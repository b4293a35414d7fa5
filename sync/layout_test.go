package sync_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/presencebridge/presencebridge"

// The dependency rules of the layout: the domain imports no adapter, and
// each adapter (a directory under sync/ with its simulator below it)
// imports the domain and its own library, never another adapter (and the
// SIP library only the SIP connector). A new phone system is then one
// package plus one row of the wiring's table.
func TestLayout_AdaptersDoNotImportEachOther(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}} | {{join .TestImports \" \"}} {{join .XTestImports \" \"}}", module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	adapters := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, line := range lines {
		if a := adapterOf(strings.Fields(line)[0]); a != "" {
			adapters[a] = true
		}
	}
	for _, want := range []string{"teams", "ucserver"} {
		if !adapters[want] {
			t.Fatalf("adapter sync/%s not listed; go list said:\n%s", want, out)
		}
	}
	for _, line := range lines {
		f := strings.Fields(line)
		pkg, own := f[0], adapterOf(f[0])
		inTests := false // the domain's own tests may use its simulated office
		for _, imp := range f[1:] {
			if imp == "|" {
				inTests = true
				continue
			}
			other := adapterOf(imp)
			switch {
			case strings.HasPrefix(imp, "github.com/emiago/sipgo") && own != "sip":
				t.Errorf("%s imports %s: only the SIP connector (sync/sip) speaks SIP", pkg, imp)
			case pkg == module+"/sync" && !inTests && strings.HasPrefix(imp, module+"/"):
				t.Errorf("the domain package imports %s", imp)
			case own != "" && other != "" && other != own && other != "simoffice":
				t.Errorf("%s (adapter %s) imports %s (adapter %s): adapters never import each other", pkg, own, imp, other)
			}
		}
	}
}

// adapterOf names the adapter a package belongs to: the directory right
// under sync/ ("" for the domain itself and for packages elsewhere).
func adapterOf(pkg string) string {
	rest, ok := strings.CutPrefix(pkg, module+"/sync/")
	if !ok {
		return ""
	}
	a, _, _ := strings.Cut(rest, "/")
	return a
}
