package kamailiotest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SippUAS is a sipp callee that answers every call reaching it: it rings
// 300 ms, answers 200 and waits for the BYE.
type SippUAS struct {
	addr string
	log  string
	msgs string
}

// Addr is the callee's SIP address (UDP), for Options.UAS.
func (u *SippUAS) Addr() string { return u.addr }

// Invites counts the calls (INVITEs) that reached this callee so far.
func (u *SippUAS) Invites() int {
	b, err := os.ReadFile(u.msgs)
	if err != nil {
		return 0
	}
	// the trace holds what sipp received and sent; a callee sends no INVITE
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "INVITE sip:") {
			n++
		}
	}
	return n
}

// UAS starts a sipp callee on a free 127.0.0.1 UDP port; it runs until the
// test ends.
func UAS(t testing.TB) *SippUAS {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	scen := filepath.Join(dir, "uas.xml")
	if err := os.WriteFile(scen, uasScenario, 0o600); err != nil {
		t.Fatalf("kamailiotest: %v", err)
	}
	port, err := freeUDPPort()
	if err != nil {
		t.Fatalf("kamailiotest: %v", err)
	}
	u := &SippUAS{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: filepath.Join(dir, "uas.out"), msgs: filepath.Join(dir, "uas.msg")}
	p, err := runSipp(dir, u.log, "-sf", scen, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-trace_msg", "-message_file", u.msgs)
	if err != nil {
		t.Fatalf("kamailiotest: start sipp UAS: %v", err)
	}
	t.Cleanup(func() {
		p.terminate(2 * time.Second)
		if t.Failed() {
			t.Logf("sipp UAS messages (last lines):\n%s", tail(filepath.Join(dir, "uas.msg"), 60))
		}
	})
	// Ready when the port is taken: sipp binds it before it reads
	// anything, so an INVITE sent afterwards is not lost.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.ListenPacket("udp", u.addr)
		if err != nil {
			break
		}
		c.Close()
		select {
		case <-p.done:
			t.Fatalf("kamailiotest: sipp UAS exited (%v):\n%s", p.err, tail(u.log, 30))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailiotest: sipp UAS did not bind %s:\n%s", u.addr, tail(u.log, 30))
		}
	}
	return u
}

// SippCall is one call placed by a sipp caller.
type SippCall struct {
	dir  string
	msgs string
	p    *process
	// Took is how long the call took from start to the end of sipp,
	// set by Wait.
	Took  time.Duration
	began time.Time
	once  sync.Once
	code  int
	err   error
}

// StartCall places a call from extension from to extension to through the
// proxy; a call that is answered is held for holdFor, then hung up. Wait
// gives the final answer code.
func (k *Kamailio) StartCall(t testing.TB, from, to string, holdFor time.Duration) *SippCall {
	t.Helper()
	return startCall(t, k.SIPAddr(), from, to, holdFor)
}

// Call places a call through the proxy (see StartCall) and returns the final
// answer code to the INVITE: 200 (answered, held for holdFor, hung up) or an
// error code such as 486.
func (k *Kamailio) Call(t testing.TB, from, to string, holdFor time.Duration) int {
	t.Helper()
	return k.StartCall(t, from, to, holdFor).Wait(t)
}

func startCall(t testing.TB, proxy, from, to string, holdFor time.Duration) *SippCall {
	t.Helper()
	Require(t)
	if !validExt(from) || !validExt(to) {
		t.Fatalf("kamailiotest: extensions %q and %q must be letters, digits, '+', '-', '.' or '_'", from, to)
	}
	dir := t.TempDir()
	scen := filepath.Join(dir, "uac.xml")
	if err := os.WriteFile(scen, uacScenario, 0o600); err != nil {
		t.Fatalf("kamailiotest: %v", err)
	}
	c := &SippCall{dir: dir, msgs: filepath.Join(dir, "uac.msg"), began: time.Now()}
	// -p: left to itself sipp takes 5060 when it is free, where the
	// presence modules' requests to "sip:<ext>@127.0.0.1" would go.
	// -timeout bounds a call that gets no answer at all.
	port, err := freeUDPPort()
	if err != nil {
		t.Fatalf("kamailiotest: %v", err)
	}
	timeout := int((holdFor+30*time.Second)/time.Second) + 1
	p, err := runSipp(dir, filepath.Join(dir, "uac.out"), proxy, "-sf", scen, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-s", to, "-key", "caller", from, "-m", "1", "-d", strconv.FormatInt(holdFor.Milliseconds(), 10),
		"-timeout", strconv.Itoa(timeout), "-timeout_error",
		"-trace_msg", "-message_file", c.msgs)
	if err != nil {
		t.Fatalf("kamailiotest: start sipp caller: %v", err)
	}
	c.p = p
	t.Cleanup(func() { p.kill() })
	return c
}

// Wait waits for the call to end and returns the final answer code to its
// INVITE. It fails the test when sipp failed without one.
func (c *SippCall) Wait(t testing.TB) int {
	t.Helper()
	code, err := c.Result()
	if err != nil {
		t.Fatalf("kamailiotest: call: %v", err)
	}
	return code
}

// Result is Wait for use from another goroutine: it does not touch t.
func (c *SippCall) Result() (int, error) {
	c.once.Do(func() {
		<-c.p.done
		c.Took = time.Since(c.began)
		code, err := finalCode(c.msgs)
		switch {
		case err != nil:
			c.err = fmt.Errorf("%v (sipp: %v)\nsipp output:\n%s", err, c.p.err, tail(filepath.Join(c.dir, "uac.out"), 30))
		case c.p.err != nil && code == 200:
			// answered, but the ACK/BYE part failed
			c.code, c.err = code, fmt.Errorf("answered 200 but the call did not end cleanly (sipp: %v); messages:\n%s", c.p.err, tail(c.msgs, 60))
		default:
			c.code = code
		}
	})
	return c.code, c.err
}

// finalCode reads sipp's message trace for the last final answer (200-699)
// to the INVITE.
func finalCode(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("no message trace: %w", err)
	}
	defer f.Close()
	code, status := 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "SIP/2.0 "); ok && len(rest) >= 3 {
			status, _ = strconv.Atoi(rest[:3])
			continue
		}
		if status >= 200 && strings.HasPrefix(strings.ToLower(line), "cseq:") && strings.HasSuffix(strings.ToUpper(line), " INVITE") {
			code = status
		}
		if line == "" {
			status = 0
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if code == 0 {
		return 0, errors.New("no final answer to the INVITE")
	}
	return code, nil
}

func validExt(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("+-._", r)) {
			return false
		}
	}
	return true
}

// runSipp starts sipp in dir with its screen output in out. -cp takes a
// free control port: the default 8888 clashes between parallel sipps. A
// port found free can be taken by another process before sipp binds it
// (seen about once in 300 starts): sipp then exits at once saying so, and
// is started again on another port.
func runSipp(dir, out string, args ...string) (*process, error) {
	bin, err := sippPath()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		cp, err := freeUDPPort()
		if err != nil {
			return nil, err
		}
		f, err := os.Create(out)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, append(args, "-nostdin", "-cp", strconv.Itoa(cp))...)
		cmd.Dir = dir
		cmd.Stdout = f
		cmd.Stderr = f
		p, err := startProcess(cmd, syscall.SIGKILL)
		f.Close()
		if err != nil || attempt == 3 {
			return p, err
		}
		select {
		case <-p.done:
			if text, _ := os.ReadFile(out); strings.Contains(string(text), "Unable to bind remote control socket") {
				continue
			}
		case <-time.After(300 * time.Millisecond):
		}
		return p, nil
	}
}
