//go:build linux

package kamailiotest

import "syscall"

func setParentDeathSignal(a *syscall.SysProcAttr, sig syscall.Signal) { a.Pdeathsig = sig }
