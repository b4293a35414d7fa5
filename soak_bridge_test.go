package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/presencebridge/presencebridge/service"
)

// The bridge under test: the real binary, started, killed with SIGKILL,
// restarted on the same database and finally stopped with SIGTERM.

// life is one process of the bridge.
type life struct {
	n       int
	pid     int
	start   time.Time
	end     time.Time // zero while it runs
	how     string    // "killed", "stopped", or how it exited by itself
	logPath string
}

type bridgeProc struct {
	bin, db, sock, ca, dir string
	extraEnv               []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	cur    *life
	exited chan struct{}
	lives  []*life
	ending string // what the harness did to end the current life
}

func (b *bridgeProc) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return fmt.Errorf("bridge already running (pid %d)", b.cur.pid)
	}
	l := &life{n: len(b.lives) + 1}
	l.logPath = filepath.Join(b.dir, fmt.Sprintf("bridge-%03d.log", l.n))
	f, err := os.Create(l.logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.bin, "run", "--db", b.db, "--socket", b.sock, "--group", "")
	cmd.Env = append(append(os.Environ(), "SSL_CERT_FILE="+b.ca), b.extraEnv...)
	cmd.Stdout, cmd.Stderr = f, f
	l.start = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	l.pid = cmd.Process.Pid
	b.cmd, b.cur, b.ending = cmd, l, ""
	b.lives = append(b.lives, l)
	exited := make(chan struct{})
	b.exited = exited
	go func() {
		err := cmd.Wait()
		f.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		l.end = time.Now()
		switch {
		case b.ending != "":
			l.how = b.ending
			if b.ending == "stopped" && err != nil {
				l.how = "stopped: " + err.Error()
			}
		case err != nil:
			l.how = "exited by itself: " + err.Error()
		default:
			l.how = "exited by itself with status 0"
		}
		if b.cmd == cmd {
			b.cmd, b.cur = nil, nil
		}
		close(exited)
	}()
	return nil
}

// running reports the current process, if any.
func (b *bridgeProc) running() (*life, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur, b.cmd != nil
}

// kill ends the process with SIGKILL and waits for it.
func (b *bridgeProc) kill() {
	b.signal(syscall.SIGKILL, "killed", time.Minute)
}

// stop sends SIGTERM and waits up to within; a process that does not end by
// then is killed. It returns the life's ending.
func (b *bridgeProc) stop(within time.Duration) (string, time.Duration) {
	start := time.Now()
	if !b.signal(syscall.SIGTERM, "stopped", within) {
		b.kill()
		return "did not stop within " + within.String() + " (killed)", time.Since(start)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lives[len(b.lives)-1].how, time.Since(start)
}

func (b *bridgeProc) signal(sig syscall.Signal, ending string, within time.Duration) bool {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	if cmd != nil {
		b.ending = ending
	}
	b.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return true
	case <-time.After(within):
		return false
	}
}

// livesCopy returns the lives so far.
func (b *bridgeProc) livesCopy() []life {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]life, len(b.lives))
	for i, l := range b.lives {
		out[i] = *l
	}
	return out
}

// synced asks the running bridge, over its control socket, whether both
// sides are connected and synced; it also returns the holds it counts.
func synced(ctx context.Context, c *service.Client) (bool, int, string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ov, err := c.Overview(ctx)
	if err != nil {
		return false, 0, err.Error()
	}
	e := ov.Engine
	ok := e.Teams.Healthy && e.Teams.Synced && e.Phone.Healthy && e.Phone.Synced
	return ok, e.Holds, fmt.Sprintf("teams healthy=%v synced=%v (%s); phone healthy=%v synced=%v (%s); holds %d",
		e.Teams.Healthy, e.Teams.Synced, e.Teams.Detail, e.Phone.Healthy, e.Phone.Synced, e.Phone.Detail, e.Holds)
}

// procMemory reads VmHWM and VmRSS (in kB) of a process from /proc.
func procMemory(pid int) (hwm, rss int, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss, sc.Err()
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
