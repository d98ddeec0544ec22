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
	kindCounts       aggKind = 'c' // per minute: event type → [count, max ts]
	kindPerf         aggKind = 'f' // per minute: "" → [samples, fps sum, fps min]
	kindPerfHist     aggKind = 'h' // per minute: fps bin → [count] (mergeable sketch)
	kindResources    aggKind = 'r' // per hour: metric → [samples, sum, max]
	kindMeshTop      aggKind = 'm' // per hour: mesh → [count]
	kindMeshDwell    aggKind = 'v' // per hour: mesh → [visible ms, centered ms, max screen fraction, samples]
	kindHover        aggKind = 'd' // per hour: mesh → [dwell ms, max dwell ms, episodes]
	kindHeatPtr      aggKind = 'p' // per hour: screen cell → [count]
	kindHeatGaze     aggKind = 'g' // per hour: voxel → [count]
	kindHeatCamera   aggKind = 'a' // per hour: (azimuth, elevation) degree → [count]
	kindCameraPos    aggKind = 'b' // per hour: camera_sample position voxel (as the gaze voxels) → [count]
	kindHeatWorld    aggKind = 'W' // per hour: source, pointer_move/click hitPoint voxel → [count]
	kindCapabilities aggKind = 'A' // per hour: kind 0 from 0 to of capability_change → [changes]

	// Hourly roll-ups of the per-minute kinds, so a query over days reads
	// hours and touches minutes only at its ragged ends.
	kindCountsHour   aggKind = 'C'
	kindPerfHour     aggKind = 'F'
	kindPerfHistHour aggKind = 'H'
)

// rollupOf maps a per-minute kind to its hourly roll-up.
// (An array indexed by kind, not a map: it is read for every event folded.)
var rollupOf = [numKinds]aggKind{kindCounts: kindCountsHour, kindPerf: kindPerfHour, kindPerfHist: kindPerfHistHour,
	kindMeshActive: kindMeshActiveHour}

// sessionOnly kinds are kept per session and never merged into their
// scene's cells: their queries look at each session's own cells.
var sessionOnly = [numKinds]bool{kindRage: true, kindPerfSession: true, kindDevice: true, kindTurns: true, kindSteps: true, kindPath: true}

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

	kindInputs:         {opSum},
	kindInputsHLL:      {opMax},
	kindMeshKinds:      {opSum},
	kindMeshActive:     {opSum},
	kindMeshActiveHour: {opSum},
	kindClicks:         {opSum, opSum},
	kindRage:           {opSum},
	kindActions:        {opSum},
	kindGestures:       {opSum, opSum, opMax},

	kindPerfSession:  {opSum, opSum, opMax},
	kindDevice:       {opMax},
	kindRenderScale:  {opSum, opSum, opSum},
	kindCompile:      {opSum, opSum, opMax},
	kindDiagnostics:  {opSum},
	kindTech:         {opSum},
	kindTurns:        {opSum, opSum, opMax},
	kindCameraPos:    {opSum},
	kindHeatWorld:    {opSum},
	kindSteps:        {opSum, opSum, opMax},
	kindCapabilities: {opSum},
	kindPath:         {opSum, opSum, opSum, opSum, opSum},
	kindClickRays:    {opSum, opSum, opSum, opSum, opSum, opSum, opSum},
}

// Bucket widths.
const (
	minuteMs = int64(60_000)
	hourMs   = int64(3_600_000)
)

func kindBucket(k aggKind) int64 {
	switch k {
	case kindCounts, kindPerf, kindPerfHist, kindMeshActive:
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
	if k <= 0 || n > uint64(len(b)) {
		return ErrCorruptRecord
	}
	b = b[k:]
	w := len(ops)
	// The rows of new items are carved from one slab: one allocation per
	// cell, not one per item.
	slab := make([]float64, int(n)*w)
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l+uint64(8*w) {
			return ErrCorruptRecord
		}
		item := b[k : k+int(l)]
		b = b[k+int(l):]
		row := slab[int(i)*w : int(i+1)*w : int(i+1)*w]
		for j := range row {
			row[j] = math.Float64frombits(binary.LittleEndian.Uint64(b))
			b = b[8:]
		}
		if cur, ok := into[string(item)]; ok {
			mergeRow(ops, cur, row)
		} else {
			into[string(item)] = row
		}
	}
	if len(b) != 0 {
		return ErrCorruptRecord
	}
	return nil
}

// mergeEncoded appends to dst the encoding of the stored cell enc (nil when
// there is none) merged with delta, without decoding enc into a map: both
// are walked in item order, stored items copied or merged in place, new
// ones inserted. keys is scratch for delta's sorted items and is returned
// grown. The result equals decoding enc, merging delta and encoding.
func mergeEncoded(dst []byte, ops []mergeOp, enc []byte, delta cell, keys []string) ([]byte, []string, error) {
	keys = keys[:0]
	for it := range delta {
		keys = append(keys, it)
	}
	sort.Strings(keys)
	var n uint64
	if len(enc) > 0 {
		var k int
		if n, k = binary.Uvarint(enc); k <= 0 {
			return dst, keys, ErrCorruptRecord
		}
		enc = enc[k:]
	}
	rowBytes := 8 * len(ops)
	// The item count leads the encoding; it is known once the walk is done,
	// so the body is built after room for the largest possible count.
	start := len(dst)
	dst = append(dst, make([]byte, binary.MaxVarintLen64)...)
	body := len(dst)
	total := uint64(0)
	appendDelta := func(it string) {
		dst = binary.AppendUvarint(dst, uint64(len(it)))
		dst = append(dst, it...)
		for _, v := range delta[it] {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
		total++
	}
	d := 0
	var prev []byte
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(enc)
		if k <= 0 || uint64(len(enc)-k) < l+uint64(rowBytes) {
			return dst[:start], keys, ErrCorruptRecord
		}
		item := enc[k : k+int(l)]
		if i > 0 && string(item) <= string(prev) {
			return dst[:start], keys, ErrCorruptRecord // items must be sorted and distinct
		}
		prev = item
		row := enc[k+int(l) : k+int(l)+rowBytes]
		span := enc[:k+int(l)+rowBytes]
		enc = enc[len(span):]
		for d < len(keys) && keys[d] < string(item) {
			appendDelta(keys[d])
			d++
		}
		if d < len(keys) && keys[d] == string(item) {
			dst = append(dst, span[:k+int(l)]...)
			src := delta[keys[d]]
			for j, op := range ops {
				v := math.Float64frombits(binary.LittleEndian.Uint64(row[8*j:]))
				switch op {
				case opSum:
					v += src[j]
				case opMin:
					v = math.Min(v, src[j])
				case opMax:
					v = math.Max(v, src[j])
				}
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
			}
			d++
		} else {
			dst = append(dst, span...)
		}
		total++
	}
	if len(enc) != 0 {
		return dst[:start], keys, ErrCorruptRecord
	}
	for ; d < len(keys); d++ {
		appendDelta(keys[d])
	}
	// Move the body left over the unused part of the count's room.
	var cnt [binary.MaxVarintLen64]byte
	c := binary.PutUvarint(cnt[:], total)
	copy(dst[start:], cnt[:c])
	m := copy(dst[start+c:], dst[body:])
	return dst[:start+c+m], keys, nil
}
