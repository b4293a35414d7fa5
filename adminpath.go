package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
)

// Which database an admin command works on, and by which path: the
// running bridge's control socket when one answers (it holds the database's
// lock), else the database itself. On a machine where the service is
// installed the command never falls back to another database than the
// service's without being told (--db): a setting that lands where the
// service does not read it is lost without a word.

// access says what a command does with the database.
type access int

const (
	// reading refuses a database that does not exist: printing defaults
	// from an empty file hides a mistyped path.
	reading access = iota
	// writing creates the database when it does not exist (and says so).
	writing
)

// admin is an open way to the configuration.
type admin struct {
	api    service.AdminAPI
	client *service.Client // nil when this process opened the database
	db     *store.DB       // the database this process opened; nil through a bridge
	path   string          // the database
	close  func()
}

// serviceFile is where the installed service's unit or plist is read.
func serviceFile() string { return os.Getenv("PRESENCEBRIDGE_SERVICE_FILE") }

// dbChoice is the database a command names, and whether it named one.
func dbChoice(flagValue string) (path string, explicit bool, err error) {
	if flagValue != "" {
		return flagValue, true, nil
	}
	if env := os.Getenv("PRESENCEBRIDGE_DB"); env != "" {
		return env, true, nil
	}
	p, err := store.DefaultPath()
	return p, false, err
}

// socketChoice is the control socket to try: --socket, then
// $PRESENCEBRIDGE_SOCKET, then the installed service's, then the default.
func socketChoice(flagValue string, inst service.InstalledService, installed bool) string {
	switch {
	case flagValue != "":
		return flagValue
	case os.Getenv("PRESENCEBRIDGE_SOCKET") != "":
		return os.Getenv("PRESENCEBRIDGE_SOCKET")
	case installed && inst.Socket != "":
		return inst.Socket
	}
	return service.DefaultSocket()
}

// sameFile reports whether two paths name one database file.
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	aa, _ := filepath.Abs(a)
	ab, _ := filepath.Abs(b)
	return filepath.Clean(aa) == filepath.Clean(ab)
}

// openAdmin finds the way to the configuration for a command.
func (g *globals) openAdmin(ctx context.Context, w where, acc access) (*admin, error) {
	path, explicit, err := dbChoice(*w.db)
	if err != nil {
		return nil, err
	}
	inst, installed, ierr := service.FindInstalled(serviceFile())
	if ierr != nil {
		return nil, ierr
	}
	sock := socketChoice(*w.socket, inst, installed)

	c := service.NewClient(sock)
	probe, cancel := context.WithTimeout(ctx, 5*time.Second)
	info, err := c.Database(probe)
	cancel()
	switch {
	case err == nil:
		if !explicit || sameFile(path, info.Path) {
			return &admin{api: c, client: c, path: info.Path, close: c.Close}, nil
		}
		// A bridge runs, on another database than the one named: that
		// one is free to open.
		c.Close()
	case errors.Is(err, service.ErrNotRunning), errors.Is(err, service.ErrForbidden):
		c.Close()
		if installed && !explicit && !sameFile(path, inst.DB) {
			return nil, notTheServiceDB(inst, sock, path, err)
		}
	default:
		c.Close()
		return nil, err
	}
	return g.openLocal(path, sock, acc)
}

// notTheServiceDB refuses to work on another database than the installed
// service's, naming both.
func notTheServiceDB(inst service.InstalledService, sock, path string, why error) error {
	how := "start it (sudo presencebridge start) and run this again"
	if errors.Is(why, fs.ErrPermission) || errors.Is(why, service.ErrForbidden) {
		how = fmt.Sprintf("run this as root (sudo) or as a member of group %s, which may use its socket", inst.Group)
	}
	return fmt.Errorf("the presencebridge service is installed (%s) and keeps its configuration in %s, but its control socket %s does not answer (%v); "+
		"without --db this command would use %s, which the service never reads. To change the service's configuration, %s; "+
		"to work on that other database on purpose, name it: --db %s", inst.File, inst.DB, sock, why, path, how, path)
}

// openLocal opens the database in this process, for a command when no
// bridge answers on sock.
func (g *globals) openLocal(path, sock string, acc access) (*admin, error) {
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	if created && acc == reading {
		return nil, fmt.Errorf("no database at %s (no bridge answers on %s either); nothing is configured there yet. "+
			"Check --db / PRESENCEBRIDGE_DB, or start with: presencebridge config set KEY VALUE", path, sock)
	}
	db, err := store.Open(path, store.Options{Timeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if errors.Is(err, store.ErrInUse) {
		return nil, fmt.Errorf("%w; no bridge answers on the control socket %s: if a presencebridge runs on %s, give its --socket", err, sock, path)
	}
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(g.stderr, "presencebridge: created a new database at %s\n", path)
	}
	a, err := service.NewAdmin(service.AdminConfig{DB: db})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &admin{api: a, db: db, path: path, close: func() { db.Close() }}, nil
}

// client is the control-API client of the running bridge, for the
// commands that need one (status, users, console, logs -f).
func (g *globals) client(socketFlag string) (*service.Client, error) {
	inst, installed, err := service.FindInstalled(serviceFile())
	if err != nil {
		return nil, err
	}
	return service.NewClient(socketChoice(socketFlag, inst, installed)), nil
}
