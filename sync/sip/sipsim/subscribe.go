package sipsim

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// dialogKey identifies a subscription dialog (RFC 3261 §12): Call-ID, the
// subscriber's tag (From) and ours (To).
type dialogKey struct{ callID, fromTag, toTag string }

type subscription struct {
	key       dialogKey
	ext       string
	event     string // "dialog" or "presence"
	eventHdr  string // the Event header value to echo, with its id parameter
	contact   sip.Uri
	remote    sip.Uri // the subscriber's From URI; our NOTIFYs' To
	local     sip.Uri // the SUBSCRIBE's To URI; our NOTIFYs' From
	routes    []sip.Uri
	transport string
	source    string
	granted   int
	created   time.Time
	expiresAt time.Time
	refreshed int
	notifies  int
	cseq      uint32
	version   int
	needFull  bool
	queue     []*sip.Request
	sending   bool
	dead      bool
}

// SubInfo describes one live subscription, for tests.
type SubInfo struct {
	Extension string
	Event     string
	CallID    string
	FromTag   string // the subscriber's tag
	ToTag     string // the simulator's tag
	Contact   string
	Transport string
	Granted   int // seconds granted by the last SUBSCRIBE
	ExpiresAt time.Time
	Refreshed int // in-dialog SUBSCRIBEs with Expires > 0
	Notifies  int // NOTIFYs queued for it so far
}

// Subscriptions lists the live subscriptions for ext ("" for all).
func (s *Server) Subscriptions(ext string) []SubInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SubInfo
	for _, sub := range s.subs {
		if ext != "" && sub.ext != ext {
			continue
		}
		out = append(out, SubInfo{
			Extension: sub.ext, Event: sub.event,
			CallID: sub.key.callID, FromTag: sub.key.fromTag, ToTag: sub.key.toTag,
			Contact: sub.contact.String(), Transport: sub.transport,
			Granted: sub.granted, ExpiresAt: sub.expiresAt,
			Refreshed: sub.refreshed, Notifies: sub.notifies,
		})
	}
	return out
}

func (s *Server) handleSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	if !s.admit(req, tx) {
		return
	}
	s.mu.Lock()
	s.stats.Subscribes++
	refuse := s.faults.refuseSubscribe
	s.signalLocked()
	s.mu.Unlock()
	if refuse != 0 {
		respond(tx, req, refuse, reasonPhrase(refuse))
		return
	}
	ev := req.GetHeader("Event")
	evName, evID := "", ""
	if ev != nil {
		evName, evID = parseEvent(ev.Value())
	}
	if evName != "dialog" && evName != "presence" {
		respond(tx, req, 489, "Bad Event", sip.NewHeader("Allow-Events", "presence, dialog"))
		return
	}
	if !s.authorized(req, tx, true) {
		return
	}
	granted, ok := s.grant(req)
	if !ok {
		respond(tx, req, 400, "Bad Request - Expires is not a number")
		return
	}
	if toTag, ok := req.To().Params.Get("tag"); ok && toTag != "" {
		s.refreshSubscription(req, tx, toTag, granted)
		return
	}
	ext := extensionOf(req)
	if !s.knownExtension(ext) {
		respond(tx, req, 404, "Not Found")
		return
	}
	ct := req.Contact()
	if ct == nil || ct.Address.Host == "" {
		respond(tx, req, 400, "Bad Request - Contact missing")
		return
	}
	fromTag, _ := req.From().Params.Get("tag")

	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	toTag, _ := res.To().Params.Get("tag")
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(granted)))
	res.AppendHeader(s.contactHeader(req.Transport()))

	now := time.Now()
	sub := &subscription{
		key:       dialogKey{callID: req.CallID().Value(), fromTag: fromTag, toTag: toTag},
		ext:       ext,
		event:     evName,
		eventHdr:  eventHeader(evName, evID),
		contact:   *ct.Address.Clone(),
		remote:    *req.From().Address.Clone(),
		local:     *req.To().Address.Clone(),
		transport: strings.ToUpper(req.Transport()),
		source:    req.Source(),
		granted:   granted,
		created:   now,
		expiresAt: now.Add(time.Duration(granted) * time.Second),
		cseq:      1,
	}
	for _, h := range req.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			sub.routes = append(sub.routes, *rr.Address.Clone())
		}
	}
	if err := tx.Respond(res); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.exts[ext]
	if e == nil || s.running == nil {
		return
	}
	if granted == 0 {
		// A fetch (RFC 6665 §4.4.3): one NOTIFY with the state, terminated.
		s.queueNotifyLocked(sub, "terminated", "timeout", s.fullBodyLocked(e, sub))
		return
	}
	s.subs[sub.key] = sub
	s.queueNotifyLocked(sub, "active", "", s.fullBodyLocked(e, sub))
}

func (s *Server) refreshSubscription(req *sip.Request, tx sip.ServerTransaction, toTag string, granted int) {
	fromTag, _ := req.From().Params.Get("tag")
	key := dialogKey{callID: req.CallID().Value(), fromTag: fromTag, toTag: toTag}
	s.mu.Lock()
	sub, ok := s.subs[key]
	if !ok {
		s.stats.Unknown481++
		s.signalLocked()
		s.mu.Unlock()
		respond(tx, req, 481, "Subscription does not exist")
		return
	}
	now := time.Now()
	sub.granted = granted
	sub.expiresAt = now.Add(time.Duration(granted) * time.Second)
	if granted > 0 {
		sub.refreshed++
	}
	s.mu.Unlock()

	if err := tx.Respond(func() *sip.Response {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(granted)))
		res.AppendHeader(s.contactHeader(req.Transport()))
		return res
	}()); err != nil {
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs[key] != sub {
		return // dropped by Restart or Kill meanwhile
	}
	e := s.exts[sub.ext]
	if e == nil {
		return
	}
	sub.needFull = true
	if granted == 0 {
		delete(s.subs, key)
		s.stats.SubscriptionsEnded++
		s.queueNotifyLocked(sub, "terminated", "timeout", s.fullBodyLocked(e, sub))
		return
	}
	s.queueNotifyLocked(sub, "active", "", s.fullBodyLocked(e, sub))
}

func (s *Server) expireSubscriptionsLocked(now time.Time) {
	for k, sub := range s.subs {
		if now.Before(sub.expiresAt) {
			continue
		}
		delete(s.subs, k)
		s.stats.SubscriptionsEnded++
		if e := s.exts[sub.ext]; e != nil {
			sub.needFull = true
			s.queueNotifyLocked(sub, "terminated", "timeout", s.fullBodyLocked(e, sub))
		}
	}
}

func (s *Server) dropSubscriptionsLocked() {
	for k, sub := range s.subs {
		sub.dead = true
		sub.queue = nil
		delete(s.subs, k)
	}
}

func (s *Server) contactHeader(transport string) *sip.ContactHeader {
	return contactFor(s.Addr(), transport)
}

// contactFor is the simulator's Contact; over TCP it says so, so that the
// subscriber's in-dialog requests come back over TCP too.
func contactFor(a, transport string) *sip.ContactHeader {
	host, port := "127.0.0.1", 0
	if a != "" {
		if h, p, err := sip.ParseAddr(a); err == nil {
			host, port = h, p
		}
	}
	u := sip.Uri{Scheme: "sip", Host: host, Port: port}
	if strings.EqualFold(transport, "TCP") {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	}
	return &sip.ContactHeader{Address: u}
}

// queueNotifyLocked builds the next NOTIFY of sub now, so that its CSeq and
// body follow the order of events, and hands it to sub's sender.
func (s *Server) queueNotifyLocked(sub *subscription, state, reason, body string) {
	if s.running == nil {
		return
	}
	subState := state
	if state == "active" {
		left := int(time.Until(sub.expiresAt).Round(time.Second) / time.Second)
		if left < 0 {
			left = 0
		}
		subState = fmt.Sprintf("active;expires=%d", left)
	} else if reason != "" {
		subState += ";reason=" + reason
	}
	req := sip.NewRequest(sip.NOTIFY, *sub.contact.Clone())
	from := &sip.FromHeader{Address: *sub.local.Clone()}
	from.Params.Add("tag", sub.key.toTag)
	to := &sip.ToHeader{Address: *sub.remote.Clone()}
	to.Params.Add("tag", sub.key.fromTag)
	callID := sip.CallIDHeader(sub.key.callID)
	maxfwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: sub.cseq, MethodName: sip.NOTIFY})
	sub.cseq++
	req.AppendHeader(&maxfwd)
	for _, r := range sub.routes {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	req.AppendHeader(contactFor(s.sipAddr, sub.transport))
	req.AppendHeader(sip.NewHeader("Event", sub.eventHdr))
	req.AppendHeader(sip.NewHeader("Subscription-State", subState))
	if body != "" {
		ct := "application/dialog-info+xml"
		if sub.event == "presence" {
			ct = "application/pidf+xml"
		}
		req.AppendHeader(sip.NewHeader("Content-Type", ct))
	}
	req.SetBody([]byte(body))
	if sub.transport == "TCP" {
		// Answer over the subscriber's own connection, as Kamailio does for
		// connection-oriented transports.
		req.SetTransport("TCP")
		req.SetDestination(sub.source)
	}
	sub.notifies++
	s.stats.NotifiesQueued++
	sub.queue = append(sub.queue, req)
	if !sub.sending {
		sub.sending = true
		s.notifyWG.Add(1)
		go s.sendNotifies(sub)
	}
}

// sendNotifies sends sub's queued NOTIFYs one at a time: RFC 6665 lets a
// notifier send the next NOTIFY only after the previous one completed, and
// subscribers rely on CSeq order.
func (s *Server) sendNotifies(sub *subscription) {
	defer s.notifyWG.Done()
	for {
		s.mu.Lock()
		rt := s.running
		if len(sub.queue) == 0 || sub.dead || rt == nil {
			sub.sending = false
			sub.queue = nil
			s.mu.Unlock()
			return
		}
		req := sub.queue[0]
		sub.queue = sub.queue[1:]
		drop := s.faults.dropNotifies
		if drop {
			s.stats.NotifiesDropped++
		} else {
			s.stats.Notifies++
		}
		s.signalLocked()
		s.mu.Unlock()
		if drop {
			continue
		}
		ctx, cancel := context.WithTimeout(rt.ctx, s.opts.NotifyTimeout)
		res, err := rt.client.Do(ctx, req)
		cancel()
		s.mu.Lock()
		switch {
		case err != nil || res.StatusCode == 408 || res.StatusCode == 481:
			// Kamailio drops a subscription whose NOTIFY got 481 or no
			// answer (timeout_rm_subs), and tells nobody.
			s.stats.NotifyFailures++
			if s.subs[sub.key] == sub {
				delete(s.subs, sub.key)
				s.stats.SubscriptionsEnded++
			}
			sub.dead = true
		case res.StatusCode >= 300:
			s.stats.NotifyFailures++
		}
		s.signalLocked()
		s.mu.Unlock()
	}
}

// parseEvent splits an Event header value into the package and its id.
func parseEvent(v string) (name, id string) {
	parts := strings.Split(v, ";")
	name = strings.ToLower(strings.TrimSpace(parts[0]))
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "id") {
			id = val
		}
	}
	return name, id
}

func eventHeader(name, id string) string {
	if id == "" {
		return name
	}
	return name + ";id=" + id
}

// fullBodyLocked renders the whole state for sub's event package.
func (s *Server) fullBodyLocked(e *extension, sub *subscription) string {
	if sub.event == "presence" {
		return s.presenceBodyLocked(e)
	}
	return s.dialogBodyLocked(e, sub, nil)
}
