package service

import (
	"fmt"
	"sync"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/asterisk/amisim"
	"github.com/presencebridge/presencebridge/sync/simoffice"
)

// asteriskDemoUsers: a FreePBX user is their extension; their devices are
// read from the PBX (AMPUSER/<ext>/device), so the people stay as they are.
func asteriskDemoUsers(users []psync.User) []psync.User { return users }

// demoAsterisk starts amisim, a FreePBX over AMI: each person an extension
// with one device per phone of theirs (201, 201s, 201m), FreePBX's DND and
// hints, and an AMI account with the least privileges the connector needs.
func demoAsterisk(users []psync.User, o DemoOptions) (*demoPhone, error) {
	secret := randomSecret()
	sim := amisim.New(amisim.Options{Addr: "127.0.0.1:0", Accounts: map[string]amisim.Account{
		"presencebridge": {Secret: secret, Read: "call", Write: "system,call"},
	}})
	for i, u := range users {
		var devs []string
		for _, d := range simoffice.Devices(i) {
			devs = append(devs, sipDemoExtension(u.Extension, d))
		}
		sim.AddExtension(u.Extension, devs...)
	}
	if err := sim.Start(); err != nil {
		return nil, fmt.Errorf("amisim: %w", err)
	}
	return &demoPhone{
		settings: map[string]string{
			"phone.system": "asterisk", "asterisk.host": sim.Addr(), "asterisk.user": "presencebridge", "asterisk.secret": secret,
			"asterisk.profile": "freepbx",
		},
		about: "the Asterisk connector against amisim (a FreePBX over AMI) at " + sim.Addr(),
		world: &amisimWorld{sim: sim, exts: map[psync.UserID]string{}, users: users, calls: map[string]string{}},
		close: func() { sim.Close() },
	}, nil
}

// amisimWorld is the office's hands on amisim.
type amisimWorld struct {
	sim   *amisim.Server
	users []psync.User
	mu    sync.Mutex
	exts  map[psync.UserID]string
	calls map[string]string // the office's call id → the device it is on
}

func (w *amisimWorld) extension(id psync.UserID) string {
	if len(w.exts) == 0 {
		for _, u := range w.users {
			w.exts[u.ID] = u.Extension
		}
	}
	return w.exts[id]
}

func (w *amisimWorld) Call(id psync.UserID, device, callID string, st psync.CallState) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	dev := "PJSIP/" + sipDemoExtension(w.extension(id), device)
	if st == psync.CallRinging {
		// FreePBX sends a call for a person in DND to voicemail: the
		// phone never rings.
		if v, ok := w.sim.DB("DND", w.extension(id)); ok && v == "YES" {
			return fmt.Errorf("call to %s: the person is in do-not-disturb (FreePBX DND), the call goes to voicemail", dev)
		}
		w.calls[callID] = dev
		w.sim.StartCall(dev)
		return nil
	}
	dev, ok := w.calls[callID]
	if !ok {
		return nil // never rang (DND): nothing to change
	}
	switch st {
	case psync.CallConnected:
		w.sim.Answer(dev)
	case psync.CallHeld:
		w.sim.Hold(dev)
	case psync.CallConference:
		w.sim.JoinConference(dev, "demo-conference")
	case psync.CallEnded:
		delete(w.calls, callID)
		w.sim.End(dev)
	}
	return nil
}

// SetPresence: the office's people set DND with *78/*79 on FreePBX; the
// other presences have no FreePBX counterpart.
func (w *amisimWorld) SetPresence(id psync.UserID, p psync.PhonePresence) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch p {
	case psync.PhoneDND:
		w.sim.PersonDND(w.extension(id), true)
	case psync.PhoneNotSet, psync.PhoneAvailable:
		w.sim.PersonDND(w.extension(id), false)
	}
	return nil
}

// SetDown: Asterisk is down (its manager port refuses connections) and
// comes back on the same port.
func (w *amisimWorld) SetDown(down bool) {
	if down {
		w.sim.Stop()
		return
	}
	_ = w.sim.Start()
}
