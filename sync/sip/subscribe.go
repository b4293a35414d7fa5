package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	psync "github.com/presencebridge/presencebridge/sync"
)

// subscription is one SUBSCRIBE dialog for one extension (RFC 6665). sipgo
// has no subscription state machine, so this is it: the dialog identifiers,
// the CSeq, the route set and the granted expiry, plus the merged dialog
// state the NOTIFYs carry. Its fields are guarded by Conn.mu.
type subscription struct {
	ext     string
	callID  string
	fromTag string
	toTag   string // from the first NOTIFY or the 2xx, whichever comes first
	cseq    uint32
	target  *sip.Uri          // remote target (Contact of the 2xx / NOTIFY)
	routes  []sip.RouteHeader // route set from Record-Route, in order

	views    map[string]*dialogView // by entity ("" for a plain subscription)
	notified bool                   // the first NOTIFY has come
	// kick wakes the refresh loop: the server lowered the expiry, ended
	// the subscription, or a version gap needs full state.
	kick    chan struct{}
	expires time.Duration // granted, lowered by Subscription-State
	// notifyExpires is the expiry a NOTIFY gave before the 2xx came.
	notifyExpires time.Duration
	renewedAt     time.Time
	terminated    string // reason when the server ended it or state is lost
	first         chan struct{}
	// final is closed by the NOTIFY that says terminated: after an
	// un-SUBSCRIBE the server sends one, and it is answered before the
	// socket closes (an unanswered one is retransmitted for 32 s).
	final     chan struct{}
	finalDone bool
}

func newSubscription(ext string) *subscription {
	return &subscription{ext: ext, callID: uuid.NewString(), fromTag: sip.GenerateTagN(16), cseq: 1,
		views: map[string]*dialogView{}, kick: make(chan struct{}, 1), first: make(chan struct{}), final: make(chan struct{})}
}

// Errors of a subscription's end; all lead to a new subscription.
var (
	errSubTerminated = errors.New("the server ended the subscription")
	errSubGone       = errors.New("the server no longer knows the subscription (481)")
	errNoFirstNotify = errors.New("no NOTIFY came after the subscription was accepted; the PBX must reach this machine at sip.listen (open that port, or set sip.listen to an address the PBX can reach)")
)

// subLoop keeps one extension subscribed until ctx ends, then
// un-SUBSCRIBEs. Each failure waits on the shared backoff schedule.
func (c *Conn) subLoop(ctx context.Context, st *stack, ext string, seed uint64) {
	bo := psync.NewBackoff(c.cfg.RetryMin, c.cfg.RetryMax, seed)
	fails := 0
	for ctx.Err() == nil {
		start := time.Now()
		up, err := c.subscribeOnce(ctx, st, ext)
		if ctx.Err() != nil {
			return
		}
		if up && time.Since(start) > c.cfg.RetryMax {
			// A subscription that lasted starts the schedule afresh; one
			// the server ends at once keeps backing off.
			fails = 0
		}
		fails++
		c.cfg.Logger.Info("sip: subscription lost, resubscribing", "ext", ext, "err", err)
		c.post(note{kind: noteDown, ext: ext, err: err})
		if !up || fails > 1 {
			if !psync.Sleep(ctx, nil, bo.Delay(fails, err)) {
				return
			}
		}
	}
}

// subscribeOnce runs one subscription dialog from the initial SUBSCRIBE to
// its end. up reports whether it got as far as its first NOTIFY.
func (c *Conn) subscribeOnce(ctx context.Context, st *stack, ext string) (up bool, err error) {
	s := newSubscription(ext)
	c.mu.Lock()
	c.subs[s.callID] = s // before sending: the first NOTIFY may beat the 2xx
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.subs, s.callID)
		c.mu.Unlock()
	}()

	type answer struct {
		res *sip.Response
		err error
	}
	answered := make(chan answer, 1)
	req := c.subscribeRequest(st, s, c.cfg.Expires)
	go func() {
		res, err := st.request(ctx, req)
		answered <- answer{res, err}
	}()
	select {
	case a := <-answered:
		if a.err != nil {
			return false, a.err
		}
		if !a.res.IsSuccess() {
			return false, answerError(c.cfg, "SUBSCRIBE "+ext, a.res)
		}
		c.accepted(s, a.res)
	case <-s.first:
		// RFC 6665 §4.1.2.4: the NOTIFY may come before the 2xx, and it
		// establishes the dialog by itself. Over UDP the 2xx can be lost
		// or not matched to its transaction (seen with sipgo after a
		// digest retry); the subscription must not hang on it. The 2xx is
		// still taken when it comes, for its granted expiry and route set.
		c.acceptedByNotify(s)
		go func() {
			if a := <-answered; a.err == nil && a.res.IsSuccess() {
				c.accepted(s, a.res)
			}
		}()
	case <-ctx.Done():
		// The server may have taken the SUBSCRIBE: ended politely once
		// its dialog is known.
		c.mu.Lock()
		known := s.toTag != ""
		c.mu.Unlock()
		if known {
			c.unsubscribe(st, s)
		}
		return false, ctx.Err()
	}

	select {
	case <-s.first:
	case <-ctx.Done():
		c.unsubscribe(st, s)
		return false, ctx.Err()
	case <-time.After(c.cfg.NotifyTimeout):
		c.unsubscribe(st, s)
		return false, errNoFirstNotify
	}

	for {
		c.mu.Lock()
		if s.terminated != "" {
			reason := s.terminated
			c.mu.Unlock()
			if reason == "resync" {
				// A version gap: full state comes only with a new
				// subscription, so this one is ended politely first.
				c.unsubscribe(st, s)
			}
			return true, fmt.Errorf("%w (%s)", errSubTerminated, reason)
		}
		// Refresh at 80 % of what is left of the granted expiry.
		due := s.renewedAt.Add(s.expires * 4 / 5)
		c.mu.Unlock()
		t := time.NewTimer(time.Until(due))
		select {
		case <-ctx.Done():
			t.Stop()
			c.unsubscribe(st, s)
			return true, ctx.Err()
		case <-s.kick:
			t.Stop()
			continue
		case <-t.C:
		}
		res, err := st.request(ctx, c.subscribeRequest(st, s, c.cfg.Expires))
		if err != nil {
			return true, err
		}
		if res.StatusCode == sip.StatusCallTransactionDoesNotExists {
			return true, errSubGone
		}
		if !res.IsSuccess() {
			return true, answerError(c.cfg, "SUBSCRIBE refresh "+ext, res)
		}
		c.accepted(s, res)
	}
}

// subscribeRequest builds the initial or an in-dialog SUBSCRIBE (also the
// un-SUBSCRIBE with expires 0). Every request is built whole, not cloned:
// a clone would carry the old Via and credentials.
func (c *Conn) subscribeRequest(st *stack, s *subscription, expires time.Duration) *sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	ruri := sip.Uri{Scheme: "sip", User: s.ext, Host: c.cfg.Domain}
	if s.target != nil {
		ruri = *s.target
	}
	req := sip.NewRequest(sip.SUBSCRIBE, ruri)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: c.cfg.fromUser(), Host: c.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", s.fromTag)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: s.ext, Host: c.cfg.Domain}, Params: sip.NewParams()}
	if s.toTag != "" {
		to.Params.Add("tag", s.toTag)
	}
	callID := sip.CallIDHeader(s.callID)
	cseq := &sip.CSeqHeader{SeqNo: s.cseq, MethodName: sip.SUBSCRIBE}
	s.cseq += 2 // room for the digest retry, which increments the CSeq itself
	maxfwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(cseq)
	req.AppendHeader(&maxfwd)
	for i := range s.routes {
		r := s.routes[i]
		req.AppendHeader(&r)
	}
	req.AppendHeader(st.contact())
	req.AppendHeader(sip.NewHeader("Event", "dialog"))
	req.AppendHeader(sip.NewHeader("Accept", "application/dialog-info+xml"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.SetBody(nil)
	return req
}

// acceptedByNotify starts the refresh schedule of a subscription whose
// first NOTIFY came before its 2xx: the expiry is the NOTIFY's (kept by
// onNotify when it came with one), else the one asked for.
func (c *Conn) acceptedByNotify(s *subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.expires > 0 {
		return // the 2xx came meanwhile
	}
	s.expires = max(s.notifyExpires, time.Second)
	if s.notifyExpires <= 0 {
		s.expires = c.cfg.Expires
	}
	s.renewedAt = time.Now()
}

// accepted records a 2xx: the granted expiry (which may be below what was
// asked), the To-tag, the remote target and the route set.
func (c *Conn) accepted(s *subscription, res *sip.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	granted := c.cfg.Expires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			granted = time.Duration(n) * time.Second
		}
	}
	s.expires = max(granted, time.Second)
	s.renewedAt = time.Now()
	if to := res.To(); to != nil { // sipgo does not insist on one
		if t, ok := to.Params.Get("tag"); ok && s.toTag == "" {
			s.toTag = t
		}
	}
	if ct := res.Contact(); ct != nil && s.target == nil {
		u := ct.Address.Clone()
		s.target = u
	}
	if len(s.routes) == 0 {
		// The route set is the Record-Route of the 2xx in reverse (RFC
		// 3261 §12.1.2, UAC side).
		rrs := res.GetHeaders("Record-Route")
		for i := len(rrs) - 1; i >= 0; i-- {
			if rr, ok := rrs[i].(*sip.RecordRouteHeader); ok {
				s.routes = append(s.routes, sip.RouteHeader{Address: rr.Address})
			}
		}
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// unsubscribe ends the dialog (Expires: 0). It runs at shutdown after the
// run context ended, so it has its own short deadline.
func (c *Conn) unsubscribe(st *stack, s *subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	res, err := st.request(ctx, c.subscribeRequest(st, s, 0))
	if err != nil {
		c.cfg.Logger.Debug("sip: un-SUBSCRIBE failed", "ext", s.ext, "err", err)
		return
	}
	c.cfg.Logger.Debug("sip: un-SUBSCRIBE", "ext", s.ext, "code", res.StatusCode)
	if res.IsSuccess() {
		t := time.NewTimer(min(time.Second, c.cfg.RequestTimeout))
		defer t.Stop()
		select {
		case <-s.final:
		case <-t.C: // a server that sends no final NOTIFY is not waited for
		}
	}
}

// onNotify takes a NOTIFY. Only NOTIFYs of a live subscription dialog are
// taken (Call-ID and our tag); anything else gets 481, so a stale dialog
// of a former run (whose ids the bridge cannot know) is ended by the server
// instead of feeding old state in.
func (c *Conn) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	respond := func(code int, reason string) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	}
	callID, to, from := req.CallID(), req.To(), req.From()
	if callID == nil || to == nil || from == nil {
		respond(400, "Missing Dialog Headers")
		return
	}
	ourTag, _ := to.Params.Get("tag")
	theirTag, _ := from.Params.Get("tag")
	ev := req.GetHeader("Event")
	if ev == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ev.Value(), ";")[0]), "dialog") {
		c.mu.Lock()
		_, known := c.subs[string(*callID)]
		c.mu.Unlock()
		if !known {
			respond(481, "Subscription Does Not Exist")
		} else {
			respond(489, "Bad Event")
		}
		return
	}
	state, reason, stateExpires := parseSubscriptionState(req.GetHeader("Subscription-State"))
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	docs, perr := ParseDialogInfo(ct, req.Body())

	c.mu.Lock()
	s := c.subs[string(*callID)]
	if s == nil || s.fromTag != ourTag || (s.toTag != "" && theirTag != s.toTag) {
		c.mu.Unlock()
		respond(481, "Subscription Does Not Exist")
		return
	}
	if s.toTag == "" {
		s.toTag = theirTag
	}
	if s.target == nil {
		if ctc := req.Contact(); ctc != nil {
			s.target = ctc.Address.Clone()
		}
	}
	kick := false
	if stateExpires > 0 && s.expires == 0 {
		s.notifyExpires = stateExpires // before the 2xx: acceptedByNotify takes it
	}
	if stateExpires >= 0 && s.expires > 0 {
		// A server may shorten the subscription in any NOTIFY. Servers
		// put the time left in every NOTIFY, rounded down, so the refresh
		// only ever moves earlier: taking each as a new grant would push
		// it towards the real end with every NOTIFY.
		now := time.Now()
		due := s.renewedAt.Add(s.expires * 4 / 5)
		if now.Add(stateExpires * 4 / 5).Before(due) {
			s.expires = stateExpires
			s.renewedAt = now
			kick = true
		}
	}
	resync := false
	if perr == nil {
		for _, d := range docs {
			key := ""
			if len(docs) > 1 || strings.HasPrefix(strings.ToLower(ct), "multipart/") {
				key = d.Entity
			}
			v := s.views[key]
			if v == nil {
				if len(s.views) >= maxListParts {
					continue
				}
				v = &dialogView{}
				s.views[key] = v
			}
			if v.apply(d) == applyResync {
				resync = true
			}
		}
	} else {
		c.cfg.Logger.Warn("sip: NOTIFY body ignored", "ext", s.ext, "err", perr)
	}
	if state == "terminated" {
		s.terminated = "terminated;reason=" + reason
		kick = true
		if !s.finalDone {
			s.finalDone = true
			defer close(s.final) // after the 200 below
		}
	} else if resync {
		s.terminated = "resync"
		kick = true
	}
	var n note
	if !resync && (perr == nil || !s.notified) {
		n = note{kind: noteCalls, ext: s.ext, calls: s.calls(), sub: s.callID}
		c.seq++
		n.seq = c.seq
	}
	firstNow := !s.notified && n.kind != 0
	if firstNow {
		s.notified = true
	}
	c.mu.Unlock()
	respond(200, "OK")
	if n.kind != 0 && state != "terminated" {
		c.post(n)
	}
	if firstNow {
		close(s.first)
	}
	if kick {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// calls maps the merged state of all the subscription's views.
func (s *subscription) calls() []psync.Call {
	var out []psync.Call
	for _, v := range s.views {
		out = append(out, callsOf(s.ext, v.live())...)
	}
	return out
}

// parseSubscriptionState reads "active;expires=599" or
// "terminated;reason=timeout". expires is -1 when absent.
func parseSubscriptionState(h sip.Header) (state, reason string, expires time.Duration) {
	expires = -1
	if h == nil {
		return "active", "", expires
	}
	parts := strings.Split(h.Value(), ";")
	state = strings.ToLower(strings.TrimSpace(parts[0]))
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "reason":
			reason = strings.ToLower(strings.TrimSpace(v))
		case "expires":
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
				expires = time.Duration(n) * time.Second
			}
		}
	}
	return state, reason, expires
}
