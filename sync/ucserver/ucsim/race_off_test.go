//go:build !race

package ucsim_test

const raceEnabled = false
