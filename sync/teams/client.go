package teams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	msgraph "github.com/microsoftgraph/msgraph-sdk-go"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Client is the Teams side of the bridge over Microsoft Graph.
type Client struct {
	cfg    Config
	log    *slog.Logger
	meter  psync.Meter
	hc     *http.Client
	cred   *recordingCredential
	graph  *msgraph.GraphServiceClient
	budget *budget
	scope  string
	host   string

	mu        sync.Mutex
	objectID  map[psync.UserID]string // Entra object id of each user
	userOf    map[string]psync.UserID // and back
	last      map[psync.UserID]psync.TeamsPresence
	problems  []psync.Problem
	connected bool
	lastPoll  time.Time
	subs      *subscriber // subscribe mode only

	bg   context.Context // outlives requests: device-code sign-ins
	stop context.CancelFunc
}

var (
	_ psync.Teams    = (*Client)(nil)
	_ psync.Reporter = (*Client)(nil)
)

// New builds the client. It makes no request: the first token is asked for
// when Run or a call needs one, so a wrong secret shows in the report and
// in `doctor`, not as a failure to start.
func New(cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	hc := baseHTTPClient(&cfg)
	cred, err := newCredential(&cfg, hc)
	if err != nil {
		return nil, err
	}
	scope, host, err := graphScope(cfg.GraphURL)
	if err != nil {
		return nil, fmt.Errorf("teams.graph_url: %w", err)
	}
	c := &Client{
		cfg: cfg, log: cfg.Logger.With("component", "teams"), meter: cfg.Meter, hc: hc,
		cred:   &recordingCredential{inner: cred},
		budget: newBudget(cfg.Budget, cfg.BudgetWindow, cfg.Now),
		scope:  scope, host: host,
		objectID: make(map[psync.UserID]string), userOf: make(map[string]psync.UserID),
		last: make(map[psync.UserID]psync.TeamsPresence),
	}
	c.budget.onThrottle = func(wait time.Duration) {
		c.log.Warn("Graph is throttling", "retry_after", wait)
		c.meter.Call(psync.SideTeams, "throttle", "throttled", wait)
	}
	c.graph, err = newGraphClient(c.cred, scope, host, cfg.GraphURL, hc, c.budget)
	if err != nil {
		return nil, err
	}
	if cfg.Mode == "subscribe" {
		if c.subs, err = newSubscriber(c); err != nil {
			return nil, err
		}
	}
	c.bg, c.stop = context.WithCancel(context.Background())
	return c, nil
}

// Close ends what outlives Run: sign-ins waiting for the admin.
func (c *Client) Close() error {
	c.stop()
	return nil
}

// recordingCredential remembers when the app's token expires, for the
// report; it changes nothing about the token.
type recordingCredential struct {
	inner azcore.TokenCredential
	mu    sync.Mutex
	exp   time.Time
	err   error
}

func (r *recordingCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := r.inner.GetToken(ctx, o)
	r.mu.Lock()
	r.err = err
	if err == nil {
		r.exp = tok.ExpiresOn
	}
	r.mu.Unlock()
	return tok, err
}

func (r *recordingCredential) state() (time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exp, r.err
}

// call runs one Graph operation with metering and error translation.
func (c *Client) call(op string, f func() error) error {
	start := time.Now()
	err := graphError(op, f(), c.cfg.Now())
	res := "ok"
	switch {
	case err == nil:
	case errors.As(err, new(*psync.RetryAfterError)):
		res = "throttled"
	case errors.Is(err, psync.ErrRejected):
		res = "rejected"
	case errors.Is(err, psync.ErrUnavailable):
		res = "unavailable"
	default:
		res = "error"
	}
	c.meter.Call(psync.SideTeams, op, res, time.Since(start))
	if errors.Is(err, psync.ErrSuperseded) {
		res = "superseded"
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, psync.ErrSuperseded) && statusOf(err) != http.StatusNotFound {
		c.problem(err)
	}
	return err
}

// problem records an error for the report with the fix to apply.
func (c *Client) problem(err error) {
	c.addProblem(psync.Problem{At: c.cfg.Now(), What: err.Error(), Fix: fixFor(err.Error(), &c.cfg)})
}

func (c *Client) addProblem(p psync.Problem) {
	c.mu.Lock()
	c.problems = append([]psync.Problem{p}, c.problems...)
	if len(c.problems) > 10 {
		c.problems = c.problems[:10]
	}
	c.mu.Unlock()
}

// fixFor says what the admin should do about an error text.
func fixFor(msg string, cfg *Config) string {
	switch {
	case strings.Contains(msg, "AADSTS7000215"), strings.Contains(msg, "AADSTS7000222"):
		return "teams.client_secret is wrong or expired: create a new client secret for the app registration and set it"
	case strings.Contains(msg, "AADSTS700016"):
		return "teams.client_id is not an app in this tenant: check teams.client_id and teams.tenant_id"
	case strings.Contains(msg, "AADSTS90002"), strings.Contains(msg, "AADSTS900023"):
		return "teams.tenant_id is not a tenant: use the directory (tenant) id of your Entra tenant"
	case strings.Contains(msg, "AADSTS700027"), strings.Contains(msg, "AADSTS50013"):
		return "the certificate is not registered on the app: upload teams.client_certificate's public certificate to the app registration"
	case strings.Contains(msg, "HTTP 403"):
		return "the app lacks a permission: grant Presence.ReadWrite.All and User.Read.All (application) and give admin consent: " + adminConsentURL(cfg)
	case strings.Contains(msg, "HTTP 401"):
		return "Graph refused the token: check that teams.graph_url and teams.authority_url belong to the same cloud"
	case strings.Contains(msg, "throttled"):
		return "Graph is throttling the app: lower teams.poll_share or wait"
	case strings.Contains(msg, "x509:"), strings.Contains(msg, "certificate signed by unknown authority"):
		return "the TLS certificate of the authority or Graph is not trusted: install its CA in the system store or point SSL_CERT_FILE at it"
	case strings.Contains(msg, "HTTP 404"):
		return "the user does not exist in Entra: check the user's UPN"
	}
	return ""
}

func adminConsentURL(cfg *Config) string {
	return strings.TrimSuffix(cfg.AuthorityURL, "/") + "/" + cfg.TenantID + "/adminconsent?client_id=" + cfg.ClientID
}

// Report implements psync.Reporter.
func (c *Client) Report() psync.SideReport {
	exp, terr := c.cred.state()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := psync.SideReport{
		Side: psync.SideTeams, Name: "Microsoft Graph", Mode: c.cfg.Mode, Endpoint: c.cfg.GraphURL,
		Connected: c.connected, Throttled: c.budget.throttledUntil(),
		Errors: append([]psync.Problem(nil), c.problems...),
	}
	if r.Throttled.Before(c.cfg.Now()) {
		r.Throttled = time.Time{}
	}
	tok := psync.Fact{Label: "app token", Value: "not requested yet"}
	if !exp.IsZero() {
		tok = psync.Fact{Label: "app token", Value: "valid", Until: exp}
	}
	if terr != nil {
		tok = psync.Fact{Label: "app token", Value: "sign-in failed", Warn: true}
	}
	r.Facts = append(r.Facts, tok,
		psync.Fact{Label: "users resolved", Value: fmt.Sprint(len(c.objectID))},
		psync.Fact{Label: "requests (30 s)", Value: fmt.Sprintf("%d of %d", c.budget.used(), c.cfg.Budget)})
	if !c.lastPoll.IsZero() {
		r.Facts = append(r.Facts, psync.Fact{Label: "last read", Value: c.lastPoll.Format("15:04:05")})
	}
	if c.subs != nil {
		r.Facts = append(r.Facts, c.subs.facts()...)
	}
	return r
}
