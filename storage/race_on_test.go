//go:build race

package storage

// raceEnabled: the race detector slows Badger's background work enough to
// make time-bound tests of it meaningless.
const raceEnabled = true
