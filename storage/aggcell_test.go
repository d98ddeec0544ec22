package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

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
	unsorted := cell{"a": {1, 2}}.encode(ops)
	unsorted[0] = 2
	unsorted = append(unsorted, good[1:1+1+1+16]...) // "a" again
	for name, enc := range map[string][]byte{
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte(nil), good...), 0),
		"unsorted":  unsorted,
		"count":     {0xff},
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
