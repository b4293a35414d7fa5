package teams_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
)

// A setPresence that waits for its connection (a dial and a TLS handshake,
// seconds right after a start or under load) while its call ends is not
// sent: the engine's check runs once more when the connection is there,
// right before the request is written.
func TestClient_WriteThatWaitedForAConnectionIsNotSent(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	cfg := config(s)
	tr := s.Client().Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true // every request dials: the dial is the wait
	var hold atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	dial := (&net.Dialer{}).DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if hold.Load() {
			entered <- struct{}{}
			<-release
		}
		return dial(ctx, network, addr)
	}
	cfg.HTTPClient = &http.Client{Transport: tr}
	c := newClient(t, cfg)
	u := psync.User{ID: "201", TeamsID: userID(0)}
	// A first write fetches the token, so that the next one only waits
	// for its connection.
	if err := c.SetPresence(context.Background(), u, psync.ActivityInACall, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClearPresence(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	before := countPath(s.Requests(), "/setPresence")

	var wanted atomic.Bool
	wanted.Store(true)
	ctx := psync.WithStillWanted(context.Background(), wanted.Load)
	hold.Store(true)
	done := make(chan error, 1)
	go func() { done <- c.SetPresence(ctx, u, psync.ActivityInACall, 5*time.Minute) }()
	<-entered
	wanted.Store(false) // the call ended while the write waited
	close(release)
	err := <-done
	if !errors.Is(err, psync.ErrSuperseded) {
		t.Fatalf("SetPresence: %v, want ErrSuperseded", err)
	}
	if n := countPath(s.Requests(), "/setPresence"); n != before {
		t.Fatalf("a setPresence that was no longer wanted reached Graph (%d, was %d)", n, before)
	}
}

func countPath(rs []graphsim.Request, suffix string) int {
	n := 0
	for _, r := range rs {
		if strings.HasSuffix(r.Path, suffix) {
			n++
		}
	}
	return n
}
