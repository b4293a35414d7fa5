//go:build !darwin

package service

// DefaultGroup is the admin group allowed on the control socket: the
// group of the service's own user, which install creates.
const DefaultGroup = "presencebridge"
