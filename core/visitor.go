package core

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"sync"
	"time"
)

// MinVisitorSecretLen is the shortest VISITOR_HASH_SECRET NewVisitorHasher accepts.
const MinVisitorSecretLen = 16

// secondsPerDay is the length of a UTC day in Unix time (which has no leap seconds).
const secondsPerDay = 86400

// VisitorHasher computes the cookieless visitor id of docs/API.md, "Visitor hash":
//
//	visitorId = hex of the first 16 bytes of
//	            SHA-256(salt(d) ‖ idLabel ‖ len16(projectId) ‖ projectId ‖ len8(ip) ‖ ip ‖ userAgent)
//	salt(d)   = H("salt", seed(d))
//	seed(d+1) = H("ratchet", seed(d))
//
// where d is the UTC day, ip the canonical text of the address and H is
// defined in ratchet.go. The same visitor of the same project on the same UTC
// day gets the same id on every node that holds the same seed; another
// project or another day gives an unrelated id.
//
// The hasher holds only the current day's seed and salt, never an earlier
// day's nor a root secret: when the UTC day of now moves past it, it ratchets
// forward, wipes the old seed and salt from its memory and hands the new seed
// to its persist function (which wipes the old one from disk). A request
// whose clock reads an earlier day than the hasher's (a clock stepped back)
// is hashed with the current day's salt: no earlier salt can be recomputed.
//
// The ip and user agent are only fed to the hash: they are never stored,
// logged or retained by the hasher.
//
// A VisitorHasher is safe for concurrent use.
type VisitorHasher struct {
	mu   sync.RWMutex
	day  int64    // UTC day of salt and seed.Seed
	salt [32]byte // H("salt", seed(day))
	seed DaySeed
	// pending is a seed that replaces the chain from its day on (a re-key),
	// or nil.
	pending *DaySeed

	persist   func(cur *DaySeed, pending *DaySeed) error
	onErr     func(error)
	unsaved   bool       // the state has changed since the last persist; guarded by mu
	persistMu sync.Mutex // serialises persist calls

	states sync.Pool // *hashState
}

// idLabel fills the second half of the first SHA-256 block of a visitor id
// input, after the 32-byte salt, so that the salt always lies in a whole
// block that the hash reads in place (never copied into its buffer).
var idLabel = [32]byte{'u', 'p', 't', 'i', 'm', 'i', 'z', 'r', ' ', 'v', 'i', 's', 'i', 't', 'o', 'r', ' ', 'i', 'd', ' ', 'v', '2'}

const (
	// maxIPText bounds the canonical text of an IP without zone (IPv6: 39 bytes).
	maxIPText = 48
	// maxInlineProject is the longest project id hashed from the stack buffer.
	maxInlineProject = 128
	// inlineHashBuf is the stack buffer Hash assembles its input in.
	inlineHashBuf = 1024
	// idPrefix is the salt and the label: one SHA-256 block.
	idPrefix = 64
	// maxInlineUA is the longest User-Agent hashed from the stack buffer.
	maxInlineUA = inlineHashBuf - idPrefix - 2 - maxInlineProject - 1 - maxIPText
)

// hashState is scratch memory for long inputs, pooled so Hash does not
// allocate: the pieces go through the hash.Hash interface, which would
// otherwise move stack buffers to the heap.
type hashState struct {
	h   hash.Hash
	buf [idPrefix + 2 + 1 + maxIPText]byte
	sum [sha256.Size]byte
}

// ErrNoEarlierDay is returned when a seed is asked for a day before the one
// it holds: the ratchet only goes forward.
var ErrNoEarlierDay = errors.New("the visitor seed ratchet cannot go back to an earlier day")

// NewVisitorHasher returns a hasher keyed by a root secret (the
// VISITOR_HASH_SECRET migration path): the seed of day 0 (1970-01-01) is
// derived from it (SeedFromSecret) and ratcheted forward on first use. The
// hasher keeps only the ratcheted seed; the secret is not retained. It must be
// at least MinVisitorSecretLen bytes long.
func NewVisitorHasher(secret []byte) (*VisitorHasher, error) {
	if len(secret) < MinVisitorSecretLen {
		return nil, fmt.Errorf("visitor hash secret must be at least %d bytes", MinVisitorSecretLen)
	}
	s := SeedFromSecret(secret)
	return NewSeededVisitorHasher(&s, nil, nil), nil
}

// NewSeededVisitorHasher returns a hasher at the day of cur, whose seed it
// copies (the caller should wipe its own copy). pending, if not nil, re-keys
// the hasher from its day on. persist, if not nil, is called after every
// ratchet step with the new state, so that it replaces (and wipes) the one on
// disk; it is called outside the hasher's lock, and a failure is reported to
// onErr and retried at the next Advance. onErr may be nil.
func NewSeededVisitorHasher(cur, pending *DaySeed, persist func(cur, pending *DaySeed) error) *VisitorHasher {
	h := &VisitorHasher{seed: *cur, day: cur.Day, persist: persist}
	if pending != nil && pending.Day > cur.Day {
		p := *pending
		h.pending = &p
	}
	h.seed.salt(&h.salt)
	scrubStack()
	h.states.New = func() any { return &hashState{h: sha256.New()} }
	return h
}

// OnError sets the function told of persistence failures (before use).
func (h *VisitorHasher) OnError(f func(error)) { h.onErr = f }

// Hash writes the visitor id (32 lowercase hex characters) of the visitor at
// ip with the given User-Agent, for the project projectID, on the UTC day of
// now, into dst.
//
// The ip is rendered canonically: an IPv4-mapped IPv6 address is unmapped and
// any IPv6 zone is dropped, so 1.2.3.4 and ::ffff:1.2.3.4 give the same id. An
// invalid (zero) netip.Addr is rendered as the empty string.
//
// Hash does not allocate in steady state. The buffers that held the salt are
// wiped before it returns.
func (h *VisitorHasher) Hash(dst *[32]byte, projectID string, ip netip.Addr, userAgent []byte, now time.Time) {
	day := utcDay(now)
	// Grow the stack now, if it must grow, before any copy of the salt is on
	// it: a stack that grows is copied and the old one freed unwiped.
	scrubStack()
	h.mu.RLock()
	if day > h.day {
		// Step in memory; the disk is the ticker's (Advance), so a request
		// never waits for an fsync.
		h.mu.RUnlock()
		h.step(day)
		h.mu.RLock()
	}
	ip = ip.Unmap().WithZone("")
	var sum [sha256.Size]byte
	if len(userAgent) <= maxInlineUA && len(projectID) <= maxInlineProject {
		// Common case: assemble the whole input on the stack and hash it in one go.
		var buf [inlineHashBuf]byte
		b := append(buf[:0], h.salt[:]...)
		b = append(b, idLabel[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(projectID)))
		b = append(b, projectID...)
		n := len(b)
		b = ip.AppendTo(append(b, 0))
		b[n] = byte(len(b) - n - 1)
		b = append(b, userAgent...)
		sum = sha256.Sum256(b)
		wipe(buf[:idPrefix])
	} else {
		st := h.states.Get().(*hashState)
		b := append(st.buf[:0], h.salt[:]...)
		b = append(b, idLabel[:]...)
		st.h.Reset()
		st.h.Write(b) // one whole block: hashed in place
		wipe(st.buf[:idPrefix])
		b = binary.BigEndian.AppendUint16(st.buf[:0], uint16(len(projectID)))
		st.h.Write(b)
		for p := projectID; len(p) > 0; {
			n := copy(st.buf[:], p)
			st.h.Write(st.buf[:n])
			p = p[n:]
		}
		b = ip.AppendTo(st.buf[:1])
		st.buf[0] = byte(len(b) - 1)
		st.h.Write(b)
		st.h.Write(userAgent)
		copy(sum[:], st.h.Sum(st.sum[:0]))
		st.h.Reset() // drop the chaining value, which stands for the salt
		h.states.Put(st)
	}
	h.mu.RUnlock()
	scrubStack()
	hex.Encode(dst[:], sum[:len(dst)/2])
}

// Day returns the UTC day (days since the Unix epoch) the hasher is at.
func (h *VisitorHasher) Day() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.day
}

// Advance moves the hasher to the UTC day of now if that is later than its
// day (wiping the earlier seed and salt from memory), and persists the state
// if that is due (a step taken, or an earlier persist that failed). Nodes call
// it at every UTC midnight, so that an earlier seed does not linger in a node
// that receives no request.
func (h *VisitorHasher) Advance(now time.Time) error {
	return h.advance(utcDay(now))
}

func (h *VisitorHasher) advance(day int64) error {
	h.step(day)
	h.mu.RLock()
	due := h.unsaved && h.persist != nil
	h.mu.RUnlock()
	if !due {
		return nil
	}
	return h.save()
}

// step moves the hasher to day in memory, wiping the earlier seed and salt.
func (h *VisitorHasher) step(day int64) {
	h.mu.Lock()
	if day > h.day {
		if h.pending != nil && day >= h.pending.Day {
			h.seed.Wipe()
			h.seed = *h.pending
			h.pending.Wipe()
			h.pending = nil
		}
		h.seed.AdvanceTo(day)
		h.seed.salt(&h.salt)
		h.day = day
		h.unsaved = true
	}
	h.mu.Unlock()
	scrubStack()
}

// save persists the hasher's newest state. It runs outside h.mu, so requests
// never wait on the disk, and under persistMu, so that a slower save of an
// older state can never overwrite a newer one: each save reads the state
// anew once it holds persistMu.
func (h *VisitorHasher) save() error {
	h.persistMu.Lock()
	defer h.persistMu.Unlock()
	h.mu.RLock()
	if !h.unsaved {
		h.mu.RUnlock()
		return nil
	}
	cur := h.seed
	var pend DaySeed
	hasPend := h.pending != nil
	if hasPend {
		pend = *h.pending
	}
	day := h.day
	h.mu.RUnlock()

	var err error
	if hasPend {
		err = h.persist(&cur, &pend)
	} else {
		err = h.persist(&cur, nil)
	}
	cur.Wipe()
	pend.Wipe()
	scrubStack()
	if err != nil {
		if h.onErr != nil {
			h.onErr(err)
		}
		return err
	}
	h.mu.Lock()
	if h.day == day {
		h.unsaved = false
	}
	h.mu.Unlock()
	return nil
}

// Export returns the seed of day (the hasher's day or a later one), to hand
// to another node: a node given it agrees with this one from that day on. An
// earlier day is refused with ErrNoEarlierDay.
func (h *VisitorHasher) Export(day int64) (DaySeed, error) {
	h.mu.RLock()
	s := h.seed
	pend := h.pending
	if pend != nil && day >= pend.Day {
		s = *pend
	}
	h.mu.RUnlock()
	if day < s.Day {
		s.Wipe()
		return DaySeed{}, fmt.Errorf("%w: the node is at %s, asked for %s", ErrNoEarlierDay, DayString(s.Day), DayString(day))
	}
	s.AdvanceTo(day)
	return s, nil
}

// Rekey makes next the hasher's seed from next.Day on: at once if that day
// has begun (the hasher's day or earlier; the seed is ratcheted to the
// hasher's day), else when it comes. The state is persisted before Rekey
// returns.
func (h *VisitorHasher) Rekey(next *DaySeed) error {
	h.mu.Lock()
	n := *next
	if n.Day <= h.day {
		n.AdvanceTo(h.day)
		h.seed.Wipe()
		h.seed = n
		h.seed.salt(&h.salt)
		if h.pending != nil {
			h.pending.Wipe()
			h.pending = nil
		}
	} else {
		if h.pending != nil {
			h.pending.Wipe()
		}
		h.pending = &n
	}
	h.unsaved = true
	day := h.day
	h.mu.Unlock()
	return h.advance(day)
}

// wipe zeroes b. It is not inlined, so the stores cannot be dropped as dead.
//
//go:noinline
func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// scrubStack zeroes the stack below its caller's frame, where the hash
// functions just called kept copies of their input and state (SHA-256's
// message schedule, its chaining value), so that a day's salt does not
// linger in a goroutine's stack after its use.
//
//go:noinline
func scrubStack() {
	var b [4096]byte
	wipe(b[:])
}

// utcDay returns the number of whole UTC days between the Unix epoch and t
// (floor division, so instants before 1970 map to negative days correctly).
func utcDay(t time.Time) int64 {
	s := t.Unix()
	d := s / secondsPerDay
	if s%secondsPerDay < 0 {
		d--
	}
	return d
}

// UTCDay is the UTC day of t, in days since the Unix epoch.
func UTCDay(t time.Time) int64 { return utcDay(t) }

// DayString renders a UTC day as YYYY-MM-DD.
func DayString(day int64) string {
	return time.Unix(day*secondsPerDay, 0).UTC().Format(time.DateOnly)
}

// ParseDay reads a YYYY-MM-DD UTC date as days since the Unix epoch.
func ParseDay(s string) (int64, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a date YYYY-MM-DD", s)
	}
	return utcDay(t), nil
}
