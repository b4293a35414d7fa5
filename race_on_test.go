//go:build race

package main

// raceEnabled: the test binary runs under the race detector, and so does
// the binary the end-to-end tests build (sharing its compiled packages).
const raceEnabled = true
