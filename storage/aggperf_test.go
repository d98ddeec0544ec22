package storage

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"testing"

	"github.com/uptimizr/edge/core"
)

// exactQuantile is quantile_cont over vals, the oracle.
func exactQuantile(vals []float64, q float64) float64 {
	v := append([]float64(nil), vals...)
	sort.Float64s(v)
	pos := float64(len(v)-1) * q
	lo, hi := int(math.Floor(pos)), int(math.Ceil(pos))
	return v[lo] + (pos-float64(lo))*(v[hi]-v[lo])
}

type perfFrame struct {
	session, scene                string
	ts                            int64
	fps, ft, p95, long, rs        float64
	hasFT, hasP95, hasLong, hasRS bool
}

func commitEvents(t *testing.T, s *Store, pnum uint32, evs [][3]string) {
	t.Helper()
	b := &core.Batch{ProjectID: "p", ProjectNum: pnum}
	for _, e := range evs {
		typ, ok := core.ParseEventType([]byte(e[0]))
		if !ok {
			t.Fatal(e[0])
		}
		var ts int64
		fmt.Sscan(e[2], &ts)
		b.AppendEvent(typ, ts, []byte(e[1]), []byte(fmt.Sprintf(`{"type":%q,"sessionId":%q,"ts":%d%s}`, e[0], e[1], ts, e[2][len(fmt.Sprint(ts)):])))
	}
	if err := s.Sink().Commit(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestPerfSessionStats checks the per-session-then-across-sessions routes
// against exact quantiles of a random session mix: within each
// distribution's bin error.
func TestPerfSessionStats(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	r := rand.New(rand.NewSource(9))
	base := int64(1795892400000)
	var frames []perfFrame
	var evs [][3]string
	for i := 0; i < 3000; i++ {
		f := perfFrame{session: fmt.Sprintf("s%d", r.Intn(30)), scene: []string{"a", "b", "c"}[r.Intn(3)],
			ts: base + r.Int63n(5*hourMs), fps: float64(r.Intn(2400)) / 20}
		extra := fmt.Sprintf(`,"sceneId":%q,"fps":%v`, f.scene, f.fps)
		if f.hasFT = r.Intn(3) > 0; f.hasFT {
			f.ft = 5 + float64(r.Intn(5000))/100
			extra += fmt.Sprintf(`,"frameTimeMs":%v`, f.ft)
		}
		if f.hasP95 = r.Intn(2) > 0; f.hasP95 {
			f.p95 = 10 + float64(r.Intn(900))/10
			extra += fmt.Sprintf(`,"frameTimeP95Ms":%v`, f.p95)
		}
		if f.hasLong = r.Intn(2) > 0; f.hasLong {
			f.long = float64(r.Intn(6))
			extra += fmt.Sprintf(`,"longFrames":%v`, f.long)
		}
		if f.hasRS = r.Intn(2) > 0; f.hasRS {
			f.rs = []float64{0.5, 0.75, 1, 1.25}[r.Intn(4)]
			extra += fmt.Sprintf(`,"renderScale":%v`, f.rs)
		}
		frames = append(frames, f)
		evs = append(evs, [3]string{"frame_perf", f.session, fmt.Sprint(f.ts) + extra})
		if len(evs) == 100 {
			commitEvents(t, s, pnum, evs)
			evs = evs[:0]
		}
	}
	// Device classes: even sessions on a phone, odd ones without a session_start.
	for i := 0; i < 30; i += 2 {
		evs = append(evs, [3]string{"session_start", fmt.Sprintf("s%d", i), fmt.Sprint(base) + `,"device":{"engine":"webgpu","isMobile":true,"renderer":"GPU \"x\"","browser":"Safari","os":"iOS"},"graphics":{"api":"webgpu","backend":"metal","apiVersion":"1.0","shadingLanguage":"wgsl"}`})
	}
	evs = append(evs, [3]string{"session_start", "s1", fmt.Sprint(base) + `,"sceneId":"b"`})
	commitEvents(t, s, pnum, evs)
	rd := s.Reader()

	for _, scene := range []string{"", "b"} {
		q := core.DefaultQuery()
		q.Scene = scene
		bySession := map[string][]perfFrame{}
		for _, f := range frames {
			if scene == "" || f.scene == scene {
				bySession[f.session] = append(bySession[f.session], f)
			}
		}
		var p05, p50, p95, ft50, ftWorst, rates []float64
		var long int64
		for _, fs := range bySession {
			var fps, ft []float64
			worst, lf := 0.0, 0.0
			for _, f := range fs {
				fps = append(fps, f.fps)
				if f.hasFT {
					ft = append(ft, f.ft)
				}
				if f.hasP95 {
					worst = math.Max(worst, f.p95)
				}
				lf += f.long
			}
			p05 = append(p05, exactQuantile(fps, 0.05))
			p50 = append(p50, exactQuantile(fps, 0.5))
			p95 = append(p95, exactQuantile(fps, 0.95))
			if len(ft) > 0 {
				ft50 = append(ft50, exactQuantile(ft, 0.5))
			}
			if worst > 0 {
				ftWorst = append(ftWorst, worst)
			}
			rates = append(rates, lf/float64(len(fs)))
			long += int64(lf)
		}
		d, err := rd.PerfDistribution(pnum, q)
		if err != nil {
			t.Fatal(err)
		}
		within := func(name string, got *float64, want, tol float64) {
			t.Helper()
			if got == nil || math.Abs(*got-want) > tol {
				t.Errorf("scene %q %s: %v, want %v ±%v", scene, name, got, want, tol)
			}
		}
		if d.Sessions != int64(len(bySession)) || d.Samples == nil {
			t.Fatalf("distribution %+v, want %d sessions", d, len(bySession))
		}
		within("p05_fps", d.P05FPS, exactQuantile(p05, 0.5), 0.25)
		within("p50_fps", d.P50FPS, exactQuantile(p50, 0.5), 0.25)
		within("p95_fps", d.P95FPS, exactQuantile(p95, 0.5), 0.25)
		ftr, err := rd.FrameTime(pnum, q)
		if err != nil {
			t.Fatal(err)
		}
		within("frame-time p50_ms", ftr.P50Ms, exactQuantile(ft50, 0.5), frameTimeBin/2+1e-9)
		within("frame-time p95_ms", ftr.P95Ms, exactQuantile(ftWorst, 0.5), 1e-9)
		j, err := rd.Jank(pnum, q)
		if err != nil {
			t.Fatal(err)
		}
		if j.Sessions != int64(len(bySession)) || j.TotalLongFrames == nil || *j.TotalLongFrames != long {
			t.Errorf("jank %+v, want %d long frames", j, long)
		}
		within("median_rate", j.MedianRate, exactQuantile(rates, 0.5), 1e-9)
		within("worst_decile_rate", j.WorstDecileRate, exactQuantile(rates, 0.9), 1e-9)

		// The histogram holds every session once, in the bin of its median.
		hs, err := rd.FPSHistogram(pnum, q, 10)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, h := range hs {
			n += h.Sessions
			if h.Bucket%10 != 0 {
				t.Errorf("histogram bin %+v", h)
			}
		}
		if n != int64(len(bySession)) {
			t.Errorf("histogram holds %d sessions, want %d", n, len(bySession))
		}

		dev, err := rd.PerfByDevice(pnum, q)
		if err != nil {
			t.Fatal(err)
		}
		var phones, others []float64
		for sess, fs := range bySession {
			var fps []float64
			for _, f := range fs {
				fps = append(fps, f.fps)
			}
			var i int
			fmt.Sscanf(sess, "s%d", &i)
			if i%2 == 0 {
				phones = append(phones, exactQuantile(fps, 0.5))
			} else {
				others = append(others, exactQuantile(fps, 0.5))
			}
		}
		if len(dev) != 2 {
			t.Fatalf("by-device %+v", dev)
		}
		for _, row := range dev {
			want := others
			if row.Engine == "webgpu" {
				want = phones
				if row.IsMobile != "true" || row.Renderer != `GPU "x"` || row.Browser != "Safari" || row.OS != "iOS" {
					t.Errorf("device class %+v", row)
				}
			} else if row.Engine != "" || row.IsMobile != "" || row.OS != "" {
				t.Errorf("no session_start: %+v", row)
			}
			if row.Sessions != int64(len(want)) || math.Abs(row.P50FPS-exactQuantile(want, 0.5)) > 0.25 {
				t.Errorf("by-device %+v, want %d sessions p50 %v", row, len(want), exactQuantile(want, 0.5))
			}
		}
	}

	// By scene: a session's frames in each scene are its own point there.
	byScene := map[string]map[string][]float64{}
	for _, f := range frames {
		if byScene[f.scene] == nil {
			byScene[f.scene] = map[string][]float64{}
		}
		byScene[f.scene][f.session] = append(byScene[f.scene][f.session], f.fps)
	}
	sc, err := rd.PerfByScene(pnum, core.DefaultQuery())
	if err != nil {
		t.Fatal(err)
	}
	if len(sc) != 3 {
		t.Fatalf("by-scene %+v", sc)
	}
	for _, row := range sc {
		var med []float64
		var n int64
		for _, fps := range byScene[row.SceneID] {
			med = append(med, exactQuantile(fps, 0.5))
			n += int64(len(fps))
		}
		// Within 0.5 fps: by scene, sessions' fps go in 1-fps bins.
		if row.Sessions != int64(len(med)) || row.Samples != n || math.Abs(row.P50FPS-exactQuantile(med, 0.5)) > 0.5 {
			t.Errorf("by-scene %+v, want %d sessions %d samples", row, len(med), n)
		}
	}

	// Render scale, pooled.
	rsr, err := rd.RenderScale(pnum, core.DefaultQuery())
	if err != nil {
		t.Fatal(err)
	}
	var scales []float64
	var down int64
	sum := 0.0
	for _, f := range frames {
		if f.hasRS {
			scales = append(scales, f.rs)
			sum += f.rs
			if f.rs < 1 {
				down++
			}
		}
	}
	if rsr.Samples != int64(len(frames)) || rsr.ScaleSamples == nil || *rsr.ScaleSamples != int64(len(scales)) || *rsr.DownscaledSamples != down ||
		math.Abs(*rsr.AvgRenderScale-sum/float64(len(scales))) > 1e-9 || math.Abs(*rsr.P50RenderScale-exactQuantile(scales, 0.5)) > renderScaleWidth/2+1e-9 {
		t.Errorf("render-scale %+v", rsr)
	}

	tech, err := rd.RenderingTechnology(pnum, core.DefaultQuery())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(tech) != fmt.Sprint([]core.RenderingTechnologyRow{{API: "webgpu", Backend: "metal", APIVersion: "1.0", ShadingLanguage: "wgsl", Sessions: 15}, {Sessions: 1}}) {
		t.Errorf("rendering-technology %+v", tech)
	}
}

// TestPerfGoldens: the reference's worked examples, to within our bins.
func TestPerfGoldens(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	rd := s.Reader()
	q := core.DefaultQuery()
	// No data: one row of zeros and nulls, empty groups.
	if d, _ := rd.PerfDistribution(pnum, q); d != (core.PerfDistributionRow{}) {
		t.Errorf("empty distribution %+v", d)
	}
	if j, _ := rd.Jank(pnum, q); j != (core.JankRow{}) {
		t.Errorf("empty jank %+v", j)
	}
	if st, _ := rd.Stability(pnum, q); st != (core.StabilityRow{}) {
		t.Errorf("empty stability %+v", st)
	}
	if rs, _ := rd.RenderScale(pnum, q); rs != (core.RenderScaleRow{}) {
		t.Errorf("empty render scale %+v", rs)
	}
	if rows, _ := rd.PerfByDevice(pnum, q); rows == nil || len(rows) != 0 {
		t.Errorf("empty by-device %v", rows)
	}
	t0 := int64(1795892400000)
	ev := func(typ, sess string, dt int64, extra string) [3]string {
		return [3]string{typ, sess, fmt.Sprint(t0+dt) + extra}
	}
	commitEvents(t, s, pnum, [][3]string{
		ev("frame_perf", "s1", 0, `,"fps":30,"longFrames":1,"frameTimeMs":16,"frameTimeP95Ms":20`),
		ev("frame_perf", "s1", 1, `,"fps":60,"longFrames":5,"frameTimeMs":33,"frameTimeP95Ms":40`),
		ev("frame_perf", "s2", 2, `,"fps":45,"longFrames":2,"frameTimeMs":22,"frameTimeP95Ms":28`),
		ev("resource_sample", "s1", 3, `,"jsHeapBytes":100`),
		ev("resource_sample", "s1", 4, `,"jsHeapBytes":300`),
		ev("resource_sample", "s2", 5, `,"jsHeapBytes":200`),
		ev("compile_stall", "s1", 6, `,"durationMs":12,"phase":"shader"`),
		ev("compile_stall", "s2", 7, `,"durationMs":30,"phase":"shader"`),
		ev("compile_stall", "s2", 8, `,"durationMs":5`),
		ev("context_lost", "s2", 9, ``),
		ev("graphics_diagnostic", "s1", 10, `,"severity":"fatal","category":"device-lost","backend":"webgpu"`),
		ev("graphics_diagnostic", "s2", 11, `,"severity":"fatal","category":"device-lost","backend":"webgpu"`),
		ev("graphics_diagnostic", "s2", 12, `,"severity":"warning","category":"validation","backend":"webgl2","count":5`),
		ev("graphics_diagnostic", "s2", 13, `,"severity":"error","category":"shader-compile"`),
	})
	d, _ := rd.PerfDistribution(pnum, q)
	if d.Sessions != 2 || *d.Samples != 3 || math.Abs(*d.P05FPS-38.25) > 0.25 || math.Abs(*d.P50FPS-45) > 0.25 || math.Abs(*d.P95FPS-51.75) > 0.25 {
		t.Errorf("distribution %+v %v %v %v", d, *d.P05FPS, *d.P50FPS, *d.P95FPS)
	}
	if h, _ := rd.FPSHistogram(pnum, q, 10); fmt.Sprint(h) != "[{40 2}]" {
		t.Errorf("fps-histogram %+v", h)
	}
	ft, _ := rd.FrameTime(pnum, q)
	if ft.Sessions != 2 || *ft.Samples != 3 || math.Abs(*ft.P50Ms-23.25) > frameTimeBin/2+1e-9 || *ft.P95Ms != 34 {
		t.Errorf("frame-time %+v %v %v", ft, *ft.P50Ms, *ft.P95Ms)
	}
	j, _ := rd.Jank(pnum, q)
	if j.Sessions != 2 || *j.TotalLongFrames != 8 || *j.MedianRate != 2.5 || math.Abs(*j.WorstDecileRate-2.9) > 1e-9 {
		t.Errorf("jank %+v", j)
	}
	rp, _ := rd.ResourcePercentiles(pnum, q)
	if rp.Sessions != 2 || *rp.Samples != 3 || math.Abs(*rp.P50JSHeapBytes-200)/200 > 0.022 || rp.P50TextureBytes != nil {
		t.Errorf("resource-percentiles %+v", rp)
	}
	if st, _ := rd.Stability(pnum, q); st != (core.StabilityRow{ContextLosses: 1, CompileStalls: 3, Incidents: 4}) {
		t.Errorf("stability %+v", st)
	}
	cs, _ := rd.CompileStalls(pnum, q)
	if fmt.Sprint(cs) != fmt.Sprint([]core.CompileStallRow{{Phase: "shader", Stalls: 2, TotalMs: 42, AvgMs: 21, MaxMs: 30}, {Phase: "", Stalls: 1, TotalMs: 5, AvgMs: 5, MaxMs: 5}}) {
		t.Errorf("compile-stalls %+v", cs)
	}
	gd, _ := rd.GraphicsDiagnostics(pnum, q)
	want := []core.GraphicsDiagnosticRow{{Severity: "warning", Category: "validation", Backend: "webgl2", Incidents: 5},
		{Severity: "fatal", Category: "device-lost", Backend: "webgpu", Incidents: 2}, {Severity: "error", Category: "shader-compile", Incidents: 1}}
	if fmt.Sprint(gd) != fmt.Sprint(want) {
		t.Errorf("graphics-diagnostics %+v", gd)
	}
	// One session's own answer.
	q.Session = "s2"
	if d, _ := rd.PerfDistribution(pnum, q); d.Sessions != 1 || math.Abs(*d.P50FPS-45) > 0.25 {
		t.Errorf("s2 distribution %+v", d)
	}
}

// TestHistQuantileAnyOrder: a distribution's quantiles do not depend on
// the order its bins came in (ascending runs, repeats, any order).
func TestHistQuantileAnyOrder(t *testing.T) {
	r := rand.New(rand.NewSource(56))
	value := func(b uint16) float64 { return float64(b) }
	for trial := 0; trial < 200; trial++ {
		var vals []float64
		var h hist
		for run := 0; run < 1+r.Intn(4); run++ {
			b := uint16(r.Intn(50))
			for i := 0; i < r.Intn(30); i++ {
				n := int64(1 + r.Intn(3))
				h.add(b, n)
				for k := int64(0); k < n; k++ {
					vals = append(vals, float64(b))
				}
				b += uint16(r.Intn(3)) // ascending, with repeats
			}
		}
		for _, q := range []float64{0, 0.05, 0.5, 0.95, 1} {
			want := quantileOf(append([]float64(nil), vals...), q)
			if got := h.quantile(q, value); got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
				t.Fatalf("trial %d q %v: %v, want %v", trial, q, got, want)
			}
		}
	}
}

// TestPerfByDeviceSeveralClasses: a session whose session_starts named
// different devices (in different scenes, so in different cells) counts
// once, under the greatest class, and its neighbours in key order keep
// their own.
func TestPerfByDeviceSeveralClasses(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	base := int64(1795892400000)
	dev := func(engine string) string {
		return `,"device":{"engine":"` + engine + `","isMobile":false,"renderer":"r","browser":"b","os":"o"}`
	}
	var evs [][3]string
	for i, sess := range []string{"a1", "a2", "a3"} {
		ts := fmt.Sprint(base + int64(i)*1000)
		evs = append(evs, [3]string{"frame_perf", sess, ts + `,"sceneId":"x","fps":60`})
	}
	evs = append(evs,
		[3]string{"session_start", "a1", fmt.Sprint(base) + `,"sceneId":"x"` + dev("webgl")},
		[3]string{"session_start", "a2", fmt.Sprint(base) + `,"sceneId":"x"` + dev("webgl")},
		[3]string{"session_start", "a2", fmt.Sprint(base+5) + `,"sceneId":"y"` + dev("webgpu")},
		[3]string{"session_start", "a3", fmt.Sprint(base) + `,"sceneId":"y"` + dev("webgl")})
	commitEvents(t, s, pnum, evs)
	rows, err := s.Reader().PerfByDevice(pnum, core.DefaultQuery())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range rows {
		got[r.Engine] = r.Sessions
	}
	if len(rows) != 2 || got["webgl"] != 2 || got["webgpu"] != 1 {
		t.Fatalf("by-device %+v, want webgl 2 (a1, a3) and webgpu 1 (a2)", rows)
	}
}
