//go:build unix && !linux

package kamailiotest

import "syscall"

func setParentDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}
