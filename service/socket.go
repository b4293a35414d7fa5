package service

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultSocket is where the service listens and the CLI and console
// connect, unless --socket or PRESENCEBRIDGE_SOCKET say otherwise: a Unix
// socket, on Windows a named pipe.
func DefaultSocket() string {
	if env := os.Getenv("PRESENCEBRIDGE_SOCKET"); env != "" {
		return env
	}
	return defaultSocketFor(NativeTarget())
}

// pipePrefix starts the name of every Windows named pipe.
const pipePrefix = `\\.\pipe\`

// defaultPipe is the control API's named pipe on Windows.
const defaultPipe = pipePrefix + Name

// controlPipeName is the named pipe of a control address on Windows: a
// pipe name as it is, any other path (--socket C:\x\control.sock, as the
// tests give) mapped to a pipe of its own, so that server and client
// agree on it.
func controlPipeName(path string) string {
	if strings.HasPrefix(strings.ToLower(path), strings.ToLower(pipePrefix)) {
		return path
	}
	sum := sha256.Sum256([]byte(strings.ToLower(filepath.Clean(path))))
	return defaultPipe + "-" + hex.EncodeToString(sum[:8])
}

// pipeClientAccess is what the admin group may do with the control pipe:
// FILE_GENERIC_READ | FILE_GENERIC_WRITE without FILE_CREATE_PIPE_INSTANCE
// (the bit of FILE_APPEND_DATA, 0x4), so that a member can talk to the
// bridge but cannot serve the pipe in its place.
const pipeClientAccess = 0x0012019b

// pipeSDDL is the control pipe's security descriptor: SYSTEM (the service)
// and Administrators in full, the admin group as a client, nobody else, and
// nothing inherited. go-winio also rejects remote clients.
func pipeSDDL(groupSID string) string {
	sddl := "D:P(A;;GA;;;SY)(A;;GA;;;BA)"
	if groupSID != "" {
		sddl += fmt.Sprintf("(A;;0x%08x;;;%s)", pipeClientAccess, groupSID)
	}
	return sddl
}
