package teams_test

import (
	"sync"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

type timedJournal struct {
	psync.Journal
	mu  sync.Mutex
	put []time.Duration
}

func (j *timedJournal) PutHold(h psync.Hold) error {
	s := time.Now()
	err := j.Journal.PutHold(h)
	j.mu.Lock()
	j.put = append(j.put, time.Since(s))
	j.mu.Unlock()
	return err
}
