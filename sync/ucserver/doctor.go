package ucserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Static rights of the service account (AsnUserStaticRights bits) the
// bridge relies on, as ucserver-protocol.md §3.8 lists them.
var neededRights = []struct {
	bit  int64
	name string
}{
	{4, "log in through the web services"},
	{64, "CTI lines"},
	{2048, "CTI/presence user"},
}

// featureSetAbsent is the AsnContactFeatureSetEnum bit that lets the
// logged-in account set a contact's absent state.
const featureSetAbsent = 2048

// lineOpen is AsnCtiLineOpenStatus "open", the only state a line's DND can
// be set in; lineFeatureDND the EnumLineFeatures bit "DND settable".
const (
	lineOpen       = 2
	lineFeatureDND = 2
)

// doctorPerUser is how much longer the user and subscription checks may
// take per user asked for.
const doctorPerUser = 20 * time.Millisecond

// Doctor checks the UCServer side as the bridge's service account sees it,
// with real requests, and hands each check to report the moment it is done
// (report is called from Doctor's goroutine, never after Doctor returns):
//
//   - settings: ucserver.url, ucserver.ucsid, ucserver.user/password are
//     complete and well formed;
//   - reach: the URL's host resolves and takes a TCP connection (or the
//     proxy from HTTPS_PROXY/HTTP_PROXY does);
//   - tls: the TLS handshake and the certificate (https), or a warning that
//     the password goes in clear (http);
//   - ucconnect (UCConnect only): the controller knows ucserver.ucsid;
//   - login: createsession with the service account;
//   - websocket: the session's WebSocket opens;
//   - rights: the account's static rights the bridge relies on;
//   - users on the UCServer: each configured user is a contact the
//     UCServer knows;
//   - presence subscription: the users' presence can be subscribed as the
//     bridge does, and which absent states the account may set;
//   - line enumeration: which lines the account may monitor, per user;
//   - line monitor: one monitor on one user's line is started and stopped.
//
// A check the later ones depend on ends the run when it fails. Each check
// has its own timeout (Config.CheckTimeout). When ctx ends, the running
// check is reported as cancelled and Doctor returns.
//
// The doctor uses a session of its own, which it ends before it returns
// (asnLogoff, or destroysession if the WebSocket never opened), so it can
// run while the bridge is connected with the same account: a second
// createsession opens a second, independent session. (That is what ucsim
// does and what the on-premises web service's session model implies; the
// real server's limit of sessions per account is not public.) The password,
// login token and session ids never appear in a check.
func Doctor(ctx context.Context, cfg Config, users []psync.User, report func(psync.Check)) {
	timeout := cfg.CheckTimeout
	if timeout <= 0 {
		timeout = defaultCheckTimeout
	}
	r := &psync.CheckRunner{Side: psync.SidePhone, Timeout: timeout, Report: report}
	d := &doctor{r: r, users: users}
	ok := r.Run(ctx, "settings", func(context.Context) psync.Check {
		norm, err := cfg.normalize()
		if err != nil {
			return psync.Check{Detail: err.Error(), Fix: "set it with `presencebridge config set KEY VALUE` or in the console"}
		}
		d.cfg = norm
		d.c, err = New(cfg)
		if err != nil {
			return psync.Check{Detail: err.Error()}
		}
		return psync.Check{OK: true, Detail: d.settings()}
	}).OK
	if !ok {
		return
	}
	life, end := context.WithCancel(context.WithoutCancel(ctx))
	defer end()
	d.c.http.Transport = psync.CheckTransport(life, d.c.http.Transport)
	defer d.cleanup(ctx)
	d.run(ctx)
}

type doctor struct {
	r     *psync.CheckRunner
	cfg   Config
	c     *Conn
	users []psync.User

	base    string   // UCWeb base URL
	id      string   // session id; "" before login
	s       *session // nil before the WebSocket opened
	lines   map[string][]string
	known   []psync.User // configured users the server knows, in order
	proxied bool
}

func (d *doctor) settings() string {
	var b strings.Builder
	if d.cfg.onPrem() {
		b.WriteString("web service " + d.cfg.URL + " (on premises, ucsid local)")
	} else {
		b.WriteString("UCConnect controller " + d.cfg.URL + ", ucsid " + d.cfg.UCSID)
	}
	if d.cfg.LoginToken != "" {
		b.WriteString(", login token")
	} else {
		b.WriteString(", service account " + d.cfg.User)
	}
	fmt.Fprintf(&b, ", %d users", len(d.users))
	return b.String()
}

func (d *doctor) run(ctx context.Context) {
	r := d.r
	u, _ := url.Parse(d.cfg.URL) // normalize checked it
	if !r.Run(ctx, "reach", func(ctx context.Context) psync.Check { return d.reach(ctx, u) }).OK {
		return
	}
	if !r.Run(ctx, "tls", func(ctx context.Context) psync.Check { return d.tls(ctx, u) }).OK {
		return
	}
	d.base = d.cfg.URL
	if !d.cfg.onPrem() {
		if !r.Run(ctx, "ucconnect", d.ucconnect).OK {
			return
		}
	}
	if !r.Run(ctx, "login", d.login).OK {
		return
	}
	if !r.Run(ctx, "websocket", d.websocket).OK {
		return
	}
	if !r.Run(ctx, "rights", d.rights).OK {
		return
	}
	var ids []string
	for _, u := range d.users {
		if strings.TrimSpace(string(u.ID)) != "" {
			ids = append(ids, strings.TrimSpace(string(u.ID)))
		}
	}
	if len(ids) == 0 {
		r.Skip("users on the UCServer", "no users are configured: add them with `presencebridge config` or in the console")
		return
	}
	perUsers := d.cfg.CheckTimeout + time.Duration(len(ids))*doctorPerUser
	if !r.RunFor(ctx, "users on the UCServer", perUsers, func(ctx context.Context) psync.Check { return d.usersKnown(ctx, ids) }).OK {
		if len(d.known) == 0 {
			return
		}
	}
	if r.Stopped() {
		return
	}
	r.RunFor(ctx, "presence subscription", perUsers, d.subscription)
	r.Run(ctx, "line enumeration", d.enumeration)
	var monUser psync.User
	var monLine string
	for _, u := range d.known {
		if ls := d.lines[foldID(string(u.ID))]; len(ls) > 0 {
			monUser, monLine = u, ls[0]
			break
		}
	}
	if monLine == "" {
		r.Skip("line monitor", "no configured user has a phone line on the UCServer")
		return
	}
	r.Run(ctx, "line monitor", func(ctx context.Context) psync.Check { return d.monitor(ctx, monUser, monLine) })
}

// reach resolves the host and opens a TCP connection to it, or to the
// proxy the connector would use.
func (d *doctor) reach(ctx context.Context, u *url.URL) psync.Check {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	target, via := net.JoinHostPort(host, port), ""
	if d.cfg.HTTPClient == nil {
		req, _ := http.NewRequest(http.MethodGet, d.cfg.URL, nil)
		if p, err := http.ProxyFromEnvironment(req); err == nil && p != nil {
			host, port = p.Hostname(), p.Port()
			if port == "" {
				port = map[string]string{"http": "80", "https": "443"}[p.Scheme]
			}
			via = " (through the proxy " + p.Redacted() + " from HTTPS_PROXY/HTTP_PROXY)"
			d.proxied = true
		}
	}
	var resolved string
	if net.ParseIP(host) == nil {
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return psync.Check{Detail: "DNS: " + err.Error() + via, Fix: netFix(err, d.proxied)}
		}
		resolved = host + " resolves to " + strings.Join(addrs[:min(len(addrs), 3)], ", ")
		if len(addrs) > 3 {
			resolved += fmt.Sprintf(" (+%d)", len(addrs)-3)
		}
		resolved += "; "
	}
	start := time.Now()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return psync.Check{Detail: "TCP to " + net.JoinHostPort(host, port) + via + ": " + err.Error(), Fix: netFix(err, d.proxied)}
	}
	took := "under 1ms"
	if d := time.Since(start); d >= time.Millisecond {
		took = d.Round(time.Millisecond).String()
	}
	remote := conn.RemoteAddr().String()
	conn.Close()
	if resolved != "" || via != "" {
		return psync.Check{OK: true, Detail: fmt.Sprintf("%sTCP to %s%s connects to %s in %s", resolved, target, via, remote, took)}
	}
	return psync.Check{OK: true, Detail: fmt.Sprintf("TCP to %s connects in %s", target, took)}
}

func netFix(err error, proxied bool) string {
	if proxied {
		return psync.NetFix(err, "HTTPS_PROXY/HTTP_PROXY")
	}
	return psync.NetFix(err, "ucserver.url")
}

// tls does the TLS handshake the connector will do and describes the
// certificate. Plain http only warns: the bridge works, in clear.
func (d *doctor) tls(ctx context.Context, u *url.URL) psync.Check {
	if u.Scheme == "http" {
		if !d.cfg.onPrem() {
			return psync.Check{OK: true, Warn: true,
				Detail: "ucserver.url is http://: the UCConnect lookup (the ucsid) goes over the network unencrypted",
				Fix:    "use the https:// URL of the UCConnect controller in ucserver.url"}
		}
		return psync.Check{OK: true, Warn: true,
			Detail: "ucserver.url is http://: the service account's password (HTTP Basic) and the session id go over the network unencrypted",
			Fix:    "use https:// with the web service's TLS port (7225 by default) in ucserver.url"}
	}
	if d.proxied {
		return psync.Check{OK: true, Detail: "through a proxy: the TLS handshake is checked by the login"}
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	conf := d.tlsConfig()
	conf.ServerName = u.Hostname()
	conn, err := (&tls.Dialer{Config: conf}).DialContext(ctx, "tcp", addr)
	if err != nil {
		located := err
		if op := (*net.OpError)(nil); !errors.As(err, &op) {
			// Handshake errors do not say which server: the fix names it.
			located = &net.OpError{Op: "tls handshake", Net: "tcp", Addr: tcpAddr(addr), Err: err}
		}
		return psync.Check{Detail: "TLS handshake with " + addr + ": " + err.Error(), Fix: psync.NetFix(located, "ucserver.url")}
	}
	st := conn.(*tls.Conn).ConnectionState()
	conn.Close()
	leaf := st.PeerCertificates[0]
	c := psync.Check{OK: true, Detail: fmt.Sprintf("%s, certificate for %s issued by %s, valid until %s",
		tls.VersionName(st.Version), certNames(leaf), issuerName(leaf), leaf.NotAfter.UTC().Format(time.DateOnly))}
	if left := time.Until(leaf.NotAfter); left < 14*24*time.Hour {
		c.Warn = true
		c.Fix = fmt.Sprintf("the web service's certificate expires in %d days: renew it before %s", int(left.Hours()/24), leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	return c
}

// tlsConfig is the TLS configuration the connector's HTTP client uses.
func (d *doctor) tlsConfig() *tls.Config {
	if d.cfg.HTTPClient != nil {
		if tr, ok := d.cfg.HTTPClient.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
			return tr.TLSClientConfig.Clone()
		}
	}
	return &tls.Config{RootCAs: d.cfg.RootCAs, MinVersion: tls.VersionTLS12}
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

func certNames(c *x509.Certificate) string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return c.Subject.CommonName
	}
	return strings.Join(names, ", ")
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// ucconnect asks the UCConnect controller for the UCWeb that serves the
// UCSID.
func (d *doctor) ucconnect(ctx context.Context) psync.Check {
	base, err := d.c.webBase(ctx)
	if err != nil {
		detail := d.c.scrub(err).Error()
		var le *loginError
		if errors.As(err, &le) && le.status == http.StatusNoContent {
			detail = "the UCConnect controller knows no UCServer with ucsid " + d.cfg.UCSID + " (HTTP 204)"
		}
		return psync.Check{Detail: detail, Fix: d.loginFix(err)}
	}
	d.base = base
	c := psync.Check{OK: true, Detail: "ucsid " + d.cfg.UCSID + " is served by " + base}
	if strings.HasPrefix(base, "http://") {
		c.Warn = true
		c.Detail += ": the service account's password (HTTP Basic) and the session id go there unencrypted"
		c.Fix = "the UCConnect controller sends this bridge to a plain-http UCWeb: use the https:// controller URL in ucserver.url"
	}
	return c
}

// loginFix says what to do about a failed controller lookup, login or
// WebSocket.
func (d *doctor) loginFix(err error) string {
	var le *loginError
	if errors.As(err, &le) {
		return le.fix()
	}
	key := "ucserver.url"
	if d.base != d.cfg.URL {
		key = "ucserver.url (the UCConnect redirect to " + d.base + ")"
	}
	if fix := psync.NetFix(err, key); fix != "" {
		return fix
	}
	return "check ucserver.url: it must be the UCServer web service (the address that answers /ws/client/createsession), or the UCConnect controller with ucserver.ucsid"
}

func (d *doctor) login(ctx context.Context) psync.Check {
	id, err := d.c.createSession(ctx, d.base)
	if err != nil {
		return psync.Check{Detail: d.c.scrub(err).Error(), Fix: d.loginFix(err)}
	}
	d.id = id
	who := "service account " + d.cfg.User
	if d.cfg.LoginToken != "" {
		who = "login token"
	}
	return psync.Check{OK: true, Detail: who + " logged in: session " + shortID(id)}
}

func (d *doctor) websocket(ctx context.Context) psync.Check {
	s, err := d.c.open(ctx, d.base, d.id, nil)
	if err != nil {
		fix := psync.NetFix(err, "ucserver.url")
		if fix == "" {
			fix = "a proxy or load balancer in front of the UCServer must pass WebSocket upgrades (Connection: Upgrade) on /ws/client/websocket"
		}
		return psync.Check{Detail: err.Error(), Fix: fix}
	}
	d.s = s
	s.wg.Go(func() { d.c.keepAlive(s) })
	return psync.Check{OK: true, Detail: "the session's WebSocket is open (" + strings.SplitN(wsURL(d.base, ""), "?", 2)[0] + ")"}
}

// rights reads what the server says about the account itself.
func (d *doctor) rights(ctx context.Context) psync.Check {
	var res struct {
		LoggedInUser string `json:"u8sLoggedInUser"`
		OwnContact   *struct {
			ContactID    string  `json:"u8sContactId"`
			StaticRights *asnInt `json:"iStaticRights"`
		} `json:"ownContact"`
	}
	err := d.s.invoke(ctx, opGetLoggedInContactV2, struct{}{}, func(raw json.RawMessage) error {
		return json.Unmarshal(raw, &res)
	})
	if err != nil {
		return psync.Check{Detail: d.c.scrub(err, d.id).Error(), Fix: invokeFix(err, "")}
	}
	who := res.LoggedInUser
	if res.OwnContact != nil && res.OwnContact.ContactID != "" {
		who += " (" + res.OwnContact.ContactID + ")"
	}
	if res.OwnContact == nil || res.OwnContact.StaticRights == nil {
		return psync.Check{OK: true, Warn: true, Detail: "logged in as " + who + "; the UCServer did not report the account's rights",
			Fix: "the checks below try the rights the bridge needs one by one"}
	}
	have := int64(*res.OwnContact.StaticRights)
	var got, missing []string
	for _, r := range neededRights {
		if have&r.bit != 0 {
			got = append(got, r.name)
		} else {
			missing = append(missing, r.name)
		}
	}
	if len(missing) > 0 {
		return psync.Check{OK: true, Warn: true,
			Detail: fmt.Sprintf("logged in as %s; the account lacks the rights %s (iStaticRights %d)", who, strings.Join(missing, ", "), have),
			Fix:    "give the service account these rights in the UCServer administration: " + strings.Join(missing, ", ")}
	}
	return psync.Check{OK: true, Detail: "logged in as " + who + "; rights: " + strings.Join(got, ", ")}
}

// invokeFix says what to do about a failed operation of the doctor's
// session; refused names what the server refused.
func invokeFix(err error, refused string) string {
	var oe *opError
	if errors.As(err, &oe) && refused != "" {
		return refused
	}
	if errors.Is(err, psync.ErrUnavailable) {
		return "the UCServer does not answer on the session: check its load and the network (keep-alive, proxies that cut WebSockets)"
	}
	return "the UCServer refused the operation; check the service account's rights in the UCServer administration"
}

type doctorPresence struct {
	ContactID  string          `json:"u8sContactId"`
	FeatureSet *asnInt         `json:"iContactFeatureSet"`
	PhoneLines []wPresenceLine `json:"seqPhoneLines"`
}

// subscribe asks for the presence of ids in chunks and returns what the
// server listed, by folded contact id.
func (d *doctor) subscribe(ctx context.Context, ids []string, flags int) (map[string]doctorPresence, error) {
	got := map[string]doctorPresence{}
	for i := 0; i < len(ids); i += subscribeChunk {
		chunk := ids[i:min(i+subscribeChunk, len(ids))]
		arg := subscribeArg{
			ContactIDs: chunk, EventFlagsToSubscribe: flags,
			ContactDetailsFilter:   subData | subConfiguration | subPhoneLines,
			DontRequestPermissions: true,
		}
		timeout := d.cfg.InvokeTimeout + time.Duration(len(chunk))*doctorPerUser
		err := d.s.invokeWithin(ctx, timeout, opGetAndSubscribePresenceV2, arg, func(raw json.RawMessage) error {
			var r struct {
				Presences []doctorPresence `json:"seqSubscribedPresence"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			for _, p := range r.Presences {
				if p.ContactID != "" {
					got[foldID(p.ContactID)] = p
				}
			}
			return nil
		})
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// subConfiguration is ePresenceSubscriptionConfiguration: rights and
// feature set in the presence.
const subConfiguration = 8

// usersKnown asks for every configured user's contact without subscribing
// to events, as Directory does.
func (d *doctor) usersKnown(ctx context.Context, ids []string) psync.Check {
	// Guess (as Directory): flags 0 subscribes to no events.
	got, err := d.subscribe(ctx, ids, 0)
	if err != nil {
		return psync.Check{Detail: d.c.scrub(err, d.id).Error(),
			Fix: invokeFix(err, "give the service account the right to see the users' presence (global or group rights)")}
	}
	d.lines = map[string][]string{}
	var unknown []string
	nlines := 0
	for _, u := range d.users {
		id := strings.TrimSpace(string(u.ID))
		if id == "" {
			continue
		}
		p, ok := got[foldID(id)]
		if !ok {
			unknown = append(unknown, id)
			continue
		}
		d.known = append(d.known, u)
		for _, l := range p.PhoneLines {
			if l.URI != "" {
				d.lines[foldID(id)] = append(d.lines[foldID(id)], l.URI)
				nlines++
			}
		}
	}
	if len(unknown) > 0 {
		return psync.Check{Detail: fmt.Sprintf("%d of %d users are not known to the UCServer: %s", len(unknown), len(ids), listSome(unknown)),
			Fix: "check these users' contact ids (as the UCServer shows them, e.g. sip:name@domain) in presencebridge's users, or the service account's right to see them"}
	}
	return psync.Check{OK: true, Detail: fmt.Sprintf("all %d users are known to the UCServer, with %d phone lines", len(ids), nlines)}
}

// listSome names at most ten items and counts the rest.
func listSome(items []string) string {
	if len(items) <= 10 {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:10], ", ") + fmt.Sprintf(" and %d more", len(items)-10)
}

// subscription subscribes the known users as the bridge does, then
// unsubscribes them.
func (d *doctor) subscription(ctx context.Context) psync.Check {
	ids := make([]string, 0, len(d.known))
	for _, u := range d.known {
		ids = append(ids, strings.TrimSpace(string(u.ID)))
	}
	got, err := d.subscribe(ctx, ids, subscribeFlags)
	if len(got) > 0 || err == nil {
		_ = d.s.invoke(ctx, opUnsubscribePresence, struct {
			ContactIDs []string `json:"seqContactIDs"`
		}{ids}, nil)
	}
	if err != nil {
		return psync.Check{Detail: d.c.scrub(err, d.id).Error(),
			Fix: invokeFix(err, "give the service account the right to see the users' presence (global or group rights)")}
	}
	var refused, noAbsent []string
	for _, id := range ids {
		p, ok := got[foldID(id)]
		switch {
		case !ok:
			refused = append(refused, id)
		case p.FeatureSet != nil && int64(*p.FeatureSet)&featureSetAbsent == 0:
			noAbsent = append(noAbsent, id)
		}
	}
	if len(refused) > 0 {
		return psync.Check{Detail: fmt.Sprintf("the UCServer did not subscribe %d of %d users: %s", len(refused), len(ids), listSome(refused)),
			Fix: "give the service account the right to see these users' presence (global or group rights)"}
	}
	if len(noAbsent) > 0 {
		return psync.Check{OK: true, Warn: true,
			Detail: fmt.Sprintf("%d users subscribed; the service account may not set the absent state of %d: %s", len(ids), len(noAbsent), listSome(noAbsent)),
			Fix:    "grant the service account rights on these users that include changing their presence, or the bridge cannot show their Teams state on the phone side"}
	}
	return psync.Check{OK: true, Detail: fmt.Sprintf("%d users subscribed, and the service account may set their absent state", len(ids))}
}

// enumeration lists the lines the account may monitor and matches them to
// the users' lines.
//
// Guess (as the connector): typeofLines 1 lists what a service account may
// monitor.
func (d *doctor) enumeration(ctx context.Context) psync.Check {
	var res wEnumLines
	err := d.s.invoke(ctx, opCtiEnumPhoneLines, enumLinesArg{TypeOfLines: 1, AttachChangeNotify: 0}, func(raw json.RawMessage) error {
		return json.Unmarshal(raw, &res)
	})
	const fix = "give the service account CTI rights (monitor, do-not-disturb) on the users' lines in the UCServer administration"
	if err != nil {
		var oe *opError
		if errors.As(err, &oe) {
			// The bridge copes: it monitors the lines presence names.
			return psync.Check{OK: true, Warn: true, Detail: "the UCServer refused to list the lines (" + d.c.scrub(err, d.id).Error() + "); the bridge takes the users' lines from presence", Fix: fix}
		}
		return psync.Check{Detail: d.c.scrub(err, d.id).Error(), Fix: invokeFix(err, "")}
	}
	listed := map[string]bool{}
	for _, l := range res.Lines {
		listed[l.URI] = true
	}
	var missing, with []string
	total, seen := 0, 0
	for _, u := range d.known {
		ls := d.lines[foldID(string(u.ID))]
		if len(ls) == 0 {
			continue
		}
		n := 0
		for _, l := range ls {
			if listed[l] {
				n++
			} else {
				missing = append(missing, l+" ("+u.Name()+")")
			}
		}
		total += len(ls)
		seen += n
		with = append(with, fmt.Sprintf("%s %d", u.Name(), n))
	}
	detail := fmt.Sprintf("%d lines listed", len(res.Lines))
	if total == 0 {
		return psync.Check{OK: true, Detail: detail + "; no configured user has a phone line"}
	}
	detail += fmt.Sprintf("; %d of the users' %d lines", seen, total)
	if len(with) <= 5 {
		detail += " (" + strings.Join(with, ", ") + ")"
	} else {
		detail += fmt.Sprintf(" (%d users with lines)", len(with))
	}
	if len(missing) > 0 {
		return psync.Check{OK: true, Warn: true, Detail: detail + "; not listed: " + listSome(missing),
			Fix: fix + "; lines the account cannot monitor give calls without per-device detail"}
	}
	return psync.Check{OK: true, Detail: detail}
}

// monitor starts a line monitor on one line and stops it again.
func (d *doctor) monitor(ctx context.Context, u psync.User, uri string) psync.Check {
	var res wMonitorStart
	err := d.s.invoke(ctx, opCtiLineMonitorStart, lineArg{LineURI: uri}, func(raw json.RawMessage) error {
		return json.Unmarshal(raw, &res)
	})
	what := uri + " of " + u.Name()
	if err != nil {
		return psync.Check{Detail: "monitor of " + what + ": " + d.c.scrub(err, d.id).Error(),
			Fix: invokeFix(err, "give the service account CTI rights (monitor, do-not-disturb) on the users' lines in the UCServer administration")}
	}
	stopErr := error(nil)
	if res.CrossRefID != "" {
		stopErr = d.s.invoke(ctx, opCtiLineMonitorStop, struct {
			CrossRefID string `json:"u8sMonitorCrossRefID"`
		}{res.CrossRefID}, nil)
	}
	c := psync.Check{OK: true, Detail: "monitor of " + what + " started"}
	if stopErr == nil {
		c.Detail += " and stopped"
	}
	var warn, fix []string
	if li := res.LineInfo; li != nil {
		if li.OpenStatus != lineOpen {
			warn = append(warn, fmt.Sprintf("the line is not open (status %d: %s)", li.OpenStatus, lineStatusName(int64(li.OpenStatus))))
			fix = append(fix, "check the line's phone and its connection to the PBX on the UCServer")
		} else if li.Features&lineFeatureDND == 0 {
			warn = append(warn, "the line's do-not-disturb cannot be set")
			fix = append(fix, "the PBX does not offer do-not-disturb on this line through CTI")
		} else {
			c.Detail += "; the line is open and its do-not-disturb can be set"
		}
	}
	if stopErr != nil {
		warn = append(warn, "the monitor did not stop ("+d.c.scrub(stopErr, d.id).Error()+"); it ends with the doctor's session")
	}
	if len(warn) > 0 {
		c.Warn = true
		c.Detail += "; " + strings.Join(warn, "; ")
		c.Fix = strings.Join(fix, "; ")
	}
	return c
}

// cleanup ends the doctor's session: asnLogoff over the WebSocket, or
// destroysession when the WebSocket never opened. It runs even after a
// cancel, with a short deadline of its own.
func (d *doctor) cleanup(ctx context.Context) {
	if d.c == nil {
		return
	}
	if d.s != nil {
		d.s.close()
		return
	}
	if d.id == "" {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, d.base+"/ws/client/destroysession?ucsessionid="+url.QueryEscape(d.id), nil)
	if err != nil {
		return
	}
	req.Header.Set("X-ucsid", d.cfg.UCSID)
	if resp, err := d.c.http.Do(req); err == nil {
		resp.Body.Close()
	}
}

// lineStatusName spells AsnCtiLineOpenStatus (ucserver-protocol.md §3.4).
func lineStatusName(st int64) string {
	names := []string{"disconnected", "closed", "open", "open, no phone", "open, no PBX connection", "open, PBX login failed",
		"open, no PBX licence", "open, CSTA session limit reached", "failed, no licence", "failed, no ECSTA licence"}
	if st >= 0 && st < int64(len(names)) {
		return names[st]
	}
	return "unknown"
}
