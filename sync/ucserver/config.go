package ucserver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// DefaultController is the UCConnect controller that finds the UCWeb proxy
// of a UCServer by its UCSID.
const DefaultController = "https://uccontroller.ucconnect.de"

// Config is what a Conn is built from. Zero durations take the defaults
// named on each field.
type Config struct {
	// URL (setting ucserver.url) is the on-premises UCServer web service,
	// e.g. https://ucserver.example:7225, when UCSID is "local"; otherwise
	// the UCConnect controller (empty: DefaultController).
	URL string
	// UCSID (ucserver.ucsid) is "local" (the default) on premises, or the
	// UCServer's id through UCConnect.
	UCSID string
	// User and Password (ucserver.user, ucserver.password) log the service
	// account in with HTTP Basic auth.
	User     string
	Password string
	// AllowHTTP (ucserver.allow_http) allows a plain http URL that is not
	// on this machine: the password and every event then cross the
	// network unencrypted. Loopback needs no opt-in.
	AllowHTTP bool
	// LoginToken, when set, is used instead of User/Password (header
	// x-uctoken).
	LoginToken string

	Logger *slog.Logger // nil: discard
	Meter  psync.Meter  // nil: psync.NopMeter{}
	// Clock drives keep-alive, reconnect backoff and report times
	// (nil: psync.RealClock). Network timeouts always use real time.
	Clock psync.Clock

	// RootCAs verifies an https server (nil: the system pool). The on-prem
	// web service ships a self-signed certificate by default; add it here.
	RootCAs *x509.CertPool
	// HTTPClient replaces the client built from RootCAs (tests, proxies).
	// Its Timeout is ignored; ConnectTimeout applies.
	HTTPClient *http.Client

	// ConnectTimeout bounds each HTTP request and the WebSocket dial
	// (default 10 s, as estos' sample).
	ConnectTimeout time.Duration
	// InvokeTimeout bounds one operation (default 5 s, as estos' stub).
	InvokeTimeout time.Duration
	// KeepAlive is the asnTransportKeepAlive interval (default 5 s).
	KeepAlive time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between failed
	// connection attempts (default 1 s and 30 s).
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// CheckTimeout bounds each check of Doctor (default 10 s; the user and
	// subscription checks get more time per user).
	CheckTimeout time.Duration
}

// ConfigFromSettings is the connector's configuration from the stored
// settings (the ucserver.* keys). Doctor's first check reports what is
// wrong with them, so this only maps.
func ConfigFromSettings(values map[string]string) Config {
	ucsid := values["ucserver.ucsid"]
	if ucsid == "" {
		ucsid = defaultUCSID
	}
	return Config{
		URL: values["ucserver.url"], UCSID: ucsid,
		User: values["ucserver.user"], Password: values["ucserver.password"],
		AllowHTTP: values["ucserver.allow_http"] == "true",
	}
}

// MissingSettings lists the settings the connector cannot run without.
func MissingSettings(values map[string]string) []string {
	var missing []string
	if values["ucserver.url"] == "" {
		missing = append(missing, "setting ucserver.url is not set (presencebridge config set ucserver.url ...)")
	}
	if values["ucserver.user"] == "" && values["ucserver.password"] == "" {
		missing = append(missing, "settings ucserver.user and ucserver.password are not set")
	}
	return missing
}

// Defaults.
const (
	defaultUCSID          = "local"
	defaultConnectTimeout = 10 * time.Second
	defaultInvokeTimeout  = 5 * time.Second
	defaultKeepAlive      = 5 * time.Second
	defaultReconnectMin   = time.Second
	defaultReconnectMax   = 30 * time.Second
	defaultCheckTimeout   = 10 * time.Second
)

// normalize validates the configuration and fills the defaults. Errors name
// the setting an admin would fix; they never contain a secret.
func (cfg Config) normalize() (Config, error) {
	cfg.UCSID = strings.TrimSpace(cfg.UCSID)
	if cfg.UCSID == "" {
		cfg.UCSID = defaultUCSID
	}
	if strings.ContainsAny(cfg.UCSID, " \t\r\n/?#&") {
		return cfg, fmt.Errorf("ucserver.ucsid: %q is not a UCServer id", cfg.UCSID)
	}
	cfg.URL = strings.TrimRight(strings.TrimSpace(cfg.URL), "/")
	if cfg.URL == "" {
		if cfg.onPrem() {
			return cfg, errors.New("ucserver.url: required on premises (e.g. https://ucserver.example:7225)")
		}
		cfg.URL = DefaultController
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfg, errors.New("ucserver.url: not an http(s) URL (e.g. https://ucserver.example:7225)")
	}
	if u.User != nil {
		return cfg, errors.New("ucserver.url: must not carry credentials; use ucserver.user / ucserver.password")
	}
	if u.Scheme == "http" && !cfg.AllowHTTP && !psync.IsLoopbackHost(u.Hostname()) {
		return cfg, errors.New("ucserver.url: plain http would send the password and every event unencrypted; use https (port 7225), or on a trusted link set ucserver.allow_http true")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return cfg, errors.New("ucserver.url: must not have a query or fragment")
	}
	// The scheme in lower case: checks for https:// and wsURL compare text.
	cfg.URL = strings.TrimRight(u.String(), "/")
	if strings.ContainsAny(cfg.User, "\r\n\x00") || strings.ContainsAny(cfg.LoginToken, "\r\n\x00") {
		return cfg, errors.New("ucserver.user / login token: contains a line break or NUL")
	}
	if cfg.LoginToken == "" {
		if strings.TrimSpace(cfg.User) == "" {
			return cfg, errors.New("ucserver.user: required (the bridge's service account), or a login token")
		}
		if strings.Contains(cfg.User, ":") {
			return cfg, errors.New("ucserver.user: must not contain ':' (HTTP Basic auth)")
		}
		if cfg.Password == "" {
			return cfg, errors.New("ucserver.password: required for ucserver.user")
		}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"connect timeout", &cfg.ConnectTimeout, defaultConnectTimeout},
		{"invoke timeout", &cfg.InvokeTimeout, defaultInvokeTimeout},
		{"keep-alive interval", &cfg.KeepAlive, defaultKeepAlive},
		{"reconnect minimum", &cfg.ReconnectMin, defaultReconnectMin},
		{"reconnect maximum", &cfg.ReconnectMax, defaultReconnectMax},
		{"check timeout", &cfg.CheckTimeout, defaultCheckTimeout},
	} {
		if *d.v < 0 {
			return cfg, fmt.Errorf("ucserver: %s %s is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.ReconnectMin > cfg.ReconnectMax {
		return cfg, fmt.Errorf("ucserver: reconnect minimum %s exceeds maximum %s", cfg.ReconnectMin, cfg.ReconnectMax)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Meter == nil {
		cfg.Meter = psync.NopMeter{}
	}
	if cfg.Clock == nil {
		cfg.Clock = psync.RealClock{}
	}
	return cfg, nil
}

func (cfg Config) onPrem() bool { return strings.EqualFold(cfg.UCSID, defaultUCSID) }

// httpClient returns the client for createsession and the WebSocket dial.
// It never follows an HTTP redirect: the login carries credentials
// (Authorization, x-uctoken) that must not reach another host or go over
// plain HTTP. The only redirect the protocol knows, the UCConnect
// controller's, is a JSON answer webBase handles itself.
func (cfg Config) httpClient() *http.Client {
	var c *http.Client
	if cfg.HTTPClient != nil {
		cp := *cfg.HTTPClient
		c = &cp
		c.Timeout = 0 // the context carries ConnectTimeout
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.RootCAs != nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
		}
		c = &http.Client{Transport: tr}
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// endpoint is what reports show: the URL without anything secret (it has
// none after normalize) plus the UCSID.
func (cfg Config) endpoint() string {
	if cfg.onPrem() {
		return cfg.URL
	}
	return cfg.URL + " (UCConnect, ucsid " + cfg.UCSID + ")"
}
