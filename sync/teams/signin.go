package teams

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Presence subscriptions need a delegated token (graph-presence.md §3):
// each service account signs in once with the device code, and its MSAL
// token cache lives in the store so a restart needs no new sign-in.

// ErrNotSignedIn: a service account has no usable sign-in.
var ErrNotSignedIn = errors.New("not signed in")

// storeCache keeps one account's MSAL cache in the store.
type storeCache struct {
	p       Persistence
	account string
}

func (s storeCache) Replace(ctx context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	data, err := s.p.TokenCache(s.account)
	if err != nil || len(data) == 0 {
		return err
	}
	return u.Unmarshal(data)
}

func (s storeCache) Export(ctx context.Context, m cache.Marshaler, _ cache.ExportHints) error {
	data, err := m.Marshal()
	if err != nil {
		return err
	}
	return s.p.PutTokenCache(s.account, data)
}

// account is one service account: its MSAL client and sign-in state. It
// is an azcore.TokenCredential for the Graph client of its subscriptions.
type account struct {
	upn    string
	scopes []string
	pca    public.Client

	mu      sync.Mutex
	expires time.Time // of the last delegated token
	err     error     // of the last refresh
	prompt  *psync.SignInPrompt
}

func newAccount(cfg *Config, upn string, hc *http.Client) (*account, error) {
	if cfg.Store == nil {
		return nil, errors.New("teams: subscribe mode needs a store for the sign-ins")
	}
	authority := strings.TrimSuffix(cfg.AuthorityURL, "/") + "/" + cfg.TenantID
	pca, err := public.New(cfg.ClientID, public.WithAuthority(authority), public.WithCache(storeCache{cfg.Store, strings.ToLower(upn)}),
		public.WithHTTPClient(hc), public.WithInstanceDiscovery(false))
	if err != nil {
		return nil, fmt.Errorf("teams: service account %s: %w", upn, err)
	}
	scope, _, err := graphScope(cfg.GraphURL)
	if err != nil {
		return nil, err
	}
	res := strings.TrimSuffix(scope, ".default")
	return &account{upn: upn, scopes: []string{res + "Presence.Read.All"}, pca: pca}, nil
}

// msalAccount finds the account's entry in its token cache.
func (a *account) msalAccount(ctx context.Context) (public.Account, bool) {
	accts, err := a.pca.Accounts(ctx)
	if err != nil {
		return public.Account{}, false
	}
	for _, ac := range accts {
		if strings.EqualFold(ac.PreferredUsername, a.upn) {
			return ac, true
		}
	}
	return public.Account{}, false
}

// GetToken implements azcore.TokenCredential with the cached sign-in.
func (a *account) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	ac, ok := a.msalAccount(ctx)
	if !ok {
		err := fmt.Errorf("service account %s is %w: start its device-code sign-in (console settings, or `presencebridge signin %s`)", a.upn, ErrNotSignedIn, a.upn)
		a.setErr(err)
		return azcore.AccessToken{}, err
	}
	res, err := a.pca.AcquireTokenSilent(ctx, a.scopes, public.WithSilentAccount(ac))
	if err != nil {
		err = fmt.Errorf("the sign-in of service account %s could not be refreshed (%s): sign it in again", a.upn, firstLine(err.Error()))
		a.setErr(err)
		return azcore.AccessToken{}, err
	}
	a.mu.Lock()
	a.expires, a.err = res.ExpiresOn, nil
	a.mu.Unlock()
	return azcore.AccessToken{Token: res.AccessToken, ExpiresOn: res.ExpiresOn}, nil
}

func (a *account) setErr(err error) {
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "AADSTS"); i >= 0 {
		s = s[i:]
	}
	return strings.TrimSpace(s)
}

// startSignIn asks Entra for a device code and waits for the admin in the
// background (until the code expires or ctx ends). done receives the result.
func (a *account) startSignIn(ctx context.Context, done func(error)) (psync.SignInPrompt, error) {
	dc, err := a.pca.AcquireTokenByDeviceCode(ctx, a.scopes)
	if err != nil {
		return psync.SignInPrompt{}, fmt.Errorf("teams: device code for %s: %s", a.upn, firstLine(err.Error()))
	}
	p := psync.SignInPrompt{Account: a.upn, Code: dc.Result.UserCode, URL: dc.Result.VerificationURL, Message: dc.Result.Message, Expires: dc.Result.ExpiresOn}
	a.mu.Lock()
	a.prompt = &p
	a.mu.Unlock()
	go func() {
		wctx, cancel := context.WithDeadline(ctx, p.Expires.Add(time.Minute))
		defer cancel()
		res, err := dc.AuthenticationResult(wctx)
		if err == nil && !strings.EqualFold(res.Account.PreferredUsername, a.upn) {
			_ = a.pca.RemoveAccount(wctx, res.Account)
			err = fmt.Errorf("signed in as %s, but this is the sign-in of %s: sign in with that account", res.Account.PreferredUsername, a.upn)
		}
		a.mu.Lock()
		a.prompt = nil
		if err == nil {
			a.expires, a.err = res.ExpiresOn, nil
		} else {
			a.err = fmt.Errorf("device-code sign-in of %s failed: %s", a.upn, firstLine(err.Error()))
			err = a.err
		}
		a.mu.Unlock()
		done(err)
	}()
	return p, nil
}

// state is the account's sign-in as the report shows it.
func (a *account) state() (expires time.Time, err error, prompt *psync.SignInPrompt) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.expires, a.err, a.prompt
}
