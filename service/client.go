package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// Client talks to a running service over its control socket. It implements
// tui.Controller for the console and backs the CLI's status, users and logs.
type Client struct {
	socket  string
	http    *http.Client
	timeout time.Duration
}

// ErrNotRunning is returned (wrapped in a *NotRunningError) when nothing
// answers on the control socket.
var ErrNotRunning = errors.New("the presencebridge service is not running")

// NotRunningError says that the socket could not be reached, and what to do.
type NotRunningError struct {
	Socket string
	Err    error
}

func (e *NotRunningError) Error() string {
	if errors.Is(e.Err, fs.ErrPermission) {
		return fmt.Sprintf("no permission to use the control socket %s: run as root or as a member of group %s", e.Socket, DefaultGroup)
	}
	return fmt.Sprintf("cannot reach the presencebridge service at %s: is the service running? (presencebridge status / presencebridge start)", e.Socket)
}

func (e *NotRunningError) Unwrap() []error { return []error{ErrNotRunning, e.Err} }

// NewClient returns a client for the socket at path ("" = DefaultSocket()).
func NewClient(path string) *Client {
	if path == "" {
		path = DefaultSocket()
	}
	c := &Client{socket: path, timeout: 15 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	c.http = &http.Client{Transport: tr}
	return c
}

// Socket is the path the client connects to.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	if body == nil {
		return c.send(ctx, method, path, "", nil)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, method, path, "application/json", bytes.NewReader(b))
}

// send does one request with a body of the given type; an error answer
// comes back as the error it carries.
func (c *Client) send(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://presencebridge"+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist) {
			return nil, &NotRunningError{Socket: c.socket, Err: err}
		}
		return nil, fmt.Errorf("control socket %s: %w", c.socket, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// readError turns an error answer back into the error the service's admin
// rules gave: same message, same kind (by its code, else by its status).
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	var e errorBody
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("the service answered %s", resp.Status)
	}
	return remoteError(e.Code, resp.StatusCode, e.Error)
}

func remoteError(code string, status int, msg string) error {
	kind := kindOfCode(code)
	if kind == nil {
		kind = statusKind(status)
	}
	return &adminError{kind: kind, msg: msg}
}

// statusKind is errorStatus read backwards, for answers without a code.
func statusKind(status int) error {
	switch status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		return ErrInvalid
	case http.StatusConflict:
		return ErrConflict
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotImplemented:
		return ErrNotConfigured
	case http.StatusServiceUnavailable:
		return ErrUnavailable
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	}
	return nil
}

// call does one request with the client's timeout (unless ctx has a
// deadline) and decodes the answer into out (when not nil).
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control socket %s: reading the answer to %s %s: %w", c.socket, method, path, err)
	}
	return nil
}

func esc(s string) string { return url.PathEscape(s) }

func withLimit(path string, limit int) string {
	if limit > 0 {
		return path + "?limit=" + strconv.Itoa(limit)
	}
	return path
}

// Overview implements tui.Controller.
func (c *Client) Overview(ctx context.Context) (psync.Overview, error) {
	var ov psync.Overview
	return ov, c.call(ctx, "GET", "/v1/status", nil, &ov)
}

// Health asks whether the engine and both sides are up.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.call(ctx, "GET", "/v1/health", nil, &h)
	if errors.Is(err, ErrUnavailable) {
		return Health{Detail: err.Error()}, nil // an answer, only not a happy one
	}
	return h, err
}

// Users implements tui.Controller.
func (c *Client) Users(ctx context.Context) ([]psync.UserStatus, error) {
	var us []psync.UserStatus
	return us, c.call(ctx, "GET", "/v1/users", nil, &us)
}

// UsersSince implements tui.Controller.
func (c *Client) UsersSince(ctx context.Context, since uint64) (psync.UserChanges, error) {
	var ch psync.UserChanges
	return ch, c.call(ctx, "GET", "/v1/users?since="+strconv.FormatUint(since, 10), nil, &ch)
}

// User implements tui.Controller.
func (c *Client) User(ctx context.Context, id psync.UserID) (psync.UserStatus, error) {
	var u psync.UserStatus
	return u, c.call(ctx, "GET", "/v1/users/"+esc(string(id)), nil, &u)
}

// History implements tui.Controller.
func (c *Client) History(ctx context.Context, id psync.UserID, limit int) ([]psync.Decision, error) {
	var ds []psync.Decision
	return ds, c.call(ctx, "GET", withLimit("/v1/users/"+esc(string(id))+"/history", limit), nil, &ds)
}

// Audit implements tui.Controller.
func (c *Client) Audit(ctx context.Context, limit int) ([]psync.Decision, error) {
	var ds []psync.Decision
	return ds, c.call(ctx, "GET", withLimit("/v1/audit", limit), nil, &ds)
}

// Profiles implements tui.Controller.
func (c *Client) Profiles(ctx context.Context) ([]psync.Profile, error) {
	var ps []psync.Profile
	return ps, c.call(ctx, "GET", "/v1/profiles", nil, &ps)
}

// PutProfile implements tui.Controller.
func (c *Client) PutProfile(ctx context.Context, p psync.Profile) error {
	if p.Name == "" {
		return errorf(ErrInvalid, "profile name is empty")
	}
	return c.call(ctx, "PUT", "/v1/profiles/"+esc(p.Name), p, nil)
}

// DeleteProfile implements tui.Controller.
func (c *Client) DeleteProfile(ctx context.Context, name string) error {
	if name == "" {
		return errorf(ErrInvalid, "profile name is empty")
	}
	return c.call(ctx, "DELETE", "/v1/profiles/"+esc(name), nil, nil)
}

// AssignProfile implements tui.Controller.
func (c *Client) AssignProfile(ctx context.Context, user psync.UserID, profile string) error {
	if user == "" {
		return errorf(ErrInvalid, "user id is empty")
	}
	return c.call(ctx, "PUT", "/v1/users/"+esc(string(user))+"/profile", map[string]string{"profile": profile}, nil)
}

// Settings implements tui.Controller.
func (c *Client) Settings(ctx context.Context) ([]psync.SettingValue, error) {
	var vs []psync.SettingValue
	return vs, c.call(ctx, "GET", "/v1/settings", nil, &vs)
}

// SetSetting changes one setting (PUT /v1/settings/KEY).
func (c *Client) SetSetting(ctx context.Context, key, value string) error {
	if key == "" {
		return errorf(ErrInvalid, "setting key is empty")
	}
	return c.call(ctx, "PUT", "/v1/settings/"+esc(key), map[string]string{"value": value}, nil)
}

// UnsetSetting implements tui.Controller.
func (c *Client) UnsetSetting(ctx context.Context, key string) error {
	if key == "" {
		return errorf(ErrInvalid, "setting key is empty")
	}
	return c.call(ctx, "DELETE", "/v1/settings/"+esc(key), nil, nil)
}

// StartSignIn implements tui.Controller.
func (c *Client) StartSignIn(ctx context.Context, account string) (psync.SignInPrompt, error) {
	var p psync.SignInPrompt
	return p, c.call(ctx, "POST", "/v1/signin", map[string]string{"account": account}, &p)
}

// Events implements tui.Controller: the stream runs until ctx ends or the
// service goes away; then the channel is closed.
func (c *Client) Events(ctx context.Context) (<-chan psync.Decision, error) {
	resp, err := c.request(ctx, "GET", "/v1/events", nil)
	if err != nil {
		return nil, err
	}
	out := make(chan psync.Decision, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var d psync.Decision
			if json.Unmarshal(sc.Bytes(), &d) != nil {
				continue // a line this build does not understand
			}
			select {
			case out <- d:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// --- the admin API (AdminAPI) ---------------------------------------------------

// Database says which database the service runs on.
func (c *Client) Database(ctx context.Context) (DatabaseInfo, error) {
	var d DatabaseInfo
	return d, c.call(ctx, "GET", "/v1/database", nil, &d)
}

// Get implements AdminAPI.
func (c *Client) Get(ctx context.Context, key string) (string, error) {
	if key == "" {
		return "", errorf(ErrInvalid, "the key is empty")
	}
	var v configValue
	return v.Value, c.call(ctx, "GET", "/v1/config/"+esc(key), nil, &v)
}

// Set implements AdminAPI.
func (c *Client) Set(ctx context.Context, key, value string) error {
	if key == "" {
		return errorf(ErrInvalid, "the key is empty")
	}
	return c.call(ctx, "PUT", "/v1/config/"+esc(key), map[string]string{"value": value}, nil)
}

// SetSettings implements AdminAPI and tui.Controller.
func (c *Client) SetSettings(ctx context.Context, set map[string]string) ([]string, error) {
	var out settingsChange
	if err := c.call(ctx, "POST", "/v1/settings", map[string]any{"set": set}, &out); err != nil {
		return nil, err
	}
	return out.Cleared, nil
}

// Unset implements AdminAPI.
func (c *Client) Unset(ctx context.Context, key string) error {
	if key == "" {
		return errorf(ErrInvalid, "the key is empty")
	}
	return c.call(ctx, "DELETE", "/v1/config/"+esc(key), nil, nil)
}

// AddProfile implements AdminAPI.
func (c *Client) AddProfile(ctx context.Context, p psync.Profile) error {
	return c.call(ctx, "POST", "/v1/profiles", p, nil)
}

// RenameProfile implements AdminAPI.
func (c *Client) RenameProfile(ctx context.Context, old, name string) error {
	if old == "" {
		return errorf(ErrInvalid, "profile name is empty")
	}
	return c.call(ctx, "POST", "/v1/profiles/"+esc(old)+"/rename", map[string]string{"name": name}, nil)
}

// ConfiguredUsers implements AdminAPI.
func (c *Client) ConfiguredUsers(ctx context.Context) ([]psync.User, error) {
	var us []psync.User
	return us, c.call(ctx, "GET", "/v1/config/users", nil, &us)
}

// ConfiguredUser implements AdminAPI.
func (c *Client) ConfiguredUser(ctx context.Context, id psync.UserID) (psync.User, error) {
	if id == "" {
		return psync.User{}, errorf(ErrInvalid, "user id is empty")
	}
	var u psync.User
	return u, c.call(ctx, "GET", "/v1/config/users/"+esc(string(id)), nil, &u)
}

// AddUser implements AdminAPI.
func (c *Client) AddUser(ctx context.Context, u psync.User) error {
	return c.call(ctx, "POST", "/v1/config/users", u, nil)
}

// UpdateUser implements AdminAPI.
func (c *Client) UpdateUser(ctx context.Context, u psync.User) error {
	if u.ID == "" {
		return errorf(ErrInvalid, "user id is empty")
	}
	return c.call(ctx, "PUT", "/v1/config/users/"+esc(string(u.ID)), u, nil)
}

// RemoveUser implements AdminAPI.
func (c *Client) RemoveUser(ctx context.Context, id psync.UserID) error {
	if id == "" {
		return errorf(ErrInvalid, "user id is empty")
	}
	return c.call(ctx, "DELETE", "/v1/config/users/"+esc(string(id)), nil, nil)
}

// Export implements AdminAPI.
func (c *Client) Export(ctx context.Context, w io.Writer) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.send(ctx, "GET", "/v1/config/export", "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, io.LimitReader(resp.Body, maxImportBody))
	return err
}

// Import implements AdminAPI. The file travels as it is; the service
// parses and checks it.
func (c *Client) Import(ctx context.Context, r io.Reader, o store.ImportOptions) (store.Changes, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Minute) // thousands of users, each applied live
		defer cancel()
	}
	q := url.Values{}
	if o.Merge {
		q.Set("merge", "true")
	}
	if o.DryRun {
		q.Set("dry_run", "true")
	}
	path := "/v1/config/import"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.send(ctx, "POST", path, "application/yaml", io.LimitReader(r, maxImportBody+1))
	if err != nil {
		return store.Changes{}, err
	}
	defer resp.Body.Close()
	var ch store.Changes
	if err := json.NewDecoder(resp.Body).Decode(&ch); err != nil {
		return store.Changes{}, fmt.Errorf("control socket %s: reading the answer to the import: %w", c.socket, err)
	}
	return ch, nil
}

// ImportGroup implements AdminAPI.
func (c *Client) ImportGroup(ctx context.Context, group string) (GroupImport, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	var g GroupImport
	return g, c.call(ctx, "POST", "/v1/config/import-group", map[string]string{"group": group}, &g)
}

// Doctor implements AdminAPI: the service runs the checks (it has the
// secrets) and streams each as it completes; report is called in order.
func (c *Client) Doctor(ctx context.Context, report func(psync.Check)) error {
	resp, err := c.send(ctx, "POST", "/v1/doctor", "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l doctorLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("control socket %s: a doctor line does not decode: %w", c.socket, err)
		}
		switch {
		case l.Check != nil:
			report(*l.Check)
		case l.Done != nil:
			if l.Done.Error != "" {
				return remoteError(l.Done.Code, 0, l.Done.Error)
			}
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errorf(ErrUnavailable, "the service ended the doctor run before its end (stopped or restarting)")
}

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}
