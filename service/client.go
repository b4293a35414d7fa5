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
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://presencebridge"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
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

// readError turns an error answer into an *Error carrying its message.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("the service answered %s", resp.Status)
	}
	return &Error{Status: resp.StatusCode, Msg: e.Error}
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
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusServiceUnavailable {
		return Health{Detail: e.Msg}, nil // an answer, only not a happy one
	}
	return h, err
}

// Users implements tui.Controller.
func (c *Client) Users(ctx context.Context) ([]psync.UserStatus, error) {
	var us []psync.UserStatus
	return us, c.call(ctx, "GET", "/v1/users", nil, &us)
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
		return &Error{Status: http.StatusBadRequest, Msg: "profile name is empty"}
	}
	return c.call(ctx, "PUT", "/v1/profiles/"+esc(p.Name), p, nil)
}

// DeleteProfile implements tui.Controller.
func (c *Client) DeleteProfile(ctx context.Context, name string) error {
	if name == "" {
		return &Error{Status: http.StatusBadRequest, Msg: "profile name is empty"}
	}
	return c.call(ctx, "DELETE", "/v1/profiles/"+esc(name), nil, nil)
}

// AssignProfile implements tui.Controller.
func (c *Client) AssignProfile(ctx context.Context, user psync.UserID, profile string) error {
	if user == "" {
		return &Error{Status: http.StatusBadRequest, Msg: "user id is empty"}
	}
	return c.call(ctx, "PUT", "/v1/users/"+esc(string(user))+"/profile", map[string]string{"profile": profile}, nil)
}

// Settings implements tui.Controller.
func (c *Client) Settings(ctx context.Context) ([]psync.SettingValue, error) {
	var vs []psync.SettingValue
	return vs, c.call(ctx, "GET", "/v1/settings", nil, &vs)
}

// SetSetting implements tui.Controller.
func (c *Client) SetSetting(ctx context.Context, key, value string) error {
	if key == "" {
		return &Error{Status: http.StatusBadRequest, Msg: "setting key is empty"}
	}
	return c.call(ctx, "PUT", "/v1/settings/"+esc(key), map[string]string{"value": value}, nil)
}

// UnsetSetting implements tui.Controller.
func (c *Client) UnsetSetting(ctx context.Context, key string) error {
	if key == "" {
		return &Error{Status: http.StatusBadRequest, Msg: "setting key is empty"}
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
