package sip

import (
	"fmt"
	"net/url"
	"sync"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// report is what the console and `status` show of the SIP side: the
// subscriptions up, and what Teams can do to the phones (the writer),
// since "busy" means refused calls with one writer and a lamp with the
// other.
type report struct {
	mu        sync.Mutex
	connected bool
	up, total int
	problems  []psync.Problem
	lastErr   string
}

// noteSubscriptions records the subscriptions' state after each change.
func (c *Conn) noteSubscriptions(up, total int, err error) {
	c.rep.mu.Lock()
	defer c.rep.mu.Unlock()
	c.rep.connected, c.rep.up, c.rep.total = up > 0 || total == 0, up, total
	if err == nil {
		c.rep.lastErr = ""
		return
	}
	if msg := err.Error(); msg != c.rep.lastErr {
		c.rep.lastErr = msg
		c.rep.problems = append([]psync.Problem{{At: time.Now(), What: msg}}, c.rep.problems...)
		if len(c.rep.problems) > 10 {
			c.rep.problems = c.rep.problems[:10]
		}
	}
}

// WriterMode says in a few words what Teams does to the phones.
func WriterMode(writer string) string {
	switch writer {
	case WriterKamailio:
		return "busy-on-busy through the Kamailio proxy (calls refused 486 during a Teams call); presence by PUBLISH"
	case WriterPublish:
		return "presence by PUBLISH only: phones show busy, calls are not blocked"
	}
	return "read only: calls reach Teams, Teams reaches no phone"
}

// Report implements psync.Reporter.
func (c *Conn) Report() psync.SideReport {
	c.rep.mu.Lock()
	defer c.rep.mu.Unlock()
	r := psync.SideReport{
		Side: psync.SidePhone, Name: "SIP PBX", Mode: "dialog subscriptions (BLF)",
		Endpoint:  "sip:" + c.cfg.Server + ";transport=" + c.cfg.Transport,
		Connected: c.rep.connected,
		Facts: []psync.Fact{
			{Label: "subscriptions", Value: fmt.Sprintf("%d of %d extensions up", c.rep.up, c.rep.total), Warn: c.rep.up < c.rep.total},
			{Label: "Teams → phones", Value: WriterMode(c.cfg.Writer)},
		},
		Errors: psync.MergeProblems(append([]psync.Problem(nil), c.rep.problems...)),
	}
	if c.cfg.Writer == WriterKamailio {
		r.Facts = append(r.Facts, psync.Fact{Label: "busy table", Value: c.cfg.HTable + " at " + redactURL(c.cfg.RPCURL)})
	}
	return r
}

// MissingSettings lists the settings the connector cannot run without.
func MissingSettings(values map[string]string) []string {
	var missing []string
	if values["sip.server"] == "" {
		missing = append(missing, "setting sip.server is not set (presencebridge config set sip.server pbx.example:5060)")
	}
	if values["sip.writer"] == WriterKamailio && values["sip.rpc_url"] == "" {
		missing = append(missing, "setting sip.rpc_url is not set, which sip.writer kamailio needs (presencebridge config set sip.rpc_url http://PROXY:5071/RPC)")
	}
	return missing
}

// redactURL hides a password in a URL shown to the admin.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(not a URL)"
	}
	return u.Redacted()
}
