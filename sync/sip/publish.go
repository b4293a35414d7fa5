package sip

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	psync "github.com/presencebridge/presencebridge/sync"
)

// publication is the bridge's own PIDF publication for one user (RFC 3903):
// the server keeps it under its entity-tag until it expires or is removed.
// The user's presence on this side is exactly this publication.
type publication struct {
	user     psync.User
	ext      string // presentity: the user's first extension
	etag     string
	presence psync.PhonePresence
	// until is the end the engine asked for (what the side shows and
	// what own marks are compared with); serverUntil is when the server
	// drops it, earlier when it granted less than asked: the connector
	// refreshes it until until.
	until       time.Time
	serverUntil time.Time
	granted     time.Duration
}

func (p *publication) live(now time.Time) bool {
	return p != nil && p.etag != "" && now.Before(p.serverUntil)
}

// shows is what the side shows for a user: the live publication, or
// PhoneNotSet.
func (c *Conn) shows(u psync.UserID) psync.PresenceMark {
	if p := c.pubs[u]; p.live(time.Now()) {
		return psync.PresenceMark{Presence: p.presence, Until: p.until}
	}
	return psync.PresenceMark{Presence: psync.PhoneNotSet}
}

func matchesOne(cur psync.PresenceMark, own []psync.PresenceMark) bool {
	for _, o := range own {
		if o.Presence == cur.Presence && (o.Until.IsZero() || cur.Until.IsZero() || o.Until.Equal(cur.Until)) {
			return true
		}
	}
	return false
}

// SetPresence publishes set.Presence until set.Until (phone.lease from now
// when zero). The same presence again refreshes the publication without a
// body (SIP-If-Match), a different one modifies it.
func (c *Conn) SetPresence(ctx context.Context, u psync.User, set psync.PresenceMark, own []psync.PresenceMark) error {
	if c.cfg.Writer == WriterNone {
		return fmt.Errorf("%w: %v", psync.ErrRejected, errReadOnly)
	}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	cur := c.shows(u.ID)
	c.mu.Unlock()
	if len(own) > 0 && !matchesOne(cur, own) {
		return fmt.Errorf("sip: presence of %s shows %s: %w", u.ID, cur.Presence, psync.ErrChangedByUser)
	}
	if set.Presence == psync.PhoneNotSet {
		return c.removePublication(ctx, u)
	}
	return c.publish(ctx, u, set)
}

// RestorePresence puts restore back if the side still shows one of own.
// Restoring PhoneNotSet removes the bridge's publication (Expires: 0).
func (c *Conn) RestorePresence(ctx context.Context, u psync.User, own []psync.PresenceMark, restore psync.PresenceMark) error {
	if c.cfg.Writer == WriterNone {
		// sip.writer was switched to none since the bridge published: this
		// connector publishes nothing, and a publication of the earlier
		// one ends at its own Expires. Refusing would keep the give-back
		// failing for good.
		return nil
	}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	cur := c.shows(u.ID)
	c.mu.Unlock()
	if cur.Presence == restore.Presence {
		return nil
	}
	if !matchesOne(cur, own) {
		return fmt.Errorf("sip: presence of %s shows %s: %w", u.ID, cur.Presence, psync.ErrChangedByUser)
	}
	if restore.Presence == psync.PhoneNotSet {
		return c.removePublication(ctx, u)
	}
	return c.publish(ctx, u, restore)
}

// publish sends the PUBLISH (initial, modify or refresh) and records the
// entity-tag. A 412 means the server lost the publication: a full
// PUBLISH without SIP-If-Match starts a new one.
func (c *Conn) publish(ctx context.Context, u psync.User, set psync.PresenceMark) error {
	st, err := c.running()
	if err != nil {
		return err
	}
	exts := c.userExtensions(u.ID)
	if len(exts) == 0 {
		return fmt.Errorf("%w: user %s has no extension to publish for (set the user's extension or sip.extensions)", psync.ErrRejected, u.ID)
	}
	now := time.Now()
	until := set.Until
	if until.IsZero() {
		until = now.Add(c.cfg.Lease)
	}
	secs := int((until.Sub(now) + time.Second - 1) / time.Second)
	if secs < 1 {
		return fmt.Errorf("%w: presence end time %s has passed", psync.ErrRejected, until.Format(time.RFC3339))
	}
	c.mu.Lock()
	p := c.pubs[u.ID]
	var etag string
	refresh := false
	if p.live(now) && p.ext == exts[0] {
		etag = p.etag
		refresh = p.presence == set.Presence
	}
	c.mu.Unlock()
	if err := psync.StillWanted(ctx); err != nil {
		return err
	}
	for attempt := 0; attempt < 2; attempt++ {
		var body []byte
		if !refresh || etag == "" {
			body = pidf(exts[0], c.cfg.Domain, set.Presence)
		}
		res, err := st.request(ctx, c.publishRequest(exts[0], etag, secs, body))
		if err != nil {
			return fmt.Errorf("sip: PUBLISH for %s: %w", u.ID, err)
		}
		if res.StatusCode == statusPreconditionFailed && etag != "" {
			etag, refresh = "", false // RFC 3903 §6: start over with the full state
			continue
		}
		if !res.IsSuccess() {
			return fmt.Errorf("sip: PUBLISH for %s: %w", u.ID, rejectedAnswer(c.cfg, "PUBLISH", res))
		}
		tag := ""
		if h := res.GetHeader("SIP-ETag"); h != nil {
			tag = h.Value()
		}
		if tag == "" {
			return fmt.Errorf("sip: PUBLISH for %s: %w: the 2xx has no SIP-ETag", u.ID, psync.ErrRejected)
		}
		granted := time.Duration(secs) * time.Second
		if h := res.GetHeader("Expires"); h != nil {
			if n, err := strconv.Atoi(h.Value()); err == nil && n > 0 && n < secs {
				// The server keeps it for less than asked (its maximum):
				// refreshPublications renews it until the end asked for.
				granted = time.Duration(n) * time.Second
			}
		}
		c.mu.Lock()
		prev := c.pubs[u.ID]
		c.pubs[u.ID] = &publication{user: u, ext: exts[0], etag: tag, presence: set.Presence, until: until,
			serverUntil: now.Add(granted), granted: granted}
		c.mu.Unlock()
		if prev.live(now) && prev.presence == set.Presence && prev.until.Equal(until) {
			return nil // a refresh: nothing the engine does not know
		}
		c.post(note{kind: noteEvent, event: psync.PhoneEvent{Kind: psync.PhonePresenceChanged, User: u.ID, Presence: set.Presence, Until: until}})
		return nil
	}
	return fmt.Errorf("sip: PUBLISH for %s: %w: the server refused the entity-tag twice (412)", u.ID, psync.ErrRejected)
}

// refreshPublications renews, body-less, the publications a server keeps
// for less than the end the engine asked for, at 80 % of the granted time.
func (c *Conn) refreshPublications(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var due []psync.PresenceMark
		var users []psync.User
		c.mu.Lock()
		for _, p := range c.pubs {
			if p.live(now) && p.serverUntil.Before(p.until) && p.serverUntil.Sub(now) < p.granted/5 {
				due = append(due, psync.PresenceMark{Presence: p.presence, Until: p.until})
				users = append(users, p.user)
			}
		}
		c.mu.Unlock()
		for i, u := range users {
			c.pubMu.Lock()
			c.mu.Lock()
			cur := c.shows(u.ID)
			c.mu.Unlock()
			var err error
			if cur == due[i] { // not changed or removed meanwhile
				rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
				err = c.publish(rctx, u, due[i])
				cancel()
			}
			c.pubMu.Unlock()
			if err != nil {
				c.cfg.Logger.Warn("sip: PUBLISH refresh failed", "user", u.ID, "err", err)
			}
		}
	}
}

// removePublication ends the bridge's publication (Expires: 0). One the
// server no longer has (412, or already expired) is removed already.
func (c *Conn) removePublication(ctx context.Context, u psync.User) error {
	c.mu.Lock()
	p := c.pubs[u.ID]
	c.mu.Unlock()
	if p.live(time.Now()) {
		st, err := c.running()
		if err != nil {
			return err
		}
		if err := psync.StillWanted(ctx); err != nil {
			return err
		}
		res, err := st.request(ctx, c.publishRequest(p.ext, p.etag, 0, nil))
		if err != nil {
			return fmt.Errorf("sip: PUBLISH removal for %s: %w", u.ID, err)
		}
		if !res.IsSuccess() && res.StatusCode != statusPreconditionFailed {
			return fmt.Errorf("sip: PUBLISH removal for %s: %w", u.ID, rejectedAnswer(c.cfg, "PUBLISH", res))
		}
	}
	c.mu.Lock()
	delete(c.pubs, u.ID)
	c.mu.Unlock()
	c.post(note{kind: noteEvent, event: psync.PhoneEvent{Kind: psync.PhonePresenceChanged, User: u.ID, Presence: psync.PhoneNotSet}})
	return nil
}

func rejectedAnswer(cfg Config, method string, res *sip.Response) error {
	err := answerError(cfg, method, res)
	if res.StatusCode >= 500 || res.StatusCode == 408 {
		return fmt.Errorf("%w: %v", psync.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %v", psync.ErrRejected, err)
}

// publishRequest builds a PUBLISH for presentity ext. From is the
// presentity: FreeSWITCH keys a publication by From, and Kamailio checks
// that the publisher is the presentity (or an exempted account).
func (c *Conn) publishRequest(ext, etag string, expires int, body []byte) *sip.Request {
	aor := sip.Uri{Scheme: "sip", User: ext, Host: c.cfg.Domain}
	req := sip.NewRequest(sip.PUBLISH, aor)
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := &sip.ToHeader{Address: aor}
	callID := sip.CallIDHeader(uuid.NewString())
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.PUBLISH})
	maxfwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxfwd)
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if etag != "" {
		req.AppendHeader(sip.NewHeader("SIP-If-Match", etag))
	}
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/pidf+xml"))
	}
	req.SetBody(body)
	return req
}

// pidf is the PIDF + RPID document for a presence. The prefixes are
// literally dm: and rpid: because FreeSWITCH looks children up by those
// prefixed names; Kamailio's busy-on-busy snippet greps for on-the-phone
// or busy.
func pidf(ext, domain string, p psync.PhonePresence) []byte {
	basic, activity, note := "open", "", ""
	switch p {
	case psync.PhoneBusy:
		// The engine sets Busy only for a Teams call (RULES.md §1).
		activity, note = "on-the-phone", "In a Teams call"
	case psync.PhoneDND:
		activity, note = "busy", "Do not disturb"
	case psync.PhoneAway:
		activity, note = "away", "Away"
	case psync.PhoneOffline:
		basic, note = "closed", "Offline"
	default:
		note = "Available"
	}
	esc := func(s string) string {
		var b bytes.Buffer
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:` + esc(ext) + "@" + esc(domain) + `">` + "\n")
	b.WriteString(`  <tuple id="presencebridge"><status><basic>` + basic + `</basic></status><note>` + note + `</note></tuple>` + "\n")
	b.WriteString(`  <dm:person id="p-` + esc(ext) + `">`)
	if activity != "" {
		b.WriteString(`<rpid:activities><rpid:` + activity + `/></rpid:activities>`)
	}
	b.WriteString(`<dm:note>` + note + `</dm:note></dm:person>` + "\n")
	b.WriteString(`</presence>` + "\n")
	return b.Bytes()
}

// statusPreconditionFailed is RFC 3903's 412 (sipgo names no constant).
const statusPreconditionFailed = 412
