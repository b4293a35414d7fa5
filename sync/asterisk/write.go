package asterisk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// writer finds the user (and device), takes the user's write lock and the
// live connection. The returned unlock must be called. device "" skips the
// device check: a give-back goes by the extension's mark, and a device the
// PBX no longer lists (a chan_sip → PJSIP migration) must not keep the
// bridge's DND on for good.
func (c *Conn) writer(ctx context.Context, u psync.User, device string) (*uState, *client, func(), error) {
	c.lmu.Lock()
	connected := c.live != nil
	c.lmu.Unlock()
	c.mu.Lock()
	us := c.byID[u.ID]
	var devOK, read bool
	if us != nil {
		devOK = device == "" || slices.Contains(us.devices, device)
		read = len(us.devices) > 0
	}
	c.mu.Unlock()
	if !connected || (us != nil && !read && device != "") {
		// Until the user's devices have been read (a restart of Run, a
		// reconnect), a device cannot be checked: not a refusal.
		return nil, nil, nil, psync.NotSent(fmt.Errorf("%w: not connected to the AMI at %s, or its devices not read yet", psync.ErrUnavailable, c.cfg.Host))
	}
	if us == nil {
		return nil, nil, nil, psync.NotSent(fmt.Errorf("%w: user %s is not watched on the Asterisk side (no usable extension)", psync.ErrRejected, u.ID))
	}
	if !devOK {
		return nil, nil, nil, psync.NotSent(fmt.Errorf("%w: %s is not a device of user %s (extensions %s)", psync.ErrRejected, device, u.ID, strings.Join(us.exts, ",")))
	}
	select {
	case us.wmu <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, nil, psync.NotSent(fmt.Errorf("%w: %v", psync.ErrUnavailable, ctx.Err()))
	}
	unlock := func() { <-us.wmu }
	if err := psync.StillWanted(ctx); err != nil {
		unlock()
		return nil, nil, nil, err
	}
	c.lmu.Lock()
	cl := c.live
	c.lmu.Unlock()
	if cl == nil {
		unlock()
		return nil, nil, nil, psync.NotSent(fmt.Errorf("%w: not connected to the AMI at %s", psync.ErrUnavailable, c.cfg.Host))
	}
	return us, cl, unlock, nil
}

// actionCtx bounds one write's actions.
func (c *Conn) actionCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.ActionTimeout)
}

// writeErr turns a refused action into ErrRejected naming the class.
func (c *Conn) writeErr(err error, what, class string) error {
	var ae *amiError
	if errors.As(err, &ae) {
		if ae.permission() {
			c.problem(what+" refused: permission denied", "add "+class+" to the write line of ["+c.cfg.User+"] in manager.conf:\n"+ManagerStanza(c.cfg.User))
			return fmt.Errorf("%w: %s: permission denied; add %q to write = in [%s] of manager.conf (least: write = %s)", psync.ErrRejected, what, class, c.cfg.User, neededWrite)
		}
		return fmt.Errorf("%w: %s: %s", psync.ErrRejected, what, ae.message)
	}
	return err
}

// SetDeviceProtection implements psync.PhoneSystem. Protection is per user
// on both profiles (FreePBX DND is per AMPUSER): on when any device of the
// user is asked on, off when the last one is asked off.
func (c *Conn) SetDeviceProtection(ctx context.Context, u psync.User, device string, on bool) error {
	start := time.Now()
	us, cl, unlock, err := c.writer(ctx, u, device)
	if err != nil {
		c.meter.Call(psync.SidePhone, "protect", result(err), time.Since(start))
		return err
	}
	defer unlock()
	ctx, cancel := c.actionCtx(ctx)
	defer cancel()
	for _, ext := range us.exts {
		if on {
			err = c.protectOn(ctx, cl, us, ext, device)
		} else {
			err = c.protectOff(ctx, cl, us, ext, device)
		}
		if err != nil {
			break
		}
	}
	c.meter.Call(psync.SidePhone, "protect", result(err), time.Since(start))
	return err
}

// RestoreDeviceProtection implements psync.PhoneSystem: it gives back only
// what the bridge wrote. The AstDB marker teams/<ext>/dnd, written before
// the DND, names the devices the bridge asked on; a DND without the device
// in it is the person's (their *78 or the FreePBX UCP) and is never
// cleared.
func (c *Conn) RestoreDeviceProtection(ctx context.Context, u psync.User, device string, expect, restore bool) error {
	start := time.Now()
	us, cl, unlock, err := c.writer(ctx, u, "")
	if err != nil {
		c.meter.Call(psync.SidePhone, "restoreProtection", result(err), time.Since(start))
		return err
	}
	defer unlock()
	ctx, cancel := c.actionCtx(ctx)
	defer cancel()
	err = c.restore(ctx, cl, us, device, expect, restore)
	c.meter.Call(psync.SidePhone, "restoreProtection", result(err), time.Since(start))
	return err
}

func (c *Conn) restore(ctx context.Context, cl *client, us *uState, device string, expect, restore bool) error {
	var changed []string
	for _, ext := range us.exts {
		cur, err := c.shows(ctx, cl, ext)
		if err != nil {
			return err
		}
		marker, err := c.marker(ctx, cl, ext)
		if err != nil {
			return err
		}
		switch {
		case cur == restore:
			// Already what is wanted (a lease ran out, the person did it):
			// the device's mark goes, nothing else changes; a run-out
			// lease's key and lamp are the bridge's to tidy.
			if !restore && c.cfg.Profile == ProfileAsterisk && len(marker) > 0 {
				if err := c.writeOff(ctx, cl, us, ext); err != nil {
					return err
				}
			}
			if slices.Contains(marker, device) {
				if err := c.putMarker(ctx, cl, us, ext, slices.DeleteFunc(marker, func(d string) bool { return d == device })); err != nil {
					return err
				}
			}
		case cur != expect:
			changed = append(changed, ext)
		case !restore && !slices.Contains(marker, device):
			if len(marker) == 0 {
				changed = append(changed, ext) // the person's own DND
			}
			// Otherwise another device's hold keeps it on; this device's
			// part is already given back.
		case !restore:
			if err := c.protectOff(ctx, cl, us, ext, device); err != nil {
				return err
			}
		default:
			// Giving the person's own protection back: it is theirs, so
			// no mark of the bridge's goes with it.
			if err := c.writeOn(ctx, cl, us, ext); err != nil {
				return err
			}
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("%w: protection of extension %s no longer shows what the bridge wrote", psync.ErrChangedByUser, strings.Join(changed, ","))
	}
	return nil
}

// shows reads whether ext's protection is on: FreePBX's DND/<ext> = YES, or
// the asterisk profile's lease end still ahead.
func (c *Conn) shows(ctx context.Context, cl *client, ext string) (bool, error) {
	if c.cfg.Profile == ProfileFreePBX {
		v, ok, err := cl.dbGet(ctx, "DND", ext)
		if err != nil {
			return false, c.writeErr(err, "DBGet DND/"+ext, "system")
		}
		return ok && v == "YES", nil
	}
	v, ok, err := cl.dbGet(ctx, "teams", ext+"/until")
	if err != nil {
		return false, c.writeErr(err, "DBGet teams/"+ext+"/until", "system")
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return ok && n > time.Now().Unix(), nil
}

func (c *Conn) marker(ctx context.Context, cl *client, ext string) ([]string, error) {
	v, ok, err := cl.dbGet(ctx, "teams", ext+"/dnd")
	if err != nil {
		return nil, c.writeErr(err, "DBGet teams/"+ext+"/dnd", "system")
	}
	if !ok {
		return nil, nil
	}
	return parseMarker(v), nil
}

func (c *Conn) putMarker(ctx context.Context, cl *client, us *uState, ext string, devs []string) error {
	var err error
	if len(devs) == 0 {
		err = cl.dbDel(ctx, "teams", ext+"/dnd")
	} else {
		err = cl.dbPut(ctx, "teams", ext+"/dnd", formatMarker(devs))
	}
	if err != nil {
		return c.writeErr(err, "DBPut teams/"+ext+"/dnd", "system")
	}
	c.mu.Lock()
	if len(devs) == 0 {
		delete(us.held, ext)
	} else {
		us.held[ext] = slices.Clone(devs)
	}
	c.mu.Unlock()
	return nil
}

// protectOn reads the user's own value first. A DND the person set (on, no
// mark of the bridge's) is left alone: the engine sees it on, and the
// bridge, having written nothing, will have nothing to give back.
func (c *Conn) protectOn(ctx context.Context, cl *client, us *uState, ext, device string) error {
	cur, err := c.shows(ctx, cl, ext)
	if err != nil {
		return err
	}
	marker, err := c.marker(ctx, cl, ext)
	if err != nil {
		return err
	}
	c.mu.Lock()
	wrote := len(us.held[ext]) > 0
	c.mu.Unlock()
	if cur && !slices.Contains(marker, device) && !(len(marker) > 0 && wrote) && c.cfg.Profile == ProfileFreePBX {
		c.log.Info("DND already set by the person; the bridge leaves it to them", "user", us.user.ID, "ext", ext)
		return nil
	}
	if !cur {
		marker = nil // a mark without DND is stale (the person cleared it)
	}
	if !slices.Contains(marker, device) {
		marker = append(marker, device)
	}
	// The mark goes first: a crash between the two leaves a mark without
	// DND, which reads as off; never a DND without its mark.
	if err := c.putMarker(ctx, cl, us, ext, marker); err != nil {
		return err
	}
	if cur && c.cfg.Profile == ProfileFreePBX {
		return nil
	}
	return c.writeOn(ctx, cl, us, ext)
}

// protectOff takes the device's mark away and clears the protection when
// no device of the user is asked on any more.
func (c *Conn) protectOff(ctx context.Context, cl *client, us *uState, ext, device string) error {
	marker, err := c.marker(ctx, cl, ext)
	if err != nil {
		return err
	}
	if len(marker) == 0 {
		on, err := c.shows(ctx, cl, ext)
		if err != nil {
			return err
		}
		if on {
			// On without a mark of the bridge's: the person's DND, which
			// the bridge never clears.
			return fmt.Errorf("%w: DND of extension %s was set by the person, not the bridge", psync.ErrChangedByUser, ext)
		}
	}
	rest := slices.DeleteFunc(slices.Clone(marker), func(d string) bool { return d == device })
	if len(rest) > 0 {
		return c.putMarker(ctx, cl, us, ext, rest)
	}
	if err := c.writeOff(ctx, cl, us, ext); err != nil {
		return err
	}
	return c.putMarker(ctx, cl, us, ext, nil)
}

// writeOn is FreePBX's Donotdisturb::setStatusByExtension($ext, 'YES'):
// the AstDB value first, then DEVDND per device, then DND<ext>; or the
// asterisk profile's lease end and custom state.
func (c *Conn) writeOn(ctx context.Context, cl *client, us *uState, ext string) error {
	if c.cfg.Profile == ProfileFreePBX {
		if err := cl.dbPut(ctx, "DND", ext, "YES"); err != nil {
			return c.writeErr(err, "DBPut DND/"+ext, "system")
		}
		if err := c.devStates(ctx, cl, us, ext, "BUSY"); err != nil {
			return err
		}
	} else {
		until := time.Now().Add(c.cfg.Lease).Unix()
		if err := cl.dbPut(ctx, "teams", ext+"/until", itoa(until)); err != nil {
			return c.writeErr(err, "DBPut teams/"+ext+"/until", "system")
		}
		if err := cl.setvar(ctx, "DEVICE_STATE(Custom:teams"+ext+")", "BUSY"); err != nil {
			return c.writeErr(err, "Setvar DEVICE_STATE(Custom:teams"+ext+")", "call")
		}
	}
	c.mu.Lock()
	c.setDNDLocked(us, ext, true)
	c.mu.Unlock()
	return nil
}

// writeOff is FreePBX's clear: DBDel and the same states to UNAVAILABLE
// (not NOT_INUSE, as FreePBX does); or the asterisk profile's clear.
func (c *Conn) writeOff(ctx context.Context, cl *client, us *uState, ext string) error {
	if c.cfg.Profile == ProfileFreePBX {
		if err := cl.dbDel(ctx, "DND", ext); err != nil {
			return c.writeErr(err, "DBDel DND/"+ext, "system")
		}
		if err := c.devStates(ctx, cl, us, ext, "UNAVAILABLE"); err != nil {
			return err
		}
	} else {
		if err := cl.dbDel(ctx, "teams", ext+"/until"); err != nil {
			return c.writeErr(err, "DBDel teams/"+ext+"/until", "system")
		}
		if err := cl.setvar(ctx, "DEVICE_STATE(Custom:teams"+ext+")", "NOT_INUSE"); err != nil {
			return c.writeErr(err, "Setvar DEVICE_STATE(Custom:teams"+ext+")", "call")
		}
	}
	c.mu.Lock()
	c.setDNDLocked(us, ext, false)
	c.mu.Unlock()
	return nil
}

func (c *Conn) devStates(ctx context.Context, cl *client, us *uState, ext, state string) error {
	c.mu.Lock()
	ids := slices.Clone(us.fpDevs[ext])
	c.mu.Unlock()
	for _, id := range ids {
		if err := cl.setvar(ctx, "DEVICE_STATE(Custom:DEVDND"+id+")", state); err != nil {
			return c.writeErr(err, "Setvar DEVICE_STATE(Custom:DEVDND"+id+")", "call")
		}
	}
	if err := cl.setvar(ctx, "DEVICE_STATE(Custom:DND"+ext+")", state); err != nil {
		return c.writeErr(err, "Setvar DEVICE_STATE(Custom:DND"+ext+")", "call")
	}
	return nil
}

// renewLeases keeps the asterisk profile's lease end ahead while the bridge
// holds protection: if the bridge dies, the dialplan stops rejecting calls
// within phone.lease by itself.
func (c *Conn) renewLeases(ctx context.Context, cl *client) {
	t := time.NewTicker(c.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cl.done:
			return
		case <-t.C:
		}
		c.mu.Lock()
		var todo []*uState
		for _, u := range c.users {
			if len(u.held) > 0 {
				todo = append(todo, u)
			}
		}
		c.mu.Unlock()
		for _, u := range todo {
			c.renew(ctx, cl, u)
		}
	}
}

func (c *Conn) renew(ctx context.Context, cl *client, u *uState) {
	select {
	case u.wmu <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-u.wmu }()
	actx, cancel := c.actionCtx(ctx)
	defer cancel()
	c.mu.Lock()
	var exts []string
	for ext, devs := range u.held {
		if len(devs) > 0 {
			exts = append(exts, ext)
		}
	}
	c.mu.Unlock()
	for _, ext := range exts {
		// Renewal is conditional too: only a lease still running is the
		// bridge's to extend.
		on, err := c.shows(actx, cl, ext)
		if err != nil || !on {
			continue
		}
		if err := cl.dbPut(actx, "teams", ext+"/until", itoa(time.Now().Add(c.cfg.Lease).Unix())); err != nil {
			c.log.Warn("lease renewal failed", "ext", ext, "err", err)
		}
	}
}

// SetPresence implements psync.PhoneSystem: PRESENCE_STATE(CustomPresence:<ext>)
// of each of the user's extensions, when asterisk.presence is on.
func (c *Conn) SetPresence(ctx context.Context, u psync.User, set psync.PresenceMark, own []psync.PresenceMark) error {
	if !c.cfg.Presence {
		return psync.NotSent(fmt.Errorf("%w: asterisk.presence is false: the bridge does not write presence to Asterisk (set it true to show Teams states on phones)", psync.ErrRejected))
	}
	val, ok := presenceValue(set.Presence)
	if !ok {
		return psync.NotSent(fmt.Errorf("%w: presence %s cannot be written to PRESENCE_STATE", psync.ErrRejected, set.Presence))
	}
	start := time.Now()
	err := c.presenceWrite(ctx, u, val, own, set.Presence)
	c.meter.Call(psync.SidePhone, "setPresence", result(err), time.Since(start))
	return err
}

// RestorePresence implements psync.PhoneSystem.
func (c *Conn) RestorePresence(ctx context.Context, u psync.User, own []psync.PresenceMark, restore psync.PresenceMark) error {
	// A give-back is made even with asterisk.presence switched off since:
	// the value the bridge wrote has no end time on Asterisk, and only a
	// give-back (still conditional on the bridge's own value) removes it.
	val, ok := presenceValue(restore.Presence)
	if !ok {
		return psync.NotSent(fmt.Errorf("%w: presence %s cannot be written to PRESENCE_STATE", psync.ErrRejected, restore.Presence))
	}
	if len(own) == 0 {
		return psync.NotSent(fmt.Errorf("%w: a restore needs the values the bridge wrote", psync.ErrRejected))
	}
	start := time.Now()
	err := c.presenceWrite(ctx, u, val, own, restore.Presence)
	c.meter.Call(psync.SidePhone, "restorePresence", result(err), time.Since(start))
	return err
}

func (c *Conn) presenceWrite(ctx context.Context, u psync.User, val string, own []psync.PresenceMark, want psync.PhonePresence) error {
	us, cl, unlock, err := c.writer(ctx, u, "")
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := c.actionCtx(ctx)
	defer cancel()
	ext := us.exts[0]
	if len(own) > 0 {
		cur, err := c.readPresence(ctx, cl, ext)
		if err != nil {
			return err
		}
		if cur == want {
			return nil
		}
		if !slices.ContainsFunc(own, func(m psync.PresenceMark) bool { return m.Presence == cur }) {
			return fmt.Errorf("%w: PRESENCE_STATE of %s shows %s", psync.ErrChangedByUser, ext, cur)
		}
	}
	for _, e := range us.exts {
		if err := cl.setvar(ctx, "PRESENCE_STATE(CustomPresence:"+e+")", val); err != nil {
			return c.writeErr(err, "Setvar PRESENCE_STATE(CustomPresence:"+e+")", "call")
		}
	}
	c.mu.Lock()
	c.setPresenceLocked(us, want)
	c.mu.Unlock()
	return nil
}

// result names an outcome for the meter.
func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, psync.ErrSuperseded):
		return "superseded"
	case errors.Is(err, psync.ErrRejected):
		return "rejected"
	case errors.Is(err, psync.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}
