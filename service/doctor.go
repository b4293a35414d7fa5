package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams"
)

// DoctorEnv is what the doctors check: the stored configuration, secrets
// in clear (the service has them; the API never returns them).
type DoctorEnv struct {
	DB       *store.DB
	Settings map[string]string
	Users    []psync.User
}

// DoctorFunc runs the checks of both sides, calling report once per check
// as it completes (one call at a time), until done or ctx ends; it calls
// report no more once it has returned.
type DoctorFunc func(ctx context.Context, env DoctorEnv, report func(psync.Check))

// RealDoctor checks the real sides as the stored settings describe them,
// both at once; o points them at simulators (demo, tests).
func RealDoctor(o AdapterOptions) DoctorFunc {
	return func(ctx context.Context, env DoctorEnv, report func(psync.Check)) {
		var mu sync.Mutex
		one := func(c psync.Check) {
			mu.Lock()
			defer mu.Unlock()
			report(c)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			cfg, _ := teams.ConfigFromSettings(teamsSettings(env.Settings)) // Doctor's first check reports what is wrong
			cfg.HTTPClient = o.TeamsHTTPClient
			if env.DB != nil {
				cfg.Store = storePersistence{env.DB}
			}
			teams.Doctor(ctx, cfg, env.Users, one)
		})
		wg.Go(func() {
			p, err := phoneSystemOf(env.Settings)
			if err != nil {
				one(psync.Check{Side: psync.SidePhone, Name: "settings", Detail: err.Error(),
					Fix: fmt.Sprintf("presencebridge config set phone.system %s, then that system's settings (config list)", phoneSystemNames())})
				return
			}
			p.doctor(ctx, env.Settings, env.Users, o, one)
		})
		wg.Wait()
	}
}

// teamsSettings are the settings the Teams adapter is built from. In poll
// mode the webhook settings are left out: they belong to subscribe mode, and
// one that is wrong must not keep a poll-mode bridge from starting.
func teamsSettings(values map[string]string) map[string]string {
	if values["teams.mode"] == "subscribe" {
		return values
	}
	out := make(map[string]string, len(values))
	for k, v := range values {
		switch k {
		case "teams.webhook_url", "teams.webhook_listen", "teams.webhook_tls_cert", "teams.webhook_tls_key", "teams.service_accounts":
			continue
		}
		out[k] = v
	}
	return out
}

// doctorLimit bounds one doctor run.
const doctorLimit = 2 * time.Minute

// Doctor runs the doctors of both sides over the stored configuration,
// reporting each check as it completes.
func (a *Admin) Doctor(ctx context.Context, report func(psync.Check)) error {
	values, err := a.db.Settings()
	if err != nil {
		return a.storeErr(err)
	}
	users, err := a.db.Users()
	if err != nil {
		return a.storeErr(err)
	}
	// Each check has its own timeout; this bounds a run whatever a side does.
	run, cancel := context.WithTimeout(ctx, doctorLimit)
	defer cancel()
	a.doctor(run, DoctorEnv{DB: a.db, Settings: values, Users: users}, report)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if run.Err() != nil {
		return errorf(ErrUnavailable, "the doctor did not finish within %s", doctorLimit)
	}
	return nil
}
