package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Check is one line of `doctor`: one thing tried against a side, reported
// the moment its outcome is known. It crosses the control socket as one
// NDJSON line per check, so it is plain data.
//
// Exactly one of four outcomes:
//
//   - passed: OK, not Warn;
//   - passed with a warning: OK and Warn (it works, but the admin should
//     change something: Fix says what);
//   - failed: neither OK nor Skipped (Fix says what to do);
//   - skipped: Skipped, not OK: the check could not run (nothing to check,
//     or the run was cancelled; then Detail is CheckCancelled).
//
// Detail and Fix never carry a secret.
//
// In JSON the side is its name ("teams", "phone") and Took is whole
// milliseconds: {"side":"phone","name":"login","ok":false,"detail":"…",
// "fix":"…","took_ms":12}.
type Check struct {
	Side    Side          `json:"side"`
	Name    string        `json:"name"` // "reach", "login", "app sign-in", ...
	OK      bool          `json:"ok"`
	Warn    bool          `json:"warn,omitempty"`
	Skipped bool          `json:"skipped,omitempty"`
	Detail  string        `json:"detail,omitempty"` // what was found
	Fix     string        `json:"fix,omitempty"`    // what the admin should do
	Took    time.Duration `json:"took_ms"`
}

// checkJSON is Check as it crosses the control socket.
type checkJSON struct {
	Side    string `json:"side"`
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Warn    bool   `json:"warn,omitempty"`
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Fix     string `json:"fix,omitempty"`
	TookMS  int64  `json:"took_ms"`
}

// MarshalJSON writes the side by name and Took in milliseconds.
func (c Check) MarshalJSON() ([]byte, error) {
	side := ""
	if c.Side != 0 {
		side = c.Side.String()
	}
	return json.Marshal(checkJSON{Side: side, Name: c.Name, OK: c.OK, Warn: c.Warn, Skipped: c.Skipped,
		Detail: c.Detail, Fix: c.Fix, TookMS: c.Took.Milliseconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Check) UnmarshalJSON(b []byte) error {
	var j checkJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var side Side
	switch j.Side {
	case "":
	case SideTeams.String():
		side = SideTeams
	case SidePhone.String():
		side = SidePhone
	default:
		return fmt.Errorf("check %q: side %q: want %q or %q", j.Name, j.Side, SideTeams, SidePhone)
	}
	*c = Check{Side: side, Name: j.Name, OK: j.OK, Warn: j.Warn, Skipped: j.Skipped, Detail: j.Detail, Fix: j.Fix,
		Took: time.Duration(j.TookMS) * time.Millisecond}
	return nil
}

// CheckCancelled is the Detail of the check a cancelled doctor ended on.
const CheckCancelled = "cancelled"

// Failed reports whether the check failed (a skipped check did not).
func (c Check) Failed() bool { return !c.OK && !c.Skipped }

// Cancelled reports whether the doctor was stopped during this check.
func (c Check) Cancelled() bool { return c.Skipped && c.Detail == CheckCancelled }

// State is the outcome in one word: "ok", "warn", "failed", "skipped" or
// "cancelled".
func (c Check) State() string {
	switch {
	case c.Cancelled():
		return "cancelled"
	case c.Skipped:
		return "skipped"
	case c.OK && c.Warn:
		return "warn"
	case c.OK:
		return "ok"
	}
	return "failed"
}

// DefaultCheckTimeout bounds one doctor check when the side's
// configuration names no other bound.
const DefaultCheckTimeout = 15 * time.Second

// CheckRunner runs a doctor's checks for one side one after another and
// hands each to Report as soon as it is done, so an admin sees every line
// the moment it is known. Each check has its own timeout; once the caller's
// context ends, the check that was running is reported as cancelled and
// every later Run reports nothing.
type CheckRunner struct {
	Side    Side
	Timeout time.Duration // per check; zero: DefaultCheckTimeout
	Report  func(Check)   // nil: checks are only returned

	stopped bool
}

// Run runs f as the check name. f gets a context that ends at the check's
// timeout or when ctx ends; it must return when that context ends. Run
// fills Side, Name (unless f set one) and Took, reports the check and
// returns it.
//
// A check that failed because its own timeout passed says so in Detail;
// a check during which ctx ended is reported as cancelled instead of
// whatever error the cancellation caused.
func (r *CheckRunner) Run(ctx context.Context, name string, f func(ctx context.Context) Check) Check {
	return r.RunFor(ctx, name, r.Timeout, f)
}

// RunFor is Run with a timeout of its own, for a check whose work grows
// with the number of users.
func (r *CheckRunner) RunFor(ctx context.Context, name string, timeout time.Duration, f func(ctx context.Context) Check) Check {
	if r.stopped {
		return Check{Side: r.Side, Name: name, Skipped: true, Detail: CheckCancelled}
	}
	if ctx.Err() != nil {
		return r.cancelled(ctx, name, 0)
	}
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	start := time.Now()
	c := f(cctx)
	took := time.Since(start)
	timedOut := errors.Is(cctx.Err(), context.DeadlineExceeded)
	cancel()
	if ctx.Err() != nil {
		return r.cancelled(ctx, name, took)
	}
	c.Side, c.Took = r.Side, took
	if c.Name == "" {
		c.Name = name
	}
	if timedOut && !c.OK && !c.Skipped {
		prefix := "no answer within " + timeout.String()
		if c.Detail == "" {
			c.Detail = prefix
		} else {
			c.Detail = prefix + ": " + c.Detail
		}
	}
	r.emit(c)
	return c
}

// Skip reports a check that cannot run, with the reason.
func (r *CheckRunner) Skip(name, why string) Check {
	c := Check{Side: r.Side, Name: name, Skipped: true, Detail: why}
	if r.stopped {
		c.Detail = CheckCancelled
		return c
	}
	r.emit(c)
	return c
}

// Stopped reports whether the run was cancelled: the caller should return.
func (r *CheckRunner) Stopped() bool { return r.stopped }

func (r *CheckRunner) cancelled(ctx context.Context, name string, took time.Duration) Check {
	c := Check{Side: r.Side, Name: name, Skipped: true, Detail: CheckCancelled, Took: took}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		c.Fix = "the doctor's overall time limit passed before this check ended"
	}
	r.emit(c)
	r.stopped = true
	return c
}

func (r *CheckRunner) emit(c Check) {
	if r.Report != nil {
		r.Report(c)
	}
}

// CheckTransport returns a copy of rt (when it is an *http.Transport) whose
// connections all close when life ends. A doctor gives its requests such a
// transport and ends life when it returns: net/http finishes a dial and TLS
// handshake in the background after its request was cancelled (for a later
// request), which would leave goroutines behind a cancelled doctor until
// the handshake times out.
func CheckTransport(life context.Context, rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	tr, ok := rt.(*http.Transport)
	if !ok {
		return rt
	}
	tr = tr.Clone()
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(life, cancel)()
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		context.AfterFunc(life, func() { conn.Close() })
		return conn, nil
	}
	return tr
}
