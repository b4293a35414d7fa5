package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	ksvc "github.com/kardianos/service"
)

// UnderServiceManager reports whether the service manager started this
// process (not a terminal).
func UnderServiceManager() bool { return !ksvc.Interactive() }

// kardianosPlatform is ksvc.Platform() for each target.
var kardianosPlatform = map[string]string{TargetSystemd: "linux-systemd", TargetLaunchd: "darwin-launchd", TargetWindows: "windows-service"}

// nopProgram is the kardianos program of the management commands, which
// never run the bridge themselves.
type nopProgram struct{}

func (nopProgram) Start(ksvc.Service) error { return nil }
func (nopProgram) Stop(ksvc.Service) error  { return nil }

func newOSService(cfg *ksvc.Config) (ksvc.Service, error) {
	s, err := ksvc.New(nopProgram{}, cfg)
	if errors.Is(err, ksvc.ErrNoServiceSystemDetected) {
		return nil, fmt.Errorf("no service manager found on this machine (systemd, launchd or the Windows service manager); run the bridge in the foreground instead: presencebridge run")
	}
	return s, err
}

func needAdmin(what string) error {
	if runtime.GOOS != "windows" && os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root: sudo presencebridge %s", what, what)
	}
	return nil
}

// Install installs the service the plan describes on this machine: it
// makes the service's account, hands it the state directory and database,
// and writes the unit or plist. A plan with problems is refused before
// anything changes.
func Install(p Plan) error {
	return install(p, systemSetupEnv())
}

func install(p Plan, env setupEnv) error {
	if len(p.Problems) > 0 {
		return fmt.Errorf("install: %s", strings.Join(p.Problems, "; "))
	}
	if p.Target != NativeTarget() {
		return fmt.Errorf("this machine's service manager is %s, not %s: --target is only for --dry-run", NativeTarget(), p.Target)
	}
	// kardianos picks the init system it detects; the rendered unit or
	// plist is only used by the one it was rendered for.
	if want := kardianosPlatform[p.Target]; ksvc.Platform() != want {
		return fmt.Errorf("this machine runs %s, and presencebridge installs itself only as a %s service here; "+
			"start `presencebridge run --service` with your init system instead (--dry-run shows the arguments)", ksvc.Platform(), want)
	}
	if err := needAdmin("install"); err != nil {
		return err
	}
	s, err := newOSService(p.Config)
	if err != nil {
		return err
	}
	if st, err := s.Status(); err == nil && st != ksvc.StatusUnknown {
		return alreadyInstalled(ServiceFile(p.Target), p.Account)
	}
	if err := runSetup(p.Setup, env); err != nil {
		return err
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

// alreadyInstalled explains how to replace an installed service; one that
// runs as root (written by an older presencebridge) is upgraded the same
// way, and its database is handed to the service's account.
func alreadyInstalled(file, account string) error {
	if b, err := os.ReadFile(file); err == nil && account != "" && runsAsRoot(string(b)) {
		return fmt.Errorf("the service %s is installed and runs as root; to upgrade it to its own user %s: "+
			"presencebridge uninstall, then presencebridge install (the database stays and is handed to %s)", Name, account, account)
	}
	return fmt.Errorf("the service %s is already installed; to change it: presencebridge uninstall, then install", Name)
}

// runsAsRoot reports whether a unit or plist names no user to run as.
func runsAsRoot(text string) bool {
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "User="); ok && v != "" && v != "root" && v != "0" {
			return false
		}
		if line == "<key>UserName</key>" {
			return false
		}
	}
	return true
}

// Control runs start, stop, restart or uninstall against the OS service.
// Uninstall stops the service first, so that it gives back what it holds.
func Control(action string) error {
	switch action {
	case "start", "stop", "restart", "uninstall":
	default:
		return fmt.Errorf("unknown service action %q", action)
	}
	if err := needAdmin(action); err != nil {
		return err
	}
	s, err := newOSService(&ksvc.Config{Name: Name})
	if err != nil {
		return err
	}
	st, err := s.Status()
	if errors.Is(err, ksvc.ErrNotInstalled) {
		return fmt.Errorf("the service %s is not installed (presencebridge install)", Name)
	}
	switch action {
	case "start":
		if st == ksvc.StatusRunning {
			return fmt.Errorf("the service %s is already running", Name)
		}
		err = s.Start()
	case "stop":
		if st == ksvc.StatusStopped {
			return fmt.Errorf("the service %s is not running", Name)
		}
		err = s.Stop()
	case "restart":
		err = s.Restart()
	case "uninstall":
		if st == ksvc.StatusRunning {
			if err := s.Stop(); err != nil {
				return fmt.Errorf("stopping before uninstall: %w", err)
			}
		}
		err = s.Uninstall()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	return nil
}

// ServiceState says how the OS service manager sees the service:
// "running", "stopped", "not installed" or why it cannot tell.
func ServiceState() string {
	s, err := newOSService(&ksvc.Config{Name: Name})
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	st, err := s.Status()
	switch {
	case errors.Is(err, ksvc.ErrNotInstalled):
		return "not installed"
	case err != nil:
		return fmt.Sprintf("unknown (%s did not answer: %v)", s.Platform(), err)
	case st == ksvc.StatusRunning:
		return "running"
	case st == ksvc.StatusStopped:
		return "stopped"
	}
	return "unknown"
}

// RunService runs the daemon under the OS service manager, logging to the
// system log; it returns when the manager stops the service.
func RunService(o DaemonOptions) error {
	o.Mode = "service"
	prg := &program{opts: o, done: make(chan error, 1), exited: make(chan struct{})}
	s, err := ksvc.New(prg, &ksvc.Config{Name: Name, Option: ksvc.KeyValue{"RunWait": prg.wait}})
	if err != nil {
		return err
	}
	if prg.opts.Logger == nil {
		sl, err := s.Logger(nil)
		if err != nil {
			return fmt.Errorf("system log: %w", err)
		}
		prg.opts.Logger = slog.New(NewSystemLogHandler(sl, slog.LevelInfo))
	}
	return s.Run()
}

// program adapts RunDaemon to kardianos' Start/Stop.
type program struct {
	opts     DaemonOptions
	cancel   context.CancelFunc
	done     chan error
	exited   chan struct{}
	stopping atomic.Bool
}

func (p *program) Start(ksvc.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		err := RunDaemon(ctx, p.opts)
		p.done <- err
		close(p.exited)
		if !p.stopping.Load() && runtime.GOOS == "windows" {
			// The Windows service manager waits for Stop forever; leaving
			// with an error lets its recovery action restart the bridge.
			p.opts.Logger.Error("the bridge stopped by itself", "err", err)
			os.Exit(1)
		}
	}()
	return nil
}

// wait is kardianos' RunWait on POSIX systems: until SIGTERM/SIGINT, or
// until the daemon ends by itself (then Stop returns its error and the
// process exits non-zero, so that Restart=on-failure applies).
func (p *program) wait() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sig)
	select {
	case <-sig:
	case <-p.exited:
	}
}

func (p *program) Stop(ksvc.Service) error {
	p.stopping.Store(true)
	p.cancel()
	limit := p.opts.StopTimeout
	if limit <= 0 {
		limit = 10 * time.Second
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(limit + 5*time.Second):
		return fmt.Errorf("the bridge did not stop within %s", limit+5*time.Second)
	}
}
