package sync

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

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
	// Count is how many times it happened (0 and 1: once); MergeProblems
	// folds repeats into one problem.
	Count int `json:"count,omitempty"`
}

// MergeProblems folds the same problem met again into one, at the place of
// the newest (problems come newest first), counting the repeats among those
// given and keeping the first fix given. An adapter that retries a broken
// setup meets the same error again and again: the admin needs it once,
// with its fix. Errors that differ only by what a server adds to each
// answer (Entra's trace and correlation ids, timestamps) are the same
// problem; anything else (a user's id, a count) tells problems apart.
func MergeProblems(ps []Problem) []Problem {
	if len(ps) < 2 {
		return ps
	}
	out := make([]Problem, 0, len(ps))
	at := make(map[string]int, len(ps))
	for _, p := range ps {
		n := max(p.Count, 1)
		key := problemKey(p.What)
		if i, ok := at[key]; ok {
			out[i].Count += n
			if out[i].Fix == "" {
				out[i].Fix = p.Fix
			}
			if p.At.After(out[i].At) {
				out[i].At = p.At
			}
			continue
		}
		p.Count = n
		at[key] = len(out)
		out = append(out, p)
	}
	return out
}

var (
	// Microsoft Entra appends these to every AADSTS error.
	traceTail = regexp.MustCompile(`(?s)\s*Trace ID:.*$`)
	timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?`)
)

// SameProblem says whether a side's health detail reports the same problem
// as one of its errors: the same text as MergeProblems compares them, or a
// detail that quotes the error's cause (what follows its first ": ") in
// other words around it ("cannot connect to the UCServer: <cause>;
// retrying in 4s" against "cannot connect: <cause>").
func SameProblem(detail, what string) bool {
	d, w := problemKey(detail), problemKey(what)
	if d == w {
		return true
	}
	_, cause, ok := strings.Cut(w, ": ")
	return ok && len(cause) >= 24 && strings.Contains(d, cause)
}

// problemKey is what two reports of the same problem have in common.
func problemKey(what string) string {
	k := traceTail.ReplaceAllString(what, "")
	k = timestamp.ReplaceAllString(k, "<time>")
	return strings.Join(strings.Fields(k), " ")
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

// OutcomeCounts counts decisions by outcome, for the one-line summaries
// the console and the demo print when they end.
type OutcomeCounts map[Outcome]uint64

// outcomeOrder is the order a summary names outcomes in: what the bridge
// did, then what it saw, then what went against it.
var outcomeOrder = []Outcome{OutcomeApplied, OutcomeReleased, OutcomeObserved, OutcomeYielded, OutcomeFailed}

// Add counts one decision.
func (c OutcomeCounts) Add(d Decision) { c[d.Outcome]++ }

// Total is the number of decisions counted.
func (c OutcomeCounts) Total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// String names every outcome, zeros included, so that a summary always
// reads the same way: "12 applied, 10 released, 40 observed, 1 yielded, 0 failed".
func (c OutcomeCounts) String() string {
	parts := make([]string, 0, len(outcomeOrder)+len(c))
	for _, o := range outcomeOrder {
		parts = append(parts, fmt.Sprintf("%d %s", c[o], o))
	}
	var other []string
	for o, n := range c {
		if !slices.Contains(outcomeOrder, o) {
			other = append(other, fmt.Sprintf("%d %s", n, orUnnamed(o)))
		}
	}
	slices.Sort(other)
	return strings.Join(append(parts, other...), ", ")
}

func orUnnamed(o Outcome) string {
	if o == "" {
		return "without outcome"
	}
	return string(o)
}
