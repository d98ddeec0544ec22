package edge

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/uptimizr/edge/core"
)

const (
	limiterShardBits = 6
	limiterShards    = 1 << limiterShardBits

	// defaultShardCap bounds the keys one shard tracks per window; the whole
	// limiter tracks at most limiterShards*defaultShardCap (about 1M) keys.
	defaultShardCap = 1 << 14

	// shrinkMin: a shard map that never held more keys than this is reused
	// (cleared) at every window change instead of being reallocated.
	shrinkMin = 1024

	// evictSample is how many entries are looked at to pick one to evict.
	evictSample = 8
)

// Limiter counts requests per key (a uint64 such as HashIP of the client
// address, or an API-key id) in fixed windows aligned to the Unix epoch, so every
// node agrees on where a window starts. A Limiter with max <= 0 is disabled:
// Allow always reports true. A nil *Limiter is disabled too.
//
// Keys are spread over 64 shards, each with its own mutex, so concurrent requests
// rarely contend on one lock. A shard only keeps counts for its current window:
// on the first request it sees in a new window it drops all its entries (so
// entries of an older window always go first), and it releases its map's memory
// when the map is far larger than the window just ended needed. Memory therefore
// follows the keys active in the last two windows. A hard cap per shard bounds it
// under a flood of distinct keys: a new key arriving at a full shard evicts the
// least-used of a small sample of its entries (which then starts again from zero).
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	max      uint32
	window   int64 // nanoseconds
	shardCap int
	shards   []limiterShard
}

type limiterShard struct {
	mu     sync.Mutex
	win    int64             // window index (Unix nanoseconds / window) of counts
	counts map[uint64]uint32 // requests per key in window win
	peak   int               // largest len(counts) since the map was allocated
	_      [128 - 32]byte    // keep shards on separate cache lines
}

// NewLimiter returns a limiter allowing max requests per key per window. max <= 0
// disables it. A window <= 0 means one minute.
func NewLimiter(max int, window time.Duration) *Limiter {
	return newLimiter(max, window, defaultShardCap)
}

func newLimiter(limit int, window time.Duration, shardCap int) *Limiter {
	if limit <= 0 {
		return &Limiter{}
	}
	if window <= 0 {
		window = time.Minute
	}
	if int64(limit) > math.MaxUint32 {
		limit = math.MaxUint32
	}
	l := &Limiter{
		max:      uint32(limit),
		window:   int64(window),
		shardCap: max(shardCap, evictSample),
		shards:   make([]limiterShard, limiterShards),
	}
	for i := range l.shards {
		l.shards[i].counts = make(map[uint64]uint32)
		l.shards[i].win = math.MinInt64
	}
	return l
}

// Allow records one request for key at now. It returns ok=false when key has
// already used max requests in the current window; retryAfter is then the time
// until that window ends, rounded up to whole seconds and at least one second
// (for a Retry-After header). A denied request is not counted.
//
// Allow does not allocate for keys already seen in the current window.
func (l *Limiter) Allow(key uint64, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil || l.max == 0 {
		return true, 0
	}
	ns := now.UnixNano()
	w := ns / l.window
	if ns%l.window < 0 {
		w--
	}
	s := &l.shards[(key*0x9E3779B97F4A7C15)>>(64-limiterShardBits)]
	s.mu.Lock()
	if w > s.win {
		s.roll(w)
	} else {
		// A request whose clock reading is from before the shard's window
		// (concurrent requests around a boundary) counts in the current one.
		w = s.win
	}
	n, found := s.counts[key]
	if n >= l.max {
		s.mu.Unlock()
		return false, l.retryAfter(w, ns)
	}
	if !found && len(s.counts) >= l.shardCap {
		s.evict()
	}
	s.counts[key] = n + 1
	if len(s.counts) > s.peak {
		s.peak = len(s.counts)
	}
	s.mu.Unlock()
	return true, 0
}

func (l *Limiter) retryAfter(w, ns int64) time.Duration {
	left := (w+1)*l.window - ns
	secs := (left + int64(time.Second) - 1) / int64(time.Second)
	return time.Duration(max(secs, 1)) * time.Second
}

// roll moves the shard to window w, dropping the previous window's counts.
// The map is reused unless it has grown far beyond what that window needed.
func (s *limiterShard) roll(w int64) {
	n := len(s.counts)
	if s.peak > shrinkMin && n < s.peak/4 {
		s.counts = make(map[uint64]uint32, n)
		s.peak = n
	} else {
		clear(s.counts)
	}
	s.win = w
}

// evict removes the entry with the smallest count among the first evictSample
// entries of a map iteration (which starts at a random position).
func (s *limiterShard) evict() {
	var victim uint64
	least := uint32(math.MaxUint32)
	i := 0
	for k, c := range s.counts {
		if c < least {
			victim, least = k, c
		}
		if i++; i == evictSample {
			break
		}
	}
	delete(s.counts, victim)
}

// entries returns the number of keys currently tracked.
func (l *Limiter) entries() int {
	total := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		total += len(s.counts)
		s.mu.Unlock()
	}
	return total
}

var ipHashSeed = maphash.MakeSeed()

// HashIP returns a rate-limit key for ip: a hash with a per-process random seed,
// so the limiter never holds the address itself. IPv4-mapped IPv6 addresses hash
// like their IPv4 form. IPv6 addresses are grouped by their /64 prefix, the
// block a single subscriber usually gets, so that rotating through the
// addresses of one prefix neither escapes the limit nor fills the limiter.
func HashIP(ip netip.Addr) uint64 {
	ip = ip.Unmap()
	b := ip.As16()
	if ip.Is6() {
		clear(b[8:])
	}
	return maphash.Bytes(ipHashSeed, b[:])
}

// KeyRateLimited is a project with its own ingest limit per key (a fleet
// bundle's rateLimit); ok false means the node's applies.
type KeyRateLimited interface {
	KeyRateLimit() (max int, window time.Duration, ok bool)
}

// projectLimiter is the limiter of a project's own limit, with that limit.
type projectLimiter struct {
	max    int
	window time.Duration
	lim    *Limiter
}

// keyLimiter is the limiter of a key of project p: its project's own
// (made again when the limit changes) or the node's.
func (s *ingestAPI) keyLimiter(p core.Project) *Limiter {
	rl, ok := p.(KeyRateLimited)
	if !ok {
		return s.keyLim
	}
	max, window, ok := rl.KeyRateLimit()
	if !ok {
		return s.keyLim
	}
	if window <= 0 {
		window = time.Minute
	}
	pnum := p.ProjectNum()
	s.projLimMu.RLock()
	pl := s.projLims[pnum]
	s.projLimMu.RUnlock()
	if pl != nil && pl.max == max && pl.window == window {
		return pl.lim
	}
	s.projLimMu.Lock()
	defer s.projLimMu.Unlock()
	if pl = s.projLims[pnum]; pl == nil || pl.max != max || pl.window != window {
		if s.projLims == nil {
			s.projLims = map[uint32]*projectLimiter{}
		}
		pl = &projectLimiter{max: max, window: window, lim: NewLimiter(max, window)}
		s.projLims[pnum] = pl
	}
	return pl.lim
}
