package teams

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams/webhook"
)

// requiredRoles are the application permissions the bridge needs.
var requiredRoles = []string{"Presence.ReadWrite.All", "User.Read.All"}

// doctorPerUser is how much longer the check of every user may take per
// user: it asks Graph once for each.
const doctorPerUser = 100 * time.Millisecond

// Doctor checks the Teams side step by step with real requests, and hands
// each check to report the moment it is done (report is called from
// Doctor's goroutine, never after Doctor returns):
//
//   - settings: tenant, app, credential and mode are complete;
//   - app sign-in: the app gets a token from Entra;
//   - permissions: the token carries Presence.ReadWrite.All and
//     User.Read.All (the fix has the admin-consent URL);
//   - user lookup: the first user with a UPN is found in Entra;
//   - presence read: that user's presence can be read;
//   - users in Entra: every configured user is found (names the others);
//   - subscribe mode: each service account has a delegated token, and the
//     webhook answers Graph's validation request.
//
// It stops at the first step the others depend on. Each check has its own
// timeout (Config.CheckTimeout); DNS, refused, timeout and TLS errors get a
// fix naming the host and the setting. When ctx ends, the running check is
// reported as cancelled and Doctor returns; no connection of the doctor
// outlives it.
func Doctor(ctx context.Context, cfg Config, us []psync.User, report func(psync.Check)) {
	r := &psync.CheckRunner{Side: psync.SideTeams, Timeout: cfg.CheckTimeout, Report: report}
	if !r.Run(ctx, "settings", func(context.Context) psync.Check {
		if err := cfg.check(); err != nil {
			return psync.Check{Detail: err.Error(), Fix: "set them with `presencebridge config set KEY VALUE` or in the console"}
		}
		return psync.Check{OK: true, Detail: fmt.Sprintf("tenant %s, app %s, %s mode, Graph at %s", cfg.TenantID, cfg.ClientID, cfg.Mode, cfg.GraphURL)}
	}).OK {
		return
	}
	// Graph errors keep only the text of a transport error; the recorder
	// keeps the error itself, for the fix.
	life, end := context.WithCancel(context.WithoutCancel(ctx))
	defer end()
	hc := baseHTTPClient(&cfg)
	rec := &netRecorder{next: psync.CheckTransport(life, hc.Transport)}
	dhc := *hc
	dhc.Transport = rec
	cfg.HTTPClient = &dhc
	c, err := New(cfg)
	if err != nil {
		r.Run(ctx, "client", func(context.Context) psync.Check {
			return psync.Check{Detail: err.Error(), Fix: "check teams.authority_url, teams.graph_url and the app's credential settings"}
		})
		return
	}
	defer c.Close()
	// fix picks the fix for a failed request: the connection problem if
	// there was one, else what the error text says.
	fix := func(err error, msg, setting string) string {
		for _, e := range []error{err, rec.take()} {
			if f := psync.NetFix(e, setting); f != "" {
				return f
			}
		}
		return fixFor(msg, &c.cfg)
	}

	var tok azcore.AccessToken
	if !r.Run(ctx, "app sign-in", func(ctx context.Context) psync.Check {
		rec.take()
		var err error
		tok, err = c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
		if err != nil {
			msg := graphError("token", err, cfg.Now()).Error()
			return psync.Check{Detail: msg, Fix: fix(err, msg, "teams.authority_url")}
		}
		return psync.Check{OK: true, Detail: "token valid until " + tok.ExpiresOn.Local().Format("15:04")}
	}).OK {
		return
	}

	r.Run(ctx, "permissions", func(context.Context) psync.Check {
		roles := tokenRoles(tok.Token)
		var missing []string
		for _, role := range requiredRoles {
			if !slices.Contains(roles, role) {
				missing = append(missing, role)
			}
		}
		if len(missing) > 0 {
			return psync.Check{Detail: "the token lacks " + strings.Join(missing, ", ") + " (has: " + strings.Join(roles, ", ") + ")",
				Fix: "add the application permission(s) " + strings.Join(missing, ", ") + " to the app registration and grant admin consent: " + adminConsentURL(&c.cfg)}
		}
		return psync.Check{OK: true, Detail: strings.Join(roles, ", ")}
	})
	if r.Stopped() {
		return
	}

	var probe *psync.User
	for i := range us {
		if us[i].UPN != "" {
			probe = &us[i]
			break
		}
	}
	if probe == nil {
		r.Run(ctx, "user lookup", func(context.Context) psync.Check {
			return psync.Check{Detail: "no configured user has a UPN", Fix: "add users with `presencebridge config set user.ID.upn NAME@DOMAIN`"}
		})
		return
	}
	var found psync.User
	graphDown := false
	lookup := r.Run(ctx, "user lookup", func(ctx context.Context) psync.Check {
		rec.take()
		ok, probs, err := c.ResolveUsers(ctx, []psync.User{*probe})
		switch {
		case err != nil:
			graphDown = true
			return psync.Check{Detail: err.Error(), Fix: fix(err, err.Error(), "teams.graph_url")}
		case len(ok) == 0:
			return psync.Check{Detail: probs[0].String(), Fix: "correct the user's UPN"}
		}
		found = ok[0]
		return psync.Check{OK: true, Detail: fmt.Sprintf("%s is %s", probe.UPN, found.TeamsID)}
	})
	if r.Stopped() || graphDown {
		return // Graph could not be asked: the later checks would fail alike
	}
	if lookup.OK {
		r.Run(ctx, "presence read", func(ctx context.Context) psync.Check {
			rec.take()
			ps, err := c.readPresences(ctx, []string{found.TeamsID})
			switch {
			case err != nil:
				return psync.Check{Detail: err.Error(), Fix: fix(err, err.Error(), "teams.graph_url")}
			case len(ps) != 1:
				return psync.Check{Detail: fmt.Sprintf("Graph returned %d presences for %s", len(ps), probe.UPN),
					Fix: "retry; if it persists, Graph has no presence for the user (no Teams licence?)"}
			}
			return psync.Check{OK: true, Detail: fmt.Sprintf("%s is %s/%s", probe.UPN, deref(ps[0].GetAvailability()), deref(ps[0].GetActivity()))}
		})
	}
	timeout := cfg.CheckTimeout
	if timeout <= 0 {
		timeout = psync.DefaultCheckTimeout
	}
	r.RunFor(ctx, "users in Entra", timeout+time.Duration(len(us))*doctorPerUser, func(ctx context.Context) psync.Check {
		rec.take()
		return usersCheck(ctx, c, us, fix)
	})
	if r.Stopped() || cfg.Mode != "subscribe" {
		return
	}
	for _, upn := range c.cfg.ServiceAccounts {
		r.Run(ctx, "service account "+upn, func(ctx context.Context) psync.Check {
			a, err := newAccount(&c.cfg, upn, c.hc)
			if err != nil {
				return psync.Check{Detail: err.Error()}
			}
			rec.take()
			tok, err := a.GetToken(ctx, policy.TokenRequestOptions{})
			if err != nil {
				f := psync.NetFix(rec.take(), "teams.authority_url")
				if f == "" {
					f = "sign it in: `presencebridge signin " + upn + "` or in the console's settings"
				}
				return psync.Check{Detail: err.Error(), Fix: f}
			}
			return psync.Check{OK: true, Detail: "delegated token valid until " + tok.ExpiresOn.Local().Format("15:04")}
		})
	}
	r.Run(ctx, "webhook", func(ctx context.Context) psync.Check { return webhookCheck(ctx, c.hc, cfg.WebhookURL) })
}

// usersCheck looks every configured user up in Entra and names the ones
// the bridge cannot follow.
func usersCheck(ctx context.Context, c *Client, us []psync.User, fix func(error, string, string) string) psync.Check {
	ok, probs, err := c.ResolveUsers(ctx, us)
	if err != nil {
		return psync.Check{Detail: err.Error(), Fix: fix(err, err.Error(), "teams.graph_url")}
	}
	if len(probs) > 0 {
		var names []string
		for _, p := range probs {
			n := p.UPN
			if n == "" {
				n = string(p.User)
			}
			names = append(names, n+" ("+shortReason(p.Reason)+")")
		}
		more := ""
		if len(names) > 10 {
			names, more = names[:10], fmt.Sprintf(" and %d more", len(names)-10)
		}
		return psync.Check{Detail: fmt.Sprintf("%d of %d users cannot be followed in Teams: %s%s", len(probs), len(us), strings.Join(names, ", "), more),
			Fix: "correct these users' UPNs (`presencebridge config`, or the console), enable their accounts in Entra, or remove them"}
	}
	return psync.Check{OK: true, Detail: fmt.Sprintf("all %d users are known in Entra", len(ok))}
}

// shortReason keeps the reason of a UserProblem without its fix.
func shortReason(r string) string {
	if i := strings.Index(r, ":"); i > 0 {
		return r[:i]
	}
	return r
}

// netRecorder keeps the last transport error of the requests it carries.
type netRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	err  error
}

func (n *netRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := n.next.RoundTrip(req)
	if err != nil {
		u := *req.URL
		u.RawQuery = "" // the error only has to name the host
		n.mu.Lock()
		n.err = &url.Error{Op: req.Method, URL: u.String(), Err: err}
		n.mu.Unlock()
	}
	return resp, err
}

// take returns the last transport error and forgets it.
func (n *netRecorder) take() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.err
	n.err = nil
	return err
}

// webhookCheck sends Graph's validation request to the public webhook URL
// and expects the token back, as Graph will before it creates a subscription.
func webhookCheck(ctx context.Context, hc *http.Client, hook string) psync.Check {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	token := "presencebridge-doctor-" + hex.EncodeToString(b)
	u, err := url.Parse(strings.TrimSuffix(hook, "/") + webhook.NotifyPath)
	if err != nil {
		return psync.Check{Detail: err.Error(), Fix: "set teams.webhook_url to the public https URL of the webhook"}
	}
	q := u.Query()
	q.Set("validationToken", token)
	u.RawQuery = q.Encode()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	resp, err := hc.Do(req)
	if err != nil {
		f := "make " + hook + " reachable from the internet over https (port forward or reverse proxy to teams.webhook_listen) and keep the service running"
		if nf := psync.NetFix(err, "teams.webhook_url"); nf != "" {
			f = nf + "; " + f
		}
		return psync.Check{Detail: err.Error(), Fix: f}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != 200 || string(body) != token {
		return psync.Check{Detail: fmt.Sprintf("%s answered HTTP %d without the validation token", u.Redacted(), resp.StatusCode),
			Fix: "teams.webhook_url must be the public base URL of this bridge's webhook listener (teams.webhook_listen); Graph posts to it + " + webhook.NotifyPath}
	}
	return psync.Check{OK: true, Detail: strings.TrimSuffix(hook, "/") + webhook.NotifyPath + " answers Graph's validation request"}
}

// tokenRoles reads the roles claim of an access token. The token came
// straight from the authority over TLS; this is for display, not trust.
func tokenRoles(tok string) []string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return nil
	}
	return claims.Roles
}
