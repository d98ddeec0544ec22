package edge

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecodeBody drives the whole body decoder — capped decompression, JSON
// or NDJSON decoding, per-event validation and canonical encoding — with
// arbitrary bytes. Properties: it never panics; it answers only 200, 400 or
// 413; on 200 every event is accounted for and every kept event is valid
// JSON owned by the key's project.
func FuzzDecodeBody(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f.Add(b, uint8(EncIdentity), uint8(formatJSON))
		f.Add(encodeAs(f, EncGzip, b), uint8(EncGzip), uint8(formatJSON))
		f.Add(encodeAs(f, EncZstd, b[:len(b)/3]), uint8(EncZstd), uint8(formatJSON))
		var doc struct{ Events []json.RawMessage }
		if json.Unmarshal(b, &doc) == nil && len(doc.Events) > 3 {
			nd := bytes.Join([][]byte{doc.Events[0], doc.Events[1], doc.Events[2]}, []byte("\n"))
			f.Add(nd, uint8(EncIdentity), uint8(formatNDJSON))
		}
	}
	f.Add([]byte(`{"events":[{"type":"custom","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1","name":"n","props":{"a":NaN}}]}`), uint8(EncIdentity), uint8(formatJSON))
	f.Add([]byte(`[{"type":"scene_change","projectId":"p","sessionId":"s","ts":1e3,"sdkVersion":"1"}]`), uint8(EncIdentity), uint8(formatJSON))
	for _, b := range surrogateBodies {
		f.Add([]byte(b), uint8(EncIdentity), uint8(formatJSON))
		if i, j := strings.Index(b, "["), strings.LastIndex(b, "]"); i >= 0 && j > i && strings.HasPrefix(b, `{"events":[`) {
			f.Add([]byte(strings.ReplaceAll(b[i+1:j], `},{"type"`, "}\n{\"type\"")), uint8(EncIdentity), uint8(formatNDJSON))
		}
	}
	rig := newPathRig(f, true, false)
	ic := new(ingestCtx)
	now := time.Unix(1795892750, 0)
	f.Fuzz(func(t *testing.T, data []byte, enc, format uint8) {
		e := Encoding(enc % uint8(numEncodings))
		fm := bodyFormat(format % 2)
		status, msg := rig.in.ingest(ic, rig.project, rig.ip, rig.ua, e, fm, data, now)
		defer ic.reset()
		switch status {
		case 200:
		case 400, 413:
			if msg == "" {
				t.Fatalf("status %d without a message", status)
			}
			return
		default:
			t.Fatalf("unexpected status %d: %s", status, msg)
		}
		if ic.accepted+ic.rejected+ic.filtered == 0 || ic.accepted+ic.rejected+ic.filtered > MaxBatchEvents {
			t.Fatalf("counts %d/%d/%d", ic.accepted, ic.rejected, ic.filtered)
		}
		if ic.accepted != len(ic.batch.Events) {
			t.Fatalf("accepted %d but batch holds %d", ic.accepted, len(ic.batch.Events))
		}
		plain := data
		if e != EncIdentity {
			plain, _ = NewDecompressor(rig.in.dec.Limit()).Decompress(nil, data, e)
		}
		// Text is stored as sent: a backslash only where the client escaped
		// one, U+FFFD only where it sent one.
		sentBackslash := bytes.Contains(plain, []byte(`\\`))
		sentFFFD := bytes.Contains(plain, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(plain), []byte(`\ufffd`))
		for i := range ic.batch.Events {
			js := ic.batch.JSON(i)
			var m map[string]any
			if err := json.Unmarshal(js, &m); err != nil {
				t.Fatalf("stored event is not JSON: %v: %q", err, js)
			}
			if !utf8.Valid(js) {
				t.Fatalf("stored event is not valid UTF-8: %q", js)
			}
			if !sentBackslash && bytes.Contains(js, []byte(`\\`)) {
				t.Fatalf("stored event holds a backslash the client did not send: %q", js)
			}
			if !sentFFFD && bytes.Contains(js, []byte("\uFFFD")) {
				t.Fatalf("stored event holds U+FFFD the client did not send: %q", js)
			}
			if m["projectId"] != "bench" || m["sessionId"] != string(ic.batch.Session(i)) {
				t.Fatalf("stored event escapes its project or session: %s", js)
			}
		}
	})
}
