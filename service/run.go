package service

import (
	"fmt"
	"strings"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// CheckRun looks at the configuration `run` would start with and lists
// everything that is missing at once, so the admin fixes it in one go
// rather than one error per start. nil means `run` can start.
func CheckRun(db *store.DB) error {
	values, err := db.Settings()
	if err != nil {
		return err
	}
	if _, err := psync.ParseSettings(values); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	var missing []string
	need := func(k string) {
		if values[k] == "" {
			missing = append(missing, fmt.Sprintf("setting %s is not set (presencebridge config set %s ...)", k, k))
		}
	}
	need("teams.tenant_id")
	need("teams.client_id")
	if values["teams.client_secret"] == "" && values["teams.client_certificate"] == "" {
		missing = append(missing, "setting teams.client_secret or teams.client_certificate is not set (presencebridge config set teams.client_secret ...)")
	}
	if values["teams.mode"] == "subscribe" {
		need("teams.service_accounts")
		need("teams.webhook_url")
	}
	if p, err := phoneSystemOf(values); err != nil {
		missing = append(missing, err.Error())
	} else {
		missing = append(missing, p.missing(values)...)
	}
	users, err := db.Users()
	if err != nil {
		return err
	}
	if len(users) == 0 {
		missing = append(missing, "users: none configured (presencebridge config import users.yaml)")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("cannot run, missing:\n  - %s\nTo watch the bridge work against a simulated office: presencebridge demo", strings.Join(missing, "\n  - "))
}
