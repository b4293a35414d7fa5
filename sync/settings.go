package sync

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SettingKind says how a setting's value is written and checked.
type SettingKind uint8

// Setting kinds.
const (
	KindString SettingKind = iota
	KindSecret             // a string never shown back (masked on output)
	KindDuration
	KindInt
	KindBool
	KindURL
	KindEnum
)

// SettingSpec describes one setting: its key, default, range and help.
type SettingSpec struct {
	Key     string
	Kind    SettingKind
	Default string
	Min     int64 // KindInt: bounds; KindDuration: bounds in nanoseconds
	Max     int64
	Enum    []string
	Help    string
}

// Mask is what output shows instead of a secret's value.
const Mask = "********"

// settingSpecs is the registry of every setting the bridge knows. It is a
// fixed table, not state: nothing writes to it.
var settingSpecs = []SettingSpec{
	{Key: "default_profile", Kind: KindString, Default: DefaultProfileName, Help: "profile of users that name none"},
	{Key: "teams.lease", Kind: KindDuration, Default: "10m", Min: int64(5 * time.Minute), Max: int64(4 * time.Hour), Help: "expirationDuration of the bridge's Teams presence session (Graph allows PT5M-PT4H)"},
	{Key: "teams.keepalive", Kind: KindDuration, Default: "5m", Min: int64(30 * time.Second), Max: int64(2 * time.Hour), Help: "re-send setPresence this often while a call lasts; must be shorter than teams.lease"},
	{Key: "phone.lease", Kind: KindDuration, Default: "10m", Min: int64(time.Minute), Max: int64(4 * time.Hour), Help: "expiry of a presence the bridge sets on the phone system (absent state until, PUBLISH Expires)"},
	{Key: "phone.keepalive", Kind: KindDuration, Default: "5m", Min: int64(15 * time.Second), Max: int64(2 * time.Hour), Help: "refresh the phone presence this often while a Teams call lasts; must be shorter than phone.lease"},
	{Key: "retry.min", Kind: KindDuration, Default: "1s", Min: int64(100 * time.Millisecond), Max: int64(time.Minute), Help: "first wait before retrying a side that failed"},
	{Key: "retry.max", Kind: KindDuration, Default: "2m", Min: int64(time.Second), Max: int64(30 * time.Minute), Help: "longest wait between retries"},
	{Key: "audit.limit", Kind: KindInt, Default: "10000", Min: 100, Max: 10_000_000, Help: "audit log entries kept (oldest dropped first)"},
	{Key: "teams.tenant_id", Kind: KindString, Help: "Entra tenant id (GUID) or domain"},
	{Key: "teams.client_id", Kind: KindString, Help: "application (client) id of the bridge's app registration"},
	{Key: "teams.client_secret", Kind: KindSecret, Help: "client secret of the app registration"},
	{Key: "teams.authority_url", Kind: KindURL, Default: "https://login.microsoftonline.com", Help: "Entra authority host (national clouds differ)"},
	{Key: "teams.graph_url", Kind: KindURL, Default: "https://graph.microsoft.com/v1.0", Help: "Microsoft Graph endpoint (national clouds differ)"},
	{Key: "teams.client_certificate", Kind: KindString, Help: "path of a PEM or PFX file with the app's certificate and key (instead of a client secret)"},
	{Key: "teams.client_certificate_password", Kind: KindSecret, Help: "password of the PFX/PEM key, if any"},
	{Key: "teams.mode", Kind: KindEnum, Default: "poll", Enum: []string{"poll", "subscribe"}, Help: "poll: read presence in batches (no inbound port); subscribe: Graph change notifications to a webhook"},
	{Key: "teams.poll_share", Kind: KindInt, Default: "2", Min: 1, Max: 50, Help: "percent of Graph's presence budget (1,500 requests / 30 s) that polling may use"},
	{Key: "teams.catchup_interval", Kind: KindDuration, Default: "5m", Min: int64(30 * time.Second), Max: int64(time.Hour), Help: "subscribe mode: full presence read this often, because Graph never reports a missed notification"},
	{Key: "teams.service_accounts", Kind: KindString, Help: "subscribe mode: comma-separated UPNs of service accounts signed in with the device code (650 users each)"},
	{Key: "teams.webhook_url", Kind: KindURL, Help: "subscribe mode: public https base URL of the webhook listener; Graph posts to it + /notify and /lifecycle"},
	{Key: "teams.webhook_listen", Kind: KindString, Default: ":8443", Help: "subscribe mode: address the webhook listener binds"},
	{Key: "teams.webhook_tls_cert", Kind: KindString, Help: "subscribe mode: PEM certificate chain of the webhook listener (empty: plain HTTP behind a TLS proxy)"},
	{Key: "teams.webhook_tls_key", Kind: KindString, Help: "subscribe mode: PEM private key of the webhook listener"},
	{Key: "phone.system", Kind: KindEnum, Enum: []string{"", "ucserver", "sip", "asterisk"}, Help: "which phone system to connect to: ucserver (estos ProCall), sip (any PBX that accepts dialog subscriptions), asterisk (Asterisk/FreePBX over AMI)"},
	{Key: "ucserver.url", Kind: KindURL, Help: "UCServer web service, e.g. https://ucserver.example:7225"},
	{Key: "ucserver.ucsid", Kind: KindString, Default: "local", Help: "UCServer id (\"local\" on premises, the UCSID through UCConnect)"},
	{Key: "ucserver.user", Kind: KindString, Help: "service account of the bridge on the UCServer"},
	{Key: "ucserver.password", Kind: KindSecret, Help: "password of that service account"},
	{Key: "ucserver.allow_http", Kind: KindBool, Default: "false", Help: "allow a plain http:// ucserver.url: the password and every event cross the network unencrypted (use only on a trusted link)"},
	{Key: "sip.server", Kind: KindString, Help: "host:port of the PBX or front proxy that accepts SUBSCRIBE, e.g. pbx.example:5060"},
	{Key: "sip.transport", Kind: KindEnum, Default: "udp", Enum: []string{"udp", "tcp", "tls"}, Help: "SIP transport to sip.server"},
	{Key: "sip.domain", Kind: KindString, Help: "SIP domain of the extensions (empty: the host of sip.server)"},
	{Key: "sip.user", Kind: KindString, Help: "the bridge's own SIP account (digest user name)"},
	{Key: "sip.password", Kind: KindSecret, Help: "password of that SIP account"},
	{Key: "sip.register", Kind: KindBool, Default: "false", Help: "REGISTER the bridge's account first (PBXs that accept SUBSCRIBE only from a registered endpoint)"},
	{Key: "sip.expires", Kind: KindDuration, Default: "2m", Min: int64(time.Minute), Max: int64(24 * time.Hour), Help: "subscription expiry asked for (the server may grant less; refreshed at 80 % of what it grants). A PBX that restarts forgets its subscriptions without a word: the refresh is what finds that out, so a shorter expiry finds it sooner"},
	{Key: "sip.extensions", Kind: KindString, Help: "extension to user, e.g. \"201=anna@contoso.com, 221=anna@contoso.com\" (empty: each user's extension field, several separated by commas)"},
	{Key: "sip.writer", Kind: KindEnum, Default: "none", Enum: []string{"none", "kamailio", "publish"}, Help: "how Teams reaches the phones: kamailio (busy-on-busy through the front proxy's RPC, presence by PUBLISH), publish (presence only: shows busy, does not block calls), none (read calls only)"},
	{Key: "sip.rpc_url", Kind: KindURL, Help: "sip.writer kamailio: the proxy's JSON-RPC over HTTP, e.g. http://127.0.0.1:5071/RPC"},
	{Key: "sip.htable", Kind: KindString, Default: "teamsbusy", Help: "sip.writer kamailio: the htable the proxy's route checks before relaying an INVITE"},
	{Key: "sip.listen", Kind: KindString, Default: "0.0.0.0:0", Help: "local address the bridge's SIP side binds (port 0: any free port)"},
	{Key: "asterisk.host", Kind: KindString, Help: "host:port of the Asterisk Manager Interface (port 5038 when left out)"},
	{Key: "asterisk.user", Kind: KindString, Help: "manager.conf account of the bridge"},
	{Key: "asterisk.secret", Kind: KindSecret, Help: "secret of that manager.conf account"},
	{Key: "asterisk.profile", Kind: KindEnum, Default: "freepbx", Enum: []string{"freepbx", "asterisk"}, Help: "freepbx: DND exactly as FreePBX sets it; asterisk: a custom device state and a dialplan snippet that enforces the lease"},
	{Key: "asterisk.presence", Kind: KindBool, Default: "false", Help: "also show the Teams state on the phones (PRESENCE_STATE(CustomPresence:<ext>))"},
}

// secretsBound lists, for each setting that decides where secrets are
// sent, the secrets sent there. Whoever may change settings may not read
// secrets (the presencebridge group): pointing such a setting elsewhere
// must not hand the stored secret to the new endpoint. A change of one of
// these settings clears its secrets unless they are given again in the
// same change.
var secretsBound = map[string][]string{
	"ucserver.url":        {"ucserver.password"},
	"ucserver.ucsid":      {"ucserver.password"}, // UCConnect sends the login where the UCSID leads
	"ucserver.allow_http": {"ucserver.password"},
	"sip.server":          {"sip.password"},
	"sip.transport":       {"sip.password"},
	"sip.domain":          {"sip.password"},
	"asterisk.host":       {"asterisk.secret"},
	"teams.authority_url": {"teams.client_secret"},
	"teams.graph_url":     {"teams.client_secret"},
}

// SecretsBoundTo returns the secrets a change of key clears (nil for most).
func SecretsBoundTo(key string) []string { return secretsBound[key] }

// CheckSideSettings checks the rules across the sides' settings: a plain
// http UCServer only with its explicit opt-in.
func CheckSideSettings(values map[string]string) error {
	u, err := url.Parse(strings.TrimSpace(values["ucserver.url"]))
	if err == nil && strings.EqualFold(u.Scheme, "http") && !IsLoopbackHost(u.Hostname()) && values["ucserver.allow_http"] != "true" {
		return fmt.Errorf("ucserver.url %s is plain http: the UCServer password and every event would cross the network unencrypted; use https (the UCServer's port 7225), or, on a trusted link only, set ucserver.allow_http true first", values["ucserver.url"])
	}
	return nil
}

// IsLoopbackHost reports whether host (a URL's hostname) is this machine:
// localhost or a loopback address. Plain http to it crosses no network.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ForOtherPhoneSystem reports whether key configures a phone system other
// than system (the value of phone.system): "sip.server" when the bridge
// runs against a UCServer. The console leaves those out, so an admin sees
// the settings of the phone system in use; with phone.system unset, none
// is other.
func ForOtherPhoneSystem(key, system string) bool {
	if system == "" {
		return false
	}
	spec, _ := LookupSetting("phone.system")
	for _, name := range spec.Enum {
		if name != "" && name != system && strings.HasPrefix(key, name+".") {
			return true
		}
	}
	return false
}

// SettingSpecs returns every known setting, sorted by key.
func SettingSpecs() []SettingSpec {
	out := append([]SettingSpec(nil), settingSpecs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// LookupSetting finds a setting by key.
func LookupSetting(key string) (SettingSpec, error) {
	for _, s := range settingSpecs {
		if s.Key == key {
			return s, nil
		}
	}
	return SettingSpec{}, fmt.Errorf("unknown setting %q (see `config list`)", key)
}

// MaxSettingBytes bounds a setting value: the longest real ones (a list of
// service accounts, a URL) are a few hundred bytes.
const MaxSettingBytes = 4096

// Normalize checks a value for this setting and returns its canonical form.
func (s SettingSpec) Normalize(v string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) > MaxSettingBytes {
		return "", fmt.Errorf("%s: value of %d bytes is longer than %d", s.Key, len(v), MaxSettingBytes)
	}
	if !utf8.ValidString(v) {
		// The control API carries values as JSON, which would replace the
		// bad bytes: a secret would silently change on the way.
		return "", fmt.Errorf("%s: value is not valid UTF-8", s.Key)
	}
	switch s.Kind {
	case KindDuration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return "", fmt.Errorf("%s: %q is not a duration (write e.g. 90s, 10m, 1h30m)", s.Key, v)
		}
		if int64(d) < s.Min || int64(d) > s.Max {
			return "", fmt.Errorf("%s: %s is out of range %s..%s", s.Key, d, time.Duration(s.Min), time.Duration(s.Max))
		}
		return d.String(), nil
	case KindInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%s: %q is not a whole number", s.Key, v)
		}
		if n < s.Min || n > s.Max {
			return "", fmt.Errorf("%s: %d is out of range %d..%d", s.Key, n, s.Min, s.Max)
		}
		return strconv.FormatInt(n, 10), nil
	case KindBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return "", fmt.Errorf("%s: %q is not true or false", s.Key, v)
		}
		return strconv.FormatBool(b), nil
	case KindURL:
		if v == "" {
			return "", nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsFunc(v, unicode.IsSpace) {
			return "", fmt.Errorf("%s: %q is not an http(s) URL", s.Key, v)
		}
		v = u.Scheme + v[len(u.Scheme):] // stored as compared: HTTPS:// is https://
		return strings.TrimRight(v, "/"), nil
	case KindEnum:
		for _, e := range s.Enum {
			if strings.EqualFold(e, v) {
				return e, nil
			}
		}
		return "", fmt.Errorf("%s: %q is not one of %q", s.Key, v, s.Enum)
	}
	if strings.ContainsAny(v, "\n\r\x00") {
		return "", fmt.Errorf("%s: value contains a line break or NUL", s.Key)
	}
	if s.Kind != KindSecret && strings.ContainsFunc(v, unicode.IsControl) {
		// Values are printed by `config list`, doctor and the console: an
		// escape sequence would drive the admin's terminal.
		return "", fmt.Errorf("%s: value contains control characters", s.Key)
	}
	if s.Key == "default_profile" {
		if err := ValidateProfileName(v); err != nil {
			return "", fmt.Errorf("%s: %w", s.Key, err)
		}
	}
	return v, nil
}

// Show renders a value for output: secrets are masked.
func (s SettingSpec) Show(v string) string {
	if s.Kind == KindSecret && v != "" {
		return Mask
	}
	return v
}

// Settings are the typed settings the engine runs with.
type Settings struct {
	DefaultProfile string
	TeamsLease     time.Duration
	TeamsKeepAlive time.Duration
	PhoneLease     time.Duration
	PhoneKeepAlive time.Duration
	RetryMin       time.Duration
	RetryMax       time.Duration
	AuditLimit     int
}

// DefaultSettings returns the settings with every default.
func DefaultSettings() Settings {
	s, err := ParseSettings(nil)
	if err != nil {
		panic("sync: defaults do not validate: " + err.Error()) // a bug in the table above
	}
	return s
}

// ParseSettings builds typed settings from stored values (missing keys take
// their default) and checks the rules that span keys.
func ParseSettings(values map[string]string) (Settings, error) {
	get := func(key string) (string, error) {
		spec, err := LookupSetting(key)
		if err != nil {
			return "", err
		}
		v, ok := values[key]
		if !ok {
			v = spec.Default
		}
		return spec.Normalize(v)
	}
	dur := func(key string) (time.Duration, error) {
		v, err := get(key)
		if err != nil {
			return 0, err
		}
		return time.ParseDuration(v)
	}
	var s Settings
	var err error
	if s.DefaultProfile, err = get("default_profile"); err != nil {
		return s, err
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{
		{"teams.lease", &s.TeamsLease}, {"teams.keepalive", &s.TeamsKeepAlive},
		{"phone.lease", &s.PhoneLease}, {"phone.keepalive", &s.PhoneKeepAlive},
		{"retry.min", &s.RetryMin}, {"retry.max", &s.RetryMax},
	} {
		if *d.dst, err = dur(d.key); err != nil {
			return s, err
		}
	}
	v, err := get("audit.limit")
	if err != nil {
		return s, err
	}
	s.AuditLimit, _ = strconv.Atoi(v)
	return s, s.Check()
}

// Check reports what is wrong with typed settings: the rules that span keys,
// and values out of their ranges.
func (s Settings) Check() error {
	if err := ValidateProfileName(s.DefaultProfile); err != nil {
		return fmt.Errorf("default_profile: %w", err)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"teams.lease", s.TeamsLease}, {"teams.keepalive", s.TeamsKeepAlive},
		{"phone.lease", s.PhoneLease}, {"phone.keepalive", s.PhoneKeepAlive},
		{"retry.min", s.RetryMin}, {"retry.max", s.RetryMax},
	} {
		spec, _ := LookupSetting(d.key)
		if int64(d.v) < spec.Min || int64(d.v) > spec.Max {
			return fmt.Errorf("%s: %s is out of range %s..%s", d.key, d.v, time.Duration(spec.Min), time.Duration(spec.Max))
		}
	}
	if s.TeamsKeepAlive >= s.TeamsLease {
		return fmt.Errorf("teams.keepalive (%s) must be shorter than teams.lease (%s)", s.TeamsKeepAlive, s.TeamsLease)
	}
	if s.PhoneKeepAlive >= s.PhoneLease {
		return fmt.Errorf("phone.keepalive (%s) must be shorter than phone.lease (%s)", s.PhoneKeepAlive, s.PhoneLease)
	}
	if s.RetryMin > s.RetryMax {
		return fmt.Errorf("retry.min (%s) must not exceed retry.max (%s)", s.RetryMin, s.RetryMax)
	}
	return nil
}
