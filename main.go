// Command presencebridge keeps an office phone system and Microsoft Teams
// presence in step. This file parses the command line and hands each
// command to its file (cmd_*.go), which wires the parts together; the
// behaviour lives in sync, store and service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `presencebridge keeps office phone presence and Microsoft Teams presence in step.

Usage:
  presencebridge [--db FILE] [--socket PATH] <command> [arguments] [flags]

Commands:
  demo      run the bridge against a simulated office (Graph and UCServer simulators)
  run       run the bridge in the foreground with the configured sides
  console   the live console of the running bridge
  config    show and change settings; export and import the whole configuration
  profiles  list, add, rename and remove profiles
  users     every user's live state; list, add, change and remove users
  doctor    check both sides step by step, with the fix for what fails
  signin    sign in a Teams service account with a device code (subscribe mode)
  version   print the version

  install   install the bridge as an OS service (--dry-run shows the unit)
  uninstall stop and remove the OS service
  start, stop, restart
            control the OS service
  status    the OS service, the running bridge and its database
  logs      the last decisions (-f follows them live)

The admin commands (config, profiles, users, doctor, logs) go through the
running bridge's control socket; when no bridge runs they open the database
themselves. Flags may come before or after the command and its arguments.

Environment:
  PRESENCEBRIDGE_DB            the database (as --db)
  PRESENCEBRIDGE_SOCKET        the control socket (as --socket)
  PRESENCEBRIDGE_SERVICE_FILE  where the installed service's unit or plist is
                               read (default: /etc/systemd/system/presencebridge.service,
                               /Library/LaunchDaemons/presencebridge.plist)

Run "presencebridge <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// globals are the process's streams and the flags given before the
// command, which become the defaults of the command's own.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	db, socket     string
}

// commands maps each command to its function (cmd_*.go).
var commands = map[string]func(g *globals, name string, args []string) error{
	"demo":      cmdDemo,
	"run":       cmdRun,
	"console":   cmdConsole,
	"config":    cmdConfig,
	"profiles":  cmdProfiles,
	"users":     cmdUsers,
	"doctor":    cmdDoctor,
	"signin":    cmdSignIn,
	"version":   cmdVersion,
	"install":   cmdInstall,
	"uninstall": cmdControl,
	"start":     cmdControl,
	"stop":      cmdControl,
	"restart":   cmdControl,
	"status":    cmdStatus,
	"logs":      cmdLogs,
}

// run is main without the process: it returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	args, err := g.parseGlobals(args)
	if err != nil {
		fmt.Fprintf(stderr, "presencebridge: %v\n\n%s", err, usage)
		return 2
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "presencebridge: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	err = cmd(g, args[0], args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errCancelled):
		fmt.Fprintln(stderr, "cancelled")
		return 130
	}
	fmt.Fprintf(stderr, "presencebridge %s: %v\n", args[0], err)
	return 1
}

// parseGlobals takes --db and --socket (as --db X or --db=X) from before
// the command.
func (g *globals) parseGlobals(args []string) ([]string, error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		var dst *string
		switch name {
		case "db":
			dst = &g.db
		case "socket":
			dst = &g.socket
		case "h", "help":
			return args, nil
		default:
			return nil, fmt.Errorf("unknown flag %s before the command (only --db and --socket go there)", args[0])
		}
		args = args[1:]
		if !hasValue {
			if len(args) == 0 {
				return nil, fmt.Errorf("--%s needs a value", name)
			}
			value, args = args[0], args[1:]
		}
		*dst = value
	}
	return args, nil
}

// errUsage marks an error the flag package has already printed.
var errUsage = errors.New("usage")

// errCancelled: the admin pressed Ctrl-C (exit code 130, "cancelled").
var errCancelled = errors.New("cancelled")

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
