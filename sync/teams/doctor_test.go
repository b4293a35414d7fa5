package teams_test

import (
	"context"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/sync/teams"
)

func checks(cs []teams.Check) string {
	var b strings.Builder
	for _, c := range cs {
		state := "ok"
		if !c.OK {
			state = "FAILED"
		}
		b.WriteString(state + " " + c.Name + ": " + c.Detail + " | " + c.Fix + "\n")
	}
	return b.String()
}

func TestDoctor_AllOK(t *testing.T) {
	s := newSim(t, simOpts{users: 2})
	cs := teams.Doctor(context.Background(), config(s), users(2))
	if len(cs) != 5 {
		t.Fatalf("checks:\n%s", checks(cs))
	}
	for _, c := range cs {
		if !c.OK {
			t.Fatalf("checks:\n%s", checks(cs))
		}
	}
}

func TestDoctor_MissingRoleGivesConsentURL(t *testing.T) {
	s := newSim(t, simOpts{users: 1, roles: []string{"Presence.ReadWrite.All"}})
	cs := teams.Doctor(context.Background(), config(s), users(1))
	var perm *teams.Check
	for i := range cs {
		if cs[i].Name == "permissions" {
			perm = &cs[i]
		}
	}
	if perm == nil || perm.OK || !strings.Contains(perm.Detail, "User.Read.All") ||
		!strings.Contains(perm.Fix, s.URL()+"/"+tenantID+"/adminconsent?client_id="+appID) {
		t.Fatalf("checks:\n%s", checks(cs))
	}
}

func TestDoctor_WrongSecret(t *testing.T) {
	s := newSim(t, simOpts{users: 1})
	cfg := config(s)
	cfg.ClientSecret = "not-the-secret"
	cs := teams.Doctor(context.Background(), cfg, users(1))
	last := cs[len(cs)-1]
	if last.OK || last.Name != "app sign-in" || !strings.Contains(last.Fix, "teams.client_secret") || strings.Contains(checks(cs), "not-the-secret") {
		t.Fatalf("checks:\n%s", checks(cs))
	}
}

func TestDoctor_MissingSettings(t *testing.T) {
	cs := teams.Doctor(context.Background(), teams.Config{}, nil)
	if len(cs) != 1 || cs[0].OK || !strings.Contains(cs[0].Detail, "teams.tenant_id") {
		t.Fatalf("checks:\n%s", checks(cs))
	}
}
