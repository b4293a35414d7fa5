package service

import (
	"context"
	"fmt"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams"
)

// DoctorCheck is one check of `presencebridge doctor`, as the control API
// streams it: which side, what was tried, and the fix when it failed.
type DoctorCheck struct {
	Side    string `json:"side"` // "teams" or "phone"
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Warn    bool   `json:"warn,omitempty"`
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Fix     string `json:"fix,omitempty"`
	TookMS  int64  `json:"took_ms"`
}

// DoctorEnv is what the doctors check: the stored configuration, secrets
// in clear (the service has them; the API never returns them).
type DoctorEnv struct {
	DB       *store.DB
	Settings map[string]string
	Users    []psync.User
}

// DoctorFunc runs the checks of both sides, calling report once per check
// as it completes (from any goroutine, one call at a time), until done or
// ctx ends.
type DoctorFunc func(ctx context.Context, env DoctorEnv, report func(DoctorCheck))

// RealDoctor checks the real sides as the stored settings describe them;
// o points them at simulators (demo, tests).
func RealDoctor(o AdapterOptions) DoctorFunc {
	return func(ctx context.Context, env DoctorEnv, report func(DoctorCheck)) {
		cfg, err := teams.ConfigFromSettings(teamsSettings(env.Settings))
		cfg.HTTPClient = o.TeamsHTTPClient
		if env.DB != nil {
			cfg.Store = storePersistence{env.DB}
		}
		began := time.Now()
		if err != nil {
			report(DoctorCheck{Side: "teams", Name: "settings", Detail: err.Error(), Fix: "set them with `presencebridge config set KEY VALUE` or in the console"})
		} else {
			for _, c := range teams.Doctor(ctx, cfg, env.Users) {
				report(DoctorCheck{Side: "teams", Name: c.Name, OK: c.OK, Detail: c.Detail, Fix: c.Fix, TookMS: time.Since(began).Milliseconds()})
				began = time.Now()
			}
		}
		switch sys := env.Settings["phone.system"]; sys {
		case "":
			report(DoctorCheck{Side: "phone", Name: "settings", Detail: "phone.system is not set", Fix: "presencebridge config set phone.system ucserver"})
		case "ucserver":
			report(DoctorCheck{Side: "phone", Name: "ucserver", Skipped: true, Detail: "the UCServer checks are not in this build"})
		default:
			report(DoctorCheck{Side: "phone", Name: "settings", Detail: fmt.Sprintf("phone.system %q is not a phone system this build knows", sys)})
		}
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
func (a *Admin) Doctor(ctx context.Context, report func(DoctorCheck)) error {
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
