package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/s2"
	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
	"github.com/uptimizr/edge/storage/ingestlog"
)

// validatedFixtures runs every fixture batch through core's Processor, as
// ingest does, with or without the aggregator's Capture; all channels on.
func validatedFixtures(tb testing.TB, pnum uint32, capture bool) []*core.Batch {
	paths, _ := filepath.Glob("../testdata/fixtures/batch*.json")
	if len(paths) == 0 {
		tb.Fatal("fixtures not found")
	}
	var out []*core.Batch
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		var pa fastjson.Parser
		doc, err := pa.ParseBytes(raw)
		if err != nil {
			tb.Fatal(err)
		}
		info := &core.RequestInfo{ProjectID: "p", Browser: "Firefox", OS: "Linux", Channels: core.AllChannels()}
		copy(info.VisitorID[:], "0123456789abcdef0123456789abcdef")
		b := &core.Batch{ProjectID: "p", ProjectNum: pnum, ReceivedAt: 1700000000000, Info: info}
		var p core.Processor
		if capture {
			p.SetCapture(Capture())
		}
		p.Begin(b, info)
		for _, ev := range doc.GetArray("events") {
			if out, _, r := p.Add(jsonvalue.Wrap(ev)); out != core.Accepted {
				tb.Fatalf("%s: fixture event rejected: %v", path, r)
			}
		}
		out = append(out, b)
	}
	return out
}

type decodedEvent struct {
	typ     core.EventType
	ts      int64
	session string
	fields  map[string]string
}

func decodeAll(t *testing.T, rec []byte) []decodedEvent {
	t.Helper()
	var out []decodedEvent
	var m members
	_, skipped, err := decodeLogRecord(rec, nil, &m, func(e *logEvent) error {
		d := decodedEvent{typ: e.Type, ts: e.TS, session: string(e.Session), fields: map[string]string{}}
		for f := 1; f <= numAggFields; f++ {
			if e.f[f] != nil {
				d.fields[aggFields[f-1]] = string(e.f[f])
			}
		}
		out = append(out, d)
		return nil
	})
	if err != nil || skipped != 0 {
		t.Fatalf("decode: %v (%d skipped)", err, skipped)
	}
	return out
}

// TestLogRecordCarriesWhatTheAggregatorReads checks a version-2 record
// against the events' canonical JSON: every field the aggregator reads for
// the type, with its exact token, and nothing else; the same whether the
// events were captured, found by scanning their JSON, or read back from a
// version-1 record of the same batch.
func TestLogRecordCarriesWhatTheAggregatorReads(t *testing.T) {
	captured := validatedFixtures(t, 1, true)
	plain := validatedFixtures(t, 1, false)
	for bi, b := range captured {
		var want []decodedEvent
		for i := range b.Events {
			var mem map[string]json.RawMessage
			if err := json.Unmarshal(b.JSON(i), &mem); err != nil {
				t.Fatal(err)
			}
			d := decodedEvent{typ: b.Events[i].Type, ts: b.Events[i].TS, session: string(b.Session(i)), fields: map[string]string{}}
			for f := uint8(1); f <= numAggFields; f++ {
				if v, ok := mem[aggFields[f-1]]; ok && aggWants[d.typ]&(1<<f) != 0 {
					d.fields[aggFields[f-1]] = string(v)
				}
			}
			want = append(want, d)
		}
		if len(want) < 50 {
			t.Fatalf("batch %d: %d events", bi, len(want))
		}
		var m members
		v1, _ := encodeRecord(nil, nil, b, nil, true)
		variants := map[string][]byte{"version 1": v1}
		for _, compress := range []bool{false, true} {
			rec, _ := encodeLogRecord(nil, nil, b, &m, compress)
			variants[fmt.Sprint("captured, compress=", compress)] = rec
			rec, _ = encodeLogRecord(nil, nil, plain[bi], &m, compress)
			variants[fmt.Sprint("scanned, compress=", compress)] = rec
			for _, origin := range []*Origin{nil, {Node: "edge-1", Seq: 77}} {
				for _, events := range []bool{false, true} {
					rec, _ = encodeFullRecord(nil, nil, b, &m, origin, events, compress)
					variants[fmt.Sprint("version 5, origin=", origin != nil, " events=", events, " compress=", compress)] = rec
					rec, _ = encodeFullRecord(nil, nil, plain[bi], &m, origin, events, compress)
					variants[fmt.Sprint("version 5 scanned, origin=", origin != nil, " events=", events, " compress=", compress)] = rec
					variants[fmt.Sprint("version 4, origin=", origin != nil, " events=", events, " compress=", compress)] = encodeV4Record(b, &m, origin, events, compress)
				}
			}
		}
		for name, rec := range variants {
			got := decodeAll(t, rec)
			if len(got) != len(want) {
				t.Fatalf("batch %d %s: %d events, want %d", bi, name, len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.typ != w.typ || g.ts != w.ts || g.session != w.session || fmt.Sprint(g.fields) != fmt.Sprint(w.fields) {
					t.Fatalf("batch %d %s event %d:\n got %+v\nwant %+v", bi, name, i, g, w)
				}
			}
		}
		// The point of the format: far smaller than the events.
		rec, _ := encodeLogRecord(nil, nil, b, &m, false)
		if len(rec)*4 > len(b.Buf) {
			t.Errorf("batch %d: record of %d bytes for %d bytes of events", bi, len(rec), len(b.Buf))
		}
		t.Logf("batch %d: %d events, %d bytes of events, record %d bytes (version 1: %d)", bi, len(want), len(b.Buf), len(rec), len(v1))
	}
}

// encodeV4Record appends the version-4 record of b the previous release
// wrote on a forwarding node (compress: both parts S2) or a hub (origin).
func encodeV4Record(b *core.Batch, m *members, origin *Origin, events, compress bool) []byte {
	var flags byte
	if compress {
		flags |= flagCompressedS
	}
	if origin != nil {
		flags |= flagOrigin
	}
	if events {
		flags |= flagEvents
	}
	dst := []byte{fullRecordVersionV4, flags}
	if origin != nil {
		dst = binary.AppendUvarint(dst, uint64(len(origin.Node)))
		dst = append(dst, origin.Node...)
		dst = binary.AppendUvarint(dst, origin.Seq)
	}
	part := func(dst []byte, body []byte) []byte {
		if compress {
			body = s2.Encode(nil, body)
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
		return append(dst, body...)
	}
	dst = part(dst, appendLogBody(nil, b, m))
	if events {
		dst = part(dst, appendRecordBody(nil, b, nil))
	}
	return dst
}

// TestLogRecordCorruption requires every truncation and every single-byte
// change of a record to decode to an error or to events, never a panic, and
// the cut record to be refused.
func TestLogRecordCorruption(t *testing.T) {
	b := validatedFixtures(t, 1, true)[0]
	var m members
	var recs [][]byte
	for _, compress := range []bool{false, true} {
		rec, _ := encodeLogRecord(nil, nil, b, &m, compress)
		recs = append(recs, rec)
		for _, origin := range []*Origin{nil, {Node: "edge-1", Seq: 77}} {
			for _, events := range []bool{false, true} {
				rec, _ := encodeFullRecord(nil, nil, b, &m, origin, events, compress)
				recs = append(recs, rec, encodeV4Record(b, &m, origin, events, compress))
			}
		}
	}
	for _, rec := range recs {
		compress := rec[1]&flagCompressedS != 0
		for n := 0; n < len(rec); n++ {
			if _, _, err := decodeLogRecord(rec[:n], nil, &m, func(*logEvent) error { return nil }); err == nil {
				t.Fatalf("compress=%v: record cut to %d of %d bytes decoded", compress, n, len(rec))
			}
		}
		for i := 0; i < len(rec); i += 7 {
			mut := bytes.Clone(rec)
			mut[i] ^= 0x5a
			decodeLogRecord(mut, nil, &m, func(*logEvent) error { return nil })
			DecodeRecord(mut, nil, func(RecordEvent) error { return nil })
			recordOrigin(mut)
			splitFullRecord(mut)
		}
		if rec[0] == fullRecordVersion {
			for n := 0; n < len(rec); n++ {
				if _, ok := splitFullRecord(rec[:n]); ok {
					t.Fatalf("version-5 record cut to %d of %d bytes split", n, len(rec))
				}
			}
			continue
		}
		if !forwardable(rec) {
			continue
		}
		for n := 0; n < len(rec); n++ {
			if _, _, err := DecodeRecord(rec[:n], nil, func(RecordEvent) error { return nil }); err == nil {
				t.Fatalf("record of version %d cut to %d of %d bytes decoded as events", rec[0], n, len(rec))
			}
		}
	}
}

// TestFullRecordParts checks what a version-5 record carries besides the
// aggregator's part: the origin of a hub's record, and the message of a
// forwarding node's (its body a Snappy block of the canonical events as
// NDJSON, byte for byte as version 1 holds them, the first session and the
// time accepted); that the aggregator's part is what a version-2 record
// holds; and that a version-4 record of the previous release still reads.
func TestFullRecordParts(t *testing.T) {
	var m members
	for bi, b := range validatedFixtures(t, 1, true) {
		v1, _ := encodeRecord(nil, nil, b, nil, false)
		v2, _ := encodeLogRecord(nil, nil, b, &m, false)
		var ndjson []byte
		wantAt, _, err := DecodeRecord(v1, nil, func(e RecordEvent) error {
			ndjson = append(append(ndjson, e.JSON...), '\n')
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, compress := range []bool{false, true} {
			for _, origin := range []*Origin{nil, {Node: "edge-1", Seq: 1 << 40}} {
				for _, withEvents := range []bool{false, true} {
					name := fmt.Sprint("origin=", origin != nil, " events=", withEvents, " compress=", compress)
					rec, _ := encodeFullRecord(nil, nil, b, &m, origin, withEvents, compress)
					node, seq, ok := recordOrigin(rec)
					if ok != (origin != nil) || (ok && (string(node) != origin.Node || seq != origin.Seq)) {
						t.Fatalf("batch %d %s: origin %q %d %v", bi, name, node, seq, ok)
					}
					if forwardable(rec) != withEvents {
						t.Fatalf("batch %d %s: forwardable %v", bi, name, !withEvents)
					}
					r, ok := splitFullRecord(rec)
					if !ok || r.version != fullRecordVersion {
						t.Fatalf("batch %d %s: not split", bi, name)
					}
					if r.hasEvents != withEvents || r.bodySnappy != withEvents {
						t.Fatalf("batch %d %s: events %v, Snappy body %v", bi, name, r.hasEvents, r.bodySnappy)
					}
					if withEvents {
						body, err := s2.Decode(nil, r.body)
						if err != nil || !bytes.Equal(body, ndjson) {
							t.Fatalf("batch %d %s: the body is not the NDJSON of version 1's events (%v)", bi, name, err)
						}
						if r.receivedAt != wantAt || string(r.session) != string(b.Session(0)) {
							t.Fatalf("batch %d %s: received at %d, session %q; want %d, %q", bi, name, r.receivedAt, r.session, wantAt, b.Session(0))
						}
					}
					if _, _, err := DecodeRecord(rec, nil, func(RecordEvent) error { return nil }); err == nil {
						t.Fatalf("batch %d %s: version-1 events decoded from a version-5 record", bi, name)
					}
					agg, _, err := r.part(r.agg, nil)
					if err != nil || !bytes.Equal(agg, v2[2:]) {
						t.Fatalf("batch %d %s: the aggregator's part is not the version-2 body (%v)", bi, name, err)
					}
					// The same record as version 4 wrote it.
					v4 := encodeV4Record(b, &m, origin, withEvents, compress)
					if node4, seq4, ok4 := recordOrigin(v4); ok4 != (origin != nil) || string(node4) != string(node) || seq4 != seq || forwardable(v4) != withEvents {
						t.Fatalf("batch %d %s: version 4's origin or events misread", bi, name)
					}
					if withEvents {
						var got []byte
						at, _, err := DecodeRecord(v4, nil, func(e RecordEvent) error {
							got = append(append(got, e.JSON...), '\n')
							return nil
						})
						if err != nil || at != wantAt || !bytes.Equal(got, ndjson) {
							t.Fatalf("batch %d %s: version 4's events differ from version 1's (%v)", bi, name, err)
						}
					}
				}
			}
		}
		// A version-2 or version-1 record has no origin, and only version 1
		// of them has the events.
		if _, _, ok := recordOrigin(v1); ok || !forwardable(v1) || forwardable(v2) {
			t.Fatalf("batch %d: version 1 or 2 misread", bi)
		}
	}
}

// FuzzDecodeLogRecord feeds arbitrary bytes to the log record decoder: it
// must return an error or events, never panic or read out of bounds, and a
// token it hands out is never empty.
func FuzzDecodeLogRecord(f *testing.F) {
	var m members
	if paths, _ := filepath.Glob("../testdata/fixtures/batch50*.json"); len(paths) > 0 {
		for _, b := range validatedFixtures(f, 1, true) {
			rec, _ := encodeLogRecord(nil, nil, b, &m, false)
			f.Add(rec)
			rec, _ = encodeLogRecord(nil, nil, b, &m, true)
			f.Add(rec)
			rec, _ = encodeFullRecord(nil, nil, b, &m, &Origin{Node: "n", Seq: 9}, true, false)
			f.Add(rec)
			rec, _ = encodeFullRecord(nil, nil, b, &m, nil, true, true)
			f.Add(rec)
			f.Add(encodeV4Record(b, &m, nil, true, true))
		}
	}
	f.Add([]byte{2, 0, 1, 1, 3, 5, 2, 's', 1, 1, 3, '"', 'x', '"'})
	f.Add([]byte{2, 0, 1, 2, 3, 5, 2, 's', 0, 3, 6, 0, 1, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m members
		recordOrigin(data)
		splitFullRecord(data)
		DecodeRecord(data, nil, func(RecordEvent) error { return nil })
		decodeLogRecord(data, nil, &m, func(e *logEvent) error {
			if e.Type == core.TypeInvalid || e.Type >= core.NumEventTypes {
				t.Fatalf("event of type %d", e.Type)
			}
			for f := 1; f <= numAggFields; f++ {
				if e.f[f] != nil && len(e.f[f]) == 0 {
					t.Fatalf("empty token for field %d", f)
				}
			}
			return nil
		})
	})
}

// TestAggregatesDoNotDependOnTheRecordPath folds the fixtures three ways,
// each into its own project: validated with the aggregator's Capture (as
// ingest commits them), validated without it (fields found by scanning each
// event), and as version-1 records written straight to the log (a log left
// by an older version). Every aggregate must come out byte for byte the same.
func TestAggregatesDoNotDependOnTheRecordPath(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	var pnums [3]uint32
	for i := range pnums {
		if _, err := s.Registry().CreateProject(fmt.Sprint("p", i)); err != nil {
			t.Fatal(err)
		}
		pnums[i] = s.Registry().Project(fmt.Sprint("p", i)).Num
	}
	for _, b := range validatedFixtures(t, pnums[0], true) {
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range validatedFixtures(t, pnums[1], false) {
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range validatedFixtures(t, pnums[2], true) {
		rec, _ := encodeRecord(nil, nil, b, nil, true)
		if err := s.ilog.Append([]ingestlog.Append{{Project: pnums[2], Seq: uint64(i), Rec: rec}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, pnum := range pnums {
		if _, err := s.Aggregator().foldProject(pnum, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	// The project's aggregate keys, with the project number cut out.
	dump := func(pnum uint32) map[string]string {
		out := map[string]string{}
		s.adb.View(func(txn *badger.Txn) error {
			for _, ns := range []byte{nsAgg, nsSession, nsSessionIdx} {
				prefix := binary.BigEndian.AppendUint32([]byte{ns}, pnum)
				it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
				for it.Rewind(); it.Valid(); it.Next() {
					v, _ := it.Item().ValueCopy(nil)
					out[string(ns)+string(it.Item().Key()[len(prefix):])] = string(v)
				}
				it.Close()
			}
			return nil
		})
		return out
	}
	want := dump(pnums[0])
	if len(want) < 100 {
		t.Fatalf("only %d aggregate keys", len(want))
	}
	for _, pnum := range pnums[1:] {
		got := dump(pnum)
		if len(got) != len(want) {
			t.Fatalf("project %d: %d aggregate keys, the captured path %d", pnum, len(got), len(want))
		}
		for k, v := range want {
			if got[k] == v {
				continue
			}
			// Cells of the scene scope sum session cells in map order, so
			// their last bits may differ between any two folds.
			if k[0] == nsAgg {
				kind := aggKind(k[1])
				a, b := cell{}, cell{}
				if decodeCell(kindOps[kind], []byte(got[k]), a) == nil && decodeCell(kindOps[kind], []byte(v), b) == nil && sameCell(a, b) == nil {
					continue
				}
			}
			t.Fatalf("project %d: key %q differs:\n%q\n%q", pnum, k, got[k], v)
		}
	}
}
