package sip

import (
	"context"
	"fmt"
	"slices"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Call protection in writer kamailio is one htable entry per extension
// with TTL phone.lease: the proxy answers 486 while it exists. The entries
// the bridge turned on are refreshed every lease/3, so a bridge that dies
// leaves nothing behind for longer than one lease.

// SetDeviceProtection turns the busy entry of one extension on or off.
func (c *Conn) SetDeviceProtection(ctx context.Context, u psync.User, device string, on bool) error {
	if c.busy == nil {
		return fmt.Errorf("%w: sip.writer is %s: call protection needs sip.writer kamailio (a Kamailio front proxy)", psync.ErrRejected, c.cfg.Writer)
	}
	if err := c.ownDevice(u, device); err != nil {
		return err
	}
	if err := psync.StillWanted(ctx); err != nil {
		return err
	}
	// One writer at a time: a refresh must not put back an entry that a
	// clear has just removed.
	c.busyMu.Lock()
	defer c.busyMu.Unlock()
	var err error
	if on {
		err = c.busy.SetBusy(ctx, device, c.cfg.Lease)
	} else {
		err = c.busy.ClearBusy(ctx, device)
	}
	if err != nil {
		return fmt.Errorf("sip: call protection of %s: %w", device, err)
	}
	c.mu.Lock()
	if on {
		c.prot[device] = true
	} else {
		delete(c.prot, device)
	}
	c.mu.Unlock()
	c.post(note{kind: noteEvent, event: psync.PhoneEvent{Kind: psync.PhoneDeviceChanged, User: u.ID,
		Device: psync.Device{ID: device, Name: "ext " + device, DND: on}}})
	return nil
}

// RestoreDeviceProtection sets restore only if the entry still is expect.
func (c *Conn) RestoreDeviceProtection(ctx context.Context, u psync.User, device string, expect, restore bool) error {
	if c.busy == nil {
		// sip.writer no longer kamailio: an entry of the earlier writer
		// ends at its lifetime (phone.lease) by itself; refusing would keep
		// the give-back failing for good.
		return nil
	}
	if err := c.ownDevice(u, device); err != nil {
		return err
	}
	now, err := c.busy.Busy(ctx, device)
	if err != nil {
		return fmt.Errorf("sip: call protection of %s: %w", device, err)
	}
	if now == restore {
		c.mu.Lock()
		if !restore {
			delete(c.prot, device) // gone already (expired): stop refreshing
		}
		c.mu.Unlock()
		return nil
	}
	if now != expect {
		return fmt.Errorf("sip: call protection of %s: %w", device, psync.ErrChangedByUser)
	}
	return c.SetDeviceProtection(ctx, u, device, restore)
}

// ownDevice refuses an extension that is not the user's: the htable is
// keyed by extension, and a typo would block somebody else's calls.
func (c *Conn) ownDevice(u psync.User, device string) error {
	exts := c.userExtensions(u.ID)
	if exts == nil {
		// Before Run the user's extensions come from the settings alone.
		m, err := Extensions([]psync.User{u}, c.cfg)
		if err != nil {
			return fmt.Errorf("%w: %v", psync.ErrRejected, err)
		}
		for ext := range m {
			exts = append(exts, ext)
		}
	}
	if !slices.Contains(exts, device) {
		return fmt.Errorf("%w: extension %q is not one of user %s's (%v)", psync.ErrRejected, device, u.ID, exts)
	}
	return nil
}

// refreshBusy renews the entries the bridge holds every lease/3.
func (c *Conn) refreshBusy(ctx context.Context) {
	t := time.NewTicker(c.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		var exts []string
		for ext := range c.prot {
			exts = append(exts, ext)
		}
		c.mu.Unlock()
		for _, ext := range exts {
			c.refreshOne(ctx, ext)
		}
	}
}

// deviceDND is the Device.DND of a snapshot: the entry exists (writer
// kamailio); what the bridge holds when the RPC cannot be asked.
func (c *Conn) deviceDND(ctx context.Context, ext string) bool {
	if c.busy == nil {
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	on, err := c.busy.Busy(rctx, ext)
	if err != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.prot[ext]
	}
	return on
}

func (c *Conn) refreshOne(ctx context.Context, ext string) {
	c.busyMu.Lock()
	defer c.busyMu.Unlock()
	c.mu.Lock()
	held := c.prot[ext]
	c.mu.Unlock()
	if !held {
		return // cleared since the list was taken
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	if err := c.busy.SetBusy(rctx, ext, c.cfg.Lease); err != nil {
		c.cfg.Logger.Warn("sip: call protection refresh failed", "ext", ext, "err", err)
	}
}
