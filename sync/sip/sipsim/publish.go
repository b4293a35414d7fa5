package sipsim

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

type publication struct {
	etag      string
	ext       string
	body      string
	published time.Time // when the body last changed or was refreshed
	expiresAt time.Time
}

// Presence is what a PIDF publication says, read the way the connector's
// peers read it: RPID activities (also the old rpid-status form), the first
// person note (else the first tuple note), and the basic status.
type Presence struct {
	Basic      string   // "open" / "closed"
	Activities []string // e.g. ["on-the-phone"]
	Note       string
}

// Activity is the first activity, or "".
func (p Presence) Activity() string {
	if len(p.Activities) == 0 {
		return ""
	}
	return p.Activities[0]
}

// Published returns the newest live PIDF body published for ext.
func (s *Server) Published(ext string) (body string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.newestPublicationLocked(ext, time.Now())
	if p == nil {
		return "", false
	}
	return p.body, true
}

// PublishedPresence is Published, parsed.
func (s *Server) PublishedPresence(ext string) (Presence, bool) {
	body, ok := s.Published(ext)
	if !ok {
		return Presence{}, false
	}
	p, err := ParsePIDF([]byte(body))
	return p, err == nil
}

// Publications counts the live publications (ETags) for ext.
func (s *Server) Publications(ext string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, now := 0, time.Now()
	for _, p := range s.pubs {
		if p.ext == ext && now.Before(p.expiresAt) {
			n++
		}
	}
	return n
}

func (s *Server) newestPublicationLocked(ext string, now time.Time) *publication {
	var best *publication
	for _, p := range s.pubs {
		if p.ext != ext || !now.Before(p.expiresAt) {
			continue
		}
		if best == nil || p.published.After(best.published) {
			best = p
		}
	}
	return best
}

// presenceBodyLocked is what a presence watcher of e gets: the newest live
// publication verbatim, else what Kamailio's presence_xml makes up: a dummy
// "open"/"Available" document while nothing was ever published
// (force_dummy_presence, entity without "sip:", as observed), a "closed"
// tuple once publications existed and are gone.
func (s *Server) presenceBodyLocked(e *extension) string {
	if p := s.newestPublicationLocked(e.name, time.Now()); p != nil {
		return p.body
	}
	basic, note := "open", "<note>Available</note>"
	entity := e.name
	if e.everPublished {
		basic, note, entity = "closed", "", "sip:"+e.name+"@"+s.domainLocked()
	}
	return `<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="` + xmlEscape(entity) + `">
  <tuple id="` + dummyDialogID[:16] + `"><status><basic>` + basic + `</basic></status></tuple>` + note + `
  <dm:person id="p-` + xmlEscape(e.name) + `"><rpid:activities/></dm:person>
</presence>
`
}

// presenceChangedLocked NOTIFYs e's presence watchers.
func (s *Server) presenceChangedLocked(ext string) {
	e := s.exts[ext]
	if e == nil {
		return
	}
	for _, sub := range s.subs {
		if sub.ext == ext && sub.event == "presence" {
			s.queueNotifyLocked(sub, "active", "", s.presenceBodyLocked(e))
		}
	}
}

// handlePublish is an event state compositor for Event: presence (RFC
// 3903): an initial PUBLISH carries a body and gets a new SIP-ETag; a
// refresh carries SIP-If-Match and no body; a modification carries both;
// Expires: 0 with SIP-If-Match removes. Every success answers a fresh
// SIP-ETag, as Kamailio does. An unknown or expired ETag → 412.
func (s *Server) handlePublish(req *sip.Request, tx sip.ServerTransaction) {
	if !s.admit(req, tx) {
		return
	}
	s.mu.Lock()
	s.stats.Publishes++
	refuse := s.faults.refusePublish
	s.signalLocked()
	s.mu.Unlock()
	if refuse != 0 {
		respond(tx, req, refuse, reasonPhrase(refuse))
		return
	}
	ev := req.GetHeader("Event")
	if ev == nil {
		respond(tx, req, 489, "Bad Event", sip.NewHeader("Allow-Events", "presence"))
		return
	}
	if name, _ := parseEvent(ev.Value()); name != "presence" {
		respond(tx, req, 489, "Bad Event", sip.NewHeader("Allow-Events", "presence"))
		return
	}
	if !s.authorized(req, tx, true) {
		return
	}
	ext := extensionOf(req)
	if !s.knownExtension(ext) {
		respond(tx, req, 404, "Not Found")
		return
	}
	granted, ok := s.grant(req)
	if !ok {
		respond(tx, req, 400, "Bad Request - Expires is not a number")
		return
	}
	body := req.Body()
	if len(body) > 0 {
		if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/pidf+xml") {
			respond(tx, req, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/pidf+xml"))
			return
		}
		if _, err := ParsePIDF(body); err != nil {
			respond(tx, req, 400, "Bad Request - "+err.Error())
			return
		}
	}
	ifMatch := ""
	if h := req.GetHeader("SIP-If-Match"); h != nil {
		ifMatch = strings.TrimSpace(h.Value())
	}

	now := time.Now()
	s.mu.Lock()
	var p *publication
	if ifMatch != "" {
		p = s.pubs[ifMatch]
		if p == nil || p.ext != ext || !now.Before(p.expiresAt) {
			s.mu.Unlock()
			respond(tx, req, 412, "Conditional Request Failed")
			return
		}
		delete(s.pubs, ifMatch)
		if granted == 0 {
			s.presenceChangedLocked(ext)
			s.signalLocked()
			s.mu.Unlock()
			respond(tx, req, 200, "OK", sip.NewHeader("SIP-ETag", ifMatch), sip.NewHeader("Expires", "0"))
			return
		}
	} else {
		if len(body) == 0 {
			s.mu.Unlock()
			respond(tx, req, 400, "Bad Request - an initial PUBLISH needs a body")
			return
		}
		if granted == 0 {
			s.mu.Unlock()
			respond(tx, req, 400, "Bad Request - Expires: 0 without SIP-If-Match")
			return
		}
		p = &publication{ext: ext}
	}
	if len(body) > 0 {
		p.body = string(body)
	}
	p.published = now
	p.expiresAt = now.Add(time.Duration(granted) * time.Second)
	p.etag = "a." + strconv.FormatInt(now.Unix(), 10) + "." + strconv.FormatUint(s.nextLocked(), 10) + "." + randomTag()
	s.pubs[p.etag] = p
	if e := s.exts[ext]; e != nil {
		e.everPublished = true
	}
	if len(body) > 0 {
		// A body-less refresh changes nothing a watcher sees.
		s.presenceChangedLocked(ext)
	}
	s.signalLocked()
	s.mu.Unlock()
	respond(tx, req, 200, "OK", sip.NewHeader("SIP-ETag", p.etag), sip.NewHeader("Expires", strconv.Itoa(granted)))
}

// ParsePIDF reads a PIDF (RFC 3863) document with RPID (RFC 4480) or the
// older rpid-status activities. It matches elements by local name, so any
// namespace prefix works.
func ParsePIDF(body []byte) (Presence, error) {
	var p Presence
	dec := xml.NewDecoder(bytes.NewReader(body))
	var stack []string
	sawRoot := false
	personNote, tupleNote := "", ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Presence{}, errPIDF("not well-formed XML: " + err.Error())
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 {
				if t.Name.Local != "presence" {
					return Presence{}, errPIDF("root element is <" + t.Name.Local + ">, not <presence>")
				}
				sawRoot = true
			}
			parent := ""
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			if parent == "activities" && t.Name.Local != "activity" {
				p.Activities = append(p.Activities, t.Name.Local)
			}
			stack = append(stack, t.Name.Local)
			if len(stack) > 64 {
				return Presence{}, errPIDF("nested too deeply")
			}
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			text := strings.TrimSpace(string(t))
			if text == "" {
				continue
			}
			switch stack[len(stack)-1] {
			case "basic":
				p.Basic = text
			case "activity": // <ep:activities><ep:activity>on-the-phone</ep:activity>
				p.Activities = append(p.Activities, text)
			case "note":
				if slicesContains(stack, "person") {
					if personNote == "" {
						personNote = text
					}
				} else if tupleNote == "" {
					tupleNote = text
				}
			}
		}
	}
	if !sawRoot {
		return Presence{}, errPIDF("empty document")
	}
	p.Note = personNote
	if p.Note == "" {
		p.Note = tupleNote
	}
	return p, nil
}

type errPIDF string

func (e errPIDF) Error() string { return "PIDF: " + string(e) }

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
