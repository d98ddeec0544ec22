package core

import (
	"math"
	"strconv"
)

// Numbers arrive as raw tokens from a parser that may be lenient (NaN, inf,
// 01, .5, 1.). The validator checks the token against the strict JSON grammar
// itself, decides finiteness from the decimal digits (so that overflowing
// tokens never reach strconv, whose range error allocates), and only parses
// the value when a field's constraint needs it.

// numStatus is the verdict on a raw number token.
type numStatus uint8

const (
	numOK       numStatus = iota // grammatical and finite as a float64
	numBad                       // not a JSON number
	numInfinite                  // grammatical, but rounds to ±Inf as a float64
)

// maxFloatHalfULP holds the decimal digits of 2^1024 - 2^970, the midpoint
// between math.MaxFloat64 and 2^1024: a value at or above it rounds to +Inf.
// It has 309 integer digits.
const maxFloatHalfULP = "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792"

// number is a grammar-checked token split into its parts.
type number struct {
	tok   []byte
	intd  []byte // integer digits (view of tok)
	frac  []byte // fraction digits (view of tok)
	exp   int64  // explicit exponent, saturated
	neg   bool
	plain bool // integer token without fraction or exponent
}

// expLimit saturates explicit exponents; any magnitude past it already
// decides overflow or underflow.
const expLimit = 1 << 40

// scanNumber checks tok against the JSON number grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and splits it into n.
func scanNumber(tok []byte, n *number) bool {
	*n = number{tok: tok}
	i := 0
	if len(tok) > 0 && tok[0] == '-' {
		n.neg = true
		i++
	}
	start := i
	if i >= len(tok) {
		return false
	}
	switch c := tok[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		i++
		for i < len(tok) && tok[i]-'0' <= 9 {
			i++
		}
	default:
		return false
	}
	n.intd = tok[start:i]
	if i == len(tok) {
		n.plain = true
		return true
	}
	if tok[i] == '.' {
		i++
		fs := i
		for i < len(tok) && tok[i]-'0' <= 9 {
			i++
		}
		if i == fs {
			return false
		}
		n.frac = tok[fs:i]
		if i == len(tok) {
			return true
		}
	}
	if tok[i] != 'e' && tok[i] != 'E' {
		return false
	}
	i++
	eneg := false
	if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
		eneg = tok[i] == '-'
		i++
	}
	es := i
	var e int64
	for i < len(tok) && tok[i]-'0' <= 9 {
		if e < expLimit {
			e = e*10 + int64(tok[i]-'0')
		}
		i++
	}
	if i == es || i != len(tok) {
		return false
	}
	if eneg {
		e = -e
	}
	n.exp = e
	return true
}

// digitAt returns significant-digit source i of the concatenated integer and
// fraction digits.
func (n *number) digitAt(i int) byte {
	if i < len(n.intd) {
		return n.intd[i]
	}
	return n.frac[i-len(n.intd)]
}

// sig locates the significant digits: the first and one past the last
// non-zero digit of intd+frac, and the decimal exponent E such that the value
// is 0.d1d2… × 10^E. zero is true when every digit is 0.
func (n *number) sig() (first, last int, e int64, zero bool) {
	total := len(n.intd) + len(n.frac)
	first = 0
	for first < total && n.digitAt(first) == '0' {
		first++
	}
	if first == total {
		return 0, 0, 0, true
	}
	last = total
	for n.digitAt(last-1) == '0' {
		last--
	}
	e = int64(len(n.intd)-first) + n.exp
	return first, last, e, false
}

// finite reports whether the value rounds to a finite float64.
func (n *number) finite() bool {
	first, last, e, zero := n.sig()
	if zero || e < 309 {
		return true
	}
	if e > 309 {
		return false
	}
	// 10^308 <= value < 10^309: compare digit by digit with the midpoint;
	// at or above it the value rounds to +Inf (ties go to the even 2^1024).
	for k := 0; k < len(maxFloatHalfULP); k++ {
		var d byte = '0'
		if first+k < last {
			d = n.digitAt(first + k)
		}
		if d != maxFloatHalfULP[k] {
			return d < maxFloatHalfULP[k]
		}
	}
	return false // equal to the midpoint, or above it by later digits
}

// checkNumber validates a raw token, grammar then finiteness, and leaves its
// parts in n.
func checkNumber(tok []byte, n *number) numStatus {
	if !scanNumber(tok, n) {
		return numBad
	}
	// The value is below 10^(integer digits + exponent); up to 10^308 it is
	// finite whatever the digits.
	if int64(len(n.intd))+n.exp <= 308 || n.finite() {
		return numOK
	}
	return numInfinite
}

// ParseNumber returns the float64 a JSON number token denotes, rounded to
// nearest even, as strconv.ParseFloat would; ok is false when tok is not a
// JSON number or rounds to an infinity. Plain decimals of up to 15 digits,
// most numbers an event carries, take a fast path that does not reach
// strconv; nothing allocates for tokens of up to 32 bytes.
func ParseNumber(tok []byte) (f float64, ok bool) {
	var n number
	if checkNumber(tok, &n) != numOK {
		return 0, false
	}
	return n.value(), true
}

// safeInteger returns the exact value of a token that denotes an integer in
// [0, 2^53] (1e3 and 1.0 do; -0 is 0); ok is false for a fraction, a negative
// number or a larger one. n must be grammatical.
func (n *number) safeInteger() (v int64, ok bool) {
	first, last, e, zero := n.sig()
	if zero {
		return 0, true
	}
	nd := int64(last - first)
	if n.neg || e < nd || e > 16 {
		return 0, false
	}
	for k := first; k < last; k++ {
		v = v*10 + int64(n.digitAt(k)-'0')
	}
	for k := nd; k < e; k++ {
		v *= 10
	}
	return v, v <= 1<<53
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// maxCompactDigits bounds the significant digits rewritten into the compact
// form handed to strconv.
const maxCompactDigits = 25

// value returns the float64 the token denotes, rounded to nearest even. n must
// be a grammatical, finite token (numOK). It does not allocate for tokens of
// up to 32 bytes, nor for longer ones with at most 25 significant digits or
// whose rounding is decided by them.
func (n *number) value() float64 {
	tok := n.tok
	if len(n.intd)+len(n.frac) <= 15 {
		// Fast path: the digits make an integer below 2^53, exact in a
		// float64, and one multiplication or division by an exact power of
		// ten rounds correctly.
		var m int64
		for _, c := range n.intd {
			m = m*10 + int64(c-'0')
		}
		for _, c := range n.frac {
			m = m*10 + int64(c-'0')
		}
		f := float64(m)
		ok := true
		switch k := n.exp - int64(len(n.frac)); {
		case k < 0 && k >= -22:
			f /= pow10[-k]
		case k > 0 && k <= 22:
			f *= pow10[k]
		case k != 0:
			ok = false
		}
		if ok {
			if n.neg {
				f = -f
			}
			return f
		}
	}
	if len(tok) <= 32 {
		// The conversion does not escape: it lives on the stack.
		f, _ := strconv.ParseFloat(string(tok), 64)
		return f
	}
	first, last, e, zero := n.sig()
	if zero || e < -400 {
		if n.neg {
			return math.Copysign(0, -1)
		}
		return 0
	}
	var buf [32]byte
	if last-first <= maxCompactDigits {
		return parseCompact(&buf, n, first, last, e, false)
	}
	// Too many digits to rewrite exactly: the value lies strictly between the
	// truncation to 25 digits and that truncation plus one unit in its last
	// place. When both round to the same float64, so does the value.
	lo := parseCompact(&buf, n, first, first+maxCompactDigits, e, false)
	hi := parseCompact(&buf, n, first, first+maxCompactDigits, e, true)
	if lo == hi {
		return lo
	}
	f, _ := strconv.ParseFloat(string(tok), 64)
	return f
}

// parseCompact writes [-]D…De±X for the significant digits [first,last) of n
// (value 0.D… × 10^e), adding one unit in the last place when up is set, and
// parses it.
func parseCompact(buf *[32]byte, n *number, first, last int, e int64, up bool) float64 {
	w := 0
	if n.neg {
		buf[w] = '-'
		w++
	}
	ds := w
	for k := first; k < last; k++ {
		buf[w] = n.digitAt(k)
		w++
	}
	nd := int64(last - first)
	if up {
		k := w - 1
		for k >= ds && buf[k] == '9' {
			buf[k] = '0'
			k--
		}
		if k >= ds {
			buf[k]++
		} else {
			// All nines: the sum is 10^nd, written as 1 with a larger exponent.
			buf[ds] = '1'
			w = ds + 1
			e++
			nd = 1
		}
	}
	x := e - nd // value = D…D × 10^x
	buf[w] = 'e'
	w++
	w = len(strconv.AppendInt(buf[:w], x, 10))
	f, _ := strconv.ParseFloat(string(buf[:w]), 64)
	return f
}
