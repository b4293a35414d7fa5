package sip

import (
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

func TestConfigFromSettings(t *testing.T) {
	c, err := ConfigFromSettings(map[string]string{"sip.server": "pbx.example"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != "pbx.example:5060" || c.Transport != "udp" || c.Domain != "pbx.example" || c.Expires != 2*time.Minute ||
		c.Writer != WriterNone || c.HTable != "teamsbusy" || c.Listen != "0.0.0.0:0" || c.Lease != 10*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = ConfigFromSettings(map[string]string{"sip.server": "pbx.example", "sip.transport": "TLS", "sip.expires": "2m",
		"sip.user": "bridge", "sip.password": "pw", "sip.register": "true", "sip.writer": "publish", "phone.lease": "5m",
		"sip.domain": "contoso.local"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != "pbx.example:5061" || c.Transport != "tls" || c.Expires != 2*time.Minute || !c.Register || c.Domain != "contoso.local" || c.Lease != 5*time.Minute {
		t.Fatalf("%+v", c)
	}
	for _, tc := range []struct {
		settings map[string]string
		key      string
	}{
		{map[string]string{}, "sip.server"},
		{map[string]string{"sip.server": "a b:5060"}, "sip.server"},
		{map[string]string{"sip.server": "pbx:99999"}, "sip.server"},
		{map[string]string{"sip.server": "pbx", "sip.transport": "sctp"}, "sip.transport"},
		{map[string]string{"sip.server": "pbx", "sip.expires": "soon"}, "sip.expires"},
		{map[string]string{"sip.server": "pbx", "sip.expires": "0s5ms"}, "sip.expires"},
		{map[string]string{"sip.server": "pbx", "sip.register": "yes please"}, "sip.register"},
		{map[string]string{"sip.server": "pbx", "sip.register": "true"}, "sip.user"},
		{map[string]string{"sip.server": "pbx", "sip.password": "pw"}, "sip.user"},
		{map[string]string{"sip.server": "pbx", "sip.writer": "ami"}, "sip.writer"},
		{map[string]string{"sip.server": "pbx", "sip.writer": "kamailio"}, "sip.rpc_url"},
		{map[string]string{"sip.server": "pbx", "sip.writer": "kamailio", "sip.rpc_url": "ftp://x"}, "sip.rpc_url"},
		{map[string]string{"sip.server": "pbx", "sip.listen": "nowhere"}, "sip.listen"},
		{map[string]string{"sip.server": "pbx", "sip.extensions": "201"}, "sip.extensions"},
		{map[string]string{"sip.server": "pbx", "sip.extensions": "2 01=anna"}, "sip.extensions"},
		{map[string]string{"sip.server": "pbx", "sip.extensions": "201=anna, 201=ben"}, "sip.extensions"},
		{map[string]string{"sip.server": "pbx", "phone.lease": "1s"}, "phone.lease"},
	} {
		_, err := ConfigFromSettings(tc.settings)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v: %v, want an error naming %s", tc.settings, err, tc.key)
		}
		if err != nil && strings.Contains(err.Error(), "pw") && tc.key != "sip.user" {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestExtensions(t *testing.T) {
	users := []psync.User{{ID: "anna", UPN: "Anna@contoso.com", Extension: "201, 221"}, {ID: "ben", Extension: "202"}, {ID: "cid"}}
	m, err := Extensions(users, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m["201"] != "anna" || m["221"] != "anna" || m["202"] != "ben" {
		t.Fatalf("%v", m)
	}
	m, err = Extensions(users, Config{Extensions: "301=anna@CONTOSO.com, 302=ben"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["301"] != "anna" || m["302"] != "ben" {
		t.Fatalf("%v", m)
	}
	if _, err := Extensions(users, Config{Extensions: "301=nobody"}); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("unknown user: %v", err)
	}
	users[1].Extension = "202, 221"
	_, err = Extensions(users, Config{})
	if err == nil || !strings.Contains(err.Error(), "anna") || !strings.Contains(err.Error(), "ben") || !strings.Contains(err.Error(), "221") {
		t.Fatalf("shared extension: %v", err)
	}
	if _, err := Extensions([]psync.User{{ID: "x", Extension: "20;1"}}, Config{}); err == nil {
		t.Fatal("bad extension taken")
	}
}
