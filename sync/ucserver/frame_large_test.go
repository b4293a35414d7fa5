package ucserver_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// A large office: the line enumeration is one answer of more than 4 MiB
// (at 10,000 users of two lines each it is about 5 MB). The frame limit
// grows with the users configured, so the connector syncs. Before, every
// session of an office that size ended at the enumeration ("over the 4 MiB
// limit") and the phone side never came up. To keep the test quick under
// the race detector, 3,000 users with one line each and long line names
// make an answer of that size.
func TestConn_Run_LargeOfficeFrames(t *testing.T) {
	const n = 3000
	name := strings.Repeat("Desk phone, second floor, room 2.17 ", 45) // 1,620 bytes
	users := []ucsim.User{{ContactID: svcID, DisplayName: "Presence Bridge", LoginName: svcUser, Password: svcPass, Token: svcTok}}
	bridged := make([]psync.User, 0, n)
	for i := range n {
		id := fmt.Sprintf("sip:u%05d@example.com", i)
		users = append(users, ucsim.User{ContactID: id, DisplayName: fmt.Sprintf("User %05d", i), Email: fmt.Sprintf("u%05d@example.com", i),
			Lines: []ucsim.Line{{URI: fmt.Sprintf("tel:+4989%05d-0", i), Number: fmt.Sprintf("+4989%05d-0", i), Descriptor: name}}})
		bridged = append(bridged, psync.User{ID: psync.UserID(id)})
	}
	sim := startSim(t, ucsim.Options{Users: users})
	h := start(t, sim, bridged, func(c *ucserver.Config) { c.InvokeTimeout = 30 * time.Second }) // a 5 MB answer under the race detector
	h.rec.next(t, "synced", isKind(psync.PhoneSynced))
	if limit := ucserver.FrameLimit(n); limit <= ucserver.MaxFrameBytes {
		t.Fatalf("frame limit %d for %d users", limit, n)
	}
}
