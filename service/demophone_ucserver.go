package service

import (
	"fmt"
	"sync"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/simoffice"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// demoUCServer starts ucsim with the office's people and their lines.
func demoUCServer(users []psync.User, o DemoOptions) (*demoPhone, error) {
	pass := randomSecret()
	uopts := ucsim.Options{Addr: "127.0.0.1:0", Logger: o.Logger, Users: []ucsim.User{
		{ContactID: "sip:presencebridge@contoso.example", DisplayName: "presencebridge", LoginName: "presencebridge", Password: pass},
	}}
	for i, u := range users {
		uu := ucsim.User{ContactID: string(u.ID), DisplayName: u.DisplayName, Email: u.UPN}
		for _, d := range simoffice.Devices(i) {
			uu.Lines = append(uu.Lines, ucsim.Line{URI: lineURI(u.ID, d), Descriptor: demoLineName(d, u.Extension)})
		}
		uopts.Users = append(uopts.Users, uu)
	}
	uc := ucsim.New(uopts)
	if err := uc.Start(); err != nil {
		return nil, fmt.Errorf("ucsim: %w", err)
	}
	return &demoPhone{
		settings: map[string]string{"phone.system": "ucserver", "ucserver.url": uc.URL(), "ucserver.user": "presencebridge", "ucserver.password": pass},
		about:    "the UCServer connector against ucsim at " + uc.URL(),
		world:    &ucsimWorld{uc: uc, conns: map[string]string{}},
		close:    func() { uc.Close() },
	}, nil
}

// lineURI is the ucsim line of a user's device: the device name stays
// readable in the demo's output.
func lineURI(id psync.UserID, device string) string { return "tel:" + string(id) + "-" + device }

// demoLineName is what the simulated UCServer calls a line, as an admin
// names them: the console shows it instead of the line's URI.
func demoLineName(device, ext string) string {
	switch device {
	case "desk":
		return "Desk phone " + ext
	case "softphone":
		return "Softphone (ProCall) " + ext
	case "mobile":
		return "Mobile twin " + ext
	}
	return device
}

// ucsimWorld is the office's hands on ucsim.
type ucsimWorld struct {
	uc    *ucsim.Server
	mu    sync.Mutex
	conns map[string]string // the office's call id → ucsim connection id
}

func (w *ucsimWorld) Call(id psync.UserID, device, callID string, st psync.CallState) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	conn, known := w.conns[callID]
	var err error
	switch st {
	case psync.CallRinging:
		conn, err = w.uc.Ring(lineURI(id, device), "tel:+4930123456")
		w.conns[callID] = conn
	case psync.CallConnected:
		err = w.uc.PickUp(conn)
	case psync.CallHeld:
		err = w.uc.Hold(conn)
	case psync.CallConference:
		err = w.uc.Conference(conn)
	case psync.CallEnded:
		err = w.uc.HangUp(conn)
		delete(w.conns, callID)
	}
	if err == nil && !known && st != psync.CallRinging {
		err = fmt.Errorf("no such call")
	}
	return err
}

func (w *ucsimWorld) SetPresence(id psync.UserID, p psync.PhonePresence) error {
	switch p {
	case psync.PhoneNotSet:
		return w.uc.ResetAbsentState(string(id))
	case psync.PhoneAvailable:
		return w.uc.SetAbsentState(string(id), ucsim.AbsentState{State: ucsim.AbsentNotAbsent})
	case psync.PhoneAway:
		return w.uc.SetAbsentState(string(id), ucsim.AbsentState{State: ucsim.AbsentOutOfOffice})
	case psync.PhoneBusy:
		return w.uc.SetAbsentState(string(id), ucsim.AbsentState{State: ucsim.AbsentBusy})
	case psync.PhoneDND:
		return w.uc.SetAbsentState(string(id), ucsim.AbsentState{State: ucsim.AbsentDoNotDisturb})
	}
	return nil
}

// SetDown makes the UCServer answer 503 to new sessions, as a web service
// that is down behind its front end does, and cuts the live one, so the
// connector loses its session and retries; back, it lets them in again.
func (w *ucsimWorld) SetDown(down bool) {
	if !down {
		w.uc.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{})
		return
	}
	w.uc.SetHTTPFault(ucsim.EndpointCreateSession, ucsim.HTTPFault{Status: 503})
	w.uc.DropSockets()
}
