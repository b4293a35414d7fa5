//go:build unix

package kamailiotest

import (
	"os/exec"
	"syscall"
	"time"
)

func platformOK() error { return nil }

// process is a started program in its own process group, so that stopping
// it also stops the children it forked (Kamailio's workers).
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, set before done is closed
}

// startProcess starts cmd in its own process group. When the test binary
// dies without its cleanups (a -timeout panic, a SIGPIPE from "| head"),
// Linux sends the program exitSignal (Kamailio stops its workers on
// SIGTERM); elsewhere such a program outlives the test.
func startProcess(cmd *exec.Cmd, exitSignal syscall.Signal) (*process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr, exitSignal)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// kill sends SIGKILL to the group and waits for the leader to be reaped.
// The workers die with it: Kamailio's children are in the same group.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// terminate asks the group to stop and kills it when it does not within
// grace.
func (p *process) terminate(grace time.Duration) {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		// the leader is gone; stragglers of its group get no second chance
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	case <-time.After(grace):
		p.kill()
	}
}
