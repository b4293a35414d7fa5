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
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams/webhook"
)

// Check is one line of `doctor`: what was tried, and the fix when it failed.
type Check struct {
	Name   string
	OK     bool
	Detail string
	Fix    string
}

// requiredRoles are the application permissions the bridge needs.
var requiredRoles = []string{"Presence.ReadWrite.All", "User.Read.All"}

// Doctor checks the Teams side step by step with real requests: settings,
// the app's sign-in, the roles in its token, one user lookup, one presence
// read, and in subscribe mode the service accounts and the webhook. It
// stops at the first step the others depend on.
func Doctor(ctx context.Context, cfg Config, us []psync.User) []Check {
	var out []Check
	add := func(c Check) bool { out = append(out, c); return c.OK }
	if err := cfg.check(); err != nil {
		add(Check{Name: "settings", Detail: err.Error(), Fix: "set them with `presencebridge config set KEY VALUE` or in the console"})
		return out
	}
	add(Check{Name: "settings", OK: true, Detail: fmt.Sprintf("tenant %s, app %s, %s mode, Graph at %s", cfg.TenantID, cfg.ClientID, cfg.Mode, cfg.GraphURL)})
	c, err := New(cfg)
	if err != nil {
		add(Check{Name: "client", Detail: err.Error()})
		return out
	}
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		msg := graphError("token", err, cfg.Now()).Error()
		add(Check{Name: "app sign-in", Detail: msg, Fix: fixFor(msg, &c.cfg)})
		return out
	}
	add(Check{Name: "app sign-in", OK: true, Detail: "token valid until " + tok.ExpiresOn.Local().Format("15:04")})

	roles := tokenRoles(tok.Token)
	var missing []string
	for _, r := range requiredRoles {
		if !slices.Contains(roles, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		add(Check{Name: "permissions", Detail: "the token lacks " + strings.Join(missing, ", ") + " (has: " + strings.Join(roles, ", ") + ")",
			Fix: "add the application permission(s) " + strings.Join(missing, ", ") + " to the app registration and grant admin consent: " + adminConsentURL(&c.cfg)})
	} else {
		add(Check{Name: "permissions", OK: true, Detail: strings.Join(roles, ", ")})
	}

	var probe *psync.User
	for i := range us {
		if us[i].UPN != "" {
			probe = &us[i]
			break
		}
	}
	if probe == nil {
		add(Check{Name: "user lookup", Detail: "no configured user has a UPN", Fix: "add users with `presencebridge config set user.ID.upn NAME@DOMAIN`"})
		return out
	}
	ok, probs, err := c.ResolveUsers(ctx, []psync.User{*probe})
	switch {
	case err != nil:
		add(Check{Name: "user lookup", Detail: err.Error(), Fix: fixFor(err.Error(), &c.cfg)})
		return out
	case len(ok) == 0:
		add(Check{Name: "user lookup", Detail: probs[0].String(), Fix: "correct the user's UPN"})
		return out
	}
	add(Check{Name: "user lookup", OK: true, Detail: fmt.Sprintf("%s is %s", probe.UPN, ok[0].TeamsID)})
	ps, err := c.readPresences(ctx, []string{ok[0].TeamsID})
	if err != nil {
		add(Check{Name: "presence read", Detail: err.Error(), Fix: fixFor(err.Error(), &c.cfg)})
	} else if len(ps) == 1 {
		add(Check{Name: "presence read", OK: true, Detail: fmt.Sprintf("%s is %s/%s", probe.UPN, deref(ps[0].GetAvailability()), deref(ps[0].GetActivity()))})
	}
	if cfg.Mode != "subscribe" {
		return out
	}
	for _, upn := range c.cfg.ServiceAccounts {
		a, err := newAccount(&c.cfg, upn, c.hc)
		if err != nil {
			add(Check{Name: "service account " + upn, Detail: err.Error()})
			continue
		}
		if tok, err := a.GetToken(ctx, policy.TokenRequestOptions{}); err != nil {
			add(Check{Name: "service account " + upn, Detail: err.Error(), Fix: "sign it in: `presencebridge signin " + upn + "` or in the console's settings"})
		} else {
			add(Check{Name: "service account " + upn, OK: true, Detail: "delegated token valid until " + tok.ExpiresOn.Local().Format("15:04")})
		}
	}
	add(webhookCheck(ctx, c.hc, cfg.WebhookURL))
	return out
}

// webhookCheck sends Graph's validation request to the public webhook URL
// and expects the token back, as Graph will before it creates a subscription.
func webhookCheck(ctx context.Context, hc *http.Client, hook string) Check {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	token := "presencebridge-doctor-" + hex.EncodeToString(b)
	u, err := url.Parse(strings.TrimSuffix(hook, "/") + webhook.NotifyPath)
	if err != nil {
		return Check{Name: "webhook", Detail: err.Error(), Fix: "set teams.webhook_url to the public https URL of the webhook"}
	}
	q := u.Query()
	q.Set("validationToken", token)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return Check{Name: "webhook", Detail: err.Error(), Fix: "make " + hook + " reachable from the internet over https (port forward or reverse proxy to teams.webhook_listen) and keep the service running"}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != 200 || string(body) != token {
		return Check{Name: "webhook", Detail: fmt.Sprintf("%s answered HTTP %d without the validation token", u.Redacted(), resp.StatusCode),
			Fix: "teams.webhook_url must be the public base URL of this bridge's webhook listener (teams.webhook_listen); Graph posts to it + " + webhook.NotifyPath}
	}
	return Check{Name: "webhook", OK: true, Detail: strings.TrimSuffix(hook, "/") + webhook.NotifyPath + " answers Graph's validation request"}
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
