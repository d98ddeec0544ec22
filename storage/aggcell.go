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

// Derived session cells: the per-session routes read a session's cells
// one by one, so the fold also keeps, for the kinds they read, cells that
// hold just what a route needs: a session's cells of every scene merged
// (one cell per session and hour instead of one per scene it visited),
// and the part of a cell a route reads. They are derived from the
// session's cells once per fold (deriveScenes), per cell and not per
// event.
const (
	kindPerfAll   aggKind = 'P' // kindPerfSession's fps, frame-time and window items, every scene
	kindResAll    aggKind = 'Q' // kindPerfSession's resource items, every scene
	kindPerfFPS   aggKind = 'V' // kindPerfSession's fps (in 1-fps bins) and window items, every scene, each item after its scene (sceneItem)
	kindStepsAll  aggKind = 'N' // kindSteps', every scene
	kindTurnsAll  aggKind = 'X' // kindTurns', every scene
	kindDeviceAll aggKind = 'D' // kindDevice's, every scene
)

// derivation says how the cells of kind to come from the session cells of
// kind from: their items that keep accepts (every item when nil), each as
// item makes it (unchanged when nil), merged over every scene when
// allScenes, else per scene.
type derivation struct {
	from, to  aggKind
	allScenes bool
	keep      func(item string) bool
	item      func(dst []byte, item string) []byte
	// sceneItems, with allScenes, keeps the scene in each item instead:
	// one cell per session and hour, its items those of every scene, each
	// after its scene (sceneItem). A read by scene of every session then
	// walks one cell per session and hour rather than one per scene too.
	sceneItems bool
}

// sceneItem is an item of a sceneItems derivation: the scene's length and
// bytes (as in a cell's key), then the item. Items sort by scene as the
// keys of per-scene cells do.
func sceneItem(dst []byte, scene string) []byte {
	return append(append(dst, byte(len(scene))), scene...)
}

// splitSceneItem is sceneItem undone; ok is false for an item too short.
func splitSceneItem(it []byte) (scene, item []byte, ok bool) {
	if len(it) == 0 || len(it) < 1+int(it[0]) {
		return nil, nil, false
	}
	return it[1 : 1+int(it[0])], it[1+int(it[0]):], true
}

// retiredKinds were derived once and are no more: the backfill of a newer
// version of the derivations deletes their cells.
var retiredKinds = []aggKind{'U'} // kindPerfFPS per scene, before sceneItems

var derivations = []derivation{
	{kindPerfSession, kindPerfAll, true, func(it string) bool { return !isResourceItem(it) }, nil, false},
	{kindPerfSession, kindResAll, true, isResourceItem, nil, false},
	{kindPerfSession, kindPerfFPS, true, isFPSItem, coarseFPSItem, true},
	{kindSteps, kindStepsAll, true, nil, nil, false},
	{kindTurns, kindTurnsAll, true, nil, nil, false},
	{kindDevice, kindDeviceAll, true, nil, nil, false},
}

// derivedFrom lists, per kind, the derivations from it.
var derivedFrom = func() (d [numKinds][]derivation) {
	for _, x := range derivations {
		d[x.from] = append(d[x.from], x)
	}
	return d
}()

// allScenesOf maps a per-session kind to its every-scene kind, where that
// holds every item.
var allScenesOf = func() (a [numKinds]aggKind) {
	for _, x := range derivations {
		if x.allScenes && x.keep == nil && x.item == nil {
			a[x.from] = x.to
		}
	}
	return a
}()

// sessionOnly kinds are kept per session and never merged into their
// scene's cells: their queries look at each session's own cells.
var sessionOnly = [numKinds]bool{kindRage: true, kindPerfSession: true, kindDevice: true, kindTurns: true, kindSteps: true, kindPath: true,
	kindPerfAll: true, kindResAll: true, kindPerfFPS: true, kindStepsAll: true, kindTurnsAll: true, kindDeviceAll: true}

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

	kindPerfAll:   {opSum, opSum, opMax},
	kindResAll:    {opSum, opSum, opMax},
	kindPerfFPS:   {opSum, opSum, opMax},
	kindStepsAll:  {opSum, opSum, opMax},
	kindTurnsAll:  {opSum, opSum, opMax},
	kindDeviceAll: {opMax},
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

// encode writes the cell in version 2 (cellcodec.go), items in sorted
// order.
func (c cell) encode(ops []mergeOp) []byte {
	items := make([]string, 0, len(c))
	for it := range c {
		items = append(items, it)
	}
	sort.Strings(items)
	out := make([]byte, 0, 1+len(c)*(8+2*len(ops)))
	out = append(out, cellV2)
	out = binary.AppendUvarint(out, uint64(len(items)))
	for _, it := range items {
		out = binary.AppendUvarint(out, uint64(len(it)))
		out = append(out, it...)
		out = appendCellRow(out, c[it])
	}
	return out
}

// decodeCell merges the stored cell b (either version) into into.
func decodeCell(ops []mergeOp, b []byte, into cell) error {
	w := len(ops)
	r, err := newCellReader(b, w)
	if err != nil {
		return err
	}
	// The rows of new items are carved from one slab: one allocation per
	// cell, not one per item.
	slab := make([]float64, int(r.items())*w)
	for i := 0; r.items() > 0; i++ {
		row := slab[i*w : (i+1)*w : (i+1)*w]
		item, _, _, err := r.next(row)
		if err != nil {
			return err
		}
		if cur, ok := into[string(item)]; ok {
			mergeRow(ops, cur, row)
		} else {
			into[string(item)] = row
		}
	}
	return r.done()
}

// mergeSorted appends to dst the encoding of the stored cell enc (nil
// when there is none) merged with a delta, keys (sorted, each once) and
// their rows, without decoding enc into a map: both are walked in item
// order, stored items copied or merged in place, new ones inserted. The
// result equals decoding enc, merging the delta and encoding.
func mergeSorted(dst []byte, ops []mergeOp, enc []byte, keys []string, rows [][]float64) ([]byte, error) {
	w := len(ops)
	var r cellReader
	if len(enc) > 0 {
		var err error
		if r, err = newCellReader(enc, w); err != nil {
			return dst, err
		}
	}
	var rowBuf [8]float64
	var row []float64
	if w <= len(rowBuf) {
		row = rowBuf[:w]
	} else {
		row = make([]float64, w)
	}
	// The item count leads the encoding; it is known once the walk is done,
	// so the body is built after room for the largest possible count.
	start := len(dst)
	dst = append(dst, cellV2)
	dst = append(dst, make([]byte, binary.MaxVarintLen64)...)
	body := len(dst)
	total := uint64(0)
	appendDelta := func(d int) {
		dst = binary.AppendUvarint(dst, uint64(len(keys[d])))
		dst = append(dst, keys[d]...)
		dst = appendCellRow(dst, rows[d])
		total++
	}
	d := 0
	for r.items() > 0 {
		item, span, head, err := r.next(row)
		if err != nil {
			return dst[:start], err
		}
		for d < len(keys) && keys[d] < string(item) {
			appendDelta(d)
			d++
		}
		switch {
		case d < len(keys) && keys[d] == string(item):
			mergeRow(ops, row, rows[d])
			dst = appendCellRow(append(dst, span[:head]...), row)
			d++
		case r.v2:
			dst = append(dst, span...) // untouched: copied as stored
		default:
			dst = appendCellRow(append(dst, span[:head]...), row)
		}
		total++
	}
	if err := r.done(); len(enc) > 0 && err != nil {
		return dst[:start], err
	}
	for ; d < len(keys); d++ {
		appendDelta(d)
	}
	// Move the body left over the unused part of the count's room.
	var cnt [binary.MaxVarintLen64]byte
	c := binary.PutUvarint(cnt[:], total)
	copy(dst[start+1:], cnt[:c])
	m := copy(dst[start+1+c:], dst[body:])
	return dst[:start+1+c+m], nil
}
