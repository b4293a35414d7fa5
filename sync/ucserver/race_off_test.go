//go:build !race

package ucserver_test

const raceEnabled = false
