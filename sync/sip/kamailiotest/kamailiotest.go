// Package kamailiotest runs a real Kamailio proxy and presence server, and
// sipp callers and callees, on 127.0.0.1 for the SIP connector's tests.
//
// Each Start writes its own kamailio.cfg (from an embedded template that
// includes the documented busy-on-busy snippet, kamailio-busy.cfg) and fresh
// db_text tables into the test's temporary folder, takes free loopback
// ports, and stops the process when the test ends. The programs come from
// Debian's kamailio, kamailio-presence-modules and sip-tester packages; a
// test calls Require first, which skips without them (fails under CI=true).
package kamailiotest

import (
	"bytes"
	"context"
	"crypto/md5"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// BusySnippet is kamailio-busy.cfg: what an admin adds to the Kamailio in
// front of their PBX so that the bridge's htable entries answer calls 486.
// sync/sip/kamailio-busy.cfg is the copy the documentation points to; a test
// in package sip keeps the two the same.
//
//go:embed kamailio-busy.cfg
var BusySnippet string

//go:embed kamailio.cfg.tmpl
var cfgTemplate string

//go:embed uac.xml
var uacScenario []byte

//go:embed uas.xml
var uasScenario []byte

// DefaultHTable is the table name the snippet uses.
const DefaultHTable = "teamsbusy"

// Packages are the Debian packages that provide what the tests run.
const Packages = "kamailio kamailio-presence-modules sip-tester"

// Credentials is a SIP account in the proxy's subscriber table.
type Credentials struct{ User, Password string }

// Options shape the proxy one test needs.
type Options struct {
	// Auth, when set, makes the proxy challenge SUBSCRIBE, PUBLISH and
	// REGISTER with 407 and accept only this account (realm 127.0.0.1).
	Auth *Credentials
	// MaxExpires caps the Expires a subscription is granted (whole
	// seconds); zero keeps Kamailio's default of 3600 s. There is no
	// minimum: a short request is granted as asked.
	MaxExpires time.Duration
	// HTable names the busy-on-busy hash table (default teamsbusy).
	HTable string
	// UAS is the host:port that calls to extensions without a
	// registration are relayed to (a sipp UAS from UAS); empty answers
	// them 404.
	UAS string
	// Debug is Kamailio's log level (default 2; 3 logs every request).
	Debug int
}

// Kamailio is one running proxy. Its ports stay the same across Restart.
type Kamailio struct {
	opts     Options
	dir      string
	cfg      string
	log      string
	sipPort  int
	httpPort int

	// StartTook is how long the last start took until the RPC answered.
	StartTook time.Duration

	mu   sync.Mutex
	proc *process
}

// Available reports why the tests cannot run here, or nil.
func Available() error {
	if err := platformOK(); err != nil {
		return err
	}
	var missing []string
	if _, err := kamailioPath(); err != nil {
		missing = append(missing, "kamailio (package kamailio)")
	} else if modulesDir() == "" {
		missing = append(missing, "Kamailio's presence modules (package kamailio-presence-modules)")
	}
	if _, err := sippPath(); err != nil {
		missing = append(missing, "sipp (package sip-tester)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("not installed: %s", strings.Join(missing, ", "))
	}
	return nil
}

// Require skips the test when Kamailio or sipp is missing, except under
// CI=true, where a missing tool fails the test: CI installs them.
func Require(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" && platformOK() == nil {
		t.Fatalf("real-Kamailio test cannot run: %v; CI must install them: apt-get install -y %s (.ci/run)", err, Packages)
	}
	t.Skipf("real-Kamailio test skipped: %v (Debian: apt-get install -y %s)", err, Packages)
}

func kamailioPath() (string, error) { return lookPath("kamailio", "/usr/sbin/kamailio") }
func sippPath() (string, error)     { return lookPath("sipp", "/usr/bin/sipp") }

// lookPath also tries the Debian location: /usr/sbin is not on every
// user's PATH.
func lookPath(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if st, err := os.Stat(fallback); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return fallback, nil
	}
	return "", fmt.Errorf("%s not found", name)
}

// modulesDir finds Kamailio's module folder by the presence module that the
// template needs (a separate package on Debian).
func modulesDir() string {
	for _, pattern := range []string{
		"/usr/lib/*/kamailio/modules/presence.so",
		"/usr/lib/kamailio/modules/presence.so",
		"/usr/lib64/kamailio/modules/presence.so",
		"/usr/local/lib/*/kamailio/modules/presence.so",
		"/usr/local/lib/kamailio/modules/presence.so",
		"/usr/local/lib64/kamailio/modules/presence.so",
	} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return filepath.Dir(m[0])
		}
	}
	return ""
}

// Start starts a Kamailio for t and stops it when t ends.
func Start(t testing.TB, opts Options) *Kamailio {
	t.Helper()
	Require(t)
	if opts.HTable == "" {
		opts.HTable = DefaultHTable
	}
	if opts.Debug == 0 {
		opts.Debug = 2
	}
	if opts.MaxExpires < 0 || opts.MaxExpires%time.Second != 0 {
		t.Fatalf("kamailiotest: MaxExpires %v: Kamailio takes whole seconds", opts.MaxExpires)
	}
	if opts.Auth != nil && (opts.Auth.User == "" || strings.ContainsAny(opts.Auth.User+opts.Auth.Password, ":\n")) {
		t.Fatalf("kamailiotest: Auth needs a user, and no ':' or newline in user or password")
	}
	dir := t.TempDir()
	k := &Kamailio{
		opts: opts,
		dir:  dir,
		cfg:  filepath.Join(dir, "kamailio.cfg"),
		log:  filepath.Join(dir, "kamailio.log"),
	}
	sip, http, err := freePorts()
	if err != nil {
		t.Fatalf("kamailiotest: %v", err)
	}
	k.sipPort, k.httpPort = sip, http
	if err := k.writeConfig(); err != nil {
		t.Fatalf("kamailiotest: %v", err)
	}
	t.Cleanup(func() {
		k.stop()
		if t.Failed() {
			t.Logf("kamailio log (last lines):\n%s", tail(k.log, 60))
		}
	})
	k.start(t)
	return k
}

// SIPAddr is the proxy's SIP address (UDP and TCP), 127.0.0.1:port.
func (k *Kamailio) SIPAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.sipPort)) }

// RPCURL is the JSON-RPC endpoint (the bridge's sip.rpc_url).
func (k *Kamailio) RPCURL() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(k.httpPort)) + "/RPC"
}

// HTable is the busy-on-busy table's name.
func (k *Kamailio) HTable() string { return k.opts.HTable }

// Dir is the folder with kamailio.cfg, kamailio.log and the db_text tables.
func (k *Kamailio) Dir() string { return k.dir }

// Restart kills Kamailio and starts it again on the same ports with fresh
// tables: subscriptions, publications, registrations and htable entries are
// all lost, as when a proxy's host reboots.
func (k *Kamailio) Restart(t testing.TB) {
	t.Helper()
	k.Kill()
	if err := k.writeTables(); err != nil {
		t.Fatalf("kamailiotest: %v", err)
	}
	k.start(t)
}

// Kill stops Kamailio at once (SIGKILL to its process group) and waits for
// it to be gone. Killing a stopped Kamailio does nothing.
func (k *Kamailio) Kill() {
	k.mu.Lock()
	p := k.proc
	k.proc = nil
	k.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

func (k *Kamailio) stop() {
	k.mu.Lock()
	p := k.proc
	k.proc = nil
	k.mu.Unlock()
	if p != nil {
		p.terminate(5 * time.Second)
	}
}

func (k *Kamailio) start(t testing.TB) {
	t.Helper()
	bin, err := kamailioPath()
	if err != nil {
		t.Fatalf("kamailiotest: %v", err)
	}
	logf, err := os.OpenFile(k.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("kamailiotest: %v", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== start %s\n", time.Now().Format(time.RFC3339Nano))
	began := time.Now()
	// -DD: stay in the foreground (children still fork), -E: log to
	// stderr; shared memory kept small because several tests run at once.
	cmd := exec.Command(bin, "-f", k.cfg, "-DD", "-E", "-m", "48", "-M", "8",
		"-L", modulesDir(), "-Y", filepath.Join(k.dir, "run"), "-P", filepath.Join(k.dir, "run", "kamailio.pid"))
	cmd.Dir = k.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	p, err := startProcess(cmd, syscall.SIGTERM)
	if err != nil {
		t.Fatalf("kamailiotest: start kamailio: %v", err)
	}
	k.mu.Lock()
	k.proc = p
	k.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := k.waitReady(ctx, p); err != nil {
		t.Fatalf("kamailiotest: kamailio did not come up: %v\nlog:\n%s", err, tail(k.log, 40))
	}
	k.StartTook = time.Since(began)
}

// waitReady polls the RPC until it answers: by then the SIP sockets are
// bound and the worker processes run.
func (k *Kamailio) waitReady(ctx context.Context, p *process) error {
	body := []byte(`{"jsonrpc":"2.0","method":"core.version","id":1}`)
	hc := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, k.RPCURL(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"result"`)) {
				return nil
			}
			err = fmt.Errorf("RPC answered %s: %s", resp.Status, b)
		}
		select {
		case <-p.done:
			return fmt.Errorf("kamailio exited (%v)", p.err)
		case <-ctx.Done():
			return fmt.Errorf("no RPC answer at %s: %v", k.RPCURL(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (k *Kamailio) writeConfig() error {
	if err := os.MkdirAll(filepath.Join(k.dir, "run"), 0o700); err != nil {
		return err
	}
	if err := k.writeTables(); err != nil {
		return err
	}
	tmpl, err := template.New("kamailio.cfg").Parse(cfgTemplate)
	if err != nil {
		return fmt.Errorf("config template: %w", err)
	}
	maxExp := 3600
	if k.opts.MaxExpires > 0 {
		maxExp = int(k.opts.MaxExpires / time.Second)
	}
	snippet := BusySnippet
	if k.opts.HTable != DefaultHTable {
		snippet = strings.ReplaceAll(snippet, DefaultHTable+"=>", k.opts.HTable+"=>")
	}
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, map[string]any{
		"Debug":       k.opts.Debug,
		"SIPPort":     k.sipPort,
		"HTTPPort":    k.httpPort,
		"DBDir":       filepath.Join(k.dir, "dbtext"),
		"MaxExpires":  maxExp,
		"UAS":         k.opts.UAS,
		"Auth":        k.opts.Auth != nil,
		"BusySnippet": snippet,
	})
	if err != nil {
		return fmt.Errorf("config template: %w", err)
	}
	return os.WriteFile(k.cfg, buf.Bytes(), 0o600)
}

// The db_text tables the modules open. Their headers follow Kamailio 5.6's
// schema (/usr/share/kamailio/dbtext/kamailio); the version rows must match
// it or a module refuses to start. Every table starts empty but subscriber:
// a row with a NULL column (ha1 left empty) makes db_text fail the table.
var dbTables = map[string]string{
	"version": "id(int,auto) table_name(string) table_version(int) \n" +
		"0:version:1\n0:active_watchers:12\n0:presentity:5\n0:pua:7\n0:watchers:3\n0:xcap:4\n0:subscriber:7\n",
	"presentity":      "id(int,auto) username(string) domain(string) event(string) etag(string) expires(int) received_time(int) body(string) sender(string) priority(int) ruid(string,null) \n",
	"active_watchers": "id(int,auto) presentity_uri(string) watcher_username(string) watcher_domain(string) to_user(string) to_domain(string) event(string) event_id(string,null) to_tag(string) from_tag(string) callid(string) local_cseq(int) remote_cseq(int) contact(string) record_route(string,null) expires(int) status(int) reason(string,null) version(int) socket_info(string) local_contact(string) from_user(string) from_domain(string) updated(int) updated_winfo(int) flags(int) user_agent(string,null) \n",
	"watchers":        "id(int,auto) presentity_uri(string) watcher_username(string) watcher_domain(string) event(string) status(int) reason(string,null) inserted_time(int) \n",
	"xcap":            "id(int,auto) username(string) domain(string) doc(string) doc_type(int) etag(string) source(int) doc_uri(string) port(int) \n",
	"pua":             "id(int,auto) pres_uri(string) pres_id(string) event(int) expires(int) desired_expires(int) flag(int) etag(string) tuple_id(string,null) watcher_uri(string) call_id(string) to_tag(string) from_tag(string) cseq(int) record_route(string,null) contact(string) remote_contact(string) version(int) extra_headers(string) \n",
	"subscriber":      "id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) \n",
}

func (k *Kamailio) writeTables() error {
	db := filepath.Join(k.dir, "dbtext")
	if err := os.RemoveAll(db); err != nil {
		return err
	}
	if err := os.MkdirAll(db, 0o700); err != nil {
		return err
	}
	for name, text := range dbTables {
		if name == "subscriber" && k.opts.Auth != nil {
			text += subscriberRow(k.opts.Auth.User, "127.0.0.1", k.opts.Auth.Password)
		}
		if err := os.WriteFile(filepath.Join(db, name), []byte(text), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// subscriberRow is a db_text subscriber row with the plain password and both
// ha1 columns filled in (auth_db reads the password; nothing may be NULL).
func subscriberRow(user, realm, password string) string {
	ha1 := md5hex(user + ":" + realm + ":" + password)
	ha1b := md5hex(user + "@" + realm + ":" + realm + ":" + password)
	esc := strings.NewReplacer(`\`, `\\`, ":", `\:`)
	return fmt.Sprintf("1:%s:%s:%s:%s:%s\n", esc.Replace(user), realm, esc.Replace(password), ha1, ha1b)
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// freePorts picks a port free on both UDP and TCP for SIP and another free
// TCP port for HTTP, all on 127.0.0.1. They are released before Kamailio
// binds them; a clash with another process in between fails that start.
func freePorts() (sip, http int, err error) {
	for range 50 {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			tl.Close()
			continue
		}
		hl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tl.Close()
			ul.Close()
			return 0, 0, err
		}
		http := hl.Addr().(*net.TCPAddr).Port
		tl.Close()
		ul.Close()
		hl.Close()
		return port, http, nil
	}
	return 0, 0, errors.New("no port free on both UDP and TCP on 127.0.0.1")
}

// freeUDPPort picks a free UDP port on 127.0.0.1.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
