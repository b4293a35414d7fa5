//go:build windows

package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows the database's directory is what protects it: %ProgramData%
// lets every user read what is made in it, and chmod does nothing. The
// directory is made with a protected ACL of its own (SYSTEM,
// Administrators and its owner: full control, nobody else), and one that
// exists already is refused unless SYSTEM, Administrators or this user own
// it: a user without admin rights could have made it beforehand, to read
// the secrets or plant a database of theirs.

// secureDir checks (and for a read-write open, makes or tightens) the
// database's directory.
func secureDir(dir string, write bool, log *slog.Logger) error {
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) || errors.Is(err, windows.ERROR_PATH_NOT_FOUND) {
		if !write {
			return nil // the read-only open reports the missing database
		}
		switch err := createDir(dir); {
		case err == nil:
			log.Info("made the database directory, for SYSTEM, Administrators and its owner only", "dir", dir)
			return nil
		case !errors.Is(err, windows.ERROR_ALREADY_EXISTS):
			return fmt.Errorf("making %s: %w", dir, err)
		}
		// Made meanwhile by someone else: check it as any existing one.
		if sd, err = windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION); err != nil {
			return fmt.Errorf("reading the owner of %s: %w", dir, err)
		}
	} else if err != nil {
		return fmt.Errorf("reading the owner of %s: %w", dir, err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("reading the owner of %s: %w", dir, err)
	}
	if !trustedOwner(owner) {
		return fmt.Errorf("%s belongs to %s, not to SYSTEM, Administrators or you: an account without administrator rights may have made it, "+
			"to read the database or to plant one; check it, then delete it or take it over (takeown /F \"%s\" /A /R) and start again",
			dir, accountName(owner), dir)
	}
	// Only a directory of the bridge's own gets its ACL replaced: --db may
	// point into a shared one.
	if write && strings.EqualFold(filepath.Base(dir), "presencebridge") {
		if err := protectDir(dir, owner); err != nil {
			return fmt.Errorf("setting the ACL of %s: %w", dir, err)
		}
	}
	return nil
}

func trustedOwner(owner *windows.SID) bool {
	if owner.IsWellKnown(windows.WinLocalSystemSid) || owner.IsWellKnown(windows.WinBuiltinAdministratorsSid) {
		return true
	}
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	return err == nil && owner.Equals(tu.User.Sid)
}

// dirSDDL is the directory's ACL: full control, inherited by the files in
// it, for SYSTEM, Administrators and the owner; nothing from the parent.
func dirSDDL(owner *windows.SID) string {
	sddl := "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
	if owner != nil && !owner.IsWellKnown(windows.WinLocalSystemSid) && !owner.IsWellKnown(windows.WinBuiltinAdministratorsSid) {
		sddl += "(A;OICI;FA;;;" + owner.String() + ")"
	}
	return sddl
}

func createDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString(dirSDDL(tu.User.Sid))
	if err != nil {
		return err
	}
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return err
	}
	sa := windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd}
	return windows.CreateDirectory(p, &sa)
}

// protectDir gives an existing directory the ACL of dirSDDL; Windows
// carries the inherited entries down to the files in it.
func protectDir(dir string, owner *windows.SID) error {
	sd, err := windows.SecurityDescriptorFromString(dirSDDL(owner))
	if err != nil {
		return err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	return windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
}

// accountName is DOMAIN\user of a SID, or the SID where no account is known.
func accountName(sid *windows.SID) string {
	account, domain, _, err := sid.LookupAccount("")
	switch {
	case err != nil:
		return sid.String()
	case domain == "":
		return account
	}
	return domain + `\` + account
}
