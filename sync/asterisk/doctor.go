package asterisk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// neededActions are the actions the connector sends, with the class that
// lets it run them.
var neededActions = []struct{ name, class string }{
	{"DBGet", "system"}, {"DBPut", "system"}, {"DBDel", "system"},
	{"Setvar", "call"}, {"Getvar", "call"}, {"DeviceStateList", "call"},
}

// doctorProbe is the custom device state Doctor toggles to see whether the
// account receives call-class events (DeviceStateChange). Asterisk keeps
// custom states in AstDB (family CustomDevstate); it is left NOT_INUSE.
const doctorProbe = "Custom:presencebridge_doctor"

// Doctor checks the Asterisk side as the bridge's AMI account sees it, with
// real requests, handing each check to report as it completes:
//
//   - settings: asterisk.host/user/secret/profile are complete;
//   - reach: TCP to asterisk.host;
//   - banner: the peer greets as an Asterisk manager interface;
//   - login: the account and secret are accepted;
//   - write permissions: ListCommands lists DBGet/DBPut/DBDel (system) and
//     Setvar/Getvar/DeviceStateList (call);
//   - read permissions: a DeviceStateChange (call class) arrives for a
//     probe state Doctor sets;
//   - each user: extensions, devices (FreePBX AMPUSER/<ext>/device) and
//     the DND key.
//
// On a missing permission the fix is the least-privilege manager.conf
// stanza (ManagerStanza).
func Doctor(ctx context.Context, cfg Config, users []psync.User, report func(psync.Check)) {
	check := func(name string, start time.Time, ok bool, detail, fix string) {
		report(psync.Check{Side: psync.SidePhone, Name: name, OK: ok, Detail: detail, Fix: fix, Took: time.Since(start)})
	}
	skip := func(names ...string) {
		for _, n := range names {
			report(psync.Check{Side: psync.SidePhone, Name: n, Skipped: true, Detail: "skipped: an earlier check failed"})
		}
	}
	start := time.Now()
	cfg, err := cfg.normalize()
	if err != nil {
		check("settings", start, false, err.Error(), "set it with presencebridge config set")
		skip("reach", "login", "permissions", "events", "users")
		return
	}
	check("settings", start, true, fmt.Sprintf("AMI %s as %s, profile %s, presence %v", cfg.Host, cfg.User, cfg.Profile, cfg.Presence), "")

	start = time.Now()
	d := net.Dialer{Timeout: cfg.ConnectTimeout}
	nc, err := d.DialContext(ctx, "tcp", cfg.Host)
	if err != nil {
		check("reach", start, false, err.Error(), "check asterisk.host, the firewall, and that manager.conf [general] has enabled = yes and bindaddr/port (5038) reachable from the bridge")
		skip("login", "permissions", "events", "users")
		return
	}
	nc.Close()
	check("reach", start, true, "TCP "+cfg.Host+" open", "")

	start = time.Now()
	evs := make(chan Message, 64)
	cl, err := dial(ctx, cfg.Host, cfg.User, cfg.Secret, "call", cfg.Limits, cfg.ConnectTimeout, func(m Message) {
		select {
		case evs <- m:
		default:
		}
	})
	if err != nil {
		var le *loginError
		fix := "check asterisk.host points at the AMI (port 5038)"
		if errors.As(err, &le) {
			fix = "check asterisk.user and asterisk.secret; the account in manager.conf should be:\n" + ManagerStanza(cfg.User)
		}
		check("login", start, false, err.Error(), fix)
		skip("permissions", "events", "users")
		return
	}
	defer cl.close(errors.New("doctor done"))
	check("login", start, true, "logged in as "+cfg.User+" ("+cl.banner+")", "")

	start = time.Now()
	actx, cancel := context.WithTimeout(ctx, cfg.ActionTimeout)
	resp, err := cl.action(actx, "ListCommands")
	cancel()
	canCall := false
	if err != nil {
		check("permissions", start, false, "ListCommands failed: "+err.Error(), "")
	} else {
		var missing []string
		classes := map[string]bool{}
		for _, a := range neededActions {
			if !resp.Has(a.name) {
				missing = append(missing, a.name+" ("+a.class+")")
				classes[a.class] = true
			} else if a.class == "call" {
				canCall = true
			}
		}
		if len(missing) > 0 {
			var need []string
			for c := range classes {
				need = append(need, c)
			}
			slices.Sort(need)
			check("permissions", start, false, "the account may not run "+strings.Join(missing, ", ")+" (write class "+strings.Join(need, ", ")+" missing)",
				"give the account at least these classes in manager.conf:\n"+ManagerStanza(cfg.User))
		} else {
			check("permissions", start, true, "write = "+neededWrite+" covers DBGet, DBPut, DBDel, Setvar, Getvar, DeviceStateList", "")
		}
	}

	start = time.Now()
	if !canCall {
		report(psync.Check{Side: psync.SidePhone, Name: "events", Skipped: true, Detail: "skipped: the probe needs Setvar (write class call)"})
	} else if ok, detail := probeEvents(ctx, cl, cfg, evs); ok {
		check("events", start, true, detail, "")
	} else {
		check("events", start, false, detail, "add read = "+neededRead+" to the account in manager.conf (and do not set eventfilter lines that drop DeviceStateChange):\n"+ManagerStanza(cfg.User))
	}

	if cfg.Profile == ProfileAsterisk {
		// Reading the dialplan over AMI needs more than the least
		// privileges, so the snippet can only be reminded of.
		report(psync.Check{Side: psync.SidePhone, Name: "dialplan", OK: true, Warn: true,
			Detail: "profile asterisk: calls are refused only where the dialplan checks the bridge's lease; the bridge cannot see the dialplan with its AMI account",
			Fix:    "install extensions-teams.conf (#include it, and Gosub(teams-busy,s,1(${EXTEN})) before each Dial to a user's phone), then dialplan reload"})
	}

	start = time.Now()
	var lines []string
	bad := 0
	for _, u := range users {
		line, ok := doctorUser(ctx, cl, cfg, u)
		if !ok {
			bad++
		}
		lines = append(lines, line)
	}
	detail := strings.Join(lines, "\n")
	if len(users) == 0 {
		detail = "no users configured"
	}
	c := psync.Check{Side: psync.SidePhone, Name: "users", OK: bad == 0, Warn: bad > 0 && bad < len(users), Detail: detail, Took: time.Since(start)}
	if bad > 0 {
		c.Fix = "set each user's extension to their FreePBX extension number (users set <id> extension 201)"
	}
	report(c)
}

// probeEvents sets the probe state and waits for its DeviceStateChange.
func probeEvents(ctx context.Context, cl *client, cfg Config, evs chan Message) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, cfg.ActionTimeout)
	defer cancel()
	cur, _ := cl.getvar(ctx, "DEVICE_STATE("+doctorProbe+")")
	next := "INUSE"
	if strings.EqualFold(cur, "INUSE") {
		next = "NOT_INUSE"
	}
	defer func() {
		if next != "NOT_INUSE" {
			_ = cl.setvar(context.Background(), "DEVICE_STATE("+doctorProbe+")", "NOT_INUSE")
		}
	}()
	if err := cl.setvar(ctx, "DEVICE_STATE("+doctorProbe+")", next); err != nil {
		return false, "setting the probe state failed: " + err.Error()
	}
	for {
		select {
		case m := <-evs:
			if strings.EqualFold(m.Get("Event"), "DeviceStateChange") && strings.EqualFold(m.Get("Device"), doctorProbe) {
				return true, "DeviceStateChange events arrive (read class call)"
			}
		case <-ctx.Done():
			return false, "no DeviceStateChange arrived within " + cfg.ActionTimeout.String() + " after changing " + doctorProbe
		}
	}
}

// doctorUser describes one user's extensions, devices and DND key.
func doctorUser(ctx context.Context, cl *client, cfg Config, u psync.User) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, cfg.ActionTimeout)
	defer cancel()
	exts, ok := extensionsOf(u)
	if !ok {
		return fmt.Sprintf("%s: no usable extension (%q)", u.ID, u.Extension), false
	}
	var parts []string
	good := true
	for _, ext := range exts {
		if cfg.Profile == ProfileFreePBX {
			v, found, err := cl.dbGet(ctx, "AMPUSER", ext+"/device")
			if err != nil {
				return fmt.Sprintf("%s: reading AMPUSER/%s/device failed: %v", u.ID, ext, err), false
			}
			if !found {
				parts = append(parts, ext+": not a FreePBX extension (AMPUSER/"+ext+"/device missing)")
				good = false
				continue
			}
			var devs []string
			for _, id := range parseMarker(v) {
				dial, ok, _ := cl.dbGet(ctx, "DEVICE", id+"/dial")
				if !ok {
					dial = "PJSIP/" + id
				}
				st, _ := cl.getvar(ctx, "DEVICE_STATE("+dial+")")
				devs = append(devs, dial+" "+strings.ToLower(st))
			}
			dnd, on, _ := cl.dbGet(ctx, "DND", ext)
			state := "off"
			if on && dnd == "YES" {
				state = "on"
			}
			parts = append(parts, fmt.Sprintf("%s: devices %s; DND/%s %s", ext, strings.Join(devs, ", "), ext, state))
		} else {
			st, _ := cl.getvar(ctx, "DEVICE_STATE(PJSIP/"+ext+")")
			if strings.EqualFold(st, "INVALID") || st == "" {
				good = false
			}
			parts = append(parts, fmt.Sprintf("%s: PJSIP/%s %s", ext, ext, strings.ToLower(st)))
		}
	}
	return fmt.Sprintf("%s: %s", u.ID, strings.Join(parts, "; ")), good
}
