//go:build race

package faults

// raceEnabled says the tests run with -race: the binaries under test are then built with it too.
const raceEnabled = true
