package service

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	ksvc "github.com/kardianos/service"
)

// InstalledService is how the installed OS service runs the bridge, read
// back from its unit or plist: the database and control socket an admin
// command must use rather than its own defaults, so that a setting never
// lands in a database the service does not read.
type InstalledService struct {
	File   string // the unit or plist it was read from ("" on Windows)
	DB     string
	Socket string
	Group  string
}

// ServiceFile is where install writes the service's unit (systemd) or
// plist (launchd) for a target; "" for Windows, whose services live in the
// registry.
func ServiceFile(target string) string {
	switch target {
	case TargetSystemd:
		return "/etc/systemd/system/" + Name + ".service"
	case TargetLaunchd:
		return "/Library/LaunchDaemons/" + Name + ".plist"
	}
	return ""
}

// FindInstalled looks for the installed service: the unit or plist at file
// ("" = this OS's place), or on Windows the service manager's entry.
// installed is false when there is none.
func FindInstalled(file string) (svc InstalledService, installed bool, err error) {
	if file == "" && runtime.GOOS == "windows" {
		s, err := newOSService(&ksvc.Config{Name: Name})
		if err != nil {
			return InstalledService{}, false, nil
		}
		if _, err := s.Status(); errors.Is(err, ksvc.ErrNotInstalled) {
			return InstalledService{}, false, nil
		}
		return InstalledService{DB: DefaultDBPath(TargetWindows), Socket: defaultSocketFor(TargetWindows), Group: DefaultGroup}, true, nil
	}
	if file == "" {
		if file = ServiceFile(NativeTarget()); file == "" {
			return InstalledService{}, false, nil
		}
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return InstalledService{}, false, nil
	}
	if err != nil {
		return InstalledService{}, true, fmt.Errorf("reading the installed service %s: %w", file, err)
	}
	svc, err = parseInstalled(file, string(b))
	return svc, true, err
}

// parseInstalled reads the arguments of `run` from a unit or plist as
// PlanInstall renders them.
func parseInstalled(file, text string) (InstalledService, error) {
	target := TargetSystemd
	var args []string
	if strings.Contains(text, "<plist") {
		target = TargetLaunchd
		var err error
		if args, err = plistArguments(text); err != nil {
			return InstalledService{}, fmt.Errorf("the installed service %s: %w", file, err)
		}
	} else {
		found := false
		for _, line := range strings.Split(text, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
				args, found = systemdSplit(rest), true
				break
			}
		}
		if !found {
			return InstalledService{}, fmt.Errorf("the installed service %s has no ExecStart line", file)
		}
	}
	svc := InstalledService{File: file, DB: DefaultDBPath(target), Socket: defaultSocketFor(target), Group: defaultGroupFor(target, "")}
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") {
			continue
		}
		if !hasValue && i+1 < len(args) {
			value = args[i+1]
		}
		switch name {
		case "db":
			svc.DB = value
		case "socket":
			svc.Socket = value
		case "group":
			svc.Group = value
		default:
			continue
		}
		if !hasValue {
			i++
		}
	}
	return svc, nil
}

// systemdSplit splits an ExecStart command line as systemd does for what
// systemdQuote writes: words on spaces, double quotes with \\ and \"
// escapes, %% and $$ for % and $.
func systemdSplit(s string) []string {
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case (c == '%' || c == '$') && i+1 < len(s) && s[i+1] == c:
			cur.WriteByte(c)
			i++
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// plistArguments returns the ProgramArguments of a launchd plist.
func plistArguments(text string) ([]string, error) {
	dec := xml.NewDecoder(strings.NewReader(text))
	dec.Strict = false
	var (
		lastKey   string
		inArgs    bool
		inString  bool
		inKey     bool
		args      []string
		cur       strings.Builder
		depthArgs int
		depth     int
	)
	for {
		tok, err := dec.Token()
		if err != nil {
			if inArgs || args == nil {
				return nil, errors.New("no ProgramArguments array")
			}
			return args, nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch t.Name.Local {
			case "key":
				inKey = true
				cur.Reset()
			case "array":
				if lastKey == "ProgramArguments" && !inArgs {
					inArgs, depthArgs = true, depth
					args = []string{}
				}
			case "string":
				inString = true
				cur.Reset()
			}
		case xml.CharData:
			if inKey || inString {
				cur.Write(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "key":
				inKey = false
				lastKey = strings.TrimSpace(cur.String())
			case "string":
				inString = false
				if inArgs {
					args = append(args, cur.String())
				}
			case "array":
				if inArgs && depth == depthArgs {
					return args, nil
				}
			}
			depth--
		}
	}
}
