package core

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// MinVisitorSecretLen is the shortest VISITOR_HASH_SECRET NewVisitorHasher accepts.
const MinVisitorSecretLen = 16

// secondsPerDay is the length of a UTC day in Unix time (which has no leap seconds).
const secondsPerDay = 86400

// VisitorHasher computes the cookieless visitor id of SPEC §6:
//
//	visitorId = first 32 hex chars of SHA-256(ip | "|" | userAgent | "|" | daySalt)
//	daySalt   = hex(HMAC-SHA256(secret, "YYYY-MM-DD" of the UTC day))
//
// The same visitor (ip, user agent) on the same UTC day hashed with the same secret
// gets the same id on any node; on the next UTC day the id is unrelated. The day salt
// is cached and recomputed when the UTC day of now changes, so the id rotates exactly
// at 00:00:00 UTC. The ip and user agent are only fed to the hash: they are never
// stored, logged or retained by the hasher.
//
// A VisitorHasher is safe for concurrent use.
type VisitorHasher struct {
	secret []byte
	salts  atomic.Pointer[saltCache]
	states sync.Pool // *hashState
}

// daySalt is the salt of one UTC day (days since the Unix epoch).
type daySalt struct {
	day int64
	hex [sha256.Size * 2]byte
}

// saltCache holds the two most recently used day salts, so that requests
// straddling midnight (whose now values may arrive slightly out of order)
// do not recompute the HMAC on every call.
type saltCache struct {
	cur, prev *daySalt
}

const (
	// maxIPText bounds the canonical text of an IP without zone (IPv6: 39 bytes).
	maxIPText = 48
	// inlineHashBuf is the stack buffer Hash assembles its input in.
	inlineHashBuf = 1024
	// maxInlineUA is the longest User-Agent hashed from the stack buffer.
	maxInlineUA = inlineHashBuf - maxIPText - 2 - sha256.Size*2
)

// hashState is scratch memory for User-Agents longer than maxInlineUA, pooled so
// Hash does not allocate: the ip text and the digest go through the hash.Hash
// interface, which would otherwise move stack buffers to the heap.
type hashState struct {
	h   hash.Hash
	buf [maxIPText + 1]byte // canonical ip text plus separator
	sum [sha256.Size]byte
}

// NewVisitorHasher returns a hasher keyed by secret (VISITOR_HASH_SECRET).
// The secret is copied. It must be at least MinVisitorSecretLen bytes long.
func NewVisitorHasher(secret []byte) (*VisitorHasher, error) {
	if len(secret) < MinVisitorSecretLen {
		return nil, errors.New("visitor hash secret must be at least 16 bytes")
	}
	h := &VisitorHasher{secret: append([]byte(nil), secret...)}
	h.states.New = func() any { return &hashState{h: sha256.New()} }
	return h, nil
}

// Hash writes the visitor id (32 lowercase hex characters) of the visitor at ip
// with the given User-Agent, on the UTC day of now, into dst.
//
// The ip is rendered canonically: an IPv4-mapped IPv6 address is unmapped and any
// IPv6 zone is dropped, so 1.2.3.4 and ::ffff:1.2.3.4 give the same id. An invalid
// (zero) netip.Addr is rendered as the empty string.
//
// Hash does not allocate in steady state: User-Agents up to maxInlineUA bytes are
// hashed from a stack buffer, longer ones through a pooled hash. Deriving the salt
// of a new UTC day allocates once per day.
func (h *VisitorHasher) Hash(dst *[32]byte, ip netip.Addr, userAgent []byte, now time.Time) {
	salt := h.salt(now)
	ip = ip.Unmap().WithZone("")

	var sum [sha256.Size]byte
	if len(userAgent) <= maxInlineUA {
		// Common case: assemble the whole input on the stack and hash it in one go.
		var buf [inlineHashBuf]byte
		b := ip.AppendTo(buf[:0])
		b = append(b, '|')
		b = append(b, userAgent...)
		b = append(b, '|')
		b = append(b, salt.hex[:]...)
		sum = sha256.Sum256(b)
	} else {
		// Long User-Agents are streamed through a pooled hash.Hash.
		st := h.states.Get().(*hashState)
		b := ip.AppendTo(st.buf[:0])
		b = append(b, '|')
		st.h.Reset()
		st.h.Write(b)
		st.h.Write(userAgent)
		st.h.Write(b[len(b)-1:]) // "|"
		st.h.Write(salt.hex[:])
		copy(sum[:], st.h.Sum(st.sum[:0]))
		h.states.Put(st)
	}
	hex.Encode(dst[:], sum[:len(dst)/2])
}

// salt returns the day salt for the UTC day of now, computing and caching it
// when that day is not among the two most recently used ones.
func (h *VisitorHasher) salt(now time.Time) *daySalt {
	day := utcDay(now)
	c := h.salts.Load()
	if c != nil {
		if c.cur.day == day {
			return c.cur
		}
		if c.prev != nil && c.prev.day == day {
			return c.prev
		}
	}
	s := &daySalt{day: day}
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte(time.Unix(day*secondsPerDay, 0).UTC().Format(time.DateOnly)))
	var mac [sha256.Size]byte
	hex.Encode(s.hex[:], m.Sum(mac[:0]))
	// Keep the newer of the two days as cur. Losing a race here only costs a
	// recomputation later; every computed salt for a day is identical.
	next := &saltCache{cur: s}
	if c != nil {
		if c.cur.day > day {
			next = &saltCache{cur: c.cur, prev: s}
		} else {
			next.prev = c.cur
		}
	}
	h.salts.Store(next)
	return s
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
