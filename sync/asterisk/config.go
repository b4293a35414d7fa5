package asterisk

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The two write profiles (setting asterisk.profile).
const (
	// ProfileFreePBX writes FreePBX's own per-user DND, exactly as its
	// donotdisturb module does.
	ProfileFreePBX = "freepbx"
	// ProfileAsterisk writes a custom device state and a lease end time
	// that the dialplan of extensions-teams.conf enforces.
	ProfileAsterisk = "asterisk"
)

// DefaultPort is the AMI's port.
const DefaultPort = "5038"

// Config is what a Conn is built from. Zero durations take the defaults
// named on each field.
type Config struct {
	// Host (asterisk.host) is host:port of the AMI; the port defaults to 5038.
	Host string
	// User and Secret (asterisk.user, asterisk.secret) are the manager.conf
	// account (ManagerStanza prints the least it needs).
	User   string
	Secret string
	// Profile (asterisk.profile) is ProfileFreePBX (default) or ProfileAsterisk.
	Profile string
	// Presence (asterisk.presence) also writes the Teams state to
	// PRESENCE_STATE(CustomPresence:<ext>).
	Presence bool
	// Lease (phone.lease, default 10 min) is how long the asterisk
	// profile's protection lasts without the bridge renewing it.
	Lease time.Duration
	// Refresh is how often that lease is renewed (default: a third of Lease).
	Refresh time.Duration

	Logger *slog.Logger // nil: discard
	Meter  psync.Meter  // nil: psync.NopMeter{}

	// ConnectTimeout bounds the TCP connect, the banner and the login
	// (default 10 s); ActionTimeout one action (default 5 s).
	ConnectTimeout time.Duration
	ActionTimeout  time.Duration
	// KeepAlive is the Ping interval (default 20 s): a Ping not answered
	// within ActionTimeout drops the connection.
	KeepAlive time.Duration
	// ReconnectMin and ReconnectMax bound the backoff (default 1 s, 30 s).
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// Limits bound every message read from the socket.
	Limits Limits
}

// Defaults.
const (
	defaultConnectTimeout = 10 * time.Second
	defaultActionTimeout  = 5 * time.Second
	defaultKeepAlive      = 20 * time.Second
	defaultReconnectMin   = time.Second
	defaultReconnectMax   = 30 * time.Second
	defaultLease          = 10 * time.Minute
)

// ConfigFromSettings builds a Config from the settings asterisk.host,
// asterisk.user, asterisk.secret, asterisk.profile, asterisk.presence and
// phone.lease. It reports what is wrong, naming the setting.
func ConfigFromSettings(values map[string]string) (Config, error) {
	get := func(key, def string) string {
		if v, ok := values[key]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		if spec, err := psync.LookupSetting(key); err == nil && spec.Default != "" {
			return spec.Default
		}
		return def
	}
	cfg := Config{
		Host: get("asterisk.host", ""), User: get("asterisk.user", ""),
		Secret: values["asterisk.secret"], Profile: get("asterisk.profile", ProfileFreePBX),
	}
	switch p := get("asterisk.presence", "false"); p {
	case "true":
		cfg.Presence = true
	case "false":
	default:
		return cfg, fmt.Errorf("asterisk.presence: %q is not true or false", p)
	}
	if s := get("phone.lease", "10m"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("phone.lease: %q is not a duration like 10m", s)
		}
		cfg.Lease = d
	}
	_, err := cfg.normalize()
	return cfg, err
}

// MissingSettings lists the settings the connector cannot run without, as
// sentences for the admin.
func MissingSettings(values map[string]string) []string {
	var missing []string
	for _, k := range []struct{ key, what string }{
		{"asterisk.host", "the AMI's host:port"},
		{"asterisk.user", "the manager.conf account"},
		{"asterisk.secret", "that account's secret"},
	} {
		if strings.TrimSpace(values[k.key]) == "" {
			missing = append(missing, "setting "+k.key+" ("+k.what+") is not set (presencebridge config set "+k.key+" ...)")
		}
	}
	return missing
}

// normalize validates cfg and fills the defaults. Errors name the setting
// and never carry the secret.
func (cfg Config) normalize() (Config, error) {
	cfg.Host = strings.TrimSpace(cfg.Host)
	if cfg.Host == "" {
		return cfg, errors.New("asterisk.host: required, the AMI's host:port (e.g. pbx.example:5038)")
	}
	if strings.ContainsAny(cfg.Host, "/@ \t\r\n") {
		return cfg, fmt.Errorf("asterisk.host: %q is not host:port (e.g. pbx.example:5038)", cfg.Host)
	}
	if _, port, err := net.SplitHostPort(cfg.Host); err != nil {
		cfg.Host = net.JoinHostPort(strings.Trim(cfg.Host, "[]"), DefaultPort)
	} else if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return cfg, fmt.Errorf("asterisk.host: port %q is not a port number", port)
	}
	if strings.TrimSpace(cfg.User) == "" {
		return cfg, errors.New("asterisk.user: required, the manager.conf account of the bridge")
	}
	if err := checkValue(cfg.User); err != nil {
		return cfg, errors.New("asterisk.user: contains a line break or NUL")
	}
	if cfg.Secret == "" {
		return cfg, errors.New("asterisk.secret: required, the secret of that manager.conf account")
	}
	if strings.ContainsAny(cfg.Secret, "\r\n\x00") {
		return cfg, errors.New("asterisk.secret: contains a line break or NUL, which AMI cannot carry")
	}
	cfg.Profile = strings.ToLower(strings.TrimSpace(cfg.Profile))
	switch cfg.Profile {
	case "":
		cfg.Profile = ProfileFreePBX
	case ProfileFreePBX, ProfileAsterisk:
	default:
		return cfg, fmt.Errorf("asterisk.profile: %q is neither freepbx nor asterisk", cfg.Profile)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"connect timeout", &cfg.ConnectTimeout, defaultConnectTimeout},
		{"action timeout", &cfg.ActionTimeout, defaultActionTimeout},
		{"keep-alive", &cfg.KeepAlive, defaultKeepAlive},
		{"reconnect minimum", &cfg.ReconnectMin, defaultReconnectMin},
		{"reconnect maximum", &cfg.ReconnectMax, defaultReconnectMax},
		{"phone.lease", &cfg.Lease, defaultLease},
	} {
		if *d.v < 0 {
			return cfg, fmt.Errorf("asterisk: %s %s is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.Refresh <= 0 || cfg.Refresh >= cfg.Lease {
		cfg.Refresh = cfg.Lease / 3
	}
	if cfg.ReconnectMin > cfg.ReconnectMax {
		return cfg, fmt.Errorf("asterisk: reconnect minimum %s exceeds maximum %s", cfg.ReconnectMin, cfg.ReconnectMax)
	}
	cfg.Limits = cfg.Limits.norm()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Meter == nil {
		cfg.Meter = psync.NopMeter{}
	}
	return cfg, nil
}

// Manager.conf classes the bridge needs (Asterisk's manager.c and
// res_manager_devicestate.c register the actions with these classes;
// an action runs when the account's write classes share one with it):
//
//   - read "call": DeviceStateChange, ConfbridgeJoin/Leave, MeetmeJoin/Leave
//     and PresenceStateChange are call-class events.
//   - write "system": DBGet (system or reporting), DBPut, DBDel.
//   - write "call": Setvar and Getvar (DEVICE_STATE, PRESENCE_STATE) and
//     DeviceStateList (call or reporting).
//
// Ping, Login and ListCommands need no class.
const (
	neededRead  = "call"
	neededWrite = "system,call"
)

// ManagerStanza is the least-privilege manager.conf account for the
// bridge, for the admin to paste (with a secret of their own).
func ManagerStanza(user string) string {
	if user == "" {
		user = "presencebridge"
	}
	return "[" + user + "]\n" +
		"secret = <a long random secret; the same in asterisk.secret>\n" +
		"deny = 0.0.0.0/0.0.0.0\n" +
		"permit = <the bridge's address>/255.255.255.255\n" +
		"read = " + neededRead + "\n" +
		"write = " + neededWrite + "\n" +
		"writetimeout = 5000\n"
}

// validName accepts what may name an extension or a device in an AstDB key
// or a device state: no line breaks (they would inject AMI fields), no
// separators the keys or dial strings use.
func validName(s string) bool {
	if s == "" || len(s) > 80 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.+*#@", r)) {
			return false
		}
	}
	return true
}
