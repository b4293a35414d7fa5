package sync

import "time"

// This file is the vocabulary shared by the adapters, the control API and
// the console: what a running bridge tells an admin about itself. Every type
// here is plain data with JSON tags, because it crosses the control socket.

// SideReport is what an adapter tells the admin about its side beyond the
// health it sends to the engine: how it connects, token and subscription
// expiry, throttling, and its last errors with the fix to apply.
type SideReport struct {
	Side      Side      `json:"side"`
	Name      string    `json:"name"`               // "Microsoft Graph", "estos UCServer"
	Mode      string    `json:"mode,omitempty"`     // "poll", "subscribe", "websocket"
	Endpoint  string    `json:"endpoint,omitempty"` // never carries credentials
	Connected bool      `json:"connected"`
	Facts     []Fact    `json:"facts,omitempty"` // in display order
	Throttled time.Time `json:"throttled_until,omitzero"`
	Errors    []Problem `json:"errors,omitempty"` // newest first, at most ten
}

// Fact is one line of a SideReport: "token expires", "subscriptions", ...
type Fact struct {
	Label string    `json:"label"`
	Value string    `json:"value"`
	Until time.Time `json:"until,omitzero"` // an expiry the console counts down
	Warn  bool      `json:"warn,omitempty"`
}

// Problem is an error an adapter met, with what the admin should do about it.
type Problem struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
	Fix  string    `json:"fix,omitempty"`
}

// Reporter is implemented by adapters that can describe themselves. Report
// is called from other goroutines and must be cheap and safe for concurrent use.
type Reporter interface {
	Report() SideReport
}

// Meter receives the adapters' measurements (service/ turns them into
// metrics). Implementations must be safe for concurrent use and must not block.
type Meter interface {
	// Call records one request to a side: op names it ("setPresence",
	// "getPresencesByUserId", "asnSetAbsentState"), result is "ok",
	// "throttled", "superseded" (not sent: no longer wanted), "rejected",
	// "unavailable" or "error".
	Call(side Side, op, result string, took time.Duration)
	// Subscriptions records how many subscriptions a side holds and the
	// earliest expiry among them (zero when there are none).
	Subscriptions(side Side, n int, earliest time.Time)
}

// NopMeter measures nothing.
type NopMeter struct{}

// Call implements Meter.
func (NopMeter) Call(Side, string, string, time.Duration) {}

// Subscriptions implements Meter.
func (NopMeter) Subscriptions(Side, int, time.Time) {}

// SignInPrompt is what the admin needs to finish a device-code sign-in of a
// service account (Teams subscribe mode): open URL, enter Code.
type SignInPrompt struct {
	Account string    `json:"account"`
	Code    string    `json:"code"`
	URL     string    `json:"url"`
	Message string    `json:"message"`
	Expires time.Time `json:"expires"`
}

// SettingValue is one setting as the admin sees it: secrets are masked.
type SettingValue struct {
	Key     string   `json:"key"`
	Value   string   `json:"value"` // Mask for a secret that is set
	Default string   `json:"default"`
	Set     bool     `json:"set"` // stored, not the default
	Secret  bool     `json:"secret,omitempty"`
	Kind    string   `json:"kind"` // "string", "secret", "duration", "int", "bool", "url", "enum"
	Enum    []string `json:"enum,omitempty"`
	Help    string   `json:"help"`
	// Pending: stored, but not what the running bridge uses yet, and why
	// ("applies at the next start"); "" when the value is in effect (or no
	// bridge runs: then it applies at the start).
	Pending string `json:"pending,omitempty"`
}

// Overview is the dashboard: the engine and every side in one answer.
type Overview struct {
	Version   string       `json:"version"`
	Started   time.Time    `json:"started"`
	Mode      string       `json:"mode"` // "service", "foreground", "demo"
	Engine    Status       `json:"engine"`
	Sides     []SideReport `json:"sides"`
	EventRate float64      `json:"event_rate"` // events per second over the last minute
}

// KindName is the kind's name as SettingValue.Kind spells it.
func (k SettingKind) String() string {
	switch k {
	case KindSecret:
		return "secret"
	case KindDuration:
		return "duration"
	case KindInt:
		return "int"
	case KindBool:
		return "bool"
	case KindURL:
		return "url"
	case KindEnum:
		return "enum"
	default:
		return "string"
	}
}

// SettingValues describes every known setting given the stored values.
func SettingValues(stored map[string]string) []SettingValue {
	specs := SettingSpecs()
	out := make([]SettingValue, 0, len(specs))
	for _, s := range specs {
		v, set := stored[s.Key]
		if !set {
			v = s.Default
		}
		out = append(out, SettingValue{
			Key: s.Key, Value: s.Show(v), Default: s.Show(s.Default), Set: set,
			Secret: s.Kind == KindSecret, Kind: s.Kind.String(), Enum: s.Enum, Help: s.Help,
		})
	}
	return out
}
