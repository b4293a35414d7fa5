package service

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error with the HTTP status the control API answers it with.
// Local returns them so that the server and the in-process console tell an
// admin the same thing, and Client returns them for the server's answers.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Errors callers can test for with errors.Is (they compare by status).
var (
	// ErrNotFound: no such user, profile or setting.
	ErrNotFound = &Error{Status: http.StatusNotFound, Msg: "not found"}
	// ErrInvalid: the request is malformed or a value does not validate.
	ErrInvalid = &Error{Status: http.StatusBadRequest, Msg: "invalid request"}
	// ErrConflict: the request conflicts with the state (a profile in use).
	ErrConflict = &Error{Status: http.StatusConflict, Msg: "conflict"}
	// ErrForbidden: the caller may not use the control API.
	ErrForbidden = &Error{Status: http.StatusForbidden, Msg: "forbidden"}
	// ErrNotConfigured: the feature needs configuration this bridge lacks.
	ErrNotConfigured = &Error{Status: http.StatusNotImplemented, Msg: "not configured"}
	// ErrUnavailable: the engine is not running (starting or stopping).
	ErrUnavailable = &Error{Status: http.StatusServiceUnavailable, Msg: "unavailable"}
)

// Is matches errors of the same status, so errors.Is(err, ErrNotFound)
// holds for every 404 whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status
}

func statusErr(status int, format string, a ...any) error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, a...)}
}

func invalid(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Status: http.StatusBadRequest, Msg: err.Error()}
}

// statusOf is the HTTP status for err: its own when it carries one, 500
// otherwise.
func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return http.StatusInternalServerError
}
