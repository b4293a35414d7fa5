package sync_test

import (
	"strings"
	"testing"

	psync "github.com/presencebridge/presencebridge/sync"
)

func TestValidateSetting(t *testing.T) {
	cases := []struct {
		key, value string
		want       string // "" = accepted
	}{
		{"teams.client_id", "11111111-2222-4333-8444-555555555555", ""},
		{"teams.client_id", "11111111-2222-4333-8444-55555555555G", "not a GUID"},
		{"teams.client_id", "not-a-guid", "not a GUID"},
		{"teams.client_id", "", ""},
		{"teams.tenant_id", "5E1C0B7A-0A9B-4C1E-9D7E-2F3A4B5C6D7E", ""},
		{"teams.tenant_id", "contoso.onmicrosoft.com", ""},
		{"teams.tenant_id", "contoso", "neither a GUID nor a domain"},
		{"teams.tenant_id", "-bad.com", "neither a GUID nor a domain"},
		{"teams.tenant_id", "contoso.c0m", "neither a GUID nor a domain"},
		{"teams.webhook_url", "https://bridge.contoso.com", ""},
		{"teams.webhook_url", "http://bridge.contoso.com", "only delivers notifications to https"},
		{"teams.webhook_url", "https://user:pw@bridge.contoso.com", "user or password"},
		{"teams.webhook_url", "https://bridge.contoso.com/?a=b", "without ?query"},
		{"teams.webhook_url", "https://", "not a URL"},
		{"teams.service_accounts", "a@contoso.com, b@contoso.com", ""},
		{"teams.service_accounts", "a@contoso.com,bob", "not a user principal name"},
		{"teams.webhook_listen", ":8443", ""},
		{"teams.webhook_listen", "10.0.0.5:8443", ""},
		{"teams.webhook_listen", "8443", "not an address"},
		{"teams.webhook_listen", ":99999", "out of range"},
		{"sip.server", "pbx.example:5060", ""},
		{"sip.server", "10.0.0.5", ""},
		{"sip.server", "[::1]:5060", ""},
		{"sip.server", "pbx.example:99999", "not a server address"},
		{"sip.server", "sip:201@pbx.example", "not a server address"},
		{"asterisk.host", "pbx:5038", ""},
		{"asterisk.host", "http://pbx", "not a server address"},
		{"sip.listen", "127.0.0.1:0", ""},
		{"sip.listen", "5060", "not an address"},
		{"sip.rpc_url", "http://10.0.0.5:5071/RPC", ""},
		{"sip.rpc_url", "http://10.0.0.5:5071", "has no path"},
		{"sip.rpc_url", "10.0.0.5:5071/RPC", "not an http(s) URL"},
		{"sip.rpc_url", "http://admin:pw@10.0.0.5:5071/RPC", "must not carry a user or password"},
		{"sip.extensions", "201=anna@contoso.com, 221=anna@contoso.com", ""},
		{"sip.extensions", "201 anna", "not extension=user"},
		{"sip.extensions", "=anna", "not extension=user"},
		{"ucserver.user", "bridge\x1b[31m", "control character"},
		{"ucserver.password", "pass\rword", "control character"},
		{"teams.client_secret", "abc~def", ""},
		{"teams.lease", "10m", ""},
		{"no.such.key", "x", ""},
	}
	for _, c := range cases {
		err := psync.ValidateSetting(c.key, c.value)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s=%q refused: %v", c.key, c.value, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s=%q: %v, want %q", c.key, c.value, err, c.want)
		case err != nil && !strings.HasPrefix(err.Error(), c.key+":"):
			t.Errorf("%s=%q: error does not name the key: %v", c.key, c.value, err)
		}
	}
}

func TestValidateUser(t *testing.T) {
	good := psync.User{ID: "sip:anna@contoso.com", Extension: "201", TeamsID: "0a0a0a0a-0000-4000-8000-00000000000a",
		UPN: "anna@contoso.com", DisplayName: "Anna Ångström", Profile: "sales"}
	if err := psync.ValidateUser(good); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		edit func(*psync.User)
		want string
	}{
		{func(u *psync.User) { u.ID = "" }, "id is empty"},
		{func(u *psync.User) { u.ID = "20\n1" }, "user id: contains the control character U+000A"},
		{func(u *psync.User) { u.ID = " 201" }, "leading or trailing spaces"},
		{func(u *psync.User) { u.DisplayName = "Anna\x1b]0;pwned\x07" }, "user name: contains the control character U+001B"},
		{func(u *psync.User) { u.DisplayName = "Anna\r" }, "U+000D"},
		{func(u *psync.User) { u.Extension = "2\x7f01" }, "U+007F"},
		{func(u *psync.User) { u.TeamsID = "9f3c" }, "not an Entra object id"},
		{func(u *psync.User) { u.UPN = "anna" }, "not an e-mail style name"},
		{func(u *psync.User) { u.UPN = "an na@contoso.com" }, "contains spaces"},
		{func(u *psync.User) { u.Profile = "a.b" }, "only letters"},
		{func(u *psync.User) { u.DisplayName = strings.Repeat("x", 5000) }, "longer than"},
		{func(u *psync.User) { u.DisplayName = "\xff" }, "not valid UTF-8"},
	}
	for _, c := range cases {
		u := good
		c.edit(&u)
		if err := psync.ValidateUser(u); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", u, err, c.want)
		}
	}
}
