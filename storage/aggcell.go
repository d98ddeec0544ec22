package storage

import (
	"encoding/binary"
	"math"
	"sort"
)

// Aggregates are kept as cells: one Badger value per (project, kind, scope,
// time bucket), holding a small map from an item (an event type, a mesh
// name, a heatmap cell, …) to a fixed row of numbers. Each kind declares how
// its numbers merge (sum, min or max), so folding new events in, and merging
// buckets at query time, are the same operation.

// mergeOp is how one number of a row combines with another.
type mergeOp uint8

const (
	opSum mergeOp = iota
	opMin
	opMax
)

// aggKind identifies an aggregate family. Its byte is part of the key.
type aggKind byte

const (
	kindCounts     aggKind = 'c' // per minute: event type → [count, max ts]
	kindPerf       aggKind = 'f' // per minute: "" → [samples, fps sum, fps min]
	kindPerfHist   aggKind = 'h' // per minute: fps bin → [count] (mergeable sketch)
	kindResources  aggKind = 'r' // per hour: metric → [samples, sum, max]
	kindMeshTop    aggKind = 'm' // per hour: mesh → [count]
	kindMeshDwell  aggKind = 'v' // per hour: mesh → [visible ms, centered ms, max screen fraction, samples]
	kindHover      aggKind = 'd' // per hour: mesh → [dwell ms, max dwell ms, episodes]
	kindHeatPtr    aggKind = 'p' // per hour: screen cell → [count]
	kindHeatGaze   aggKind = 'g' // per hour: voxel → [count]
	kindHeatCamera aggKind = 'a' // per hour: (azimuth, elevation) degree → [count]

	// Hourly roll-ups of the per-minute kinds, so a query over days reads
	// hours and touches minutes only at its ragged ends.
	kindCountsHour   aggKind = 'C'
	kindPerfHour     aggKind = 'F'
	kindPerfHistHour aggKind = 'H'
)

// rollupOf maps a per-minute kind to its hourly roll-up.
// (An array indexed by kind, not a map: it is read for every event folded.)
var rollupOf = [numKinds]aggKind{kindCounts: kindCountsHour, kindPerf: kindPerfHour, kindPerfHist: kindPerfHistHour}

// numKinds bounds the kind bytes (ASCII letters).
const numKinds = 128

var kindOps = [numKinds][]mergeOp{
	kindCounts:     {opSum, opMax},
	kindPerf:       {opSum, opSum, opMin},
	kindPerfHist:   {opSum},
	kindResources:  {opSum, opSum, opMax},
	kindMeshTop:    {opSum},
	kindMeshDwell:  {opSum, opSum, opMax, opSum},
	kindHover:      {opSum, opMax, opSum},
	kindHeatPtr:    {opSum},
	kindHeatGaze:   {opSum},
	kindHeatCamera: {opSum},

	kindCountsHour:   {opSum, opMax},
	kindPerfHour:     {opSum, opSum, opMin},
	kindPerfHistHour: {opSum},
}

// Bucket widths.
const (
	minuteMs = int64(60_000)
	hourMs   = int64(3_600_000)
)

func kindBucket(k aggKind) int64 {
	switch k {
	case kindCounts, kindPerf, kindPerfHist:
		return minuteMs
	}
	return hourMs
}

// cell is one aggregate value: item → row.
type cell map[string][]float64

func (c cell) add(ops []mergeOp, item string, row ...float64) {
	cur, ok := c[item]
	if !ok {
		c[item] = append([]float64(nil), row...)
		return
	}
	mergeRow(ops, cur, row)
}

func mergeRow(ops []mergeOp, dst, src []float64) {
	for i, op := range ops {
		switch op {
		case opSum:
			dst[i] += src[i]
		case opMin:
			dst[i] = math.Min(dst[i], src[i])
		case opMax:
			dst[i] = math.Max(dst[i], src[i])
		}
	}
}

func (c cell) merge(ops []mergeOp, o cell) {
	for item, row := range o {
		c.add(ops, item, row...)
	}
}

// encode writes items in sorted order: uvarint len, item, then the row as
// float64 bits.
func (c cell) encode(ops []mergeOp) []byte {
	items := make([]string, 0, len(c))
	for it := range c {
		items = append(items, it)
	}
	sort.Strings(items)
	out := make([]byte, 0, len(c)*(8+8*len(ops)))
	out = binary.AppendUvarint(out, uint64(len(items)))
	for _, it := range items {
		out = binary.AppendUvarint(out, uint64(len(it)))
		out = append(out, it...)
		for _, v := range c[it] {
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
		}
	}
	return out
}

func decodeCell(ops []mergeOp, b []byte, into cell) error {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return ErrCorruptRecord
	}
	b = b[k:]
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l+uint64(8*len(ops)) {
			return ErrCorruptRecord
		}
		item := string(b[k : k+int(l)])
		b = b[k+int(l):]
		row := make([]float64, len(ops))
		for j := range row {
			row[j] = math.Float64frombits(binary.LittleEndian.Uint64(b))
			b = b[8:]
		}
		into.add(ops, item, row...)
	}
	if len(b) != 0 {
		return ErrCorruptRecord
	}
	return nil
}
