package service

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// sentTimes records when each request whose path ends in suffix leaves the
// Graph adapter's HTTP client: "setPresence on the wire". graphsim's own
// request time is later by the TLS read and its lock, which a poll request
// in flight can hold for milliseconds: the server's delay, not the
// bridge's.
type sentTimes struct {
	inner  http.RoundTripper
	suffix string
	mu     sync.Mutex
	at     []time.Time
}

func tapSent(c *http.Client, suffix string) (*http.Client, *sentTimes) {
	tr := c.Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = 16 // as the product's own client
	st := &sentTimes{inner: tr, suffix: suffix}
	return &http.Client{Transport: st}, st
}

func (s *sentTimes) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, s.suffix) {
		s.mu.Lock()
		s.at = append(s.at, time.Now())
		s.mu.Unlock()
	}
	return s.inner.RoundTrip(r)
}

// count and nth read the times recorded so far.
func (s *sentTimes) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

func (s *sentTimes) nth(i int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at[i]
}
