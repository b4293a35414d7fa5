//go:build race

package webhook_test

// raceEnabled skips heap budgets: the race detector's shadow memory and its slower runtime
// make heap figures meaningless.
const raceEnabled = true
