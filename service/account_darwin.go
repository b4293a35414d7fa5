//go:build darwin

package service

// DefaultGroup is the admin group allowed on the control socket: the
// group of the service's own user, which install creates. macOS names
// system accounts with a leading underscore.
const DefaultGroup = "_presencebridge"
