package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/presencebridge/presencebridge/service"
	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

const configUsage = `config <subcommand> [arguments] [--db FILE] [--socket PATH]

  config list                    every setting (secrets masked) and every profile
  config get KEY                 one value; KEY is a setting, profile.NAME.FLAG or
                                 user.ID.FIELD (FIELD: name, extension, upn, teams_id, profile)
  config set KEY VALUE [KEY VALUE]...
                                 change it (checked first; nothing is written on error);
                                 several settings change together, as one change
  config set KEY -               read the value from stdin (no echo on a terminal:
                                 for secrets, kept out of shell history and ps)
                                 A setting that decides where a secret is sent
                                 (ucserver.url, ucserver.ucsid, ucserver.allow_http,
                                 teams.authority_url, teams.graph_url) clears that
                                 secret unless it is given in the same command:
                                 config set ucserver.url URL ucserver.password -
  config unset KEY               back to the default
  config export [FILE|-]         settings, profiles and users as YAML (secrets masked)
  config import FILE|- [--merge] [--dry-run]
                                 replace them from YAML, printing what changes
  config import-group GROUP_ID   add the members of an Entra group as users (needs the
                                 Teams settings and GroupMember.Read.All)

While the bridge runs, these go through its control socket and apply at once;
otherwise they open the database (read commands refuse one that does not exist).`

// importHelp is printed by `config import -h`: the YAML format.
const importHelp = `The file is YAML with up to three sections; each section the file has
replaces the stored one (--merge: adds and changes, removes nothing), and a
section the file leaves out is not touched:

  settings:                      # key: value, as config set takes them
    teams.tenant_id: contoso.onmicrosoft.com
    teams.client_id: 11111111-2222-3333-4444-555555555555
    teams.client_secret: '********'   # masked: keep the stored secret
    phone.system: ucserver
  profiles:                      # a flag left out takes a new profile's default
    - name: default
    - name: sales
      cross_device_busy_on_busy: true
      calendar_meetings_as_calls: true
  users:
    - id: sip:anna@contoso.com   # the phone system's key (UCServer contact id)
      name: Anna Berg
      upn: anna@contoso.com      # Entra user principal name
      extension: "201"
      teams_id: 0a0a0a0a-0000-4000-8000-00000000000a   # optional: found by upn
      profile: sales             # optional: default_profile when left out

A secret written as ******** keeps the stored value; when there is none the
import fails and names it (set it first: presencebridge config set KEY -).
The import checks everything first and prints what it changes: users,
profiles and settings added, changed and removed. "config export" writes this
format; edit it and import it back.
`

func cmdConfig(g *globals, _ string, args []string) error {
	sub, rest := subcommand(args, "db", "socket")
	var (
		words []string
		err   error
		fs    = newFlags("config "+sub, configUsage, g.stderr)
	)
	if sub == "import" {
		fs = newFlagsHelp("config import", "config import FILE|- [--merge] [--dry-run] [--db FILE] [--socket PATH]", importHelp, g.stderr)
	}
	w := g.whereFlags(fs)
	merge := false
	dry := false
	if sub == "import" {
		fs.BoolVar(&merge, "merge", false, "add and change what the file names; remove nothing")
		fs.BoolVar(&dry, "dry-run", false, "print what the import would change and write nothing")
	}
	want := map[string]int{"list": 0, "get": 1, "set": 2, "unset": 1, "export": -1, "import": 1, "import-group": 1}
	n, ok := want[sub]
	switch {
	case sub == "":
		if _, err := parseArgs(fs, rest); err != nil {
			return err
		}
		fs.Usage()
		return errUsage
	case !ok:
		fs.Usage()
		return fmt.Errorf("unknown config command %q", sub)
	}
	if words, err = parseArgs(fs, rest); err != nil {
		return err
	}
	if sub == "set" && len(words) > 2 && len(words)%2 == 0 {
		n = len(words) // several settings at once
	}
	if n >= 0 && len(words) != n || n < 0 && len(words) > 1 {
		fs.Usage()
		return fmt.Errorf("config %s: wrong number of arguments (%d, want %s)", sub, len(words), map[int]string{0: "none", 1: "1", 2: "2", -1: "0 or 1"}[n])
	}
	acc := writing
	switch sub {
	case "list", "get", "export":
		acc = reading
	}
	// Read the input first: a prompt must not wait while a database is
	// open, and Ctrl-C at a prompt must still end the process.
	values := map[string]string{}
	if sub == "set" {
		for i := 0; i < len(words); i += 2 {
			if _, dup := values[words[i]]; dup {
				return fmt.Errorf("config set: %s is given twice", words[i])
			}
			if values[words[i]], err = g.settingValue(words[i], words[i+1]); err != nil {
				return err
			}
		}
	}
	var input []byte
	if sub == "import" {
		if input, err = readInput(words[0], g.stdin); err != nil {
			return err
		}
	}
	ctx, stop := signalContext()
	defer stop()
	a, err := g.openAdmin(ctx, w, acc)
	if err != nil {
		return err
	}
	defer a.close()
	api := a.api
	switch sub {
	case "list":
		settings, err := api.Settings(ctx)
		if err != nil {
			return err
		}
		profiles, err := api.Profiles(ctx)
		if err != nil {
			return err
		}
		users, err := api.ConfiguredUsers(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "# database %s\n", a.path)
		service.WriteConfig(g.stdout, settings, profiles, users)
	case "get":
		v, err := api.Get(ctx, words[0])
		if err != nil {
			return err
		}
		fmt.Fprintln(g.stdout, v)
	case "set":
		if len(values) == 1 {
			if _, serr := psync.LookupSetting(words[0]); serr != nil {
				return api.Set(ctx, words[0], values[words[0]]) // a profile flag or user field
			}
		}
		cleared, err := api.SetSettings(ctx, values)
		if err != nil {
			return err
		}
		for _, c := range cleared {
			if acct, ok := strings.CutPrefix(c, "the sign-in of "); ok {
				fmt.Fprintf(g.stderr, "dropped %s: a sign-in is not sent to a new authority; sign in again: presencebridge signin %s\n", c, acct)
				continue
			}
			fmt.Fprintf(g.stderr, "cleared %s: a secret is not sent to a new endpoint; give it again: presencebridge config set %s -\n", c, c)
		}
	case "unset":
		return api.Unset(ctx, words[0])
	case "export":
		if len(words) == 0 || words[0] == "-" {
			return api.Export(ctx, g.stdout)
		}
		var buf bytes.Buffer
		if err := api.Export(ctx, &buf); err != nil {
			return err
		}
		return os.WriteFile(words[0], buf.Bytes(), 0o600)
	case "import":
		ch, err := api.Import(ctx, bytes.NewReader(input), store.ImportOptions{Merge: merge, DryRun: dry})
		if err != nil {
			return err
		}
		service.WriteChanges(g.stdout, ch, dry)
	case "import-group":
		r, err := api.ImportGroup(ctx, words[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%d members, %d new users, %d already known\n", r.Members, r.Added, r.Known)
	}
	return nil
}

// readInput reads a file, or stdin for "-", bounded.
func readInput(name string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 16<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 16<<20 {
		return nil, fmt.Errorf("%s is larger than 16 MiB", name)
	}
	return b, nil
}

// settingValue is the value of `config set KEY VALUE`; "-" reads it from
// stdin: on a terminal with a prompt, without echo for a secret; from a
// pipe, one line.
func (g *globals) settingValue(key, value string) (string, error) {
	if value != "-" {
		return value, nil
	}
	secret := false
	if spec, err := psync.LookupSetting(key); err == nil && spec.Kind == psync.KindSecret {
		secret = true
	}
	f, onTerminal := g.stdin.(*os.File)
	if onTerminal && isTerminal(f) {
		fmt.Fprintf(g.stderr, "value of %s: ", key)
		var line string
		var err error
		if secret {
			line, err = readNoEcho(f)
			fmt.Fprintln(g.stderr)
		} else {
			line, err = readLine(f)
		}
		if err != nil {
			return "", fmt.Errorf("reading the value of %s: %w", key, err)
		}
		return line, nil
	}
	line, err := readLine(g.stdin)
	if err != nil {
		return "", fmt.Errorf("reading the value of %s from stdin: %w", key, err)
	}
	return line, nil
}

// readLine reads one line (without its line break), byte by byte so
// nothing after it is consumed, at most 64 KiB.
func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) <= 64<<10 {
		n, err := r.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return strings.TrimSuffix(string(b), "\r"), nil
			}
			b = append(b, one[0])
		}
		if errors.Is(err, io.EOF) {
			if len(b) == 0 {
				return "", errors.New("no value: stdin is empty")
			}
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", errors.New("the value is longer than 64 KiB")
}
