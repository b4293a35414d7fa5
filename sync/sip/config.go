package sip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Writer modes (setting sip.writer).
const (
	WriterNone     = "none"
	WriterKamailio = "kamailio"
	WriterPublish  = "publish"
)

// Config is what a Conn is built from. Zero durations take the defaults
// named on each field.
type Config struct {
	// Server (sip.server) is host:port of the PBX or front proxy that takes
	// SUBSCRIBE and PUBLISH; every request goes there (outbound proxy).
	Server string
	// Transport (sip.transport): udp (default), tcp or tls.
	Transport string
	// Domain (sip.domain) of the extensions; default the host of Server.
	Domain string
	// User and Password (sip.user, sip.password): digest credentials of the
	// bridge's own account; User is also the From of every request.
	User     string
	Password string
	// Register (sip.register): REGISTER the account before subscribing.
	Register bool
	// Expires (sip.expires) is the requested subscription expiry (default
	// 2m); the server may grant less, and the granted value is used. A PBX
	// or proxy that restarts forgets its subscriptions without a word, and
	// the next refresh is what finds that out: a call that ended meanwhile
	// shows until then.
	Expires time.Duration
	// Extensions (sip.extensions): "201=anna@contoso.com, 221=..."; empty:
	// each user's Extension field.
	Extensions string
	// Writer (sip.writer): none (default), kamailio or publish.
	Writer string
	// RPCURL (sip.rpc_url) and HTable (sip.htable, default teamsbusy): the
	// Kamailio jsonrpcs endpoint and htable of writer kamailio.
	RPCURL string
	HTable string
	// Listen (sip.listen) is the local SIP address (default 0.0.0.0:0: an
	// address towards Server, a port chosen by the system).
	Listen string
	// Lease (phone.lease, default 10m) is the TTL of everything the bridge
	// writes: PUBLISH Expires and the htable entries.
	Lease time.Duration

	Logger *slog.Logger // nil: discard
	// HTTPClient reaches the Kamailio RPC (nil: a client with
	// RequestTimeout).
	HTTPClient *http.Client

	// RequestTimeout bounds one SIP transaction (default 8 s, below UDP's
	// 32 s Timer B so a dead server is noticed sooner).
	RequestTimeout time.Duration
	// RetryMin and RetryMax bound the resubscribe backoff (default 1 s,
	// 60 s).
	RetryMin time.Duration
	RetryMax time.Duration
	// NotifyTimeout is how long a fresh subscription may wait for its
	// first NOTIFY (RFC 6665 requires one at once) before it is retried
	// (default 10 s).
	NotifyTimeout time.Duration
	// CheckTimeout bounds each check of Doctor (default 10 s).
	CheckTimeout time.Duration

	// busy replaces the Kamailio RPC client (tests).
	busy busyTable
}

// Defaults.
const (
	defaultExpires        = 2 * time.Minute
	defaultLease          = 10 * time.Minute
	defaultHTable         = "teamsbusy"
	defaultListen         = "0.0.0.0:0"
	defaultRequestTimeout = 8 * time.Second
	defaultRetryMin       = time.Second
	defaultRetryMax       = time.Minute
	defaultNotifyTimeout  = 10 * time.Second
	defaultCheckTimeout   = 10 * time.Second
	minExpires            = time.Second // RFC 6665 has no floor; below this refresh churns
)

// ConfigFromSettings builds a Config from the stored settings (sip.* and
// phone.lease); missing keys take their defaults.
func ConfigFromSettings(values map[string]string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(values[k]) }
	c := Config{
		Server: get("sip.server"), Transport: get("sip.transport"), Domain: get("sip.domain"),
		User: get("sip.user"), Password: values["sip.password"], Extensions: get("sip.extensions"),
		Writer: get("sip.writer"), RPCURL: get("sip.rpc_url"), HTable: get("sip.htable"), Listen: get("sip.listen"),
	}
	if v := get("sip.register"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("sip.register: %q is not true or false", v)
		}
		c.Register = b
	}
	for _, d := range []struct {
		key string
		v   *time.Duration
	}{{"sip.expires", &c.Expires}, {"phone.lease", &c.Lease}} {
		if s := get(d.key); s != "" {
			x, err := time.ParseDuration(s)
			if err != nil {
				return c, fmt.Errorf("%s: %q is not a duration (e.g. 10m)", d.key, s)
			}
			*d.v = x
		}
	}
	return c.normalize()
}

// normalize validates the configuration and fills the defaults. Errors name
// the setting an admin would fix and never carry the password.
func (c Config) normalize() (Config, error) {
	if c.Server == "" {
		return c, errors.New("sip.server: required: host:port of the PBX or proxy that accepts SUBSCRIBE (e.g. pbx.example:5060)")
	}
	c.Transport = strings.ToLower(strings.TrimSpace(c.Transport))
	if c.Transport == "" {
		c.Transport = "udp"
	}
	if c.Transport != "udp" && c.Transport != "tcp" && c.Transport != "tls" {
		return c, fmt.Errorf("sip.transport: %q: want udp, tcp or tls", c.Transport)
	}
	host, port, err := net.SplitHostPort(c.Server)
	if err != nil {
		// A bare host takes the transport's well-known port.
		if strings.Contains(c.Server, "/") || strings.Count(c.Server, ":") > 1 && !strings.HasPrefix(c.Server, "[") {
			return c, fmt.Errorf("sip.server: %q is not host:port (e.g. pbx.example:5060)", c.Server)
		}
		host, port = c.Server, "5060"
		if c.Transport == "tls" {
			port = "5061"
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" || strings.ContainsAny(host, " /@;?") {
		return c, fmt.Errorf("sip.server: %q is not host:port (e.g. pbx.example:5060)", c.Server)
	}
	c.Server = net.JoinHostPort(host, port)
	if c.Domain == "" {
		c.Domain = host
	}
	if strings.ContainsAny(c.Domain, " /@;?<>\"") {
		return c, fmt.Errorf("sip.domain: %q is not a SIP domain (e.g. pbx.example)", c.Domain)
	}
	if strings.ContainsAny(c.User, " :@;<>\"\r\n") {
		return c, fmt.Errorf("sip.user: %q is not a SIP user name (no spaces, ':', '@', ';')", c.User)
	}
	if strings.ContainsAny(c.Password, "\r\n\x00") {
		return c, errors.New("sip.password: contains a line break or NUL")
	}
	if c.Password != "" && c.User == "" {
		return c, errors.New("sip.user: required with sip.password (the account the password belongs to)")
	}
	if c.Register && c.User == "" {
		return c, errors.New("sip.user: required with sip.register true (the account to REGISTER)")
	}
	if c.Expires == 0 {
		c.Expires = defaultExpires
	}
	if c.Expires < minExpires || c.Expires > 24*time.Hour {
		return c, fmt.Errorf("sip.expires: %s is out of range: use 1s to 24h (e.g. 10m)", c.Expires)
	}
	if c.Lease == 0 {
		c.Lease = defaultLease
	}
	if c.Lease < 3*time.Second {
		return c, fmt.Errorf("phone.lease: %s is too short: use at least 1m", c.Lease)
	}
	c.Writer = strings.ToLower(strings.TrimSpace(c.Writer))
	if c.Writer == "" {
		c.Writer = WriterNone
	}
	switch c.Writer {
	case WriterNone, WriterPublish:
	case WriterKamailio:
		if c.RPCURL == "" && c.busy == nil {
			return c, errors.New("sip.rpc_url: required with sip.writer kamailio (e.g. http://127.0.0.1:5071/RPC)")
		}
		if c.RPCURL != "" {
			u, err := url.Parse(c.RPCURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return c, fmt.Errorf("sip.rpc_url: %q is not an http(s) URL (e.g. http://127.0.0.1:5071/RPC)", c.RPCURL)
			}
		}
	default:
		return c, fmt.Errorf("sip.writer: %q: want none, kamailio or publish", c.Writer)
	}
	if c.HTable == "" {
		c.HTable = defaultHTable
	}
	if strings.ContainsAny(c.HTable, " \t\"'=>;") {
		return c, fmt.Errorf("sip.htable: %q is not an htable name (e.g. teamsbusy)", c.HTable)
	}
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if _, p, err := net.SplitHostPort(c.Listen); err != nil {
		return c, fmt.Errorf("sip.listen: %q is not host:port (e.g. 0.0.0.0:5080, or 0.0.0.0:0 for any port)", c.Listen)
	} else if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		return c, fmt.Errorf("sip.listen: %q has no valid port", c.Listen)
	}
	if _, err := c.extensionMap(); err != nil {
		return c, err
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"request timeout", &c.RequestTimeout, defaultRequestTimeout},
		{"retry minimum", &c.RetryMin, defaultRetryMin},
		{"retry maximum", &c.RetryMax, defaultRetryMax},
		{"first-NOTIFY timeout", &c.NotifyTimeout, defaultNotifyTimeout},
		{"check timeout", &c.CheckTimeout, defaultCheckTimeout},
	} {
		if *d.v < 0 {
			return c, fmt.Errorf("sip: %s %s is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.RetryMin > c.RetryMax {
		return c, fmt.Errorf("sip: retry minimum %s exceeds maximum %s", c.RetryMin, c.RetryMax)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// extensionMap parses sip.extensions: extension → user id or UPN as typed.
func (c Config) extensionMap() (map[string]string, error) {
	out := map[string]string{}
	for _, item := range strings.Split(c.Extensions, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ext, who, ok := strings.Cut(item, "=")
		ext, who = strings.TrimSpace(ext), strings.TrimSpace(who)
		if !ok || ext == "" || who == "" {
			return nil, fmt.Errorf("sip.extensions: %q is not extension=user (e.g. 201=anna@contoso.com)", item)
		}
		if err := checkExtension(ext); err != nil {
			return nil, fmt.Errorf("sip.extensions: %w", err)
		}
		if prev, dup := out[ext]; dup && !strings.EqualFold(prev, who) {
			return nil, fmt.Errorf("sip.extensions: extension %s is given to both %s and %s; give it to one", ext, prev, who)
		}
		out[ext] = who
	}
	return out, nil
}

// checkExtension keeps an extension usable as the user part of a SIP URI
// and as a Kamailio htable key.
func checkExtension(ext string) error {
	if len(ext) > 64 {
		return fmt.Errorf("extension %.16q… is longer than 64 characters", ext)
	}
	for _, r := range ext {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("*#+-_.", r)) {
			return fmt.Errorf("extension %q: only letters, digits and * # + - _ . are allowed", ext)
		}
	}
	return nil
}

// Extensions maps each watched extension to its user: from sip.extensions
// (by user id or UPN) when set, else from each user's Extension field
// (several separated by commas). An extension claimed by two users is an
// error naming both.
func Extensions(users []psync.User, cfg Config) (map[string]psync.UserID, error) {
	out := map[string]psync.UserID{}
	claim := func(ext string, u psync.UserID, where string) error {
		if err := checkExtension(ext); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if prev, ok := out[ext]; ok && prev != u {
			a, b := sortedPair(string(prev), string(u))
			return fmt.Errorf("%s: extension %s belongs to both %s and %s; give it to one of them", where, ext, a, b)
		}
		out[ext] = u
		return nil
	}
	if strings.TrimSpace(cfg.Extensions) != "" {
		m, err := cfg.extensionMap()
		if err != nil {
			return nil, err
		}
		exts := make([]string, 0, len(m))
		for ext := range m {
			exts = append(exts, ext)
		}
		sort.Strings(exts)
		for _, ext := range exts {
			who := m[ext]
			var found *psync.User
			for i := range users {
				if string(users[i].ID) == who || (users[i].UPN != "" && strings.EqualFold(users[i].UPN, who)) {
					found = &users[i]
					break
				}
			}
			if found == nil {
				return nil, fmt.Errorf("sip.extensions: %s=%s: no such user (give a user id or UPN of a configured user)", ext, who)
			}
			if err := claim(ext, found.ID, "sip.extensions"); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	for _, u := range users {
		for _, ext := range strings.Split(u.Extension, ",") {
			if ext = strings.TrimSpace(ext); ext == "" {
				continue
			}
			if err := claim(ext, u.ID, "user "+string(u.ID)+" extension"); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func sortedPair(a, b string) (string, string) {
	if b < a {
		return b, a
	}
	return a, b
}
