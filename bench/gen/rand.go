package gen

import "math/bits"

// rng is xoshiro256** seeded through splitmix64. It is spelled out here, not
// taken from math/rand, so that a seed names the same bodies on every Go
// release and platform.
type rng struct{ s0, s1, s2, s3 uint64 }

func newRNG(seed int64) rng {
	x := uint64(seed)
	next := func() uint64 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return z ^ z>>31
	}
	return rng{next(), next(), next(), next()}
}

func (r *rng) u64() uint64 {
	out := bits.RotateLeft64(r.s1*5, 7) * 9
	t := r.s1 << 17
	r.s2 ^= r.s0
	r.s3 ^= r.s1
	r.s1 ^= r.s2
	r.s0 ^= r.s3
	r.s2 ^= t
	r.s3 = bits.RotateLeft64(r.s3, 45)
	return out
}

// intn returns a value in [0, n), n > 0 and small.
func (r *rng) intn(n int) int { return int(((r.u64() >> 32) * uint64(n)) >> 32) }

// between returns a value in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// float returns a value in [0, 1).
func (r *rng) float() float64 { return float64(r.u64()>>11) * 0x1p-53 }

// uniform returns a value in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }

// gauss returns an approximately standard normal value (Irwin–Hall, n=4).
func (r *rng) gauss() float64 {
	return (r.float() + r.float() + r.float() + r.float() - 2) * 1.7320508075688772
}

func pick[T any](r *rng, xs []T) T { return xs[r.intn(len(xs))] }
