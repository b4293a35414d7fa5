package amisim_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/presencebridge/presencebridge/sync/asterisk/amisim"
)

type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
	banner, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(banner, "Asterisk Call Manager/") {
		t.Fatalf("banner %q %v", banner, err)
	}
	return c
}

func (c *rawClient) send(lines ...string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(strings.Join(lines, "\r\n") + "\r\n\r\n")); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next message as a map (first value wins).
func (c *rawClient) read() map[string]string {
	c.t.Helper()
	m := map[string]string{}
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			if len(m) == 0 {
				continue
			}
			return m
		}
		k, v, _ := strings.Cut(l, ": ")
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
}

// until reads until a message with key=value.
func (c *rawClient) until(key, value string) map[string]string {
	c.t.Helper()
	for {
		if m := c.read(); m[key] == value {
			return m
		}
	}
}

func start(t *testing.T) *amisim.Server {
	s := amisim.New(amisim.Options{Accounts: map[string]amisim.Account{
		"full": {Secret: "f", Read: "call", Write: "system,call"},
		"ro":   {Secret: "r", Read: "call", Write: "reporting"},
	}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddExtension("201", "201", "211")
	return s
}

func TestLoginAndPermissions(t *testing.T) {
	s := start(t)
	c := dialRaw(t, s.Addr())
	c.send("Action: DBGet", "ActionID: 1", "Family: DND", "Key: 201")
	if m := c.read(); m["Message"] != "Authentication Required" {
		t.Fatalf("%v", m)
	}
	c.send("Action: Login", "ActionID: 2", "Username: full", "Secret: wrong")
	if m := c.read(); m["Response"] != "Error" || m["Message"] != "Authentication failed" || m["ActionID"] != "2" {
		t.Fatalf("%v", m)
	}
	c.send("Action: Login", "ActionID: 3", "Username: ro", "Secret: r")
	if m := c.read(); m["Message"] != "Authentication accepted" {
		t.Fatalf("%v", m)
	}
	c.send("Action: DBPut", "ActionID: 4", "Family: DND", "Key: 201", "Val: YES")
	if m := c.read(); m["Message"] != "Permission denied" {
		t.Fatalf("%v", m)
	}
	// DBGet needs system or reporting: reporting is enough.
	c.send("Action: DBGet", "ActionID: 5", "Family: AMPUSER", "Key: 201/device")
	if m := c.read(); m["EventList"] != "start" {
		t.Fatalf("%v", m)
	}
	if m := c.read(); m["Event"] != "DBGetResponse" || m["Val"] != "201&211" || m["ActionID"] != "5" {
		t.Fatalf("%v", m)
	}
	if m := c.read(); m["Event"] != "DBGetComplete" {
		t.Fatalf("%v", m)
	}
	c.send("Action: ListCommands", "ActionID: 6")
	m := c.read()
	if _, ok := m["DBPut"]; ok {
		t.Fatal("ListCommands lists an action the account may not run")
	}
	if !strings.Contains(m["DBGet"], "Priv: reporting,system,all") {
		t.Fatalf("%v", m)
	}
	c.send("Action: Bogus", "ActionID: 7")
	if m := c.read(); !strings.HasPrefix(m["Message"], "Invalid/unknown command: Bogus.") {
		t.Fatalf("%v", m)
	}
}

// FreePBX's hint includes Custom:DND<ext>: DND makes the extension Busy.
func TestFreePBXDNDAndHint(t *testing.T) {
	s := start(t)
	c := dialRaw(t, s.Addr())
	c.send("Action: Login", "ActionID: 1", "Username: full", "Secret: f", "Events: call")
	c.read()
	if st := s.ExtensionStatus("201"); st != 0 {
		t.Fatalf("idle hint %d", st)
	}
	s.PersonDND("201", true)
	ev := c.until("Event", "DeviceStateChange")
	for ev["Device"] != "Custom:DND201" {
		ev = c.until("Event", "DeviceStateChange")
	}
	if ev["State"] != "BUSY" {
		t.Fatalf("%v", ev)
	}
	es := c.until("Event", "ExtensionStatus")
	if es["Status"] != "2" || es["Hint"] != "PJSIP/201&PJSIP/211&Custom:DND201" {
		t.Fatalf("%v", es)
	}
	if v, _ := s.DB("DND", "201"); v != "YES" {
		t.Fatal("DND/201 not set")
	}
	s.PersonDND("201", false)
	s.Answer("PJSIP/211")
	if st := s.ExtensionStatus("201"); st != 1 {
		t.Fatalf("in use hint %d", st)
	}
	s.Hold("PJSIP/211")
	if st := s.ExtensionStatus("201"); st != 16 {
		t.Fatalf("hold hint %d", st)
	}
	c.send("Action: Setvar", "ActionID: 9", "Variable: DEVICE_STATE(PJSIP/201)", "Value: BUSY")
	if m := c.until("ActionID", "9"); m["Response"] != "Error" {
		t.Fatalf("a non-custom device state was written: %v", m)
	}
	c.send("Action: DeviceStateList", "ActionID: 10")
	n := 0
	for {
		m := c.until("ActionID", "10")
		if m["Event"] == "DeviceStateListComplete" {
			break
		}
		if m["Event"] == "DeviceStateChange" {
			n++
		}
	}
	if n < 5 {
		t.Fatalf("DeviceStateList listed %d devices", n)
	}
}

func TestRestartKeepsAstDB(t *testing.T) {
	s := start(t)
	c := dialRaw(t, s.Addr())
	c.send("Action: Login", "ActionID: 1", "Username: full", "Secret: f")
	c.read()
	s.PersonDND("201", true)
	s.Answer("PJSIP/201")
	s.Restart()
	if _, err := c.br.ReadString('\n'); err == nil {
		for {
			if _, err := c.br.ReadString('\n'); err != nil {
				break
			}
		}
	}
	if v, _ := s.DB("DND", "201"); v != "YES" {
		t.Fatal("AstDB lost in a restart")
	}
	if s.DeviceState("Custom:DND201") != "BUSY" || s.DeviceState("PJSIP/201") != "NOT_INUSE" {
		t.Fatalf("after restart: %s %s", s.DeviceState("Custom:DND201"), s.DeviceState("PJSIP/201"))
	}
	dialRaw(t, s.Addr()) // it still takes connections
}
