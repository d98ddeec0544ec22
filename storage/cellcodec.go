package storage

import (
	"encoding/binary"
	"math"
)

// A cell is stored in one of two encodings; readers take both, writers
// write the second.
//
// Version 1: uvarint n, then n items in ascending order, each a uvarint
// length, the item's bytes and its row as float64 bits (8 bytes, little
// endian, per number).
//
// Version 2: a 0 byte, then the same, except that each number of a row is
// a uvarint: an integer in [0, 2^53] (counts, sums of counts, timestamps:
// nearly every number a cell holds) as twice its value, anything else as 1
// followed by its float64 bits. A row of three counts takes 3 bytes, not
// 24, so cells are about a quarter of their version-1 size: less to read,
// decompress, cache and rewrite (docs/RATIONALE.md, "Why are cells'
// numbers varints?").
//
// A version-1 cell starts with 0 only when it is empty (the single byte
// 0), so the two never mix up.

// cellV2 is the first byte of a version-2 cell.
const cellV2 = 0

// maxExactInt is the largest integer every smaller one of which a float64
// holds exactly.
const maxExactInt = 1 << 53

// appendCellNum appends v as a version-2 number.
func appendCellNum(dst []byte, v float64) []byte {
	if v >= 0 && v <= maxExactInt && v == math.Trunc(v) && !math.Signbit(v) {
		return binary.AppendUvarint(dst, uint64(v)<<1)
	}
	dst = append(dst, 1)
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

// appendCellRow appends a row's numbers in version 2.
func appendCellRow(dst []byte, row []float64) []byte {
	for _, v := range row {
		dst = appendCellNum(dst, v)
	}
	return dst
}

// readCellNum reads a version-2 number; n is 0 when b does not start with
// one.
func readCellNum(b []byte) (v float64, n int) {
	// Nearly every number is a small count: one or two bytes, read here.
	switch {
	case len(b) > 0 && b[0] < 0x80 && b[0]&1 == 0: // an integer under 64
		return float64(b[0] >> 1), 1
	case len(b) > 1 && b[0] >= 0x80 && b[1] < 0x80 && b[0]&1 == 0: // under 8192
		return float64((uint64(b[0]&0x7f) | uint64(b[1])<<7) >> 1), 2
	}
	return readCellNumVarint(b)
}

// readCellNumVarint is readCellNum through the general varint decode,
// whatever the number's length.
func readCellNumVarint(b []byte) (v float64, n int) {
	x, k := binary.Uvarint(b)
	switch {
	case k <= 0:
		return 0, 0
	case x&1 == 0:
		if x>>1 > maxExactInt {
			return 0, 0
		}
		return float64(x >> 1), k
	case x == 1 && len(b) >= k+8:
		return math.Float64frombits(binary.LittleEndian.Uint64(b[k:])), k + 8
	}
	return 0, 0
}

// cellReader walks an encoded cell's items in stored order.
type cellReader struct {
	b    []byte
	n    uint64 // items left
	v2   bool
	w    int // numbers per row
	prev []byte
}

// newCellReader starts reading cell b, of rows of w numbers.
func newCellReader(b []byte, w int) (cellReader, error) {
	r := cellReader{w: w}
	if len(b) > 1 && b[0] == cellV2 {
		r.v2, b = true, b[1:]
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return r, ErrCorruptRecord
	}
	r.b, r.n = b[k:], n
	return r, nil
}

// ascends is whether item sorts after prev, compared eight bytes at a
// time: items often share a long prefix (a scene's name, in the cells that
// keep it in their items).
func ascends(prev, item []byte) bool {
	n := min(len(prev), len(item))
	i := 0
	for ; i+8 <= n; i += 8 {
		if a, b := binary.BigEndian.Uint64(prev[i:]), binary.BigEndian.Uint64(item[i:]); a != b {
			return a < b
		}
	}
	for ; i < n; i++ {
		if prev[i] != item[i] {
			return prev[i] < item[i]
		}
	}
	return len(prev) < len(item)
}

// items is how many items are left.
func (r *cellReader) items() uint64 { return r.n }

// next reads the next item into row (of w numbers) and returns it with
// the length of its item header (uvarint length and bytes) and its whole
// encoding, both aliasing the cell. Items must ascend.
func (r *cellReader) next(row []float64) (item, span []byte, head int, err error) {
	b := r.b
	if item, head, err = r.item(); err != nil {
		return nil, nil, 0, err
	}
	if err = r.row(row); err != nil {
		return nil, nil, 0, err
	}
	return item, b[:len(b)-len(r.b)], head, nil
}

// item reads the next item's header: the item (aliasing the cell) and the
// header's length. Its row must be read (row) or skipped (skipRow) next.
func (r *cellReader) item() (item []byte, head int, err error) {
	if r.n == 0 {
		return nil, 0, ErrCorruptRecord
	}
	b := r.b
	var l uint64
	var k int
	if len(b) > 0 && b[0] < 0x80 { // a length under 128: one byte
		l, k = uint64(b[0]), 1
	} else {
		l, k = binary.Uvarint(b)
	}
	if k <= 0 || uint64(len(b)-k) < l {
		return nil, 0, ErrCorruptRecord
	}
	head = k + int(l)
	item = b[k:head:head]
	if r.prev != nil && !ascends(r.prev, item) {
		return nil, 0, ErrCorruptRecord // items must be sorted and distinct
	}
	r.prev, r.b, r.n = item, b[head:], r.n-1
	return item, head, nil
}

// row reads the current item's row into row (of w numbers).
func (r *cellReader) row(row []float64) error {
	b := r.b
	at := 0
	if r.v2 {
		for j := range row[:r.w] {
			if at < len(b) && b[at] < 0x80 && b[at]&1 == 0 { // an integer under 64: one byte
				row[j] = float64(b[at] >> 1)
				at++
				continue
			}
			v, m := readCellNum(b[at:])
			if m == 0 {
				return ErrCorruptRecord
			}
			row[j] = v
			at += m
		}
	} else {
		if len(b) < 8*r.w {
			return ErrCorruptRecord
		}
		for j := range row[:r.w] {
			row[j] = math.Float64frombits(binary.LittleEndian.Uint64(b[at:]))
			at += 8
		}
	}
	r.b = b[at:]
	return nil
}

// skipRow passes over the current item's row.
func (r *cellReader) skipRow() error {
	b := r.b
	if !r.v2 {
		if len(b) < 8*r.w {
			return ErrCorruptRecord
		}
		r.b = b[8*r.w:]
		return nil
	}
	at := 0
	for j := 0; j < r.w; j++ {
		switch {
		case at < len(b) && b[at] < 0x80 && b[at]&1 == 0: // a small integer
			at++
		default:
			_, m := readCellNum(b[at:])
			if m == 0 {
				return ErrCorruptRecord
			}
			at += m
		}
	}
	r.b = b[at:]
	return nil
}

// done reports an error unless every item was read and nothing follows.
func (r *cellReader) done() error {
	if r.n != 0 || len(r.b) != 0 {
		return ErrCorruptRecord
	}
	return nil
}
