package service

import (
	"errors"
	"fmt"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The kinds of error the admin rules answer with. Callers test for them with
// errors.Is, in process and through the control socket alike: the server
// sends the kind's code with the message, and the Client turns it back into
// the same sentinel. HTTP statuses exist only at the socket (server.go).
var (
	// ErrNotFound: no such user, profile or setting. The engine's kinds are
	// the same sentinels, so its refusals keep their kind.
	ErrNotFound = psync.ErrNotFound
	// ErrInvalid: the request is malformed or a value does not validate.
	ErrInvalid = psync.ErrInvalid
	// ErrConflict: the request conflicts with the state (a profile in use,
	// a name that is taken).
	ErrConflict = psync.ErrConflict
	// ErrHoldsKept: a user cannot go yet, because what the bridge imposed
	// on their behalf could not be given back first.
	ErrHoldsKept = psync.ErrHoldsKept
	// ErrForbidden: the caller may not use the control API.
	ErrForbidden = errors.New("forbidden")
	// ErrNotConfigured: the feature needs configuration this bridge lacks.
	ErrNotConfigured = errors.New("not configured")
	// ErrUnavailable: the engine is not running (starting or stopping).
	ErrUnavailable = errors.New("unavailable")
	// ErrTooLarge: a request body over its bound.
	ErrTooLarge = errors.New("too large")
)

// errorCodes are the kinds' names on the wire, in the order they are
// tested (the first a chain matches wins).
var errorCodes = []struct {
	code string
	kind error
}{
	{"holds_kept", ErrHoldsKept},
	{"not_found", ErrNotFound},
	{"invalid", ErrInvalid},
	{"conflict", ErrConflict},
	{"forbidden", ErrForbidden},
	{"not_configured", ErrNotConfigured},
	{"unavailable", ErrUnavailable},
	{"too_large", ErrTooLarge},
}

// codeOf is the wire code of err's kind, "internal" when it has none.
func codeOf(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.kind) {
			return c.code
		}
	}
	return "internal"
}

// kindOfCode is the sentinel of a wire code, nil for an unknown one.
func kindOfCode(code string) error {
	for _, c := range errorCodes {
		if c.code == code {
			return c.kind
		}
	}
	return nil
}

// adminError is an error of a kind, with the message an admin reads. It
// may carry the error it came from (for errors.Is/As in process).
type adminError struct {
	kind  error
	msg   string
	cause error
}

func (e *adminError) Error() string { return e.msg }

func (e *adminError) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.kind != nil {
		out = append(out, e.kind)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// errorf makes an error of a kind.
func errorf(kind error, format string, a ...any) error {
	return &adminError{kind: kind, msg: fmt.Sprintf(format, a...)}
}

// kindErr gives err a kind, keeping its message and chain.
func kindErr(kind, err error) error {
	if err == nil {
		return nil
	}
	return &adminError{kind: kind, msg: err.Error(), cause: err}
}

func invalid(err error) error { return kindErr(ErrInvalid, err) }
