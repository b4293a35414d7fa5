//go:build windows

package store_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/presencebridge/presencebridge/store"
)

// The database's own directory is made with an ACL of SYSTEM,
// Administrators and its owner, inherited by nothing from its parent.
func TestOpen_WindowsDirectoryACL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "presencebridge")
	closeChecked(t, openAt(t, filepath.Join(dir, "state.db"), store.Options{}))
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION|windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	sddl := sd.String()
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	me := tu.User.Sid.String()
	if !strings.Contains(sddl, "D:P") || !strings.Contains(sddl, ";;;SY)") || !strings.Contains(sddl, ";;;BA)") {
		t.Fatalf("ACL %s", sddl)
	}
	for _, other := range []string{";;;WD)", ";;;AU)", ";;;BU)", ";;;CO)"} {
		if strings.Contains(sddl, other) {
			t.Errorf("ACL %s grants %s", sddl, other)
		}
	}
	if !tu.User.Sid.IsWellKnown(windows.WinLocalSystemSid) && !strings.Contains(sddl, me) && !strings.Contains(sddl, ";;;BA)") {
		t.Errorf("ACL %s lacks the owner %s", sddl, me)
	}
	// The database file inherits it.
	fsd, err := windows.GetNamedSecurityInfo(filepath.Join(dir, "state.db"), windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	if s := fsd.String(); strings.Contains(s, ";;;BU)") || strings.Contains(s, ";;;WD)") {
		t.Errorf("database ACL %s", s)
	}
}

// A directory that exists already, owned by an account without admin
// rights, is refused.
func TestOpen_WindowsRefusesADirectoryOfAnother(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "presencebridge")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	users, err := windows.CreateWellKnownSid(windows.WinBuiltinUsersSid)
	if err != nil {
		t.Fatal(err)
	}
	// Setting another owner needs SeRestorePrivilege (an elevated
	// administrator); skip where this test runs without it.
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION, users, nil, nil, nil); err != nil {
		t.Skipf("cannot give the directory to BUILTIN\\Users here: %v", err)
	}
	_, err = store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err == nil || !strings.Contains(err.Error(), "not to SYSTEM, Administrators or you") {
		t.Fatalf("open: %v", err)
	}
}
