package service

import (
	"fmt"
	"strings"
	"sync"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
	"github.com/presencebridge/presencebridge/sync/sip/sipsim"
)

// sipDemoUsers gives each person of the demo office one extension per
// device: the desk phone has theirs (201), the softphone and the mobile
// twin theirs with a letter (201s, 201m), so that no two collide at
// 10,000 people.
func sipDemoUsers(users []psync.User) []psync.User {
	out := append([]psync.User(nil), users...)
	for i := range out {
		var exts []string
		for _, d := range simoffice.Devices(i) {
			exts = append(exts, sipDemoExtension(out[i].Extension, d))
		}
		out[i].Extension = strings.Join(exts, ",")
	}
	return out
}

func sipDemoExtension(ext, device string) string {
	switch device {
	case "desk":
		return ext
	case "softphone":
		return ext + "s"
	case "mobile":
		return ext + "m"
	}
	return ext + "-" + device
}

// demoSIP starts sipsim, a PBX behind a Kamailio-like front proxy: dialog
// subscriptions with digest auth, and the proxy's busy table over JSON-RPC.
func demoSIP(users []psync.User, o DemoOptions) (*demoPhone, error) {
	pass := randomSecret()
	opts := sipsim.Options{Addr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", Realm: "127.0.0.1", User: "presencebridge", Password: pass, Logger: o.Logger}
	for _, u := range users {
		for _, ext := range strings.Split(u.Extension, ",") {
			opts.Extensions = append(opts.Extensions, strings.TrimSpace(ext))
		}
	}
	sim := sipsim.New(opts)
	if err := sim.Start(); err != nil {
		return nil, fmt.Errorf("sipsim: %w", err)
	}
	return &demoPhone{
		settings: map[string]string{
			"phone.system": "sip", "sip.server": sim.Addr(), "sip.transport": "udp", "sip.listen": "127.0.0.1:0",
			"sip.user": "presencebridge", "sip.password": pass, "sip.writer": "kamailio", "sip.rpc_url": sim.RPCURL(),
		},
		about: fmt.Sprintf("the SIP connector against sipsim at %s (dialog subscriptions; busy-on-busy through the proxy's JSON-RPC at %s)", sim.Addr(), sim.RPCURL()),
		world: &sipsimWorld{sim: sim, calls: map[string]string{}, exts: map[string]string{}},
		close: func() { sim.Close() },
	}, nil
}

// sipsimWorld is the office's hands on sipsim.
type sipsimWorld struct {
	sim   *sipsim.Server
	mu    sync.Mutex
	calls map[string]string // the office's call id → sipsim call id
	exts  map[string]string // the office's call id → the extension it rings
}

func (w *sipsimWorld) Call(id psync.UserID, device, callID string, st psync.CallState) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st == psync.CallRinging {
		// A call for a person who is in a Teams call is refused by the
		// proxy (486), as the busy-on-busy snippet does.
		ext := sipDemoExtension(string(id), device)
		if code := w.sim.Invite(ext); code != 200 {
			return fmt.Errorf("call to %s refused by the proxy: %d", ext, code)
		}
		c := w.sim.StartCall(ext)
		if c == "" {
			return fmt.Errorf("no extension %s", ext)
		}
		w.calls[callID], w.exts[callID] = c, ext
		return nil
	}
	c, ok := w.calls[callID]
	if !ok {
		return nil // refused when it rang: nothing to change
	}
	switch st {
	case psync.CallConnected:
		return w.sim.Answer(c)
	case psync.CallHeld:
		return w.sim.Hold(c, true)
	case psync.CallConference:
		return w.sim.Conference(c)
	case psync.CallEnded:
		delete(w.calls, callID)
		delete(w.exts, callID)
		return w.sim.EndCall(c)
	}
	return nil
}

// SetPresence: a SIP PBX's presence is not something a person picks on the
// phone here; the phone side's presence is what the bridge publishes.
func (w *sipsimWorld) SetPresence(psync.UserID, psync.PhonePresence) error { return nil }

// SetDown crashes the PBX (sockets closed, subscriptions forgotten) and
// brings it back on the same ports.
func (w *sipsimWorld) SetDown(down bool) {
	if down {
		w.sim.Kill()
		return
	}
	_ = w.sim.Start()
}
