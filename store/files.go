package store

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// The database holds secrets in clear (as tailscaled's state file does), so
// the file itself is the protection: 0600, owned by the service's user.

// dbFileMode is the mode of the database and its backup.
const dbFileMode fs.FileMode = 0o600

// tightenMode makes an existing database file 0600 when its group or others
// may read or write it (copied by hand, restored from a backup, written by
// an older build under a looser umask), and says so in the log. Windows has
// no mode bits: there the data directory's ACL protects it.
func tightenMode(path string, log *slog.Logger) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&^dbFileMode == 0 {
		return nil
	}
	if err := os.Chmod(path, dbFileMode); err != nil {
		return fmt.Errorf("%s is readable by others (mode %04o) and could not be made 0600: %w; run: chmod 600 %s",
			path, fi.Mode().Perm(), err, path)
	}
	log.Warn("the database was readable by others; made it 0600", "path", path,
		"was", fmt.Sprintf("%04o", fi.Mode().Perm()), "now", "0600")
	return nil
}

// isBackupOf reports whether name (a base name) is a backup that backup()
// wrote of the database named base: base.bak-v<version>-<time>[-<n>].
func isBackupOf(base, name string) bool {
	rest, ok := strings.CutPrefix(name, base+".bak-v")
	if !ok {
		return false
	}
	version, rest, ok := strings.Cut(rest, "-")
	if !ok || version == "" || strings.Trim(version, "0123456789") != "" {
		return false
	}
	stamp, n, _ := strings.Cut(rest, "-")
	return len(stamp) == len("20060102T150405Z") && strings.Trim(n, "0123456789") == ""
}

// pruneBackups keeps only the newest pre-migration backup of the database
// at path, at 0600: each is a full copy of the secrets, and an old one
// only grows stale.
func pruneBackups(path string, log *slog.Logger) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Warn("cannot list old database backups", "dir", dir, "err", err)
		return
	}
	type backupFile struct {
		name string
		mod  int64
	}
	var baks []backupFile
	for _, e := range entries {
		if !e.Type().IsRegular() || !isBackupOf(base, e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		baks = append(baks, backupFile{e.Name(), fi.ModTime().UnixNano()})
	}
	if len(baks) == 0 {
		return
	}
	// Newest first; the name (its UTC time, then -n) breaks a tie.
	slices.SortFunc(baks, func(a, b backupFile) int {
		if a.mod != b.mod {
			if a.mod > b.mod {
				return -1
			}
			return 1
		}
		return strings.Compare(b.name, a.name)
	})
	keep := filepath.Join(dir, baks[0].name)
	if err := tightenMode(keep, log); err != nil {
		log.Warn("cannot protect the database backup", "path", keep, "err", err)
	}
	for _, b := range baks[1:] {
		old := filepath.Join(dir, b.name)
		if err := os.Remove(old); err != nil {
			log.Warn("cannot remove an old database backup", "path", old, "err", err)
			continue
		}
		log.Info("removed an old database backup; the newest is kept", "path", old, "kept", keep)
	}
}
