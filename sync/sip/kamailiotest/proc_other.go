//go:build !unix

package kamailiotest

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

func platformOK() error {
	return errors.New("Kamailio and sipp tests run on Linux only")
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProcess(cmd *exec.Cmd, _ syscall.Signal) (*process, error) { return nil, platformOK() }
func (p *process) kill()                                             {}
func (p *process) terminate(time.Duration)                           {}
