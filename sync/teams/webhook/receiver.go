package webhook

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxNotifications caps the notifications of one POST. Microsoft documents no
	// maximum: Graph "may send multiple notifications that correspond to different
	// subscriptions in the same POST request" (learn.microsoft.com/graph/
	// change-notifications-delivery-webhooks, "Receive notifications"). A presence
	// subscription carries at most 650 users, so one change of all of them fits, with margin
	// for a second subscription's; graphsim batches 100. What a hostile body of tiny elements
	// costs is bounded by this, not by the body size.
	DefaultMaxNotifications = 1000
	// DefaultMaxInFlight is the number of notification POSTs read at once; past it the
	// answer is 503 with Retry-After. Graph treats any non-2xx answer within its timeout as
	// "retry later" and redelivers with exponential backoff for up to 4 hours
	// (change-notifications-delivery-webhooks, "HTTP codes and retry logic"; "If the
	// notification isn't persisted, return a 5xx class code ... so that Microsoft Graph can
	// retry"), and a fast 503 is not a slow response, so it does not count towards Graph's
	// throttling of slow endpoints (responses over 2,900 ms). Microsoft does not document
	// whether the retry honours Retry-After; it is sent for any client that does.
	DefaultMaxInFlight = 32
	// DefaultRetryAfter is the Retry-After of a busy answer.
	DefaultRetryAfter         = 5 * time.Second
	DefaultQueueSize          = 256
	DefaultEventBuffer        = 256
	DefaultClockSkew          = 5 * time.Minute
	DefaultKeyRefetchInterval = 5 * time.Minute
	DefaultKeyMaxAge          = 24 * time.Hour
	// maxValidationToken bounds the echoed handshake token; Graph's are about 100 bytes.
	maxValidationToken = 4 << 10
	// bodyReadTimeout bounds the reading of a notification body: Graph gives up on an
	// answer after 3 seconds, so a body still arriving after 5 is not Graph's.
	bodyReadTimeout = 5 * time.Second
)

// Config configures a Receiver. Lookup is required; the encryption and token fields are
// required together when rich notifications are expected (EncryptionKey set).
type Config struct {
	// Lookup returns the clientState the adapter gave the subscription, and whether the
	// subscription is one of ours. It runs on the HTTP handler, so it must be cheap and safe
	// for concurrent use (a map under a RWMutex, not a store read). A subscription whose
	// clientState is empty never matches: without a shared secret anyone could post to us.
	Lookup func(subscriptionID string) (clientState string, ok bool)

	// EncryptionKey returns the bridge's certificate named by a rich notification's
	// encryptionCertificateId. nil means rich notifications are not expected and are dropped
	// (counted as ReasonDecryptFailed). A func rather than a list so the adapter can rotate
	// certificates while old subscriptions still deliver. See CertSet.
	EncryptionKey func(certificateID string) (*EncryptionCert, bool)

	// ClientID is the subscribing app's client id: the aud of the validation tokens.
	ClientID string
	// TenantID is the tenant whose STS issues the validation tokens
	// (iss = https://sts.windows.net/{TenantID}/).
	TenantID string
	// MetadataURL is the authority's OpenID metadata (https), whose jwks_uri publishes the
	// token signing keys, e.g. https://login.microsoftonline.com/{tenant}/.well-known/openid-configuration.
	MetadataURL string
	// HTTPClient fetches MetadataURL and the JWKS. Default: a client with a 10 s timeout.
	HTTPClient *http.Client

	// Now is the clock for token expiry and key refetch intervals. Default time.Now.
	Now func() time.Time
	// Logger gets the receiver's logs (component=teams/webhook). Default: discarded.
	Logger *slog.Logger

	// MaxBodyBytes limits a notification POST; larger bodies get 413. Default 1 MiB: a rich
	// presence notification is about 2.5 KiB, a basic one about 0.6 KiB.
	MaxBodyBytes int64
	// MaxNotifications limits the notifications of one POST; more get 413. Default
	// DefaultMaxNotifications.
	MaxNotifications int
	// MaxInFlight limits the notification POSTs being read at once; past it they get 503
	// with Retry-After. Validation handshakes are not limited: they read no body, and
	// subscription creation waits on them. Default DefaultMaxInFlight.
	MaxInFlight int
	// MaxConnections limits the connections the Endpoint holds open (ServeTLS, Serve):
	// beyond it new connections wait in the listen backlog while idle keep-alive
	// connections are closed to make room. Default DefaultMaxConnections, and never more
	// than half the process's open-file limit (RLIMIT_NOFILE), so that the store, the phone
	// system, Graph and the control socket always find descriptors.
	MaxConnections int
	// MaxStreamsPerConn limits the concurrent HTTP/2 streams of one connection. Default
	// DefaultMaxStreamsPerConn.
	MaxStreamsPerConn int
	// QueueSize is the number of POSTs waiting for the worker before new ones are dropped.
	QueueSize int
	// EventBuffer is the capacity of the Events channel.
	EventBuffer int
	// ClockSkew is the leeway on token exp/nbf. Default 5 minutes, as Microsoft.IdentityModel.
	ClockSkew time.Duration
	// KeyRefetchInterval is the minimum time between two JWKS fetches caused by an unknown
	// key id, so forged tokens with random kids cannot make us hammer the authority.
	KeyRefetchInterval time.Duration
	// KeyMaxAge is how long fetched keys are used before they are fetched again anyway.
	KeyMaxAge time.Duration
}

// EventKind says what an Event asks the adapter to do.
type EventKind int

const (
	// Changed is a basic notification: the user's presence changed; read it again.
	Changed EventKind = iota + 1
	// Presence is a rich notification carrying the new availability and activity.
	Presence
	// Lifecycle is a lifecycle notification about the subscription itself.
	Lifecycle
)

func (k EventKind) String() string {
	switch k {
	case Changed:
		return "changed"
	case Presence:
		return "presence"
	case Lifecycle:
		return "lifecycle"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Lifecycle event names as Graph sends them. For presence only reauthorizationRequired is
// documented; the others are passed through should Graph ever send them.
const (
	LifecycleReauthorizationRequired = "reauthorizationRequired"
	LifecycleSubscriptionRemoved     = "subscriptionRemoved"
	LifecycleMissed                  = "missed"
)

// Event is one accepted notification.
type Event struct {
	Kind           EventKind
	SubscriptionID string
	// UserID is the Entra object id of the user whose presence changed, lower-cased (GUIDs
	// compare case-insensitively; the adapter keys users by the lower-case form). Empty for
	// Lifecycle.
	UserID string
	// Availability, Activity and Sequence are set for Presence only; Sequence only when the
	// payload carries sequenceNumber (Graph's documented rich payload does not).
	Availability, Activity, Sequence string
	// Lifecycle is the lifecycleEvent, for Lifecycle only.
	Lifecycle string
	// SubscriptionExpires is subscriptionExpirationDateTime, zero when absent or unparsable.
	SubscriptionExpires time.Time
	// Received is when the POST carrying the notification arrived (Config.Now).
	Received time.Time
}

// Reason is why a notification (or a whole POST) was ignored.
type Reason int

const (
	ReasonUnknownSubscription Reason = iota
	ReasonWrongClientState
	ReasonBadPayload
	ReasonTooLarge
	ReasonDecryptFailed
	ReasonTokenInvalid
	ReasonQueueFull
	numReasons
)

var reasonNames = [numReasons]string{
	"unknown_subscription", "wrong_client_state", "bad_payload", "too_large",
	"decrypt_failed", "token_invalid", "queue_full",
}

func (r Reason) String() string {
	if r >= 0 && r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Reasons lists every Reason, for metrics.
func Reasons() []Reason {
	out := make([]Reason, numReasons)
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}

// Stats are the receiver's counters since New. Ignored counts notifications, except for
// POSTs that could not be read as a payload at all (too large, too many notifications, not
// JSON, no value array), which count once each as ReasonTooLarge or ReasonBadPayload. A POST
// ended by a forged notification counts it and the notifications read before it under its
// reason.
type Stats struct {
	// Validations is the number of validation handshakes answered.
	Validations uint64
	// Requests is the number of notification POSTs.
	Requests uint64
	// Received is the number of notifications read.
	Received uint64
	// Accepted is the number of notifications that passed every check and were handed (or,
	// at shutdown, were about to be handed) to the consumer.
	Accepted uint64
	// Ignored is by reason; every Reason is present.
	Ignored map[Reason]uint64
	// KeyFetches counts attempts to fetch the authority's signing keys.
	KeyFetches uint64
	// Busy is the number of notification POSTs answered 503 because MaxInFlight were
	// being read.
	Busy uint64
}

// Receiver is the webhook endpoint: an http.Handler for the notification and lifecycle URLs,
// and a worker (Run) that turns accepted notifications into Events.
type Receiver struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	keys     *keySet
	queue    chan job
	events   chan Event
	inFlight chan struct{}
	ran      atomic.Bool

	validations, requests, received, accepted, busy atomic.Uint64
	ignored                                         [numReasons]atomic.Uint64
}

// New checks cfg and returns a Receiver. Call Run to process notifications.
func New(cfg Config) (*Receiver, error) {
	if cfg.Lookup == nil {
		return nil, errors.New("webhook: Config.Lookup is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxNotifications <= 0 {
		cfg.MaxNotifications = DefaultMaxNotifications
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxStreamsPerConn <= 0 {
		cfg.MaxStreamsPerConn = DefaultMaxStreamsPerConn
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultEventBuffer
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.KeyRefetchInterval <= 0 {
		cfg.KeyRefetchInterval = DefaultKeyRefetchInterval
	}
	if cfg.KeyMaxAge <= 0 {
		cfg.KeyMaxAge = DefaultKeyMaxAge
	}
	if cfg.EncryptionKey != nil {
		if !isGUID(cfg.ClientID) || !isGUID(cfg.TenantID) {
			return nil, errors.New("webhook: ClientID and TenantID must be GUIDs when rich notifications are expected")
		}
		u, err := url.Parse(cfg.MetadataURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, errors.New("webhook: MetadataURL must be an https URL when rich notifications are expected")
		}
	}
	r := &Receiver{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "teams/webhook"),
		now:      cfg.Now,
		queue:    make(chan job, cfg.QueueSize),
		events:   make(chan Event, cfg.EventBuffer),
		inFlight: make(chan struct{}, cfg.MaxInFlight),
	}
	r.keys = &keySet{
		client: cfg.HTTPClient, metadataURL: cfg.MetadataURL, now: cfg.Now,
		minRefetch: cfg.KeyRefetchInterval, maxAge: cfg.KeyMaxAge, log: r.log,
	}
	return r, nil
}

// Events delivers accepted notifications in arrival order. It is closed when Run returns.
func (r *Receiver) Events() <-chan Event { return r.events }

// Stats returns a snapshot of the counters.
func (r *Receiver) Stats() Stats {
	s := Stats{
		Validations: r.validations.Load(),
		Requests:    r.requests.Load(),
		Received:    r.received.Load(),
		Accepted:    r.accepted.Load(),
		Ignored:     make(map[Reason]uint64, numReasons),
		KeyFetches:  r.keys.fetches.Load(),
		Busy:        r.busy.Load(),
	}
	for i := range r.ignored {
		s.Ignored[Reason(i)] = r.ignored[i].Load()
	}
	return s
}

func (r *Receiver) ignore(reason Reason, n int, subID string) {
	if n <= 0 {
		return
	}
	r.ignored[reason].Add(uint64(n))
	// Debug, not Warn: anyone on the internet can make these, and logs must not be a lever.
	if len(subID) > 64 {
		subID = subID[:64] // attacker-sized input must not become attacker-sized log lines
	}
	r.log.Debug("notification ignored", "reason", reason.String(), "count", n, "subscription", subID)
}

// Run processes queued notifications until ctx ends, then closes Events. One worker on
// purpose: rich payloads carry no sequenceNumber, so arrival order is the only order the
// adapter gets, and one goroutine keeps it.
func (r *Receiver) Run(ctx context.Context) error {
	if !r.ran.CompareAndSwap(false, true) {
		return errors.New("webhook: Run called twice")
	}
	defer close(r.events)
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-r.queue:
			r.process(ctx, j)
		}
	}
}

// ServeHTTP answers validation handshakes and accepts notification POSTs. It serves the
// notification and the lifecycle URL alike: what a notification is follows from its content
// (lifecycleEvent), not from the path it was posted to.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if q := req.URL.Query(); q.Has("validationToken") {
		r.answerValidation(w, q.Get("validationToken"))
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	select {
	case r.inFlight <- struct{}{}:
		defer func() { <-r.inFlight }()
	default:
		r.busy.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(int(DefaultRetryAfter/time.Second)))
		http.Error(w, "busy, retry later", http.StatusServiceUnavailable)
		return
	}
	r.requests.Add(1)
	received := r.now()
	// Graph's POST arrives within its 3-second delivery timeout; a body that takes longer
	// is someone holding one of the MaxInFlight places. Not every server supports it.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	j := job{received: received}
	read := 0
	tokens, err := decodePayload(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes), r.cfg.MaxNotifications,
		func(n *rawNotification) error {
			read++
			r.received.Add(1)
			it, ok, forged := r.screen(n)
			if forged != nil {
				return forged
			}
			if ok {
				j.items = append(j.items, it)
			}
			return nil
		})
	var forged *forgedError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &forged):
		// A body with a forged notification is not Graph's: nothing of it is used, not even
		// notifications before it that passed, and the rest is not read. 202 as for any
		// notification, so the answer tells a prober nothing about our subscriptions.
		r.ignore(forged.reason, 1+len(j.items), forged.subID)
		w.WriteHeader(http.StatusAccepted)
		return
	case errors.As(err, &tooBig) || errors.Is(err, errValueTooLarge) || errors.Is(err, errTooMany) ||
		errors.Is(err, errTooManyTokens):
		r.ignore(ReasonTooLarge, 1, "")
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		// 400 rather than 202: Graph only ever posts JSON, so this reaches a person with curl
		// or a scanner, and Graph's retry policy never sees it.
		r.ignore(ReasonBadPayload, 1, "")
		http.Error(w, "body is not a change notification payload", http.StatusBadRequest)
		return
	}
	if read == 0 {
		r.ignore(ReasonBadPayload, 1, "")
	}
	j.tokens = tokens
	if len(j.items) > 0 {
		// Never wait for the worker: Graph counts responses over ~3 s as slow and throttles
		// or drops the endpoint. A lost notification costs one stale presence until the next
		// change or resync; a throttled endpoint costs all of them.
		select {
		case r.queue <- j:
		default:
			r.ignore(ReasonQueueFull, len(j.items), "")
		}
	}
	// 202 whatever the notifications held: Graph's documented answer, and the one that keeps
	// it from retrying forged or stale notifications for hours.
	w.WriteHeader(http.StatusAccepted)
}

func (r *Receiver) answerValidation(w http.ResponseWriter, token string) {
	if token == "" || len(token) > maxValidationToken {
		http.Error(w, "bad validationToken", http.StatusBadRequest)
		return
	}
	r.validations.Add(1)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	// The body reflects the query; nosniff keeps a browser from treating it as HTML.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, token)
}

// forgedError ends the reading of a body at a notification Graph cannot have sent.
type forgedError struct {
	reason Reason
	subID  string
}

func (e *forgedError) Error() string { return "forged notification: " + e.reason.String() }

// screen checks one notification against our subscriptions and classifies it. Only what is
// cheap happens here; decryption waits for the worker. A notification without a
// subscription id, or with the wrong clientState for one of our subscriptions, is forged:
// Graph always sends both right. One for a subscription we do not know is skipped, not
// forged: Graph batches notifications of every subscription on the URL, and ones of a
// subscription just created (before its id is stored) or just replaced still arrive.
func (r *Receiver) screen(n *rawNotification) (item, bool, *forgedError) {
	if n.SubscriptionID == "" {
		return item{}, false, &forgedError{reason: ReasonBadPayload}
	}
	want, ok := r.cfg.Lookup(n.SubscriptionID)
	if !ok {
		r.ignore(ReasonUnknownSubscription, 1, n.SubscriptionID)
		return item{}, false, nil
	}
	got := ""
	if n.ClientState != nil {
		got = *n.ClientState
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return item{}, false, &forgedError{reason: ReasonWrongClientState, subID: n.SubscriptionID}
	}
	it := item{subID: n.SubscriptionID, expires: parseGraphTime(n.SubscriptionExpirationDateTime)}
	switch {
	case n.LifecycleEvent != "":
		it.kind, it.lifecycle = Lifecycle, n.LifecycleEvent
	case n.EncryptedContent != nil:
		it.kind, it.enc = Presence, n.EncryptedContent
		it.userID = n.userID() // fallback when the plaintext has no id
	default:
		it.kind, it.userID = Changed, n.userID()
		if it.userID == "" {
			r.ignore(ReasonBadPayload, 1, n.SubscriptionID)
			return item{}, false, nil
		}
	}
	return it, true, nil
}

// job is one POST's accepted notifications.
type job struct {
	received time.Time
	tokens   []string
	items    []item
}

type item struct {
	kind      EventKind
	subID     string
	userID    string
	lifecycle string
	expires   time.Time
	enc       *encryptedContent
}

// process turns a job into events. Rich notifications need every validation token of the
// POST to be valid; basic and lifecycle ones are authenticated by clientState alone, so a
// bad token does not cost them.
func (r *Receiver) process(ctx context.Context, j job) {
	tokensOK, tokensChecked := false, false
	for _, it := range j.items {
		ev := Event{Kind: it.kind, SubscriptionID: it.subID, UserID: it.userID, Lifecycle: it.lifecycle,
			SubscriptionExpires: it.expires, Received: j.received}
		if it.kind == Presence {
			if r.cfg.EncryptionKey == nil {
				// Nothing to decrypt with: no point fetching keys to verify tokens first.
				r.ignore(ReasonDecryptFailed, 1, it.subID)
				continue
			}
			if !tokensChecked {
				tokensChecked = true
				err := r.checkTokens(ctx, j.tokens)
				tokensOK = err == nil
				if err != nil {
					r.log.Debug("validation tokens rejected", "err", err)
				}
			}
			if !tokensOK {
				r.ignore(ReasonTokenInvalid, 1, it.subID)
				continue
			}
			plain, reason, err := r.decrypt(it.enc)
			if err != nil {
				r.log.Debug("rich notification rejected", "subscription", it.subID, "err", err)
				r.ignore(reason, 1, it.subID)
				continue
			}
			if plain.ID != "" {
				ev.UserID = normalizeID(plain.ID)
			}
			if ev.UserID == "" {
				r.ignore(ReasonBadPayload, 1, it.subID)
				continue
			}
			ev.Availability, ev.Activity, ev.Sequence = plain.Availability, plain.Activity, plain.sequence()
		}
		// Counted before the send so that a consumer that has the event also sees it counted.
		r.accepted.Add(1)
		select {
		case r.events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

func (r *Receiver) checkTokens(ctx context.Context, tokens []string) error {
	if len(tokens) == 0 {
		return errors.New("rich payload without validationTokens")
	}
	for _, t := range tokens {
		if err := r.verifyToken(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func normalizeID(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
