package edge

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

const fixtureDir = "../testdata/fixtures"

// pathRig is the write path below HTTP over a real Badger store.
type pathRig struct {
	in      *ingestAPI // the server's ingest part
	store   *storage.Store
	project core.Project
	ip      netip.Addr
	ua      []byte
}

func newPathRig(tb testing.TB, all bool, commit bool) *pathRig {
	tb.Helper()
	st, err := storage.Open(storage.Options{Dir: tb.TempDir(), MinFreeDisk: -1, DisableAggregation: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if _, err := st.Registry().CreateProject("bench"); err != nil {
		tb.Fatal(err)
	}
	if all {
		st.Registry().SetChannels("bench", core.AllChannels())
	}
	cfg := core.DefaultConfig()
	cfg.VisitorHashSecret = "bench-secret-0123456789abcdef"
	hasher, _ := core.NewVisitorHasher([]byte(cfg.VisitorHashSecret))
	var sink core.Sink = st.Sink()
	if !commit {
		sink = discardSink{}
	}
	srv, err := New(&cfg, Deps{Keys: st.Registry(), Sink: sink, Hasher: hasher})
	if err != nil {
		tb.Fatal(err)
	}
	return &pathRig{in: &srv.ingest, store: st, project: st.Registry().Project("bench"),
		ip: netip.MustParseAddr("198.51.100.23"),
		ua: []byte("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15")}
}

// discardSink measures the path without storage (it keeps nothing).
type discardSink struct{}

func (discardSink) Commit(_ context.Context, b *core.Batch) error { return nil }

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		tb.Fatal("fixtures not found: " + err.Error())
	}
	return b
}

func encodeAs(tb testing.TB, enc Encoding, b []byte) []byte {
	var buf bytes.Buffer
	switch enc {
	case EncIdentity:
		return b
	case EncGzip:
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case EncZstd:
		w, _ := zstd.NewWriter(&buf)
		w.Write(b)
		w.Close()
	default:
		tb.Fatalf("encoding %v not used here", enc)
	}
	return buf.Bytes()
}

// BenchmarkWritePath is the whole write path below HTTP for the 200-event
// fixture: decompress → decode → validate → visitor hash → gate → group
// commit to Badger. Run with -cpu 1 for the one-core figure; events/s is
// reported per run.
func BenchmarkWritePath(b *testing.B) {
	raw := fixture(b, "batch200_00.json")
	for _, enc := range []Encoding{EncIdentity, EncGzip, EncZstd} {
		for _, commit := range []bool{true, false} {
			name := enc.String()
			if !commit {
				name += "/no-commit"
			}
			b.Run(name, func(b *testing.B) {
				rig := newPathRig(b, true, commit)
				wire := encodeAs(b, enc, raw)
				ic := new(ingestCtx)
				now := time.Now()
				b.SetBytes(int64(len(raw)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					status, msg := rig.in.ingest(ic, rig.project, rig.ip, rig.ua, enc, formatJSON, wire, now)
					if status != 200 || ic.accepted != 200 {
						b.Fatalf("%d %s accepted=%d", status, msg, ic.accepted)
					}
					ic.reset()
				}
				b.ReportMetric(float64(b.N)*200/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkDecodeFormats is the path below storage (decode, validate,
// hash, gate; nothing committed) for the 200-event fixture as one JSON body
// and as NDJSON, uncompressed: the per-event cost of each decoder.
func BenchmarkDecodeFormats(b *testing.B) {
	raw := fixture(b, "batch200_00.json")
	var doc struct{ Events []json.RawMessage }
	if err := json.Unmarshal(raw, &doc); err != nil {
		b.Fatal(err)
	}
	nd := bytes.Join(func() (ls [][]byte) {
		for _, e := range doc.Events {
			ls = append(ls, e)
		}
		return ls
	}(), []byte("\n"))
	for _, c := range []struct {
		name   string
		format bodyFormat
		body   []byte
	}{{"json", formatJSON, raw}, {"ndjson", formatNDJSON, nd}} {
		b.Run(c.name, func(b *testing.B) {
			rig := newPathRig(b, true, false)
			ic := new(ingestCtx)
			now := time.Now()
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				status, msg := rig.in.ingest(ic, rig.project, rig.ip, rig.ua, EncIdentity, c.format, c.body, now)
				if status != 200 || ic.accepted != len(doc.Events) {
					b.Fatalf("%d %s accepted=%d", status, msg, ic.accepted)
				}
				ic.reset()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(doc.Events)), "ns/event")
		})
	}
}

// allocsPerRun counts run's allocations as testing.AllocsPerRun does, with
// no garbage collection meanwhile (one empties the decompressors' sync.Pool
// and its refill would count against the request), and takes the least of
// three rounds: AllocsPerRun counts the whole process, and the store's
// background goroutines allocate now and then, while an allocation of the
// request itself shows in every round.
func allocsPerRun(run func()) float64 {
	gc := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(gc)
	least := testing.AllocsPerRun(50, run)
	for i := 0; i < 2; i++ {
		least = min(least, testing.AllocsPerRun(50, run))
	}
	return least
}

// TestWritePathAllocs asserts that the per-event path allocates nothing in
// steady state: decoding, validation, hashing and gating of a 200-event
// batch make zero allocations, and so does a group commit.
func TestWritePathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	raw := fixture(t, "batch200_00.json")
	small := fixture(t, "batch50_00.json")
	for _, enc := range []Encoding{EncIdentity, EncGzip, EncZstd} {
		rig := newPathRig(t, false, false)
		ic := new(ingestCtx)
		wire := encodeAs(t, enc, raw)
		now := time.Now()
		run := func() {
			if st, msg := rig.in.ingest(ic, rig.project, rig.ip, rig.ua, enc, formatJSON, wire, now); st != 200 {
				t.Fatalf("%d %s", st, msg)
			}
			ic.reset()
		}
		run() // warm up pools and buffers
		if a := allocsPerRun(run); a != 0 {
			t.Errorf("%v: %.1f allocations per 200-event request without storage, want 0", enc, a)
		}
	}
	// With the real store: allocations must not grow with the event count.
	rig := newPathRig(t, false, true)
	ic := new(ingestCtx)
	now := time.Now()
	per := func(body []byte) float64 {
		run := func() {
			if st, msg := rig.in.ingest(ic, rig.project, rig.ip, rig.ua, EncIdentity, formatJSON, body, now); st != 200 {
				t.Fatalf("%d %s", st, msg)
			}
			ic.reset()
		}
		run()
		return allocsPerRun(run)
	}
	a50, a200 := per(small), per(raw)
	t.Logf("allocations per committed request: 50 events %.1f, 200 events %.1f", a50, a200)
	// The group commit (the log record's encoding, one write to the ingest
	// log, its index) allocates nothing either in steady state; the bound
	// leaves room for the store's background goroutines, which the count
	// includes (allocsPerRun keeps the least of three rounds).
	if a200 > a50+1 || a200 > 2 {
		t.Errorf("commit allocations: 50 events %.1f, 200 events %.1f; want none per request, not growing with events", a50, a200)
	}
}
