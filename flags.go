package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/presencebridge/presencebridge/service"
)

// Flags may come anywhere: before the command (--db X config ...), between
// a command and its subcommand (config --db X get KEY) and after the
// arguments (config get KEY --db X). parseArgs reads a command's flags
// wherever they are and returns the other words in order; "--" ends the
// flags.

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	return newFlagsHelp(name, synopsis, "", stderr)
}

// newFlagsHelp is newFlags with text printed after the flags in -h.
func newFlagsHelp(name, synopsis, more string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: presencebridge %s\n\nFlags (anywhere on the line):\n", synopsis)
		fs.PrintDefaults()
		if more != "" {
			fmt.Fprintf(stderr, "\n%s", more)
		}
	}
	return fs
}

// parseArgs parses fs's flags from anywhere in args and returns the rest.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return words, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(words, rest...), nil
		}
		words = append(words, rest[0])
		args = rest[1:]
	}
}

// parseN parses flags and wants exactly n words (-1: any number).
func parseN(fs *flag.FlagSet, args []string, n int, what string) ([]string, error) {
	words, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	if n >= 0 && len(words) != n {
		fs.Usage()
		if len(words) > n {
			return nil, fmt.Errorf("unexpected argument %q", words[n])
		}
		return nil, fmt.Errorf("missing %s", what)
	}
	return words, nil
}

// parseNoArgs is parse for commands that take flags only.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	_, err := parseN(fs, args, 0, "")
	return err
}

// subcommand finds a command group's subcommand (config get, users add):
// the first word that is neither a flag nor the value of one of valued.
func subcommand(args []string, valued ...string) (string, []string) {
	takes := map[string]bool{}
	for _, v := range valued {
		takes[v] = true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if takes[name] && !hasValue {
				i++
			}
			continue
		}
		rest := append(append([]string(nil), args[:i]...), args[i+1:]...)
		return a, rest
	}
	return "", args
}

// where are the flags that say which bridge or database a command talks to.
type where struct {
	db, socket *string
}

// whereFlags adds --db and --socket, defaulting to the global flags.
func (g *globals) whereFlags(fs *flag.FlagSet) where {
	return where{
		db: fs.String("db", g.db, "database file, when no bridge runs on it (default: $PRESENCEBRIDGE_DB, else the installed service's, else "+
			"/var/lib/presencebridge/state.db as root, else the user config dir)"),
		socket: fs.String("socket", g.socket, "control socket of the running bridge (default: $PRESENCEBRIDGE_SOCKET, else the installed service's, else "+service.DefaultSocket()+")"),
	}
}

// socketFlag adds --socket alone.
func (g *globals) socketFlag(fs *flag.FlagSet) *string {
	return fs.String("socket", g.socket, "control socket of the running bridge (default: $PRESENCEBRIDGE_SOCKET, else the installed service's, else "+service.DefaultSocket()+")")
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
