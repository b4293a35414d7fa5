package service

import (
	"crypto/x509"
	"strings"

	psync "github.com/presencebridge/presencebridge/sync"
)

// demoPhone is a phone system simulated for the demo: the settings that
// point the real connector at it, and the office's hands on it.
type demoPhone struct {
	settings map[string]string
	rootCAs  *x509.CertPool // a simulator with its own CA
	about    string         // "the UCServer connector against ucsim at …"
	world    demoPhoneWorld
	close    func()
}

// demoPhoneWorld is what the simulated office does on the phone system,
// through the simulator's own protocol.
type demoPhoneWorld interface {
	Call(id psync.UserID, device, callID string, st psync.CallState) error
	SetPresence(id psync.UserID, p psync.PhonePresence) error
	// SetDown takes the phone system down (true) and back up.
	SetDown(down bool)
}

// demoPhoneNames lists the phone systems the demo can simulate.
func demoPhoneNames() string {
	var names []string
	for _, p := range phoneSystems {
		if p.demo != nil {
			names = append(names, p.name)
		}
	}
	return strings.Join(names, ", ")
}
