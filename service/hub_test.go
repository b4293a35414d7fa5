package service_test

import (
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/service"
	psync "github.com/presencebridge/presencebridge/sync"
)

func TestHub_SlowSubscriberNeverBlocksPublish(t *testing.T) {
	h := service.NewHub()
	slow, cancelSlow := h.Subscribe() // never read
	fast, cancelFast := h.Subscribe()
	const n = 5000
	got := make(chan int)
	go func() {
		c := 0
		for range fast {
			c++
		}
		got <- c
	}()
	began := time.Now()
	for i := range n {
		h.Publish(psync.Decision{What: "x", Old: string(rune('a' + i%26))})
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("publishing %d decisions took %s", n, took)
	}
	if len(slow) == 0 || len(slow) == n {
		t.Fatalf("slow subscriber buffered %d of %d", len(slow), n)
	}
	dropped := cancelSlow()
	if dropped == 0 || int(dropped)+1024 != n {
		t.Fatalf("slow subscriber: %d dropped, want %d", dropped, n-1024)
	}
	if h.Dropped() < dropped {
		t.Fatalf("hub counts %d drops, the slow subscriber alone %d", h.Dropped(), dropped)
	}
	h.Close()
	c := <-got
	cancelFast()
	if uint64(c)+h.Dropped()-dropped != n {
		t.Fatalf("fast subscriber: %d received + %d dropped != %d", c, h.Dropped()-dropped, n)
	}
	// After Close a subscription ends at once.
	ch, _ := h.Subscribe()
	if _, ok := <-ch; ok {
		t.Fatal("subscription after Close is open")
	}
}
