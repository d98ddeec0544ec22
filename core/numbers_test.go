package core

import (
	"math"
	"math/big"
	"math/rand"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestMaxFloatHalfULP(t *testing.T) {
	one := big.NewInt(1)
	want := new(big.Int).Sub(new(big.Int).Lsh(one, 1024), new(big.Int).Lsh(one, 970))
	if want.String() != maxFloatHalfULP {
		t.Fatalf("maxFloatHalfULP is not 2^1024 - 2^970")
	}
	// It is the midpoint between MaxFloat64 and 2^1024.
	mf, _ := new(big.Float).SetFloat64(math.MaxFloat64).Int(nil)
	mid := new(big.Int).Add(mf, new(big.Int).Lsh(one, 970))
	if mid.Cmp(want) != 0 {
		t.Fatalf("midpoint mismatch")
	}
}

var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

func TestScanNumberGrammar(t *testing.T) {
	fixed := []string{"0", "-0", "1", "-1", "10", "0.5", "1e3", "1E+3", "1e-3", "-0.0e0", "123.456e-789",
		"", "-", "+1", "01", "-01", "00", ".5", "1.", "1.e3", "1e", "1e+", "e3", "NaN", "Infinity", "-inf",
		"0x1F", "1_000", " 1", "1 ", "1,0", "١", "1e3.5", "--1", "0.0.0"}
	check := func(s string) {
		var n number
		ok := scanNumber([]byte(s), &n)
		if want := jsonNumber.MatchString(s); ok != want {
			t.Errorf("scanNumber(%q) = %v, want %v", s, ok, want)
		}
	}
	for _, s := range fixed {
		check(s)
	}
	rng := rand.New(rand.NewSource(1))
	const alphabet = "-+0123456789.eE"
	for i := 0; i < 200000; i++ {
		b := make([]byte, rng.Intn(9))
		for j := range b {
			b[j] = alphabet[rng.Intn(len(alphabet))]
		}
		check(string(b))
	}
}

func digits(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + rng.Intn(10))
	}
	return string(b)
}

// randomToken returns a grammatical JSON number of varied shape and size.
func randomToken(rng *rand.Rand) string {
	var sb strings.Builder
	if rng.Intn(2) == 0 {
		sb.WriteByte('-')
	}
	switch rng.Intn(4) {
	case 0:
		sb.WriteByte('0')
	default:
		sb.WriteByte(byte('1' + rng.Intn(9)))
		sb.WriteString(digits(rng, rng.Intn([]int{3, 20, 60}[rng.Intn(3)])))
	}
	if rng.Intn(2) == 0 {
		sb.WriteByte('.')
		if rng.Intn(4) == 0 {
			sb.WriteString(strings.Repeat("0", rng.Intn(40)))
		}
		sb.WriteString(digits(rng, 1+rng.Intn([]int{3, 20, 60}[rng.Intn(3)])))
	}
	if rng.Intn(2) == 0 {
		sb.WriteByte("eE"[rng.Intn(2)])
		if r := rng.Intn(3); r > 0 {
			sb.WriteByte("+-"[r-1])
		}
		e := []int{rng.Intn(10), rng.Intn(400), 300 + rng.Intn(20), 320 + rng.Intn(40)}[rng.Intn(4)]
		sb.WriteString(strconv.Itoa(e))
	}
	return sb.String()
}

// checkAgainstStrconv compares finiteness and value with strconv.ParseFloat.
func checkAgainstStrconv(t *testing.T, tok string) {
	t.Helper()
	var n number
	st := checkNumber([]byte(tok), &n)
	if st == numBad {
		t.Fatalf("%q rejected by the grammar", tok)
	}
	want, _ := strconv.ParseFloat(tok, 64)
	if math.IsInf(want, 0) {
		if st != numInfinite {
			t.Errorf("%q: finite, strconv gives %v", tok, want)
		}
		return
	}
	if st != numOK {
		t.Errorf("%q: infinite, strconv gives %v", tok, want)
		return
	}
	if got := n.value(); math.Float64bits(got) != math.Float64bits(want) {
		t.Errorf("%q: value %v, strconv %v", tok, got, want)
	}
}

func TestNumberValueMatchesStrconv(t *testing.T) {
	fixed := []string{
		"0", "-0", "0.0", "-0.0e-5", "1", "-1", "9007199254740993", "9999999999999999", "12345678901234567890",
		"1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "1e308", "1e309", "-1e309",
		maxFloatHalfULP, "-" + maxFloatHalfULP, maxFloatHalfULP + ".0", maxFloatHalfULP + ".000001",
		maxFloatHalfULP[:308] + "1", maxFloatHalfULP[:308] + "1.9999", "0." + maxFloatHalfULP + "e309",
		"0.0000000000000000000000000000000000000001e348", "1e-400", "-1e-400", "4.9e-324", "2.4703282292062327e-324",
		"2.4703282292062328e-324", "1e99999999999999999999999", "1e-99999999999999999999999", "0e99999999999",
		// Halfway between 1 and the next float64: ties to even, then just above.
		"1.00000000000000011102230246251565404236316680908203125",
		"1.00000000000000011102230246251565404236316680908203125000000000001",
		"1.00000000000000011102230246251565404236316680908203124999999999999",
		"0.30000000000000000000000000000000000000001", "123456789012345678901234567890123456789",
		"1." + strings.Repeat("0", 40) + "1", "-1." + strings.Repeat("9", 40), strings.Repeat("9", 40),
	}
	for _, tok := range fixed {
		checkAgainstStrconv(t, tok)
	}
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 200000; i++ {
		checkAgainstStrconv(t, randomToken(rng))
	}
}

func TestSafeInteger(t *testing.T) {
	for tok, want := range map[string]int64{"0": 0, "-0": 0, "-0.0": 0, "1e3": 1000, "2.50e1": 25, "9007199254740992": 1 << 53, "0.9007199254740992e16": 1 << 53} {
		var n number
		scanNumber([]byte(tok), &n)
		if got, ok := n.safeInteger(); !ok || got != want {
			t.Errorf("%s: %d %v", tok, got, ok)
		}
	}
	for _, tok := range []string{"-1", "0.5", "1e-1", "9007199254740993", "1e17", "1e9999999", "-1e3", "12.0001"} {
		var n number
		scanNumber([]byte(tok), &n)
		if v, ok := n.safeInteger(); ok {
			t.Errorf("%s: accepted as %d", tok, v)
		}
	}
}

func TestNumberValueDoesNotAllocate(t *testing.T) {
	for _, tok := range []string{
		"1795892750979", "-0.718", "1.7976931348623157e308", "0.000000000000000000000000000000000000000000123",
		"123456789012345678901234.5e-10", "1." + strings.Repeat("0", 40) + "1", "1e999", maxFloatHalfULP,
	} {
		b := []byte(tok)
		allocs := testing.AllocsPerRun(100, func() {
			var n number
			if checkNumber(b, &n) == numOK {
				_ = n.value()
			}
		})
		if allocs != 0 {
			t.Errorf("%.30s: %v allocations", tok, allocs)
		}
	}
}

// TestParseNumber: the exported parser takes JSON numbers only, refuses the
// ones that round to an infinity, and agrees bit for bit with strconv on
// the rest.
func TestParseNumber(t *testing.T) {
	for _, tok := range []string{"01", "1.", ".5", "+1", "NaN", "-Inf", "1e309", "-" + maxFloatHalfULP, " 1", ""} {
		if f, ok := ParseNumber([]byte(tok)); ok {
			t.Errorf("ParseNumber(%q) = %v, want a refusal", tok, f)
		}
	}
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 100000; i++ {
		tok := randomToken(rng)
		want, err := strconv.ParseFloat(tok, 64)
		got, ok := ParseNumber([]byte(tok))
		if finite := err == nil; ok != finite || ok && math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("ParseNumber(%q) = %v %v, strconv %v %v", tok, got, ok, want, err)
		}
	}
}

// BenchmarkParseNumber: six tokens of the shapes events carry per op, by
// ParseNumber and by strconv.ParseFloat.
func BenchmarkParseNumber(b *testing.B) {
	toks := []string{"0.4523", "-12.75", "1733900000000", "16.7", "523000000", "-0.0312"}
	raw := make([][]byte, len(toks))
	for i, s := range toks {
		raw[i] = []byte(s)
	}
	b.Run("ParseNumber", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, tok := range raw {
				if _, ok := ParseNumber(tok); !ok {
					b.Fatal(string(tok))
				}
			}
		}
	})
	b.Run("strconv", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, tok := range toks {
				if _, err := strconv.ParseFloat(tok, 64); err != nil {
					b.Fatal(tok)
				}
			}
		}
	})
}
