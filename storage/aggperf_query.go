package storage

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"strings"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// hist is a distribution kept as bins: (bin, count) pairs, in any order
// and with repeats until sorted (quantile sorts and merges them once).
type hist struct {
	bins   []histBin
	sorted bool
}

type histBin struct {
	b uint16
	n int64
}

func (h *hist) add(b uint16, n int64) {
	// One cell's bins come in ascending order: a session with one cell
	// needs no sort.
	switch {
	case len(h.bins) == 0:
		h.sorted = true
	case h.bins[len(h.bins)-1].b >= b:
		h.sorted = false
	}
	h.bins = append(h.bins, histBin{b, n})
}

func (h *hist) empty() bool { return len(h.bins) == 0 }

func (h *hist) sort() {
	if h.sorted {
		return
	}
	slices.SortFunc(h.bins, func(x, y histBin) int { return int(x.b) - int(y.b) })
	out := h.bins[:0]
	for _, x := range h.bins {
		if len(out) > 0 && out[len(out)-1].b == x.b {
			out[len(out)-1].n += x.n
		} else {
			out = append(out, x)
		}
	}
	h.bins, h.sorted = out, true
}

// quantile is the continuous quantile q (linear interpolation between the
// values at the neighbouring ranks, as quantile_cont) of the values, each
// taken to be its bin's representative value (value must grow with the
// bin); NaN when there is none.
func (h *hist) quantile(q float64, value func(uint16) float64) float64 {
	if len(h.bins) == 0 {
		return math.NaN()
	}
	h.sort()
	var total int64
	for _, x := range h.bins {
		total += x.n
	}
	at := func(rank int64) float64 {
		for _, x := range h.bins {
			if rank < x.n {
				return value(x.b)
			}
			rank -= x.n
		}
		return value(h.bins[len(h.bins)-1].b)
	}
	pos := float64(total-1) * q
	lo := int64(math.Floor(pos))
	a, b := at(lo), at(int64(math.Ceil(pos)))
	return a + (pos-float64(lo))*(b-a)
}

// quantileOf is the continuous quantile q of vals (sorted in place); NaN
// when empty.
func quantileOf(vals []float64, q float64) float64 {
	if len(vals) == 0 {
		return math.NaN()
	}
	sort.Float64s(vals)
	pos := float64(len(vals)-1) * q
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return vals[lo] + (pos-float64(lo))*(vals[hi]-vals[lo])
}

func ptrOrNil(f float64) *float64 {
	if math.IsNaN(f) {
		return nil
	}
	return &f
}

func ptri(n int64) *int64 { return &n }

// fpsHist keeps the fps distribution of each session (eachSessionPerf).
const fpsHist = 1 << perfItemFPS

func fpsBinValue(b uint16) float64       { return (float64(b) + 0.5) / 2 }
func frameTimeBinValue(b uint16) float64 { return (float64(b) + 0.5) * frameTimeBin }
func scaleBinValue(b uint16) float64     { return (float64(b) + 0.5) * renderScaleWidth }

// sessionPerf is one session's performance in the query's scope and range.
type sessionPerf struct {
	fps, frameTime        hist
	res                   [len(resourcePercentileFields)]hist
	frames, long          int64
	p95n                  int64
	p95max                float64
	resSamples            int64
	hasFrames, hasSamples bool
	hists                 uint8 // the distributions kept: bit perfItemFPS, perfItemFrameTime, perfItemResource
}

func (p *sessionPerf) add(it []byte, row []float64) {
	n := int64(row[0])
	switch {
	case len(it) == 1 && it[0] == perfItemWindows:
		p.frames += n
		p.long += int64(row[1])
		p.hasFrames = true
	case len(it) == 1 && it[0] == perfItemP95:
		p.p95n += n
		p.p95max = math.Max(p.p95max, row[2])
	case len(it) == 1 && it[0] == perfItemSamples:
		p.resSamples += n
		p.hasSamples = true
	case len(it) == 3 && it[0] == perfItemFPS:
		if p.hists&(1<<perfItemFPS) != 0 {
			p.fps.add(binary.BigEndian.Uint16(it[1:]), n)
		}
		p.frames += n
		p.long += int64(row[1])
		p.hasFrames = true
	case len(it) == 3 && it[0] == perfItemFrameTime:
		if p.hists&(1<<perfItemFrameTime) != 0 {
			p.frameTime.add(binary.BigEndian.Uint16(it[1:]), n)
		}
	case len(it) == 4 && it[0] == perfItemResource && int(it[1]) < len(p.res):
		if p.hists&(1<<perfItemResource) != 0 {
			p.res[it[1]].add(binary.BigEndian.Uint16(it[2:]), n)
		}
	}
}

// reset empties p for the next session, keeping its bins' capacity.
func (p *sessionPerf) reset(hists uint8) {
	fps, ft, res := p.fps.bins[:0], p.frameTime.bins[:0], p.res
	*p = sessionPerf{hists: hists}
	p.fps.bins, p.frameTime.bins = fps, ft
	for i := range res {
		p.res[i].bins = res[i].bins[:0]
	}
}

// eachSessionPerf reads the per-session performance cells of the query's
// scope and range and calls fn once per session, or once per (session,
// scene) when byScene, with its performance, keeping the distributions
// hists names. Cells are keyed by session, then scene, then hour, so a
// session's (and a pair's) cells come one after another: each is summed
// as it streams past and handed over when the next begins, in a single
// reused sessionPerf, valid only during the call (scene is "" unless
// byScene).
//
// Items of a cell go by their type byte first (perfItemFPS, …): upTo is
// the greatest type the caller reads, and a cell's walk ends there.
func (r *Reader) eachSessionPerf(pnum uint32, q *core.Query, byScene bool, hists uint8, upTo byte, fn func(session, scene string, p *sessionPerf)) error {
	return r.eachSessionPerfOf(perfKind(q, byScene, hists, upTo), pnum, q, byScene, hists, upTo, fn)
}

// eachSessionPerfOf is eachSessionPerf reading the cells of kind.
func (r *Reader) eachSessionPerfOf(kind aggKind, pnum uint32, q *core.Query, byScene bool, hists uint8, upTo byte, fn func(session, scene string, p *sessionPerf)) error {
	if kind == kindPerfFPS {
		return r.eachSessionScenePerf(pnum, q, byScene, hists, upTo, fn)
	}
	var p sessionPerf
	var curSession, curScene string
	started := false
	w := len(kindOps[kindPerfSession])
	row := make([]float64, w)
	err := r.scanSessionCells(pnum, kind, q, func(session, scene string, _ int64, v []byte) error {
		if !byScene {
			scene = ""
		}
		if !started || session != curSession || scene != curScene {
			if started {
				fn(curSession, curScene, &p)
			}
			p.reset(hists)
			curSession, curScene, started = session, scene, true
		}
		// The cell is walked here, and the rows of the distributions not
		// asked for are passed over without being read.
		cr, err := newCellReader(v, w)
		if err != nil {
			return err
		}
		for cr.items() > 0 {
			it, _, err := cr.item()
			if err != nil {
				return err
			}
			if len(it) > 0 && it[0] > upTo {
				return nil // the rest of the cell is of types not read
			}
			if !p.wants(it) {
				if err := cr.skipRow(); err != nil {
					return err
				}
				continue
			}
			if err := cr.row(row); err != nil {
				return err
			}
			p.add(it, row)
		}
		return cr.done()
	})
	if err != nil {
		return err
	}
	if started {
		fn(curSession, curScene, &p)
	}
	return nil
}

// eachSessionScenePerf is eachSessionPerfOf over the kindPerfFPS cells,
// whose items are those of every scene, each after its scene (sceneItem):
// a session's figures are summed per scene as its cells pass, and handed
// to fn, a scene after the other in the order of per-scene cells' keys,
// when the next session begins. Without byScene, the scenes are summed
// together (scene "").
func (r *Reader) eachSessionScenePerf(pnum uint32, q *core.Query, byScene bool, hists uint8, upTo byte, fn func(session, scene string, p *sessionPerf)) error {
	type sceneAcc struct {
		scene string
		p     sessionPerf
	}
	var accs []*sceneAcc // this session's, reused from one session to the next
	used := 0
	var curSession string
	started := false
	flush := func() {
		got := accs[:used]
		slices.SortFunc(got, func(a, b *sceneAcc) int {
			if len(a.scene) != len(b.scene) {
				return len(a.scene) - len(b.scene)
			}
			return strings.Compare(a.scene, b.scene)
		})
		for _, a := range got {
			fn(curSession, a.scene, &a.p)
		}
		used = 0
	}
	// A project has few scenes: each name is copied once per read, not
	// once per session.
	names := map[string]string{}
	accOf := func(scene []byte) *sceneAcc {
		if !byScene {
			scene = nil
		}
		for _, a := range accs[:used] {
			if a.scene == string(scene) {
				return a
			}
		}
		if used == len(accs) {
			accs = append(accs, &sceneAcc{})
		}
		a := accs[used]
		used++
		name, ok := names[string(scene)]
		if !ok {
			name = string(scene)
			names[name] = name
		}
		a.scene = name
		a.p.reset(hists)
		return a
	}
	w := len(kindOps[kindPerfFPS])
	row := make([]float64, w)
	all := *q
	all.Scene = "" // the cells are every scene's: the scene is in the items
	var last []byte
	var cur *sceneAcc
	err := r.scanSessionCells(pnum, kindPerfFPS, &all, func(session, _ string, _ int64, v []byte) error {
		if !started || session != curSession {
			if started {
				flush()
			}
			curSession, started = session, true
		}
		cr, err := newCellReader(v, w)
		if err != nil {
			return err
		}
		last, cur = last[:0], nil
		for cr.items() > 0 {
			it, _, err := cr.item()
			if err != nil {
				return err
			}
			scene, item, ok := splitSceneItem(it)
			if !ok || (q.Scene != "" && string(scene) != q.Scene) || (len(item) > 0 && item[0] > upTo) || !wantsItem(hists, item) {
				if err := cr.skipRow(); err != nil {
					return err
				}
				continue
			}
			if cur == nil || string(scene) != string(last) {
				cur, last = accOf(scene), append(last[:0], scene...)
			}
			if err := cr.row(row); err != nil {
				return err
			}
			cur.p.add(item, row)
		}
		return cr.done()
	})
	if err != nil {
		return err
	}
	if started {
		flush()
	}
	return nil
}

// perfKind is the per-session perf cells a read scans: without a scene,
// those of every scene merged, of the items it reads (the resource items
// apart); by scene, kindPerfFPS (its fps in 1-fps bins:
// coarseFPSBinValue); of one scene, the scene cells.
func perfKind(q *core.Query, byScene bool, hists uint8, upTo byte) aggKind {
	resources := hists&(1<<perfItemResource) != 0 || upTo >= perfItemResource
	fpsOnly := !resources && hists&(1<<perfItemFrameTime) == 0 && upTo <= perfItemWindows
	switch {
	case byScene && fpsOnly:
		return kindPerfFPS
	case byScene || q.Scene != "":
		return kindPerfSession
	case resources:
		return kindResAll
	}
	return kindPerfAll
}

// wants reports whether add reads item it: the frame-time and resource
// distributions' bins only when they are kept.
func (p *sessionPerf) wants(it []byte) bool { return wantsItem(p.hists, it) }

// wantsItem is whether a read keeping the distributions hists reads item.
func wantsItem(hists uint8, it []byte) bool {
	if len(it) == 0 {
		return false
	}
	switch it[0] {
	case perfItemFrameTime:
		return hists&(1<<perfItemFrameTime) != 0
	case perfItemResource:
		return hists&(1<<perfItemResource) != 0
	}
	return true
}

// PerfDistribution is GET /api/v1/perf/distribution: the median across
// sessions of each session's 5th, 50th and 95th fps percentiles.
func (r *Reader) PerfDistribution(pnum uint32, q core.Query) (core.PerfDistributionRow, error) {
	var p05, p50, p95 []float64
	var samples int64
	err := r.eachSessionPerf(pnum, &q, false, fpsHist, perfItemFPS, func(_, _ string, p *sessionPerf) {
		if p.fps.empty() {
			return
		}
		for _, x := range p.fps.bins {
			samples += x.n
		}
		p05 = append(p05, p.fps.quantile(0.05, fpsBinValue))
		p50 = append(p50, p.fps.quantile(0.5, fpsBinValue))
		p95 = append(p95, p.fps.quantile(0.95, fpsBinValue))
	})
	if err != nil {
		return core.PerfDistributionRow{}, err
	}
	row := core.PerfDistributionRow{Sessions: int64(len(p50))}
	if len(p50) > 0 {
		row.Samples = ptri(samples)
		row.P05FPS, row.P50FPS, row.P95FPS = ptrOrNil(quantileOf(p05, 0.5)), ptrOrNil(quantileOf(p50, 0.5)), ptrOrNil(quantileOf(p95, 0.5))
	}
	return row, nil
}

// FPSHistogram is GET /api/v1/perf/fps-histogram: sessions by their median
// fps, in bins of width fps.
func (r *Reader) FPSHistogram(pnum uint32, q core.Query, width int) ([]core.FPSHistogramRow, error) {
	w := float64(max(1, width))
	bins := map[int64]int64{}
	err := r.eachSessionPerf(pnum, &q, false, fpsHist, perfItemFPS, func(_, _ string, p *sessionPerf) {
		if !p.fps.empty() {
			bins[int64(math.Floor(p.fps.quantile(0.5, fpsBinValue)/w)*w)]++
		}
	})
	if err != nil {
		return nil, err
	}
	rows := make([]core.FPSHistogramRow, 0, len(bins))
	for b, n := range bins {
		rows = append(rows, core.FPSHistogramRow{Bucket: b, Sessions: n})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Bucket < rows[j].Bucket })
	return rows, nil
}

// FrameTime is GET /api/v1/perf/frame-time: the median across sessions of
// each session's median frameTimeMs and of its worst frameTimeP95Ms.
func (r *Reader) FrameTime(pnum uint32, q core.Query) (core.FrameTimeRow, error) {
	var p50, p95 []float64
	var row core.FrameTimeRow
	var samples int64
	err := r.eachSessionPerf(pnum, &q, false, 1<<perfItemFrameTime, perfItemWindows, func(_, _ string, p *sessionPerf) {
		if !p.hasFrames {
			return
		}
		row.Sessions++
		samples += p.frames
		if !p.frameTime.empty() {
			p50 = append(p50, p.frameTime.quantile(0.5, frameTimeBinValue))
		}
		if p.p95n > 0 {
			p95 = append(p95, p.p95max)
		}
	})
	if err != nil {
		return core.FrameTimeRow{}, err
	}
	if row.Sessions > 0 {
		row.Samples = ptri(samples)
		row.P50Ms, row.P95Ms = ptrOrNil(quantileOf(p50, 0.5)), ptrOrNil(quantileOf(p95, 0.5))
	}
	return row, nil
}

// Jank is GET /api/v1/perf/jank: each session's long frames per frame_perf
// window, its median and 90th percentile across sessions.
func (r *Reader) Jank(pnum uint32, q core.Query) (core.JankRow, error) {
	var rates []float64
	var long int64
	err := r.eachSessionPerf(pnum, &q, false, 0, perfItemWindows, func(_, _ string, p *sessionPerf) {
		if p.hasFrames && p.frames > 0 {
			rates = append(rates, float64(p.long)/float64(p.frames))
			long += p.long
		}
	})
	if err != nil {
		return core.JankRow{}, err
	}
	row := core.JankRow{Sessions: int64(len(rates))}
	if len(rates) > 0 {
		row.TotalLongFrames = ptri(long)
		row.MedianRate = ptrOrNil(quantileOf(rates, 0.5))
		row.WorstDecileRate = ptrOrNil(quantileOf(rates, 0.9))
	}
	return row, nil
}

// deviceCursor reads sessions' device classes, from their session_start
// whenever it came (of several different ones, the greatest item, so that
// every read agrees): its five parts joined by NUL bytes. Sessions must be
// asked for in key order (eachSessionPerf's): the cursor moves forward
// through the device cells alongside, one step per cell.
type deviceCursor struct {
	txn    *badger.Txn
	it     *badger.Iterator
	base   []byte
	want   []byte
	row    []float64
	class  []byte
	primed bool
}

func (r *Reader) newDeviceCursor(pnum uint32) *deviceCursor {
	c := &deviceCursor{txn: r.s.adb.NewTransaction(false), row: make([]float64, len(kindOps[kindDeviceAll]))}
	c.base = append(binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum), byte(kindDeviceAll), scopeSession)
	c.it = c.txn.NewIterator(badger.IteratorOptions{Prefix: c.base})
	return c
}

func (c *deviceCursor) close() {
	c.it.Close()
	c.txn.Discard()
}

// of returns session's class ("" when it has none, or not five parts).
func (c *deviceCursor) of(session string) (string, error) {
	if !c.primed {
		c.it.Rewind()
		c.primed = true
	}
	c.want = binary.BigEndian.AppendUint16(c.want[:0], uint16(len(session)))
	c.want = append(c.want, session...)
	c.class = c.class[:0]
	found := false
	for ; c.it.Valid(); c.it.Next() {
		k := c.it.Item().Key()[len(c.base):]
		if len(k) < len(c.want) || !bytes.Equal(k[:len(c.want)], c.want) {
			if bytes.Compare(k, c.want) > 0 {
				break // past the session: it has no (more) cells
			}
			continue // an earlier session's
		}
		err := c.it.Item().Value(func(v []byte) error {
			return walkCell(kindOps[kindDeviceAll], v, c.row, func(item []byte, _ []float64) {
				if !found || bytes.Compare(item, c.class) > 0 {
					c.class, found = append(c.class[:0], item...), true
				}
			})
		})
		if err != nil {
			return "", err
		}
	}
	if !found || bytes.Count(c.class, []byte{0}) != 4 {
		return noDevice, nil
	}
	return string(c.class), nil
}

// noDevice is the device class of a session without one.
const noDevice = "\x00\x00\x00\x00"

// PerfByDevice is GET /api/v1/perf/by-device: the median across sessions
// of each session's median fps, by device class (engine, mobile, GPU
// renderer, browser, OS of its session_start; "" when it had none).
func (r *Reader) PerfByDevice(pnum uint32, q core.Query) ([]core.PerfByDeviceRow, error) {
	devs := r.newDeviceCursor(pnum)
	defer devs.close()
	var derr error
	type acc struct {
		medians []float64
		samples int64
	}
	groups := map[string]*acc{}
	err := r.eachSessionPerf(pnum, &q, false, fpsHist, perfItemWindows, func(s, _ string, p *sessionPerf) {
		if p.fps.empty() || derr != nil {
			return
		}
		d, err := devs.of(s)
		if err != nil {
			derr = err
			return
		}
		a := groups[d]
		if a == nil {
			a = &acc{}
			groups[d] = a
		}
		a.medians = append(a.medians, p.fps.quantile(0.5, fpsBinValue))
		a.samples += p.frames
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	rows := make([]core.PerfByDeviceRow, 0, len(groups))
	for item, a := range groups {
		var d [5]string
		copy(d[:], strings.SplitN(item, "\x00", 5))
		rows = append(rows, core.PerfByDeviceRow{Engine: d[0], IsMobile: d[1], Renderer: d[2], Browser: d[3], OS: d[4],
			Sessions: int64(len(a.medians)), Samples: a.samples, P50FPS: quantileOf(a.medians, 0.5)})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Sessions != b.Sessions {
			return a.Sessions > b.Sessions
		}
		return a.Engine+"\x00"+a.IsMobile+"\x00"+a.Renderer+"\x00"+a.Browser+"\x00"+a.OS < b.Engine+"\x00"+b.IsMobile+"\x00"+b.Renderer+"\x00"+b.Browser+"\x00"+b.OS
	})
	return limitRows(rows, q.Limit), nil
}

// PerfByScene is GET /api/v1/perf/by-scene: per scene, the median across
// its sessions of each session's median fps in that scene.
func (r *Reader) PerfByScene(pnum uint32, q core.Query) ([]core.PerfBySceneRow, error) {
	type acc struct {
		medians []float64
		samples int64
	}
	groups := map[string]*acc{}
	err := r.eachSessionPerf(pnum, &q, true, fpsHist, perfItemWindows, func(_, scene string, p *sessionPerf) {
		if p.fps.empty() {
			return
		}
		a := groups[scene]
		if a == nil {
			a = &acc{}
			groups[scene] = a
		}
		a.medians = append(a.medians, p.fps.quantile(0.5, coarseFPSBinValue)) // 1-fps bins (kindPerfFPS)
		a.samples += p.frames
	})
	if err != nil {
		return nil, err
	}
	rows := make([]core.PerfBySceneRow, 0, len(groups))
	for s, a := range groups {
		rows = append(rows, core.PerfBySceneRow{SceneID: s, Sessions: int64(len(a.medians)), Samples: a.samples, P50FPS: quantileOf(a.medians, 0.5)})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Sessions != rows[j].Sessions {
			return rows[i].Sessions > rows[j].Sessions
		}
		return rows[i].SceneID < rows[j].SceneID
	})
	return limitRows(rows, q.Limit), nil
}

// ResourcePercentiles is GET /api/v1/perf/resource-percentiles: the median
// across sessions of each session's 50th and 95th percentiles of JS heap,
// texture bytes and triangles (values within 2.2%: logarithmic bins).
func (r *Reader) ResourcePercentiles(pnum uint32, q core.Query) (core.ResourcePercentileRow, error) {
	var row core.ResourcePercentileRow
	var samples int64
	var p50, p95 [len(resourcePercentileFields)][]float64
	err := r.eachSessionPerf(pnum, &q, false, 1<<perfItemResource, perfItemSamples, func(_, _ string, p *sessionPerf) {
		if !p.hasSamples {
			return
		}
		row.Sessions++
		samples += p.resSamples
		for i := range p.res {
			if h := &p.res[i]; !h.empty() {
				p50[i] = append(p50[i], h.quantile(0.5, logBinValue))
				p95[i] = append(p95[i], h.quantile(0.95, logBinValue))
			}
		}
	})
	if err != nil {
		return core.ResourcePercentileRow{}, err
	}
	if row.Sessions > 0 {
		row.Samples = ptri(samples)
		m := func(v []float64) *float64 { return ptrOrNil(quantileOf(v, 0.5)) }
		row.P50JSHeapBytes, row.P95JSHeapBytes = m(p50[0]), m(p95[0])
		row.P50TextureBytes, row.P95TextureBytes = m(p50[1]), m(p95[1])
		row.P50Triangles, row.P95Triangles = m(p50[2]), m(p95[2])
	}
	return row, nil
}

// Stability is GET /api/v1/perf/stability: context_lost and compile_stall
// events.
func (r *Reader) Stability(pnum uint32, q core.Query) (core.StabilityRow, error) {
	c, err := r.merged(pnum, kindCounts, &q)
	if err != nil {
		return core.StabilityRow{}, err
	}
	var row core.StabilityRow
	if v := c[core.TypeContextLost.String()]; v != nil {
		row.ContextLosses = int64(v[0])
	}
	if v := c[core.TypeCompileStall.String()]; v != nil {
		row.CompileStalls = int64(v[0])
	}
	row.Incidents = row.ContextLosses + row.CompileStalls
	return row, nil
}

// RenderScale is GET /api/v1/perf/render-scale: fps beside the render
// scale frame_perf reported (p50 within 0.005: 0.01 bins).
func (r *Reader) RenderScale(pnum uint32, q core.Query) (core.RenderScaleRow, error) {
	perf, err := r.Perf(pnum, q)
	if err != nil {
		return core.RenderScaleRow{}, err
	}
	c, err := r.merged(pnum, kindRenderScale, &q)
	if err != nil {
		return core.RenderScaleRow{}, err
	}
	row := core.RenderScaleRow{Samples: perf.Samples, AvgFPS: perf.AvgFPS, P50FPS: perf.P50FPS}
	if perf.Samples == 0 {
		return row, nil
	}
	var scaled, down int64
	var sum float64
	h := hist{}
	for it, v := range c {
		if len(it) == 3 && it[0] == renderScaleBins {
			h.add(binary.BigEndian.Uint16([]byte(it[1:])), int64(v[0]))
			scaled += int64(v[0])
			sum += v[1]
			down += int64(v[2])
		}
	}
	row.ScaleSamples, row.DownscaledSamples = ptri(scaled), ptri(down)
	if scaled > 0 {
		row.AvgRenderScale = ptrOrNil(sum / float64(scaled))
		row.P50RenderScale = ptrOrNil(h.quantile(0.5, scaleBinValue))
	}
	return row, nil
}

// CompileStalls is GET /api/v1/perf/compile-stalls: compile_stall events per
// phase ("" when none was given), most total time first.
func (r *Reader) CompileStalls(pnum uint32, q core.Query) ([]core.CompileStallRow, error) {
	c, err := r.merged(pnum, kindCompile, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.CompileStallRow, 0, len(c))
	for phase, v := range c {
		row := core.CompileStallRow{Phase: phase, Stalls: int64(v[0]), TotalMs: v[1], MaxMs: v[2]}
		if row.Stalls > 0 {
			row.AvgMs = v[1] / v[0]
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].TotalMs != rows[j].TotalMs {
			return rows[i].TotalMs > rows[j].TotalMs
		}
		return rows[i].Phase < rows[j].Phase
	})
	return limitRows(rows, q.Limit), nil
}

// GraphicsDiagnostics is GET /api/v1/graphics-diagnostics: incidents (an
// event's count, 1 without one) per severity, category and backend.
func (r *Reader) GraphicsDiagnostics(pnum uint32, q core.Query) ([]core.GraphicsDiagnosticRow, error) {
	c, err := r.merged(pnum, kindDiagnostics, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.GraphicsDiagnosticRow, 0, len(c))
	for it, v := range c {
		p := bytes.SplitN([]byte(it), []byte{0}, 3)
		if len(p) != 3 {
			continue
		}
		rows = append(rows, core.GraphicsDiagnosticRow{Severity: string(p[0]), Category: string(p[1]), Backend: string(p[2]), Incidents: int64(v[0])})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Incidents != b.Incidents {
			return a.Incidents > b.Incidents
		}
		return a.Severity+"\x00"+a.Category+"\x00"+a.Backend < b.Severity+"\x00"+b.Category+"\x00"+b.Backend
	})
	return limitRows(rows, q.Limit), nil
}

// RenderingTechnology is GET /api/v1/rendering-technology: session_start
// events per graphics api, backend, apiVersion and shadingLanguage.
func (r *Reader) RenderingTechnology(pnum uint32, q core.Query) ([]core.RenderingTechnologyRow, error) {
	c, err := r.merged(pnum, kindTech, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.RenderingTechnologyRow, 0, len(c))
	for it, v := range c {
		p := bytes.SplitN([]byte(it), []byte{0}, 4)
		if len(p) != 4 {
			continue
		}
		rows = append(rows, core.RenderingTechnologyRow{API: string(p[0]), Backend: string(p[1]), APIVersion: string(p[2]), ShadingLanguage: string(p[3]), Sessions: int64(v[0])})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Sessions != b.Sessions {
			return a.Sessions > b.Sessions
		}
		return a.API+"\x00"+a.Backend+"\x00"+a.APIVersion+"\x00"+a.ShadingLanguage < b.API+"\x00"+b.Backend+"\x00"+b.APIVersion+"\x00"+b.ShadingLanguage
	})
	return limitRows(rows, q.Limit), nil
}
