package teams_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Only sync/teams may import the Graph SDK, azidentity or MSAL: they cost
// minutes and gigabytes to compile (architecture.md).
func TestDeps_GraphSDKOnlyUnderSyncTeams(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/presencebridge/presencebridge/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	heavy := []string{"github.com/microsoftgraph/", "github.com/Azure/azure-sdk-for-go/sdk/azidentity", "github.com/AzureAD/microsoft-authentication-library-for-go"}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "github.com/presencebridge/presencebridge") {
			continue
		}
		checked++
		pkg := strings.TrimPrefix(f[0], "github.com/presencebridge/presencebridge")
		for _, imp := range f[1:] {
			for _, h := range heavy {
				if strings.HasPrefix(imp, h) && pkg != "/sync/teams" {
					t.Errorf("%s imports %s", f[0], imp)
				}
			}
		}
	}
	if checked < 8 {
		t.Fatalf("only %d of our packages listed", checked)
	}
}
