package service

import (
	"context"
	"fmt"
	"strings"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/asterisk"
	"github.com/presencebridge/presencebridge/sync/sip"
	"github.com/presencebridge/presencebridge/sync/ucserver"
)

// phoneSystem is one row of the phone-system table: what the wiring needs
// to know of a connector. Everything else (its settings' meaning, its id
// rules, its protocol) lives in the connector's package; adding a phone
// system is that package plus one row here.
type phoneSystem struct {
	// name is the value of phone.system that selects the connector.
	name string
	// title names the phone system to an admin.
	title string
	// prefix is the start of the connector's own settings: a change of
	// one rebuilds the connector while the bridge runs.
	prefix string
	// missing lists the settings the connector cannot run without.
	missing func(values map[string]string) []string
	// build makes the connector from the stored settings.
	build func(env AdapterEnv, o AdapterOptions) (psync.PhoneSystem, error)
	// doctor checks the phone side step by step.
	doctor func(ctx context.Context, values map[string]string, users []psync.User, o AdapterOptions, report func(psync.Check))
	// userID is the phone system's key for a person known by their UPN
	// (a member imported from an Entra group); nil: the UPN itself, the
	// extension being set on the user.
	userID func(upn string) psync.UserID
	// demo starts the phone system's simulator for `demo --phone`, with
	// the office's people in it (nil: the demo cannot simulate it).
	demo func(users []psync.User, o DemoOptions) (*demoPhone, error)
	// demoUsers gives the demo office's people what this phone system
	// keys them by (nil: as they are).
	demoUsers func(users []psync.User) []psync.User
}

// phoneSystems is the table phone.system selects from.
var phoneSystems = []phoneSystem{
	{
		name: "ucserver", title: "estos UCServer", prefix: "ucserver.",
		missing: ucserver.MissingSettings,
		build: func(env AdapterEnv, o AdapterOptions) (psync.PhoneSystem, error) {
			cfg := ucserver.ConfigFromSettings(env.Settings)
			cfg.RootCAs, cfg.Logger, cfg.Meter = o.PhoneRootCAs, env.Logger, env.Meter
			c, err := ucserver.New(cfg)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		doctor: func(ctx context.Context, values map[string]string, users []psync.User, o AdapterOptions, report func(psync.Check)) {
			cfg := ucserver.ConfigFromSettings(values)
			cfg.RootCAs = o.PhoneRootCAs
			ucserver.Doctor(ctx, cfg, users, report)
		},
		userID: func(upn string) psync.UserID { return psync.UserID(ucserver.ContactIDForEmail(upn)) },
		demo:   demoUCServer,
	},
	{
		name: "sip", title: "SIP PBX", prefix: "sip.",
		missing: sip.MissingSettings,
		build: func(env AdapterEnv, _ AdapterOptions) (psync.PhoneSystem, error) {
			cfg, err := sip.ConfigFromSettings(env.Settings)
			if err != nil {
				return nil, err
			}
			cfg.Logger = env.Logger
			c, err := sip.New(cfg)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		doctor: func(ctx context.Context, values map[string]string, users []psync.User, _ AdapterOptions, report func(psync.Check)) {
			cfg, err := sip.ConfigFromSettings(values)
			if err != nil {
				report(psync.Check{Side: psync.SidePhone, Name: "settings", Detail: err.Error(), Fix: "presencebridge config set sip.server HOST:5060 sip.user NAME sip.password -"})
				return
			}
			sip.Doctor(ctx, cfg, users, report)
		},
		demo:      demoSIP,
		demoUsers: sipDemoUsers,
	},
	{
		name: "asterisk", title: "Asterisk/FreePBX", prefix: "asterisk.",
		missing: asterisk.MissingSettings,
		build: func(env AdapterEnv, _ AdapterOptions) (psync.PhoneSystem, error) {
			cfg, err := asterisk.ConfigFromSettings(env.Settings)
			if err != nil {
				return nil, err
			}
			cfg.Logger, cfg.Meter = env.Logger, env.Meter
			c, err := asterisk.New(cfg)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		doctor: func(ctx context.Context, values map[string]string, users []psync.User, _ AdapterOptions, report func(psync.Check)) {
			cfg, err := asterisk.ConfigFromSettings(values)
			if err != nil {
				report(psync.Check{Side: psync.SidePhone, Name: "settings", Detail: err.Error(), Fix: "presencebridge config set asterisk.host HOST:5038 asterisk.user NAME asterisk.secret -"})
				return
			}
			asterisk.Doctor(ctx, cfg, users, report)
		},
		demo:      demoAsterisk,
		demoUsers: asteriskDemoUsers,
	},
}

// phoneSystemOf finds the row phone.system names, or says what to set.
func phoneSystemOf(values map[string]string) (phoneSystem, error) {
	name := values["phone.system"]
	for _, p := range phoneSystems {
		if p.name == name {
			return p, nil
		}
	}
	if name == "" {
		return phoneSystem{}, fmt.Errorf("phone.system is not set: `presencebridge config set phone.system %s`", phoneSystemNames())
	}
	return phoneSystem{}, fmt.Errorf("phone.system %q is not a phone system this build knows (%s)", name, phoneSystemNames())
}

// phoneSystemNames lists the values phone.system takes, "a|b|c".
func phoneSystemNames() string {
	names := make([]string, len(phoneSystems))
	for i, p := range phoneSystems {
		names[i] = p.name
	}
	return strings.Join(names, "|")
}

// isPhoneSetting reports whether key configures the phone connector.
func isPhoneSetting(key string) bool {
	if key == "phone.system" {
		return true
	}
	for _, p := range phoneSystems {
		if strings.HasPrefix(key, p.prefix) {
			return true
		}
	}
	return false
}

// phoneUserID is the id a person known by their UPN gets on the configured
// phone system.
func phoneUserID(values map[string]string, upn string) psync.UserID {
	if p, err := phoneSystemOf(values); err == nil && p.userID != nil {
		return p.userID(upn)
	}
	return psync.UserID(upn)
}
