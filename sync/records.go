package sync

// The audit log and the last-known state, written in batches by the
// recorder goroutine so the engine never waits for the disk.

func (e *Engine) emit(d Decision) {
	if d.At.IsZero() {
		d.At = e.clock.Now()
	}
	if e.cfg.Observe != nil {
		e.cfg.Observe(d)
	}
	select {
	case e.recs <- d:
	default:
		e.stats.DroppedRecords++
	}
}

func (e *Engine) markDirty(u *userRT) { e.dirty[u] = struct{}{} }

// flushDirty hands the last-known state of changed users to the recorder;
// under load it runs once per burst, so bursts are saved as one batch.
func (e *Engine) flushDirty() {
	if len(e.dirty) == 0 {
		return
	}
	batch := make([]LastKnown, 0, len(e.dirty))
	for u := range e.dirty {
		lk := LastKnown{User: u.user.ID}
		if u.teamsKnown {
			t := u.teams
			lk.Teams = &t
		}
		if u.phoneKnown {
			p := u.phone.Clone()
			lk.Phone = &p
		}
		batch = append(batch, lk)
	}
	select {
	case e.recs <- batch:
		clear(e.dirty)
	default: // the recorder is behind: keep them dirty for the next flush
	}
}

// recorder writes audit entries and last-known state in batches, off the
// engine goroutine.
func (e *Engine) recorder() {
	var audit []Decision
	var known []LastKnown
	write := func() {
		if len(audit) > 0 {
			if err := e.cfg.Journal.AppendAudit(audit); err != nil {
				e.log.Error("audit log", "err", err)
			}
			audit = audit[:0]
		}
		if len(known) > 0 {
			if err := e.cfg.Journal.SaveLastKnown(known); err != nil {
				e.log.Error("saving last-known presence", "err", err)
			}
			known = known[:0]
		}
	}
	add := func(r any) {
		switch r := r.(type) {
		case Decision:
			audit = append(audit, r)
		case []LastKnown:
			known = append(known, r...)
		}
	}
	for r := range e.recs {
		add(r)
	drain:
		for len(audit) < 512 {
			select {
			case r, ok := <-e.recs:
				if !ok {
					break drain
				}
				add(r)
			default:
				break drain
			}
		}
		write()
	}
	write()
}
