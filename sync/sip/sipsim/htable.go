package sipsim

import (
	"net/http"
	"time"
)

type cell struct {
	str       bool
	s         string
	n         int
	expiresAt time.Time // zero: never
}

type htable struct {
	autoExpire time.Duration
	cells      map[string]*cell
}

func (t *htable) sweep(now time.Time) {
	for k, c := range t.cells {
		if !c.expiresAt.IsZero() && now.After(c.expiresAt) {
			delete(t.cells, k)
		}
	}
}

func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not yet", 500)
}
