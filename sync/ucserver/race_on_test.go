//go:build race

package ucserver_test

// raceEnabled relaxes wall-clock budgets: the race detector slows JSON
// encoding several times over.
const raceEnabled = true
