package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// mergeEncoded is mergeSorted with the delta as a cell (a map); keys is
// scratch for its sorted items and is returned grown.
func mergeEncoded(dst []byte, ops []mergeOp, enc []byte, delta cell, keys []string) ([]byte, []string, error) {
	keys = keys[:0]
	for it := range delta {
		keys = append(keys, it)
	}
	sort.Strings(keys)
	rows := make([][]float64, len(keys))
	for i, k := range keys {
		rows[i] = delta[k]
	}
	dst, err := mergeSorted(dst, ops, enc, keys, rows)
	return dst, keys, err
}

// refMerge is the plain path: decode the stored cell, merge, encode.
func refMerge(ops []mergeOp, enc []byte, delta cell) ([]byte, error) {
	cur := cell{}
	if enc != nil {
		if err := decodeCell(ops, enc, cur); err != nil {
			return nil, err
		}
	}
	cur.merge(ops, delta)
	return cur.encode(ops), nil
}

func randCell(r *rand.Rand, ops []mergeOp, n, alphabet int) cell {
	c := cell{}
	for i := 0; i < n; i++ {
		row := make([]float64, len(ops))
		for j := range row {
			row[j] = float64(r.IntN(1000)) / 8
		}
		c[fmt.Sprintf("i%0*d", 1+r.IntN(2), r.IntN(alphabet))] = row
	}
	return c
}

// TestMergeEncodedMatchesDecodeMergeEncode: merging into the stored
// encoding directly gives the bytes the decode-merge-encode path gives, for
// cells that share some items, none, or all, with every merge op.
func TestMergeEncodedMatchesDecodeMergeEncode(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var keys []string
	for _, ops := range [][]mergeOp{{opSum}, {opSum, opMax}, {opSum, opSum, opMin}, {opSum, opSum, opMax, opSum}} {
		for trial := 0; trial < 300; trial++ {
			stored := randCell(r, ops, r.IntN(40), 1+r.IntN(60))
			delta := randCell(r, ops, 1+r.IntN(40), 1+r.IntN(60))
			var enc []byte
			if trial%7 != 0 {
				enc = stored.encode(ops)
			}
			want, err := refMerge(ops, enc, delta)
			if err != nil {
				t.Fatal(err)
			}
			prefix := []byte("keep")
			got, k, err := mergeEncoded(append([]byte(nil), prefix...), ops, enc, delta, keys)
			keys = k
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
				t.Fatalf("ops %v trial %d: merged encoding differs\n got %x\nwant %x", ops, trial, got[len(prefix):], want)
			}
		}
	}
}

// TestMergeEncodedRejectsCorruptCells: a stored cell that is truncated,
// has trailing bytes or unsorted items is an error, and dst is left as it
// was.
func TestMergeEncodedRejectsCorruptCells(t *testing.T) {
	ops := []mergeOp{opSum, opMax}
	good := cell{"a": {1, 2}, "b": {3, 4}, "c": {5, 6}}.encode(ops)
	one := cell{"a": {1, 2}}.encode(ops)              // 0, count 1, then "a"'s item
	unsorted := append([]byte{cellV2, 2}, one[2:]...) // count 2 …
	unsorted = append(unsorted, one[2:]...)           // … and "a" twice
	v1Unsorted := append([]byte{2}, encodeV1(ops, cell{"a": {1, 2}})[1:]...)
	v1Unsorted = append(v1Unsorted, v1Unsorted[1:]...)
	for name, enc := range map[string][]byte{
		"truncated":    good[:len(good)-3],
		"trailing":     append(append([]byte(nil), good...), 0),
		"unsorted":     unsorted,
		"v1 unsorted":  v1Unsorted,
		"v1 truncated": encodeV1(ops, cell{"a": {1, 2}, "b": {3, 4}})[:20],
		"number":       {cellV2, 1, 1, 'a', 3, 2}, // 3: odd, not the float tag
		"float cut":    {cellV2, 1, 1, 'a', 1, 0, 0, 0},
		"count":        {0xff},
	} {
		dst, _, err := mergeEncoded([]byte("x"), ops, enc, cell{"b": {1, 1}}, nil)
		if !errors.Is(err, ErrCorruptRecord) || string(dst) != "x" {
			t.Errorf("%s: err %v dst %q", name, err, dst)
		}
	}
}

// FuzzMergeEncoded: any stored bytes are either rejected or merged like
// the decode-merge-encode path: the same cell, and for a canonical stored
// encoding (ours always is) the same bytes.
func FuzzMergeEncoded(f *testing.F) {
	ops := []mergeOp{opSum, opMin}
	f.Add(cell{"a": {1, 2}, "m": {3, 4}}.encode(ops), "b", 1.5)
	f.Add([]byte{}, "a", 2.0)
	f.Add(cell{"z": {0, 0}}.encode(ops), "z", -1.0)
	f.Add(cell{"a": {0.5, -3}, "q": {1e300, 7}}.encode(ops), "q", 2.0)
	f.Add(encodeV1(ops, cell{"a": {1, 2}, "m": {3, 4}}), "m", 1.0)
	f.Add(encodeV1(ops, cell{}), "m", 1.0)
	f.Fuzz(func(t *testing.T, enc []byte, item string, v float64) {
		if v != v {
			return // NaN rows never compare equal
		}
		delta := cell{item: {v, v}}
		got, _, err := mergeEncoded(nil, ops, enc, delta, nil)
		if err != nil {
			return
		}
		if len(enc) == 0 {
			enc = nil
		}
		dec := cell{}
		if enc != nil {
			if derr := decodeCell(ops, enc, dec); derr != nil {
				t.Fatalf("merged a cell decodeCell rejects: %v", derr)
			}
		}
		want, _ := refMerge(ops, enc, delta)
		gotCell, wantCell := cell{}, cell{}
		if err := decodeCell(ops, got, gotCell); err != nil {
			t.Fatalf("merged cell does not decode: %v", err)
		}
		decodeCell(ops, want, wantCell)
		if err := sameCell(gotCell, wantCell); err != nil {
			t.Fatal(err)
		}
		if enc != nil && bytes.Equal(dec.encode(ops), enc) && !bytes.Equal(got, want) {
			t.Fatalf("merged %x, want %x", got, want)
		}
	})
}

// encodeV1 is the first cell encoding (every number as 8 bytes), which
// stores written before version 2 still hold.
func encodeV1(ops []mergeOp, c cell) []byte {
	items := slices.Sorted(maps.Keys(c))
	out := binary.AppendUvarint(nil, uint64(len(items)))
	for _, it := range items {
		out = binary.AppendUvarint(out, uint64(len(it)))
		out = append(out, it...)
		for _, v := range c[it] {
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
		}
	}
	return out
}

// TestCellV1StillRead: a version-1 cell decodes to what it held, walks the
// same, and merging into it writes version 2 with the same content as
// merging into its version-2 encoding.
func TestCellV1StillRead(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, ops := range [][]mergeOp{{opSum}, {opSum, opMax}, {opSum, opSum, opMin}} {
		for trial := 0; trial < 200; trial++ {
			stored := randCell(r, ops, r.IntN(40), 1+r.IntN(60))
			if trial%5 == 0 {
				for _, row := range stored {
					row[0] = -row[0] - 0.25 // not an integer ≥ 0: kept as float bits
				}
			}
			v1 := encodeV1(ops, stored)
			dec := cell{}
			if err := decodeCell(ops, v1, dec); err != nil {
				t.Fatal(err)
			}
			if err := sameCell(dec, stored); err != nil {
				t.Fatalf("decoded v1: %v", err)
			}
			var walked int
			row := make([]float64, len(ops))
			if err := walkCell(ops, v1, row, func(item []byte, row []float64) {
				walked++
				if !slices.Equal(row, stored[string(item)]) {
					t.Fatalf("walked %q as %v, stored %v", item, row, stored[string(item)])
				}
			}); err != nil || walked != len(stored) {
				t.Fatalf("walk v1: %d of %d items, %v", walked, len(stored), err)
			}
			delta := randCell(r, ops, 1+r.IntN(20), 1+r.IntN(60))
			got, _, err := mergeEncoded(nil, ops, v1, delta, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := mergeEncoded(nil, ops, stored.encode(ops), delta, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || got[0] != cellV2 {
				t.Fatalf("merged into v1 %x, into v2 %x", got, want)
			}
		}
	}
}

// TestCellNumbers: every number survives version 2 bit for bit; integers
// from 0 to 2^53 take their varint, the rest 9 bytes.
func TestCellNumbers(t *testing.T) {
	for _, v := range []float64{0, 1, 2, 127, 128, 1796651616115, maxExactInt, maxExactInt + 2, math.Copysign(0, -1),
		-1, 0.5, 1e300, math.Inf(1), math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64} {
		b := appendCellNum(nil, v)
		got, n := readCellNum(b)
		if n != len(b) || math.Float64bits(got) != math.Float64bits(v) {
			t.Errorf("%v: %x read back as %v (%d of %d bytes)", v, b, got, n, len(b))
		}
		integer := v >= 0 && v <= maxExactInt && v == math.Trunc(v) && !math.Signbit(v)
		if want := binary.PutUvarint(make([]byte, 10), uint64(v)<<1); integer && len(b) != want {
			t.Errorf("%v: %d bytes, want %d", v, len(b), want)
		} else if !integer && len(b) != 9 {
			t.Errorf("%v: %d bytes, want 9", v, len(b))
		}
	}
	// A row of counts: 3 bytes in version 2 against 24 in version 1.
	ops := []mergeOp{opSum, opSum, opMax}
	c := cell{"\x01\x00\x78": {3, 0, 17}}
	if v1, v2 := len(encodeV1(ops, c)), len(c.encode(ops)); v2 != v1-21+1 {
		t.Errorf("one item of three counts: v1 %d bytes, v2 %d", v1, v2)
	}
}

// TestCellDecodeFastPaths: the one- and two-byte paths of readCellNum and
// cellReader.row read every byte string as the general varint decode
// does, and ascends orders items as a string comparison does.
func TestCellDecodeFastPaths(t *testing.T) {
	general := readCellNumVarint
	r := rand.New(rand.NewPCG(5, 5))
	check := func(b []byte) {
		v, n := readCellNum(b)
		wv, wn := general(b)
		if n != wn || math.Float64bits(v) != math.Float64bits(wv) {
			t.Fatalf("% x: %v (%d bytes), want %v (%d bytes)", b, v, n, wv, wn)
		}
		// row over a v2 cell reader on the same bytes, one number wide.
		cr := cellReader{b: b, v2: true, w: 1}
		row := []float64{-1}
		err := cr.row(row)
		if (err != nil) != (wn == 0) || (err == nil && (math.Float64bits(row[0]) != math.Float64bits(wv) || len(b)-len(cr.b) != wn)) {
			t.Fatalf("row % x: %v, %v, want %v (%d bytes)", b, row, err, wv, wn)
		}
	}
	for x := 0; x < 1<<16; x++ {
		check([]byte{byte(x >> 8), byte(x)})
		check([]byte{byte(x >> 8), byte(x), byte(r.IntN(256)), 0, 0, 0, 0, 0, 0, 0, 0})
		check([]byte{byte(x >> 8)})
	}
	check(nil)
	for i := 0; i < 100000; i++ {
		b := make([]byte, r.IntN(12))
		for j := range b {
			b[j] = byte(r.IntN(256))
		}
		check(b)
	}
	for i := 0; i < 200000; i++ {
		a, b := make([]byte, r.IntN(20)), make([]byte, r.IntN(20))
		for j := range a {
			a[j] = byte(r.IntN(3))
		}
		for j := range b {
			b[j] = byte(r.IntN(3))
		}
		if i%2 == 0 { // a shared prefix, as a scene's name is
			pre := []byte("\x10apartment.living"[:r.IntN(18)])
			a, b = append(pre[:len(pre):len(pre)], a...), append(pre[:len(pre):len(pre)], b...)
		}
		if got, want := ascends(a, b), string(a) < string(b); got != want {
			t.Fatalf("ascends(% x, % x) = %v", a, b, got)
		}
	}
}
