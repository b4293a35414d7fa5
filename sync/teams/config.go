package teams

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Graph's documented limits (graph-presence.md §1, §3).
const (
	maxIDsPerRequest     = 650
	maxUsersPerSubscribe = 650
	defaultBudget        = 1500
	defaultBudgetWindow  = 30 * time.Second
	minLease, maxLease   = 5 * time.Minute, 4 * time.Hour
)

// Config is everything the adapter is built from. ConfigFromSettings fills
// it from the stored settings; tests and demo fill it directly.
type Config struct {
	TenantID string
	ClientID string
	// ClientSecret or a certificate (PEM or PFX bytes, or a path to read them from).
	ClientSecret        string
	CertificatePath     string
	Certificate         []byte
	CertificatePassword string

	AuthorityURL string // default https://login.microsoftonline.com
	GraphURL     string // default https://graph.microsoft.com/v1.0

	Mode string // "poll" (default) or "subscribe"
	// PollShare is the percent of the presence budget polling may use (default 2).
	PollShare int
	// Budget requests per BudgetWindow, shared by reads and writes (default 1,500 / 30 s).
	Budget       int
	BudgetWindow time.Duration
	// MinPollInterval bounds how often one chunk is read (default 1 s).
	MinPollInterval time.Duration
	// CatchUp is the slow full read in subscribe mode (default 5 min).
	CatchUp time.Duration
	// SubscriptionCheck is how often subscriptions are checked for renewal
	// (default 1 min; they are renewed 10 min before they expire).
	SubscriptionCheck time.Duration

	// Subscribe mode.
	ServiceAccounts []string
	WebhookURL      string // public https URL Graph posts to
	WebhookListen   string // address the listener binds
	WebhookTLSCert  string // PEM files; empty: plain HTTP behind a TLS proxy
	WebhookTLSKey   string
	// WebhookListener and WebhookCert replace WebhookListen and the PEM
	// files (tests, demo); without WebhookURL the listener's address is used.
	WebhookListener net.Listener
	WebhookCert     *tls.Certificate
	// Store keeps subscriptions, token caches and the encryption certificate.
	Store Persistence

	// HTTPClient carries every request (Entra and Graph). nil: a client
	// with the system roots, which honour SSL_CERT_FILE.
	HTTPClient *http.Client
	// CheckTimeout bounds each check of Doctor (default
	// psync.DefaultCheckTimeout; the check of every user gets more time per
	// user).
	CheckTimeout time.Duration
	Logger       *slog.Logger
	Meter        psync.Meter
	Now          func() time.Time
	// Clock drives the reader's waits (poll gaps, retries); nil: the wall
	// clock.
	Clock psync.Clock
}

// ConfigFromSettings builds a Config from stored settings (missing keys
// take their defaults). It checks what is missing for the chosen mode.
func ConfigFromSettings(values map[string]string) (Config, error) {
	get := func(key string) string {
		spec, err := psync.LookupSetting(key)
		if err != nil {
			return ""
		}
		if v, ok := values[key]; ok {
			return v
		}
		return spec.Default
	}
	c := Config{
		TenantID: get("teams.tenant_id"), ClientID: get("teams.client_id"),
		ClientSecret: get("teams.client_secret"), CertificatePath: get("teams.client_certificate"),
		CertificatePassword: get("teams.client_certificate_password"),
		AuthorityURL:        get("teams.authority_url"), GraphURL: get("teams.graph_url"),
		Mode: get("teams.mode"), WebhookURL: get("teams.webhook_url"), WebhookListen: get("teams.webhook_listen"),
		WebhookTLSCert: get("teams.webhook_tls_cert"), WebhookTLSKey: get("teams.webhook_tls_key"),
	}
	c.PollShare, _ = strconv.Atoi(get("teams.poll_share"))
	c.CatchUp, _ = time.ParseDuration(get("teams.catchup_interval"))
	for _, a := range strings.Split(get("teams.service_accounts"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.ServiceAccounts = append(c.ServiceAccounts, a)
		}
	}
	return c, c.check()
}

// check fills defaults and reports what is missing or wrong.
func (c *Config) check() error {
	var miss []string
	if c.TenantID == "" {
		miss = append(miss, "teams.tenant_id")
	}
	if c.ClientID == "" {
		miss = append(miss, "teams.client_id")
	}
	if c.ClientSecret == "" && c.CertificatePath == "" && len(c.Certificate) == 0 {
		miss = append(miss, "teams.client_secret or teams.client_certificate")
	}
	if c.Mode == "" {
		c.Mode = "poll"
	}
	if c.Mode != "poll" && c.Mode != "subscribe" {
		return fmt.Errorf("teams.mode %q: want poll or subscribe", c.Mode)
	}
	if c.Mode == "subscribe" {
		if len(c.ServiceAccounts) == 0 {
			miss = append(miss, "teams.service_accounts (subscribe mode)")
		}
		if c.WebhookURL == "" && c.WebhookListener == nil {
			miss = append(miss, "teams.webhook_url (subscribe mode)")
		}
		if (c.WebhookTLSCert == "") != (c.WebhookTLSKey == "") {
			return errors.New("teams.webhook_tls_cert and teams.webhook_tls_key go together")
		}
	}
	if len(miss) > 0 {
		return fmt.Errorf("teams: missing settings: %s", strings.Join(miss, ", "))
	}
	if c.AuthorityURL == "" {
		c.AuthorityURL = "https://login.microsoftonline.com"
	}
	if c.GraphURL == "" {
		c.GraphURL = "https://graph.microsoft.com/v1.0"
	}
	for _, u := range []struct{ key, v string }{{"teams.authority_url", c.AuthorityURL}, {"teams.graph_url", c.GraphURL}} {
		p, err := url.Parse(u.v)
		if err != nil || p.Host == "" || (p.Scheme != "https" && !loopbackHTTP(p)) {
			return fmt.Errorf("%s %q: want an https URL", u.key, u.v)
		}
	}
	if c.WebhookURL != "" {
		p, err := url.Parse(c.WebhookURL)
		if err != nil || p.Scheme != "https" || p.Host == "" {
			return fmt.Errorf("teams.webhook_url %q: Graph only posts to https URLs", c.WebhookURL)
		}
	}
	if c.PollShare <= 0 {
		c.PollShare = 2
	}
	if c.PollShare > 100 {
		return fmt.Errorf("teams.poll_share %d: a percent, at most 100", c.PollShare)
	}
	if c.Budget <= 0 {
		c.Budget = defaultBudget
	}
	if c.BudgetWindow <= 0 {
		c.BudgetWindow = defaultBudgetWindow
	}
	if c.MinPollInterval <= 0 {
		c.MinPollInterval = time.Second
	}
	if c.CatchUp <= 0 {
		c.CatchUp = 5 * time.Minute
	}
	if c.SubscriptionCheck <= 0 {
		c.SubscriptionCheck = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Meter == nil {
		c.Meter = psync.NopMeter{}
	}
	if c.Clock == nil {
		c.Clock = psync.RealClock{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CertificatePath != "" && len(c.Certificate) == 0 {
		b, err := readCertFile(c.CertificatePath)
		if err != nil {
			return fmt.Errorf("teams.client_certificate: %w", err)
		}
		c.Certificate = b
	}
	return nil
}

func loopbackHTTP(u *url.URL) bool {
	h := u.Hostname()
	return u.Scheme == "http" && (h == "127.0.0.1" || h == "::1" || h == "localhost")
}

// Persistence is what the adapter keeps in the store between runs.
type Persistence interface {
	Subscriptions() ([]Subscription, error)
	PutSubscription(Subscription) error
	DeleteSubscription(id string) error
	TokenCache(account string) ([]byte, error)
	PutTokenCache(account string, data []byte) error
	EncryptionCert() ([]byte, error)
	PutEncryptionCert(pem []byte) error
}

// Subscription is a Graph presence subscription as the adapter keeps it.
type Subscription struct {
	ID          string
	Account     string
	ClientState string
	UserIDs     []string // Entra object ids
	NotifyURL   string   // where Graph delivers: a new webhook URL needs a new subscription
	Expires     time.Time
	Created     time.Time
	checked     bool // Graph confirmed it in this run
}
