package service

import (
	"fmt"
	"strings"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// CheckRun looks at the configuration `run` would start with and says what
// is missing. Until the Graph and phone-system adapters are built, the
// adapters themselves are always among the missing parts: `run` refuses
// rather than start a bridge that talks to nobody.
func CheckRun(db *store.DB) error {
	values, err := db.Settings()
	if err != nil {
		return err
	}
	if _, err := psync.ParseSettings(values); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	var missing []string
	missing = append(missing, "the Microsoft Teams side: this build has no Graph adapter yet")
	for _, k := range []string{"teams.tenant_id", "teams.client_id", "teams.client_secret"} {
		if values[k] == "" {
			missing = append(missing, fmt.Sprintf("setting %s is not set (presencebridge config set %s ...)", k, k))
		}
	}
	switch values["phone.system"] {
	case "":
		missing = append(missing, "setting phone.system is not set (presencebridge config set phone.system ucserver)")
	default:
		missing = append(missing, fmt.Sprintf("the phone-system side: this build has no %s adapter yet", values["phone.system"]))
	}
	users, err := db.Users()
	if err != nil {
		return err
	}
	if len(users) == 0 {
		missing = append(missing, "users: none configured (presencebridge config import users.yaml)")
	}
	return fmt.Errorf("cannot run, missing:\n  - %s\nTo watch the engine work against a simulated office: presencebridge demo", strings.Join(missing, "\n  - "))
}
