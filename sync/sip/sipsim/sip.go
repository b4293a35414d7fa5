package sipsim

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

func (s *Server) installHandlers(rt *runtime) {
	rt.srv.OnSubscribe(s.handleSubscribe)
	rt.srv.OnPublish(s.handlePublish)
	rt.srv.OnRegister(s.handleRegister)
	rt.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		if s.admit(req, tx) {
			respond(tx, req, 200, "OK")
		}
	})
	// The simulator places and answers no calls over SIP; Invite is the API
	// for the busy-on-busy decision.
	rt.srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.IsAck() || tx == nil {
			return
		}
		if s.admit(req, tx) {
			respond(tx, req, 405, "Method Not Allowed")
		}
	})
}

// admit does what every request goes through before its method's logic:
// the header sanity checks that keep malformed input from reaching the
// model, the body limit, the answer delay fault. It answers and returns
// false when the request must go no further.
func (s *Server) admit(req *sip.Request, tx sip.ServerTransaction) bool {
	if tx == nil {
		return false
	}
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		// Without these a response cannot even be matched; sipgo's
		// transaction layer normally drops such requests before us.
		return false
	}
	s.mu.Lock()
	s.stats.Requests++
	delay := s.faults.delay
	s.signalLocked()
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-tx.Done():
			t.Stop()
			return false
		}
	}
	if len(req.Body()) > s.opts.MaxBody {
		respond(tx, req, 413, "Request Entity Too Large")
		return false
	}
	return true
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
	return res
}

// expiresOf reads the Expires header; ok is false when it is absent, bad
// when it is not a non-negative number.
func expiresOf(req *sip.Request) (v int, ok, bad bool) {
	h := req.GetHeader("Expires")
	if h == nil {
		return 0, false, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
	if err != nil || n < 0 {
		return 0, true, true
	}
	return n, true, false
}

// grant caps a requested expiry the way Kamailio does: absent means
// DefaultExpires, more than MaxExpires is cut to MaxExpires.
func (s *Server) grant(req *sip.Request) (int, bool) {
	v, ok, bad := expiresOf(req)
	if bad {
		return 0, false
	}
	if !ok {
		v = s.opts.DefaultExpires
	}
	if v > s.opts.MaxExpires {
		v = s.opts.MaxExpires
	}
	return v, true
}

// authorized checks the digest credentials when Options.User is set and
// otherwise challenges: proxy (407, Proxy-Authenticate) for SUBSCRIBE and
// PUBLISH as a presence proxy does, 401 (WWW-Authenticate) for REGISTER.
func (s *Server) authorized(req *sip.Request, tx sip.ServerTransaction, proxy bool) bool {
	if s.opts.User == "" {
		return true
	}
	hdrName, chalName, code, reason := "Authorization", "WWW-Authenticate", 401, "Unauthorized"
	if proxy {
		hdrName, chalName, code, reason = "Proxy-Authorization", "Proxy-Authenticate", 407, "Proxy Authentication Required"
	}
	realm := s.realm()
	for _, h := range req.GetHeaders(hdrName) {
		cred, err := digest.ParseCredentials(h.Value())
		if err != nil || cred.Username != s.opts.User || cred.Realm != realm {
			continue
		}
		s.mu.Lock()
		_, known := s.nonces[cred.Nonce]
		s.mu.Unlock()
		if !known {
			continue
		}
		chal := &digest.Challenge{Realm: realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, Opaque: cred.Opaque}
		if cred.QOP != "" {
			chal.QOP = []string{cred.QOP}
		}
		want, err := digest.Digest(chal, digest.Options{
			Method: string(req.Method), URI: cred.URI,
			Username: s.opts.User, Password: s.opts.Password,
			Cnonce: cred.Cnonce, Count: cred.Nc,
		})
		if err == nil && want.Response == cred.Response {
			return true
		}
	}
	nonce := s.newNonce()
	chal := &digest.Challenge{Realm: realm, Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}}
	s.mu.Lock()
	s.stats.Challenges++
	s.signalLocked()
	s.mu.Unlock()
	respond(tx, req, code, reason, sip.NewHeader(chalName, chal.String()))
	return false
}

func (s *Server) realm() string {
	if s.opts.Realm != "" {
		return s.opts.Realm
	}
	return s.Domain()
}

func (s *Server) newNonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	n := hex.EncodeToString(b[:])
	s.mu.Lock()
	if len(s.nonces) >= 4096 {
		for old := range s.nonces { // bounded memory under a flood
			delete(s.nonces, old)
			break
		}
	}
	s.nonces[n] = time.Now()
	s.mu.Unlock()
	return n
}

func randomTag() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// extensionOf is the user part of the Request-URI, or of To when the
// Request-URI has none.
func extensionOf(req *sip.Request) string {
	if u := req.Recipient.User; u != "" {
		return u
	}
	if to := req.To(); to != nil {
		return to.Address.User
	}
	return ""
}

func (s *Server) knownExtension(ext string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.exts[ext]
	return ok
}

// reasonPhrase is the RFC 3261 reason for the codes tests refuse with.
func reasonPhrase(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	case 481:
		return "Call/Transaction Does Not Exist"
	case 486:
		return "Busy Here"
	case 489:
		return "Bad Event"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 603:
		return "Decline"
	}
	return "Refused"
}
