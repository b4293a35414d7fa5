package ucserver_test

import (
	"fmt"
	"testing"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// scaleSim is a simulator with n users of two lines each, plus the service
// account, and the bridge's view of those users.
func scaleSim(t testing.TB, n int) (*ucsim.Server, []psync.User) {
	t.Helper()
	simUsers := []ucsim.User{{ContactID: svcID, LoginName: svcUser, Password: svcPass}}
	var users []psync.User
	for i := range n {
		id := fmt.Sprintf("sip:user%04d@example.com", i)
		simUsers = append(simUsers, ucsim.User{
			ContactID: id, DisplayName: fmt.Sprintf("User %d", i), Email: fmt.Sprintf("user%04d@example.com", i),
			Lines: []ucsim.Line{
				{URI: fmt.Sprintf("tel:+4989200-%04d", i), Descriptor: "Desk phone"},
				{URI: fmt.Sprintf("tel:+4989300-%04d", i), Descriptor: "Softphone"},
			},
		})
		users = append(users, psync.User{ID: psync.UserID(id)})
	}
	return startSim(t, ucsim.Options{Users: simUsers}), users
}
