package sip

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Doctor checks the SIP side the way Run would use it, one line per check:
// settings, reachability (OPTIONS), registration (sip.register), one
// subscription accepted and its granted expiry (which also proves the
// digest credentials), each user's extensions, and the Kamailio RPC in
// writer kamailio. Every failed check says what to fix. It un-SUBSCRIBEs
// what it subscribed.
func Doctor(ctx context.Context, cfg Config, users []psync.User, report func(psync.Check)) {
	timeout := cfg.CheckTimeout
	if timeout <= 0 {
		timeout = defaultCheckTimeout
	}
	r := &psync.CheckRunner{Side: psync.SidePhone, Timeout: timeout, Report: report}
	d := &doctor{r: r, users: users}
	if !r.Run(ctx, "settings", d.settings(cfg)).OK {
		return
	}
	st, err := startStack(d.c.cfg, d.c.onNotify)
	if err != nil {
		r.Run(ctx, "reach", func(context.Context) psync.Check {
			return psync.Check{Detail: err.Error(), Fix: "set sip.listen to an address of this machine (e.g. 0.0.0.0:0)"}
		})
		return
	}
	defer st.close()
	d.st = st
	if !r.Run(ctx, "reach", d.reach).OK {
		return
	}
	if d.c.cfg.Register {
		if !r.Run(ctx, "register", d.register).OK {
			return
		}
	}
	if len(d.exts) > 0 {
		first := d.order[0]
		if !r.Run(ctx, "subscribe", func(ctx context.Context) psync.Check { return d.subscribeCheck(ctx, first) }).OK {
			return
		}
	}
	for _, u := range users {
		r.RunFor(ctx, "extensions "+string(u.ID), timeout*time.Duration(max(1, len(d.byUser[u.ID]))), func(ctx context.Context) psync.Check {
			return d.userCheck(ctx, u)
		})
	}
	if d.c.busy != nil {
		r.Run(ctx, "rpc", d.rpc)
	}
}

type doctor struct {
	r      *psync.CheckRunner
	c      *Conn
	st     *stack
	users  []psync.User
	exts   map[string]psync.UserID
	order  []string
	byUser map[psync.UserID][]string
	result map[string]error // extension → outcome of its SUBSCRIBE
}

func (d *doctor) settings(cfg Config) func(context.Context) psync.Check {
	return func(context.Context) psync.Check {
		c, err := New(cfg)
		if err != nil {
			return psync.Check{Detail: err.Error(), Fix: "set it with `presencebridge config set KEY VALUE` or in the console"}
		}
		d.c = c
		d.exts, err = Extensions(d.users, c.cfg)
		if err != nil {
			return psync.Check{Detail: err.Error(), Fix: "give each extension to one user in sip.extensions or the users' extension fields"}
		}
		d.byUser = map[psync.UserID][]string{}
		for ext, u := range d.exts {
			d.order = append(d.order, ext)
			d.byUser[u] = append(d.byUser[u], ext)
		}
		sort.Strings(d.order)
		for _, l := range d.byUser {
			sort.Strings(l)
		}
		d.result = map[string]error{}
		cf := c.cfg
		detail := fmt.Sprintf("server %s over %s, domain %s, account %q, writer %s, %d extensions of %d users",
			cf.Server, cf.Transport, cf.Domain, cf.fromUser(), cf.Writer, len(d.exts), len(d.users))
		if len(d.exts) == 0 {
			return psync.Check{OK: true, Warn: true, Detail: detail,
				Fix: "no user has an extension: set sip.extensions or the users' extension fields"}
		}
		return psync.Check{OK: true, Detail: detail}
	}
}

// reach sends OPTIONS: any answer, even a challenge or 405, proves the
// server is there on this transport.
func (d *doctor) reach(ctx context.Context) psync.Check {
	cfg := d.c.cfg
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: cfg.Domain})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: cfg.fromUser(), Host: cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	cid := sip.CallIDHeader(uuid.NewString())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: cfg.Domain}})
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS})
	req.SetBody(nil)
	res, err := d.st.request(ctx, req)
	if err != nil {
		return psync.Check{Detail: err.Error(), Fix: "check sip.server and sip.transport, that the PBX runs, and that no firewall drops SIP between this machine and it"}
	}
	return psync.Check{OK: true, Detail: fmt.Sprintf("%s answered OPTIONS with %d %s", cfg.Server, res.StatusCode, res.Reason)}
}

func (d *doctor) register(ctx context.Context) psync.Check {
	callID := uuid.NewString()
	var cseq uint32 = 1
	asked := d.st.challenges.Load()
	granted, err := d.c.register(ctx, d.st, callID, &cseq, d.c.cfg.Expires)
	if err != nil {
		return psync.Check{Detail: err.Error(), Fix: fixOf(err, "check sip.user and sip.password, and that the account exists on the PBX")}
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.c.cfg.RequestTimeout)
	defer cancel()
	_, _ = d.c.register(uctx, d.st, callID, &cseq, 0)
	detail := fmt.Sprintf("registered %s for %s", d.c.cfg.fromUser(), granted)
	if d.st.challenges.Load() > asked {
		detail += ", digest credentials accepted"
	}
	return psync.Check{OK: true, Detail: detail}
}

// subscribe makes one subscription for ext and ends it again; it returns
// the granted expiry and whether the first NOTIFY came.
func (d *doctor) subscribe(ctx context.Context, ext string) (time.Duration, bool, error) {
	c := d.c
	s := newSubscription(ext)
	c.mu.Lock()
	c.subs[s.callID] = s
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.subs, s.callID)
		c.mu.Unlock()
	}()
	res, err := d.st.request(ctx, c.subscribeRequest(d.st, s, c.cfg.Expires))
	if err != nil {
		return 0, false, err
	}
	if !res.IsSuccess() {
		return 0, false, answerError(c.cfg, "SUBSCRIBE "+ext, res)
	}
	c.accepted(s, res)
	defer c.unsubscribe(d.st, s)
	c.mu.Lock()
	granted := s.expires
	c.mu.Unlock()
	wait := time.NewTimer(2 * time.Second)
	defer wait.Stop()
	select {
	case <-s.first:
		return granted, true, nil
	case <-wait.C:
	case <-ctx.Done():
	}
	return granted, false, nil
}

func (d *doctor) subscribeCheck(ctx context.Context, ext string) psync.Check {
	asked := d.st.challenges.Load()
	granted, notified, err := d.subscribe(ctx, ext)
	d.result[ext] = err
	if err != nil {
		return psync.Check{Detail: err.Error(), Fix: fixOf(err, "check sip.user / sip.password and that the PBX allows dialog (BLF) subscriptions for this account")}
	}
	detail := fmt.Sprintf("SUBSCRIBE dialog for %s accepted, expiry granted %s (asked %s)", ext, granted, d.c.cfg.Expires)
	if d.st.challenges.Load() > asked {
		detail += fmt.Sprintf(", digest credentials of %s accepted", d.c.cfg.User)
	} else {
		detail += ", no credentials asked for"
	}
	if !notified {
		return psync.Check{OK: true, Warn: true, Detail: detail + ", but no NOTIFY came",
			Fix: "the PBX must reach this machine at the Contact address: set sip.listen to an address the PBX can reach and open that port"}
	}
	c := psync.Check{OK: true, Detail: detail + ", first NOTIFY received"}
	if granted < 30*time.Second {
		c.Warn = true
		c.Fix = "the server grants a very short expiry: the bridge refreshes often; raise the PBX's minimum/maximum subscription expiry"
	}
	return c
}

func (d *doctor) userCheck(ctx context.Context, u psync.User) psync.Check {
	exts := d.byUser[u.ID]
	if len(exts) == 0 {
		return psync.Check{OK: true, Warn: true, Detail: "no extension", Fix: "set the user's extension, or list it in sip.extensions, so the bridge sees their calls"}
	}
	var ok, bad []string
	var fix string
	for _, ext := range exts {
		err, done := d.result[ext]
		if !done {
			_, _, err = d.subscribe(ctx, ext)
			d.result[ext] = err
		}
		if err != nil {
			var se *statusError
			if errors.As(err, &se) {
				bad = append(bad, fmt.Sprintf("%s refused (%d %s)", ext, se.Code, se.Reason))
			} else {
				bad = append(bad, ext+": "+err.Error())
			}
			fix = fixOf(err, "check the extension on the PBX")
			continue
		}
		ok = append(ok, ext+" subscribed")
	}
	detail := strings.Join(append(ok, bad...), ", ")
	if len(bad) > 0 {
		return psync.Check{Detail: detail, Fix: fix}
	}
	return psync.Check{OK: true, Detail: detail}
}

// rpc asks the htable for a probe key nobody uses: it proves the URL, the
// jsonrpcs module and the table name without changing anything.
func (d *doctor) rpc(ctx context.Context) psync.Check {
	const probe = "presencebridge-doctor-probe"
	if _, err := d.c.busy.Busy(ctx, probe); err != nil {
		return psync.Check{Detail: fmt.Sprintf("Kamailio RPC %s, htable %s: %v", d.c.cfg.RPCURL, d.c.cfg.HTable, err),
			Fix: "check sip.rpc_url (jsonrpcs over HTTP, e.g. http://127.0.0.1:5071/RPC) and sip.htable (the htable the routing script checks)"}
	}
	return psync.Check{OK: true, Detail: fmt.Sprintf("Kamailio RPC %s answers, htable %s exists", d.c.cfg.RPCURL, d.c.cfg.HTable)}
}

// fixOf takes the fix a statusError carries, or def.
func fixOf(err error, def string) string {
	var se *statusError
	if errors.As(err, &se) && se.Fix != "" {
		return se.Fix
	}
	if errors.Is(err, errUnreachable) {
		return "check sip.server and sip.transport, and that the PBX runs and is reachable"
	}
	return def
}
