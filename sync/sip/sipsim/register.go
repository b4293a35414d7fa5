package sipsim

import (
	"slices"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

type registration struct {
	aor       string
	contact   string
	source    string
	granted   int
	expiresAt time.Time
}

// RegInfo describes one registered binding, for tests.
type RegInfo struct {
	AOR       string // sip:user@domain from To
	Contact   string
	Source    string // host:port the REGISTER came from
	Granted   int
	ExpiresAt time.Time
}

// Registrations lists the live bindings, ordered by AOR and contact.
func (s *Server) Registrations() []RegInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RegInfo, 0, len(s.regs))
	for _, r := range s.regs {
		out = append(out, RegInfo{AOR: r.aor, Contact: r.contact, Source: r.source, Granted: r.granted, ExpiresAt: r.expiresAt})
	}
	slices.SortFunc(out, func(a, b RegInfo) int {
		if a.AOR != b.AOR {
			if a.AOR < b.AOR {
				return -1
			}
			return 1
		}
		if a.Contact < b.Contact {
			return -1
		}
		if a.Contact > b.Contact {
			return 1
		}
		return 0
	})
	return out
}

// handleRegister keeps bindings for any user: the bridge registers its own
// account, which need not be one of the extensions.
func (s *Server) handleRegister(req *sip.Request, tx sip.ServerTransaction) {
	if !s.admit(req, tx) {
		return
	}
	s.mu.Lock()
	s.stats.Registers++
	refuse := s.faults.refuseRegister
	s.signalLocked()
	s.mu.Unlock()
	if refuse != 0 {
		respond(tx, req, refuse, reasonPhrase(refuse))
		return
	}
	if !s.authorized(req, tx, false) {
		return
	}
	aor := "sip:" + req.To().Address.User + "@" + req.To().Address.Host
	ct := req.Contact()
	if ct == nil {
		// A query: list the bindings.
		s.mu.Lock()
		var hdrs []sip.Header
		for _, r := range s.regs {
			if r.aor == aor {
				hdrs = append(hdrs, sip.NewHeader("Contact", "<"+r.contact+">;expires="+strconv.Itoa(int(time.Until(r.expiresAt).Seconds()))))
			}
		}
		s.mu.Unlock()
		respond(tx, req, 200, "OK", hdrs...)
		return
	}
	granted, ok := s.grant(req)
	if !ok {
		respond(tx, req, 400, "Bad Request - Expires is not a number")
		return
	}
	if v, ok := ct.Params.Get("expires"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			granted = min(n, s.opts.MaxExpires)
		}
	}
	contact := ct.Address.String()
	key := aor + " " + contact
	s.mu.Lock()
	if granted == 0 {
		delete(s.regs, key)
	} else {
		s.regs[key] = &registration{aor: aor, contact: contact, source: req.Source(), granted: granted,
			expiresAt: time.Now().Add(time.Duration(granted) * time.Second)}
	}
	s.signalLocked()
	s.mu.Unlock()
	respond(tx, req, 200, "OK",
		sip.NewHeader("Contact", "<"+contact+">;expires="+strconv.Itoa(granted)),
		sip.NewHeader("Expires", strconv.Itoa(granted)))
}
