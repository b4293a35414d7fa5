package teams

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	kstore "github.com/microsoft/kiota-abstractions-go/store"
	kauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraph "github.com/microsoftgraph/msgraph-sdk-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	psync "github.com/presencebridge/presencebridge/sync"
)

// newCredential builds the app-only credential: a client secret or a
// certificate, against the configured authority (national clouds, or the
// simulator). Instance discovery is off: with it MSAL asks the global
// cloud whether a custom authority host is valid.
func newCredential(c *Config, hc *http.Client) (azcore.TokenCredential, error) {
	opts := azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: strings.TrimSuffix(c.AuthorityURL, "/") + "/"},
		Transport: hc,
		Retry:     policy.RetryOptions{MaxRetries: 1},
	}
	if len(c.Certificate) > 0 {
		certs, key, err := parseClientCertificate(c.Certificate, c.CertificatePassword)
		if err != nil {
			return nil, fmt.Errorf("teams.client_certificate: %w", err)
		}
		return azidentity.NewClientCertificateCredential(c.TenantID, c.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true, SendCertificateChain: true})
	}
	return azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
}

// baseHTTPClient is the transport under everything: TLS from the system
// roots (SSL_CERT_FILE) unless the caller gave a client.
func baseHTTPClient(c *Config) *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// graphScope is the .default scope of the configured Graph host.
func graphScope(graphURL string) (scope, host string, err error) {
	u, err := url.Parse(graphURL)
	if err != nil {
		return "", "", err
	}
	// National clouds have their own resource; the simulator uses the
	// global one (its tokens are for https://graph.microsoft.com).
	res := "https://" + u.Host
	if loopbackHTTP(u) || isLoopbackHost(u.Hostname()) {
		res = "https://graph.microsoft.com"
	}
	return res + "/.default", u.Hostname(), nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// newGraphClient builds a Graph client over cred with a fixed middleware
// order. Outermost first: compression must sit outside retry so a retried
// POST resends the same compressed body (kiota-http-go#183); the budget sits
// innermost so every request on the wire, retries included, is counted.
// Compression is gzipBodies rather than kiota's handler, which allocates a
// fresh gzip writer (about 800 KB) per request: on the write path that
// garbage showed as tail latency.
func newGraphClient(cred azcore.TokenCredential, scope, host, baseURL string, hc *http.Client, b *budget) (*msgraph.GraphServiceClient, error) {
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{scope}, []string{host})
	if err != nil {
		return nil, fmt.Errorf("teams: auth provider: %w", err)
	}
	retry := khttp.NewRetryHandlerWithOptions(khttp.RetryHandlerOptions{
		MaxRetries: 2, DelaySeconds: 1,
		// Short waits are retried here; longer ones go back to the engine,
		// which keeps the target and retries without holding a worker.
		ShouldRetry: func(_ time.Duration, _ int, _ *http.Request, resp *http.Response) bool {
			d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
			return !ok || d <= 2*time.Second
		},
	})
	mws := []khttp.Middleware{
		khttp.NewUrlReplaceHandler(true, map[string]string{"/users/me-token-to-replace": "/me"}),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewUserAgentHandler(),
		khttp.NewHeadersInspectionHandler(),
		khttp.NewRedirectHandler(),
		gzipBodies{},
		retry,
		b,
	}
	parent := hc.Transport
	if parent == nil {
		parent = http.DefaultTransport
	}
	client := &http.Client{
		Transport:     khttp.NewCustomTransportWithParentTransport(parent, mws...),
		Timeout:       hc.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	adapter, err := msgraph.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, client)
	if err != nil {
		return nil, fmt.Errorf("teams: request adapter: %w", err)
	}
	adapter.SetBaseUrl(strings.TrimSuffix(baseURL, "/"))
	return msgraph.NewGraphServiceClient(onceBackingStore{adapter}), nil
}

// onceBackingStore works around a data race in msgraph-sdk-go: every new
// client sets a package variable (the backing-store factory, always the same
// value) that the requests of existing clients read. The bridge builds
// several clients (the app's, one per service account, doctor's), so only
// the first client in the process sets it; the others still get their own
// backing-store proxies.
type onceBackingStore struct{ *msgraph.GraphRequestAdapter }

var backingStoreSet sync.Once

func (a onceBackingStore) EnableBackingStore(f kstore.BackingStoreFactory) {
	first := false
	backingStoreSet.Do(func() { first = true })
	if !first {
		f = nil // nil leaves the package variable alone
	}
	a.GraphRequestAdapter.EnableBackingStore(f)
}

// budget is the one request budget shared by reads and writes: at most
// limit requests in any window, and nothing while Graph has said to wait
// (429/503 with Retry-After). It is a kiota middleware.
type budget struct {
	mu         sync.Mutex
	limit      int
	window     time.Duration
	sent       []time.Time // ring of the last limit send times
	next       int
	throttled  time.Time
	now        func() time.Time
	onThrottle func(wait time.Duration)
}

func newBudget(limit int, window time.Duration, now func() time.Time) *budget {
	return &budget{limit: limit, window: window, sent: make([]time.Time, limit), now: now}
}

// reserve waits until a request may go out, then counts it.
func (b *budget) reserve(ctx context.Context) error {
	for {
		b.mu.Lock()
		now := b.now()
		wait := time.Duration(0)
		if now.Before(b.throttled) {
			wait = b.throttled.Sub(now)
		} else if oldest := b.sent[b.next]; !oldest.IsZero() && now.Sub(oldest) < b.window {
			wait = b.window - now.Sub(oldest)
		}
		if wait <= 0 {
			b.sent[b.next] = now
			b.next = (b.next + 1) % b.limit
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// throttle records a Retry-After from Graph: every request waits it out.
func (b *budget) throttle(wait time.Duration) {
	b.mu.Lock()
	until := b.now().Add(wait)
	if until.After(b.throttled) {
		b.throttled = until
	}
	f := b.onThrottle
	b.mu.Unlock()
	if f != nil {
		f(wait)
	}
}

// ThrottledUntil is when Graph's last Retry-After ends.
func (b *budget) throttledUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.throttled
}

// used is how many requests went out in the last window.
func (b *budget) used() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	now, n := b.now(), 0
	for _, t := range b.sent {
		if !t.IsZero() && now.Sub(t) < b.window {
			n++
		}
	}
	return n
}

// Intercept implements khttp.Middleware. A write that waited here (for the
// budget, or under Graph's Retry-After) is sent only if the engine still
// wants it: a setPresence for a call that ended meanwhile never goes out.
func (b *budget) Intercept(p khttp.Pipeline, i int, req *http.Request) (*http.Response, error) {
	if err := b.reserve(req.Context()); err != nil {
		return nil, err
	}
	if err := psync.StillWanted(req.Context()); err != nil {
		return nil, err
	}
	resp, err := p.Next(req, i)
	if err == nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), b.now()); ok {
			b.throttle(d)
		}
	}
	return resp, err
}

// retryAfter parses Retry-After in seconds or as an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// graphError turns an SDK error into the engine's vocabulary, keeping
// Graph's code and message. notFoundOK makes 404 success (clearPresence).
func graphError(op string, err error, now time.Time) error {
	if err == nil {
		return nil
	}
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		status := oe.ResponseStatusCode
		msg := oe.Error()
		if e := oe.GetErrorEscaped(); e != nil {
			code, text := deref(e.GetCode()), deref(e.GetMessage())
			msg = strings.TrimSpace(code + ": " + text)
		}
		base := fmt.Errorf("graph %s: HTTP %d %s", op, status, msg)
		switch {
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
			wait := 5 * time.Second
			if oe.ResponseHeaders != nil {
				for _, v := range oe.ResponseHeaders.Get("Retry-After") {
					if d, ok := retryAfter(v, now); ok {
						wait = max(d, time.Second)
					}
				}
			}
			return &psync.RetryAfterError{Wait: wait, Err: fmt.Errorf("%w: %w", psync.ErrUnavailable, base)}
		case status == http.StatusUnauthorized || status >= 500:
			return fmt.Errorf("%w: %w", psync.ErrUnavailable, base)
		case status >= 400:
			return &httpStatusError{status: status, err: fmt.Errorf("%w: %w", psync.ErrRejected, base)}
		}
		return base
	}
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) {
		return fmt.Errorf("%w: graph %s: sign-in of the app failed: %s", psync.ErrUnavailable, op, authSummary(af))
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, psync.ErrSuperseded) {
		return fmt.Errorf("graph %s: %w", op, psync.ErrSuperseded)
	}
	return fmt.Errorf("%w: graph %s: %v", psync.ErrUnavailable, op, err)
}

// httpStatusError keeps the status of a rejected request (404 on clear).
type httpStatusError struct {
	status int
	err    error
}

func (e *httpStatusError) Error() string { return e.err.Error() }
func (e *httpStatusError) Unwrap() error { return e.err }

func statusOf(err error) int {
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.status
	}
	return 0
}

// authSummary keeps the AADSTS line of an azidentity error: its full text
// carries request ids and a troubleshooting link, never a secret.
func authSummary(af *azidentity.AuthenticationFailedError) string {
	s := af.Error()
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "AADSTS"); i >= 0 {
			return strings.TrimSpace(line[i:])
		}
	}
	if af.RawResponse != nil {
		return af.RawResponse.Status
	}
	// No answer from the authority: the transport error says why (TLS
	// trust, DNS, connection refused).
	var parts []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "To troubleshoot") || strings.HasPrefix(line, "http") || strings.HasPrefix(line, "-") {
			continue
		}
		parts = append(parts, line)
	}
	if len(parts) > 0 {
		return strings.Join(parts, " ")
	}
	return "authentication failed"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func ptr[T any](v T) *T { return &v }

// gzipWriters are reused: a gzip.Writer carries about 800 KB of state.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

// gzipBodies compresses request bodies as Graph accepts them, like kiota's
// compression handler (Content-Encoding: gzip; on 415 the request is sent
// again uncompressed), with pooled writers. The body it installs can seek,
// so the retry handler below it resends the same compressed bytes.
type gzipBodies struct{}

func (gzipBodies) Intercept(p khttp.Pipeline, i int, req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody || req.Header.Get("Content-Encoding") != "" || req.Header.Get("Content-Range") != "" {
		return p.Next(req, i)
	}
	raw, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	_, err = zw.Write(raw)
	if err == nil {
		err = zw.Close()
	}
	gzipWriters.Put(zw)
	if err != nil {
		return nil, err
	}
	plainLen := req.ContentLength
	req.Header.Set("Content-Encoding", "gzip")
	req.Body = khttp.NopCloser(bytes.NewReader(buf.Bytes()))
	req.ContentLength = int64(buf.Len())
	resp, err := p.Next(req, i)
	if err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		return resp, err
	}
	resp.Body.Close()
	req.Header.Del("Content-Encoding")
	req.Body = khttp.NopCloser(bytes.NewReader(raw))
	req.ContentLength = plainLen
	return p.Next(req, i)
}
