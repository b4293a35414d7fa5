package sip

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	psync "github.com/presencebridge/presencebridge/sync"
)

// registerLoop keeps the bridge's account registered (sip.register) for
// PBXs that serve SUBSCRIBE only to registered endpoints. It refreshes at
// 80 % of the granted expiry, retries on the backoff schedule, and
// unregisters on the way out.
func (c *Conn) registerLoop(ctx context.Context, st *stack, first chan<- struct{}) {
	callID := uuid.NewString()
	var cseq uint32 = 1
	bo := psync.NewBackoff(c.cfg.RetryMin, c.cfg.RetryMax, seedOf(callID))
	fails := 0
	for {
		granted, err := c.register(ctx, st, callID, &cseq, c.cfg.Expires)
		if first != nil {
			close(first) // subscriptions wait for the first attempt
			first = nil
		}
		wait := granted * 4 / 5
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fails++
			c.cfg.Logger.Warn("sip: REGISTER failed", "err", err)
			wait = bo.Delay(fails, err)
		} else {
			fails = 0
		}
		if !psync.Sleep(ctx, nil, wait) {
			break
		}
	}
	if first != nil {
		close(first)
	}
	uctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	_, _ = c.register(uctx, st, callID, &cseq, 0)
}

// register sends one REGISTER (expires 0 removes the binding) and returns
// the granted expiry.
func (c *Conn) register(ctx context.Context, st *stack, callID string, cseq *uint32, expires time.Duration) (time.Duration, error) {
	req := registerRequest(st, callID, *cseq, expires)
	*cseq += 2
	res, err := st.request(ctx, req)
	if err != nil {
		return 0, err
	}
	if !res.IsSuccess() {
		return 0, answerError(c.cfg, "REGISTER", res)
	}
	granted := expires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			granted = time.Duration(n) * time.Second
		}
	}
	if ct := res.Contact(); ct != nil {
		if v, ok := ct.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				granted = time.Duration(n) * time.Second
			}
		}
	}
	return max(granted, time.Second), nil
}

func registerRequest(st *stack, callID string, cseq uint32, expires time.Duration) *sip.Request {
	cfg := st.cfg
	aor := sip.Uri{Scheme: "sip", User: cfg.fromUser(), Host: cfg.Domain}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: cfg.Domain})
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	cid := sip.CallIDHeader(callID)
	maxfwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	req.AppendHeader(&maxfwd)
	req.AppendHeader(st.contact())
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.SetBody(nil)
	return req
}
