package graphsim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// Notification delivery. Notifications are queued per destination (kind and URL) and posted
// by a fixed set of workers (Options.DeliveryWorkers), one batch per destination at a time:
// whatever piled up for a URL while its previous POST was in flight goes out together in one
// {"value":[...]} body, as Graph batches. Different destinations are delivered concurrently,
// so, as with Graph, nothing orders notifications across subscriptions; sequenceNumber is
// what orders presence. Failed POSTs are retried DeliveryRetries times, then dropped and
// recorded; Close abandons whatever is still queued.

const maxBatch = 100

type notificationItem struct {
	url       string
	kind      string // notification, lifecycle
	subID     string
	userID    string
	richAppID string // app that needs a validation token for this item; empty for basic
	payload   map[string]any
}

type deliveryQueue struct {
	mu      sync.Mutex
	pending map[string][]notificationItem // by destination key
	ready   []string
	queued  map[string]bool
	busy    map[string]bool
	kick    chan struct{}
}

func newDeliveryQueue() *deliveryQueue {
	return &deliveryQueue{
		pending: map[string][]notificationItem{},
		queued:  map[string]bool{},
		busy:    map[string]bool{},
		kick:    make(chan struct{}, 1),
	}
}

func (q *deliveryQueue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *deliveryQueue) push(it notificationItem) {
	key := it.kind + " " + it.url
	q.mu.Lock()
	q.pending[key] = append(q.pending[key], it)
	if !q.busy[key] && !q.queued[key] {
		q.queued[key] = true
		q.ready = append(q.ready, key)
	}
	q.mu.Unlock()
	q.wake()
}

func (q *deliveryQueue) take() (string, []notificationItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ready) == 0 {
		return "", nil, false
	}
	key := q.ready[0]
	q.ready = q.ready[1:]
	q.queued[key] = false
	items := q.pending[key]
	if len(items) > maxBatch {
		q.pending[key] = append([]notificationItem(nil), items[maxBatch:]...)
		items = items[:maxBatch]
	} else {
		delete(q.pending, key)
	}
	q.busy[key] = true
	if len(q.ready) > 0 {
		q.wake() // let another worker pick up the next destination
	}
	return key, items, true
}

func (q *deliveryQueue) done(key string) {
	q.mu.Lock()
	q.busy[key] = false
	more := len(q.pending[key]) > 0
	if more && !q.queued[key] {
		q.queued[key] = true
		q.ready = append(q.ready, key)
	}
	q.mu.Unlock()
	if more {
		q.wake()
	}
}

func (s *Server) deliveryWorker() {
	defer s.wg.Done()
	for {
		key, items, ok := s.dq.take()
		if !ok {
			select {
			case <-s.dq.kick:
				continue
			case <-s.ctx.Done():
				return
			}
		}
		s.deliverBatch(items)
		s.dq.done(key)
		if s.ctx.Err() != nil {
			return
		}
	}
}

// Delivery is one entry of the delivery log: a validation request, or one POST of a batch of
// notifications, or a notification the fault injection dropped.
type Delivery struct {
	Time            time.Time
	Kind            string // validation, notification, lifecycle
	URL             string
	SubscriptionIDs []string
	UserIDs         []string
	Status          int
	Err             string
	Dropped         bool
	Attempt         int
	Body            []byte
}

// Deliveries returns a copy of the delivery log, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

func (s *Server) recordDelivery(d Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordDeliveryLocked(d)
}

func (s *Server) recordDeliveryLocked(d Delivery) {
	if len(s.deliveries) >= s.opts.RequestLogLimit {
		s.deliveries = append(s.deliveries[:0], s.deliveries[len(s.deliveries)-s.opts.RequestLogLimit+1:]...)
	}
	s.deliveries = append(s.deliveries, d)
}

// DropNotifications makes the next n notifications vanish instead of being delivered, as
// Graph's own delivery sometimes does.
func (s *Server) DropNotifications(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropNext += n
}

// SetNotificationDropRate drops each notification with probability p (reproducible from
// Options.Seed); 0 turns it off.
func (s *Server) SetNotificationDropRate(p float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropRate = p
}

func (s *Server) deliverBatch(items []notificationItem) {
	s.mu.Lock()
	keep := items[:0:0]
	for _, it := range items {
		drop := false
		if s.dropNext > 0 {
			s.dropNext--
			drop = true
		} else if s.dropRate > 0 && s.rng.Float64() < s.dropRate {
			drop = true
		}
		if drop {
			s.recordDeliveryLocked(Delivery{Time: s.clock.Now(), Kind: it.kind, URL: it.url, SubscriptionIDs: []string{it.subID}, UserIDs: []string{it.userID}, Dropped: true})
			continue
		}
		keep = append(keep, it)
	}
	s.mu.Unlock()
	if len(keep) == 0 {
		return
	}
	values := make([]any, 0, len(keep))
	subIDs := make([]string, 0, len(keep))
	var userIDs []string
	var apps []string
	seenApp := map[string]bool{}
	for _, it := range keep {
		values = append(values, it.payload)
		subIDs = append(subIDs, it.subID)
		if it.userID != "" {
			userIDs = append(userIDs, it.userID)
		}
		if it.richAppID != "" && !seenApp[it.richAppID] {
			seenApp[it.richAppID] = true
			apps = append(apps, it.richAppID)
		}
	}
	body := map[string]any{"value": values}
	if len(apps) > 0 {
		toks := make([]string, 0, len(apps))
		for _, app := range apps {
			tok, err := s.validationToken(app)
			if err != nil {
				s.log.Error("validation token", "err", err)
				continue
			}
			toks = append(toks, tok)
		}
		body["validationTokens"] = toks
	}
	b, err := json.Marshal(body)
	if err != nil {
		s.log.Error("marshal notification", "err", err)
		return
	}
	url, kind := keep[0].url, keep[0].kind
	for attempt := 0; ; attempt++ {
		status, err := s.post(url, b)
		s.recordDelivery(Delivery{Time: s.clock.Now(), Kind: kind, URL: url, SubscriptionIDs: subIDs, UserIDs: userIDs, Status: status, Err: errString(err), Attempt: attempt, Body: b})
		if err == nil && status >= 200 && status < 300 {
			return
		}
		s.log.Debug("delivery failed", "url", url, "status", status, "err", err, "attempt", attempt)
		if attempt >= s.opts.DeliveryRetries {
			return
		}
		t := time.NewTimer(s.opts.DeliveryRetryDelay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
}

func (s *Server) post(url string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.DeliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := s.notifyClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}
