package sip

// The busy-on-busy writer for a Kamailio in front of the PBX: while a person
// is in a Teams call, each of their extensions has an entry in a Kamailio
// hash table (htable), and the proxy answers new calls to it 486 Busy Here
// (kamailio-busy.cfg, the snippet an admin adds). Entries are written over
// Kamailio's JSON-RPC (module jsonrpcs) carried by HTTP (module xhttp), each
// with its own lifetime: the bridge refreshes it while the call lasts, so a
// dead bridge's hold ends by itself on the proxy.
//
// What Kamailio 5.6 answers (observed against 5.6.3; every answer is a
// JSON-RPC 2.0 object, and an error's code is also the HTTP status):
//   htable.setxi [t, k, 1, secs] -> result "Ok. Key set to new value."
//                unknown table   -> error {500, "Failed to set the item"}
//   htable.get   [t, k]          -> result {"item":{"name","value","flags","expire"}}
//                missing key     -> error {500, "Key name doesn't exist in htable."}
//   htable.delete [t, k]         -> result absent on success
//                missing key     -> error {404, "Key not found in htable."}
//   the others with an unknown table   -> error {500, "No such htable"}
//   a method of a module not loaded    -> error {500, "Method Not Found"}
// Keys go as JSON strings: jsonrpcs passes them as strings, so "201" needs no
// "s:" prefix as it does with kamcmd; a JSON number as the key is refused
// ("Not enough parameters ..."). An expire of 0 would mean the table's
// autoexpire, so a lifetime is always at least 1 s. A lookup ignores an
// entry whose lifetime ran out even before htable's sweep removes it.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	psync "github.com/presencebridge/presencebridge/sync"
)

// maxRPCAnswer bounds what is read of one answer: the htable answers are a
// few hundred bytes; anything near this is not the RPC we talk to.
const maxRPCAnswer = 1 << 20

// kamailioRPC writes and reads busy-on-busy entries in one htable.
type kamailioRPC struct {
	url     string // as configured, for requests
	shown   string // url without credentials, for messages
	table   string
	hc      *http.Client
	nextID  atomic.Uint64
	noSetxi atomic.Bool // the server lacks htable.setxi (before 5.x): seti + setex
}

// newKamailioRPC checks the settings and returns the writer; nothing is
// sent until the first call. A nil hc gets a client with a 10 s timeout.
func newKamailioRPC(rpcURL, table string, hc *http.Client) (*kamailioRPC, error) {
	u, err := url.Parse(strings.TrimSpace(rpcURL))
	switch {
	case strings.TrimSpace(rpcURL) == "":
		return nil, errors.New("sip.rpc_url is empty: set it to Kamailio's JSON-RPC address, e.g. http://127.0.0.1:5071/RPC (needed by sip.writer kamailio)")
	case err != nil:
		return nil, fmt.Errorf("sip.rpc_url %q is not a URL (%v): write it like http://127.0.0.1:5071/RPC", rpcURL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("sip.rpc_url %q: the scheme must be http or https, e.g. http://127.0.0.1:5071/RPC", u.Redacted())
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("sip.rpc_url %q has no host: write it like http://127.0.0.1:5071/RPC", u.Redacted())
	case u.Path == "" || u.Path == "/":
		return nil, fmt.Errorf("sip.rpc_url %q has no path: add the path Kamailio serves JSON-RPC on, e.g. http://%s/RPC", u.Redacted(), u.Host)
	case u.Fragment != "":
		return nil, fmt.Errorf("sip.rpc_url %q: remove the #fragment", u.Redacted())
	}
	if err := checkHTableName(table); err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &kamailioRPC{url: u.String(), shown: u.Redacted(), table: table, hc: hc}, nil
}

func checkHTableName(table string) error {
	if table == "" {
		return errors.New("sip.htable is empty: set it to the htable name of kamailio-busy.cfg (default teamsbusy)")
	}
	if len(table) > 64 {
		return fmt.Errorf("sip.htable %q is longer than 64 characters", table)
	}
	for _, r := range table {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("sip.htable %q: an htable name has only letters, digits and '_' (default teamsbusy)", table)
		}
	}
	return nil
}

// checkExt refuses keys the proxy could never match against a Request-URI
// user; nothing is sent for them.
func checkExt(ext string) error {
	if ext == "" {
		return psync.NotSent(fmt.Errorf("kamailio htable: empty extension: %w", psync.ErrRejected))
	}
	if len(ext) > 128 {
		return psync.NotSent(fmt.Errorf("kamailio htable: extension longer than 128 bytes: %w", psync.ErrRejected))
	}
	for _, r := range ext {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return psync.NotSent(fmt.Errorf("kamailio htable: extension %q has a space or control character: %w", ext, psync.ErrRejected))
		}
	}
	return nil
}

// SetBusy makes the proxy answer calls to ext 486 for ttl (whole seconds,
// at least 1), replacing any lifetime the entry had.
func (k *kamailioRPC) SetBusy(ctx context.Context, ext string, ttl time.Duration) error {
	if err := checkExt(ext); err != nil {
		return err
	}
	if ttl <= 0 {
		return psync.NotSent(fmt.Errorf("kamailio htable: busy entry for %s needs a positive lifetime, not %v: %w", ext, ttl, psync.ErrRejected))
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	if !k.noSetxi.Load() {
		_, rerr, err := k.call(ctx, "htable.setxi", k.table, ext, 1, secs)
		if err != nil {
			return fmt.Errorf("set %s busy: %w", ext, err)
		}
		if rerr == nil {
			return nil
		}
		if !rerr.methodMissing() {
			return k.setError(ctx, "set "+ext+" busy", rerr)
		}
		k.noSetxi.Store(true)
	}
	// Without setxi the value and its lifetime take two requests; between
	// them the entry lives for the table's autoexpire, which is bounded too.
	if _, rerr, err := k.call(ctx, "htable.seti", k.table, ext, 1); err != nil {
		return fmt.Errorf("set %s busy: %w", ext, err)
	} else if rerr != nil {
		return k.setError(ctx, "set "+ext+" busy", rerr)
	}
	if _, rerr, err := k.call(ctx, "htable.setex", k.table, ext, secs); err != nil {
		return fmt.Errorf("set the lifetime of %s's busy entry: %w", ext, err)
	} else if rerr != nil {
		return k.setError(ctx, "set the lifetime of "+ext+"'s busy entry", rerr)
	}
	return nil
}

// setError explains an error answer to a set. Kamailio 5.6's htable.setxi
// answers an unknown table with a bare 500 "Failed to set the item", the
// same as a full shared memory; the table list tells the two apart.
func (k *kamailioRPC) setError(ctx context.Context, what string, e *rpcError) error {
	if e.Code >= 500 && !e.tableMissing() && !e.methodMissing() {
		if err := k.Check(ctx); errors.Is(err, psync.ErrRejected) {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return k.answerError(what, e)
}

// ClearBusy lets calls to ext through again. An entry already gone (never
// set, expired, deleted by hand) is success.
func (k *kamailioRPC) ClearBusy(ctx context.Context, ext string) error {
	if err := checkExt(ext); err != nil {
		return err
	}
	_, rerr, err := k.call(ctx, "htable.delete", k.table, ext)
	if err != nil {
		return fmt.Errorf("clear %s's busy entry: %w", ext, err)
	}
	if rerr != nil && !rerr.keyMissing() {
		return k.answerError("clear "+ext+"'s busy entry", rerr)
	}
	return nil
}

// Busy reports whether ext has an entry now: the proxy would answer a call
// to it 486.
func (k *kamailioRPC) Busy(ctx context.Context, ext string) (bool, error) {
	if err := checkExt(ext); err != nil {
		return false, err
	}
	res, rerr, err := k.call(ctx, "htable.get", k.table, ext)
	if err != nil {
		return false, fmt.Errorf("read %s's busy entry: %w", ext, err)
	}
	if rerr != nil {
		if rerr.keyMissing() {
			return false, nil
		}
		return false, k.answerError("read "+ext+"'s busy entry", rerr)
	}
	var got struct {
		Item *struct {
			Name string `json:"name"`
		} `json:"item"`
	}
	if err := json.Unmarshal(res, &got); err != nil || got.Item == nil {
		return false, fmt.Errorf("read %s's busy entry: htable.get answered %.200s, not an item: %w", ext, res, psync.ErrRejected)
	}
	return true, nil
}

// Check reports whether the RPC answers and the table exists (for doctor).
func (k *kamailioRPC) Check(ctx context.Context) error {
	res, rerr, err := k.call(ctx, "htable.listTables")
	if err != nil {
		return err
	}
	if rerr != nil {
		return k.answerError("list the htables", rerr)
	}
	var tables []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(res, &tables); err != nil {
		return fmt.Errorf("kamailio RPC at %s (sip.rpc_url): htable.listTables answered %.200s, not a list of tables: %w", k.shown, res, psync.ErrRejected)
	}
	names := make([]string, 0, len(tables))
	for _, t := range tables {
		if t.Name == k.table {
			return nil
		}
		names = append(names, t.Name)
	}
	return fmt.Errorf("kamailio at %s has no htable %q (sip.htable; it has: %s): %s: %w",
		k.shown, k.table, listOrNone(names), k.tableFix(), psync.ErrRejected)
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (k *kamailioRPC) tableFix() string {
	return fmt.Sprintf(`add modparam("htable", "htable", "%s=>size=10;autoexpire=3600;") to kamailio.cfg (see kamailio-busy.cfg) and restart Kamailio, or set sip.htable to the table it has`, k.table)
}

// rpcError is a JSON-RPC error answer: the server got the request and
// refused or failed it.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) methodMissing() bool {
	return strings.Contains(strings.ToLower(e.Message), "method not found") || e.Code == -32601
}

func (e *rpcError) tableMissing() bool {
	return strings.Contains(strings.ToLower(e.Message), "no such htable")
}

func (e *rpcError) keyMissing() bool {
	m := strings.ToLower(e.Message)
	return strings.Contains(m, "key") && (strings.Contains(m, "not found") || strings.Contains(m, "doesn't exist") || strings.Contains(m, "does not exist"))
}

// answerError turns an error answer into the error to return: refusals
// that will not change by retrying are ErrRejected with the fix, the rest
// (the server failing inside) ErrUnavailable.
func (k *kamailioRPC) answerError(what string, e *rpcError) error {
	switch {
	case e.tableMissing():
		return fmt.Errorf("%s: kamailio at %s has no htable %q (sip.htable): %s: %w", what, k.shown, k.table, k.tableFix(), psync.ErrRejected)
	case e.methodMissing():
		return fmt.Errorf("%s: kamailio at %s does not know the htable RPC commands: load the htable module (loadmodule \"htable.so\", see kamailio-busy.cfg) and restart Kamailio: %w", what, k.shown, psync.ErrRejected)
	case e.Code >= 500 && e.Code < 600:
		return fmt.Errorf("%s: kamailio at %s failed: %d %s: %w", what, k.shown, e.Code, e.Message, psync.ErrUnavailable)
	default:
		return fmt.Errorf("%s: kamailio at %s refused: %d %s: %w", what, k.shown, e.Code, e.Message, psync.ErrRejected)
	}
}

// call sends one JSON-RPC request. It returns the result, or the server's
// error answer, or err when no JSON-RPC answer came (err is then
// classified: NotSent(ErrUnavailable) when nothing reached the server,
// ErrUnavailable when the outcome is unknown or the server is failing,
// ErrRejected when what answers is not Kamailio's JSON-RPC).
func (k *kamailioRPC) call(ctx context.Context, method string, params ...any) (json.RawMessage, *rpcError, error) {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  []any  `json:"params"`
		ID      uint64 `json:"id"`
	}{"2.0", method, params, k.nextID.Add(1)})
	if err != nil {
		return nil, nil, psync.NotSent(fmt.Errorf("kamailio RPC %s: %v: %w", method, err, psync.ErrRejected))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, psync.NotSent(fmt.Errorf("kamailio RPC at %s (sip.rpc_url): %v: %w", k.shown, err, psync.ErrRejected))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	// Every command here may be repeated with the same outcome (set the
	// entry and its lifetime, delete, read). Saying so lets net/http
	// resend on a new connection when a kept-alive one turns out dead
	// (Kamailio closes idle TCP connections, or was restarted) instead of
	// failing after writing into it. The empty key is not sent.
	req.Header["Idempotency-Key"] = nil
	resp, err := k.hc.Do(req)
	if err != nil {
		return nil, nil, k.transportError(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCAnswer+1))
	if err != nil {
		return nil, nil, fmt.Errorf("kamailio RPC at %s (sip.rpc_url): reading the answer to %s: %v: %w", k.shown, method, err, psync.ErrUnavailable)
	}
	if len(data) > maxRPCAnswer {
		return nil, nil, fmt.Errorf("kamailio RPC at %s (sip.rpc_url): the answer to %s is larger than 1 MiB; check that sip.rpc_url points at Kamailio's JSON-RPC: %w", k.shown, method, psync.ErrRejected)
	}
	var ans struct {
		JSONRPC string          `json:"jsonrpc"`
		Result  json.RawMessage `json:"result"`
		Error   *rpcError       `json:"error"`
	}
	jsonErr := json.Unmarshal(data, &ans)
	if jsonErr == nil && ans.JSONRPC == "2.0" {
		// Kamailio sets the HTTP status to the error's code: an error
		// answer with a 5xx status is still an answer.
		if ans.Error != nil {
			return nil, ans.Error, nil
		}
		if resp.StatusCode/100 == 2 {
			return ans.Result, nil, nil
		}
	}
	return nil, nil, k.statusError(method, resp, data)
}

// statusError explains an HTTP answer that is not a JSON-RPC answer.
func (k *kamailioRPC) statusError(method string, resp *http.Response, data []byte) error {
	text := strings.TrimSpace(string(bytes.ToValidUTF8(data, []byte("?"))))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	switch code := resp.StatusCode; {
	case code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return fmt.Errorf("kamailio RPC at %s (sip.rpc_url): %s to %s: %q: %w", k.shown, resp.Status, method, text, psync.ErrUnavailable)
	case code == http.StatusNotFound:
		return fmt.Errorf("kamailio RPC at %s (sip.rpc_url): %s: nothing serves JSON-RPC at this path; set sip.rpc_url to the path kamailio.cfg hands to jsonrpc_dispatch() (kamailio-busy.cfg: /RPC): %w", k.shown, resp.Status, psync.ErrRejected)
	case code == http.StatusForbidden:
		return fmt.Errorf("kamailio RPC at %s (sip.rpc_url): %s (%q): Kamailio refuses JSON-RPC from the bridge here; check that sip.rpc_url's port is the one set as TEAMSBUSY_RPC_PORT in kamailio-busy.cfg and that the bridge's address is allowed: %w", k.shown, resp.Status, text, psync.ErrRejected)
	default:
		return fmt.Errorf("kamailio RPC at %s (sip.rpc_url): %s to %s is not a JSON-RPC answer (%q); check that sip.rpc_url points at Kamailio's jsonrpcs over xhttp (kamailio-busy.cfg): %w", k.shown, resp.Status, method, text, psync.ErrRejected)
	}
}

// transportError classifies a request that got no HTTP answer. Only a
// failure to connect certainly sent nothing.
func (k *kamailioRPC) transportError(ctx context.Context, err error) error {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr):
		return psync.NotSent(fmt.Errorf("kamailio RPC at %s (sip.rpc_url): the server's TLS certificate is not trusted (%v); fix the certificate or the host name in sip.rpc_url: %w", k.shown, err, psync.ErrUnavailable))
	case errors.As(err, &dnsErr):
		return psync.NotSent(fmt.Errorf("kamailio RPC at %s (sip.rpc_url): cannot resolve the host (%v); check the host name in sip.rpc_url: %w", k.shown, dnsErr, psync.ErrUnavailable))
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return psync.NotSent(fmt.Errorf("kamailio RPC at %s (sip.rpc_url): cannot connect (%v); check that Kamailio runs and listens there for HTTP (listen=tcp:…, xhttp and jsonrpcs loaded, see kamailio-busy.cfg): %w", k.shown, opErr.Err, psync.ErrUnavailable))
	case ctx.Err() != nil:
		return fmt.Errorf("kamailio RPC at %s (sip.rpc_url): %w (%w)", k.shown, ctx.Err(), psync.ErrUnavailable)
	default:
		return fmt.Errorf("kamailio RPC at %s (sip.rpc_url): %v: %w", k.shown, err, psync.ErrUnavailable)
	}
}
