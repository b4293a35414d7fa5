//go:build !unix

package sip

import (
	"testing"
	"time"
)

// selfCPU is not measured here; the real-Kamailio tests run on Linux only.
func selfCPU(t *testing.T) time.Duration {
	t.Helper()
	return 0
}
