package gen

import (
	"math"
	"strconv"

	"github.com/uptimizr/edge/core"
)

// JSON is written by hand: events are appended field by field, numbers with
// strconv, strings through quote.

const hexDigits = "0123456789abcdef"

// quote appends s as a JSON string, with the collector's own encoder.
func quote[S ~string | ~[]byte](dst []byte, s S) []byte { return core.AppendQuoted(dst, s) }

// fixed appends x rounded to three decimals, without trailing zeros and
// never as "-0" (the precision the SDKs send).
func fixed(dst []byte, x float64) []byte {
	n := int64(math.Round(x * 1000))
	if n < 0 {
		dst = append(dst, '-')
		n = -n
	}
	dst = strconv.AppendInt(dst, n/1000, 10)
	f := n % 1000
	if f == 0 {
		return dst
	}
	d := [3]byte{byte('0' + f/100), byte('0' + f/10%10), byte('0' + f%10)}
	k := 3
	for d[k-1] == '0' {
		k--
	}
	dst = append(dst, '.')
	return append(dst, d[:k]...)
}

func integer(dst []byte, n int) []byte { return strconv.AppendInt(dst, int64(n), 10) }

func boolean(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// vec appends [x,y,…] with three decimals.
func vec(dst []byte, v ...float64) []byte {
	dst = append(dst, '[')
	for i, x := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = fixed(dst, x)
	}
	return append(dst, ']')
}

func vec3(dst []byte, v [3]float64) []byte { return vec(dst, v[0], v[1], v[2]) }

// hexID appends 32 lowercase hex characters drawn from r.
func hexID(dst []byte, r *rng) []byte {
	for range 2 {
		x := r.u64()
		for i := 60; i >= 0; i -= 4 {
			dst = append(dst, hexDigits[x>>uint(i)&15])
		}
	}
	return dst
}
