package ingestlog

import (
	"encoding/binary"
	"hash/crc32"
)

// A segment starts with segmentMagic; then frames, each
//
//	len u32 | crc32c u32 | project number u32 | seq u64 | record (len bytes)
//
// with the checksum (Castagnoli) over the number, the seq and the record.
const (
	segmentMagic = "UEILOG1\n"
	frameHeader  = 20
	// MaxRecord bounds one record: far over any body the collector
	// accepts, it keeps a corrupt length from asking for gigabytes.
	MaxRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// parseFrame reads the frame at the start of b.
func parseFrame(b []byte) (pnum uint32, seq uint64, rec []byte, ok bool) {
	if len(b) < frameHeader {
		return 0, 0, nil, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n > MaxRecord || int64(len(b)) < int64(frameHeader)+int64(n) {
		return 0, 0, nil, false
	}
	body := b[8 : frameHeader+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, 0, nil, false
	}
	return binary.LittleEndian.Uint32(body), binary.LittleEndian.Uint64(body[4:]), body[12:], true
}

// appendFrame appends the frame of one record to dst.
func appendFrame(dst []byte, pnum uint32, seq uint64, rec []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(rec)))
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint32(dst, pnum)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = append(dst, rec...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst
}

// frame is one good frame found in a segment.
type frame struct {
	pnum uint32
	seq  uint64
	off  int64 // of the frame
	n    int   // record bytes
}

// scan is what a read through of a segment found.
type scan struct {
	frames []frame
	// good is where the frames read in a row from the start end: the
	// segment is whole when good is its length.
	good int64
	// resynced: after the first bad byte, good frames were found again
	// (so the bad bytes are damage, not a write cut short).
	resynced bool
	// bad is how many bytes lie outside good frames.
	bad int64
	// gaveUp: the search for frames past damage spent its budget and
	// stopped at giveUpAt, which may hide frames after it.
	gaveUp   bool
	giveUpAt int64
	budget   int64
}

// resyncBudget bounds the checksum work of looking for frames past damage
// in a segment of n bytes. A candidate frame costs a checksum over its
// length only when that length fits in what is left, so random bytes
// cost little, but a run of plausible lengths costs up to n per byte:
// past the budget the search stops (and says so) rather than take
// minutes over one segment at open.
func resyncBudget(n int64) int64 { return 64*n + 64<<20 }

// scanSegment reads data (a segment) through: the frames in a row from
// the start, then, past a bad byte, the frames found by trying every
// later offset.
func scanSegment(data []byte, budget int64) scan {
	s := scan{budget: budget}
	if len(data) < len(segmentMagic) || string(data[:len(segmentMagic)]) != segmentMagic {
		// Not even the magic: a file created but never written to (or
		// written to nothing but damage). Frames may still be found.
		s.good = 0
		s.scanFrom(data, 0)
		return s
	}
	off := int64(len(segmentMagic))
	for {
		pnum, seq, rec, ok := parseFrame(data[off:])
		if !ok {
			break
		}
		s.frames = append(s.frames, frame{pnum: pnum, seq: seq, off: off, n: len(rec)})
		off += int64(frameHeader + len(rec))
	}
	s.good = off
	if off < int64(len(data)) {
		s.scanFrom(data, off)
	}
	return s
}

// scanFrom looks for good frames from the bad byte at from on.
func (s *scan) scanFrom(data []byte, from int64) {
	budget := s.budget
	end := int64(len(data))
	bad := int64(0)
	for off := from; off < end; {
		if end-off >= frameHeader {
			n := int64(binary.LittleEndian.Uint32(data[off:]))
			if n <= MaxRecord && off+frameHeader+n <= end {
				if budget -= n + 12; budget < 0 {
					s.gaveUp, s.giveUpAt = true, off
					bad += end - off
					break
				}
				if pnum, seq, rec, ok := parseFrame(data[off:]); ok {
					s.frames = append(s.frames, frame{pnum: pnum, seq: seq, off: off, n: len(rec)})
					s.resynced = true
					off += int64(frameHeader + len(rec))
					continue
				}
			}
		}
		bad++
		off++
	}
	s.bad = bad
}
