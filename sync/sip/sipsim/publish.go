package sipsim

import (
	"github.com/emiago/sipgo/sip"
	"time"
)

type publication struct {
	etag      string
	ext       string
	body      string
	expiresAt time.Time
}

func (s *Server) handlePublish(req *sip.Request, tx sip.ServerTransaction) {
	if s.admit(req, tx) {
		respond(tx, req, 501, "Not Implemented")
	}
}
