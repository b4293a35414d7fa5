package service

import (
	"strings"
	"testing"
)

func TestPipeSDDL(t *testing.T) {
	if got := pipeSDDL(""); got != "D:P(A;;GA;;;SY)(A;;GA;;;BA)" {
		t.Fatalf("without a group: %s", got)
	}
	// The admin group reads and writes but cannot make pipe instances
	// (FILE_CREATE_PIPE_INSTANCE, 0x4), which would let it serve the pipe.
	got := pipeSDDL("S-1-5-21-1-2-3-1001")
	if got != "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x0012019b;;;S-1-5-21-1-2-3-1001)" || pipeClientAccess&0x4 != 0 {
		t.Fatalf("with a group: %s", got)
	}
}

func TestControlPipeName(t *testing.T) {
	if got := controlPipeName(`\\.\pipe\presencebridge`); got != `\\.\pipe\presencebridge` {
		t.Fatal(got)
	}
	if defaultSocketFor(TargetWindows) != `\\.\pipe\presencebridge` {
		t.Fatal(defaultSocketFor(TargetWindows))
	}
	a, b := controlPipeName(`C:\Temp\x\control.sock`), controlPipeName(`c:\temp\X\control.sock`)
	if a != b || !strings.HasPrefix(a, `\\.\pipe\presencebridge-`) || len(a) != len(`\\.\pipe\presencebridge-`)+16 {
		t.Fatalf("%s, %s", a, b)
	}
	if controlPipeName(`C:\Temp\y\control.sock`) == a {
		t.Fatal("two paths share a pipe")
	}
}
