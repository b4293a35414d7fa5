package main

import (
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"

	"github.com/presencebridge/presencebridge/service"
)

// The commands that run the bridge or manage its OS service.

func cmdRun(g *globals, _ string, args []string) error {
	fs := newFlags("run", "run [--db FILE] [--socket PATH] [--group NAME] [--metrics ADDR [--metrics-allow-remote]] [--service]", g.stderr)
	w := g.whereFlags(fs)
	group := fs.String("group", service.DefaultGroup, "admin group allowed on the control socket besides root")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this host:port, e.g. 127.0.0.1:9464 (default: off)")
	remote := fs.Bool("metrics-allow-remote", false, "allow a --metrics address that is not loopback (the endpoint has no authentication)")
	asService := fs.Bool("service", false, "run under the OS service manager, logging to the system log (install sets it)")
	verbose := fs.Bool("v", false, "log debug messages too (foreground)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	path, _, err := dbChoice(*w.db)
	if err != nil {
		return err
	}
	sock := *w.socket
	if sock == "" {
		sock = service.DefaultSocket()
	}
	opts := service.DaemonOptions{
		DBPath: path, Socket: sock, Group: *group, MetricsAddr: *metrics, MetricsAllowRemote: *remote,
		Version: version,
		// The real sides, built from the stored settings, and built anew
		// when their settings change while the bridge runs.
		Adapters: service.RealAdapters(service.AdapterOptions{}),
		Rebuild:  service.RealRebuilders(service.AdapterOptions{}),
	}
	if *asService {
		return service.RunService(opts)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
	opts.Mode = "foreground"
	ctx, stop := signalContext()
	defer stop()
	return service.RunDaemon(ctx, opts)
}

func cmdControl(g *globals, action string, args []string) error {
	fs := newFlags(action, action+"\n\n"+action+"s the "+service.Name+" OS service (needs root / an elevated prompt).", g.stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := service.Control(action); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%s: done\n", action)
	return nil
}

func cmdInstall(g *globals, _ string, args []string) error {
	fs := newFlags("install", "install [--dry-run] [--target systemd|launchd|windows] [--db FILE] [--socket PATH] [--group NAME] [--metrics ADDR]", g.stderr)
	dry := fs.Bool("dry-run", false, "print what would be installed and change nothing")
	target := fs.String("target", service.NativeTarget(), "service manager to render for (other than this OS only with --dry-run)")
	exe := fs.String("executable", "", "program the service runs (default: this binary)")
	db := fs.String("db", g.db, "database of the service (default: the target's system path)")
	sock := fs.String("socket", g.socket, "control socket of the service (default: the target's system path)")
	group := fs.String("group", service.DefaultGroup, "admin group allowed on the control socket besides root")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this host:port (default: off)")
	remote := fs.Bool("metrics-allow-remote", false, "allow a --metrics address that is not loopback")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	plan, err := service.PlanInstall(service.InstallOptions{Target: *target, Executable: *exe, DB: *db, Socket: *sock,
		Group: *group, MetricsAddr: *metrics, MetricsAllowRemote: *remote})
	if err != nil {
		return err
	}
	if *dry {
		plan.WriteDryRun(g.stdout)
		return nil
	}
	if err := service.Install(plan); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "installed %s; start it with: presencebridge start\n", service.Name)
	return nil
}

func cmdVersion(g *globals, _ string, args []string) error {
	fs := newFlags("version", "version", g.stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
	}
	fmt.Fprintf(g.stdout, "presencebridge %s%s (%s %s/%s)\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
