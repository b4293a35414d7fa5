//go:build !linux

package service

import (
	"errors"
	"time"
)

type loopCapture struct{}

func startLoopCapture(int, func(time.Time, []byte)) (*loopCapture, error) {
	return nil, errors.New("capturing loopback packets needs Linux (AF_PACKET)")
}

func (*loopCapture) close() {}
