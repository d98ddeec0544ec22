package core

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// The visitor-salt ratchet (docs/API.md, "Visitor hash"; docs/RATIONALE.md, "How can a stolen
// node not reveal earlier days' visitors?"):
//
//	H(label, x) = SHA-256("uptimizr/" ‖ label ‖ 0x00 ‖ x)
//	seed(0)     = H("secret", VISITOR_HASH_SECRET)   (day 0 is 1970-01-01)
//	seed(d+1)   = H("ratchet", seed(d))
//	salt(d)     = H("salt", seed(d))
//
// SHA-256 is one-way, so whoever holds seed(d) can compute every later seed
// and salt, and no earlier one.

// SeedSize is the length of a ratchet seed in bytes.
const SeedSize = 32

// DaySeed is the ratchet's seed of one UTC day (days since the Unix epoch).
type DaySeed struct {
	Day  int64
	Seed [SeedSize]byte
}

const (
	labelRatchet = "uptimizr/ratchet\x00"
	labelSalt    = "uptimizr/salt\x00"
	labelSecret  = "uptimizr/secret\x00"
)

// h writes H(label, x) into dst. The input buffer is wiped afterwards.
func ratchetH(dst *[32]byte, label string, x []byte) {
	var buf [64]byte
	b := append(buf[:0], label...)
	b = append(b, x...)
	*dst = sha256.Sum256(b)
	wipe(buf[:])
}

// SeedFromSecret derives the seed of day 0 from a root secret (the
// VISITOR_HASH_SECRET migration path): every node given the same secret,
// whatever day it starts on, ratchets to the same seeds.
func SeedFromSecret(secret []byte) DaySeed {
	var s DaySeed
	if len(secret) <= 64-len(labelSecret) {
		ratchetH(&s.Seed, labelSecret, secret)
	} else {
		h := sha256.New()
		h.Write([]byte(labelSecret))
		h.Write(secret)
		h.Sum(s.Seed[:0])
		h.Reset()
	}
	scrubStack()
	return s
}

// Next moves s one day forward: s.Seed = H("ratchet", s.Seed).
func (s *DaySeed) Next() {
	var next [32]byte
	ratchetH(&next, labelRatchet, s.Seed[:])
	s.Seed = next
	wipe(next[:])
	s.Day++
}

// AdvanceTo moves s forward to day (nothing if s is at day or later).
func (s *DaySeed) AdvanceTo(day int64) {
	for s.Day < day {
		s.Next()
	}
	scrubStack()
}

// salt writes H("salt", s.Seed) into dst.
func (s *DaySeed) salt(dst *[32]byte) { ratchetH(dst, labelSalt, s.Seed[:]) }

// Salt returns the day salt of s (for tests and tools; the hasher keeps its
// own).
func (s *DaySeed) Salt() [32]byte {
	var d [32]byte
	s.salt(&d)
	return d
}

// Wipe zeroes s.
func (s *DaySeed) Wipe() {
	wipe(s.Seed[:])
	s.Day = 0
}

// IsZero reports whether s holds no seed.
func (s *DaySeed) IsZero() bool { return s.Seed == [SeedSize]byte{} }

// AppendText appends "YYYY-MM-DD <64 hex digits>" to dst.
func (s *DaySeed) AppendText(dst []byte) []byte {
	dst = append(dst, DayString(s.Day)...)
	dst = append(dst, ' ')
	n := len(dst)
	dst = append(dst, make([]byte, 2*SeedSize)...)
	hex.Encode(dst[n:], s.Seed[:])
	return dst
}

// ParseSeed reads the 64 hex digits of a seed into s.Seed without keeping any
// other copy of them.
func (s *DaySeed) ParseSeed(hexText []byte) error {
	if len(hexText) != 2*SeedSize {
		return fmt.Errorf("a visitor seed is %d hex digits, got %d characters", 2*SeedSize, len(hexText))
	}
	if _, err := hex.Decode(s.Seed[:], hexText); err != nil {
		wipe(s.Seed[:])
		return errors.New("a visitor seed is hex digits only")
	}
	if s.IsZero() {
		return errors.New("a visitor seed of all zeros is not a seed (a wiped file?)")
	}
	return nil
}

// Wipe zeroes b; for callers that held a seed's text.
func Wipe(b []byte) { wipe(b) }
