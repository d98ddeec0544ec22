package edge_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// paddedBatch is a valid one-event batch padded with whitespace to n bytes,
// so that compressors write more than one block.
func paddedBatch(n int) []byte {
	b := []byte(`{"events":[` + validEvent("scene_change", "") + `]`)
	b = append(b, bytes.Repeat([]byte{' '}, max(0, n-len(b)-1))...)
	return append(b, '}')
}

func zstdBody(t *testing.T, p []byte, stream bool, opts ...zstd.EOption) []byte {
	t.Helper()
	if !stream {
		w, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		return w.EncodeAll(p, nil)
	}
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCompressedBodyErrors sends real compressed bodies that the collector
// refuses to the real server: each answer names what is wrong (the window
// limit and where it comes from, a dictionary, trailing data) instead of
// "corrupt or truncated", a body declaring more than COLLECTOR_BODY_LIMIT
// is a 413, and nothing of any of them is stored.
func TestCompressedBodyErrors(t *testing.T) {
	h := newHarness(t, nil) // COLLECTOR_BODY_LIMIT 1 MiB
	big := paddedBatch(600 << 10)
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(batchOf(validEvent("scene_change", "")))
	gw.Close()
	cases := []struct {
		name   string
		enc    string
		body   []byte
		status int
		want   []string
	}{
		{"zstd window of 16 MiB", "zstd", zstdBody(t, big, true, zstd.WithWindowSize(16<<20)), 400,
			[]string{"cannot decode zstd body", "declares a 16 MiB window", "8 MiB limit", "RFC 9659"}},
		{"zstd declaring 2 MiB", "zstd", zstdBody(t, paddedBatch(2<<20), false, zstd.WithSingleSegment(true)), 413,
			[]string{"1048576 bytes", "COLLECTOR_BODY_LIMIT"}},
		{"zstd with a dictionary", "zstd", zstdBody(t, big, false, zstd.WithEncoderDictRaw(7, []byte(`{"type":"scene_change","projectId":"a"`))), 400,
			[]string{"needs a dictionary (id 7)"}},
		{"gzip with trailing bytes", "gzip", append(bytes.Clone(gz.Bytes()), "\r\n\r\n--boundary--"...), 400,
			[]string{"not another gzip member"}},
		{"zstd truncated", "zstd", zstdBody(t, big, true)[:40], 400, []string{"truncated"}},
		{"dictionary-compressed", "dcz", zstdBody(t, big, false), 415,
			[]string{`"dcz"`, "dictionary-compressed bodies are not decoded", "use identity, gzip, deflate, zstd or br"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.collect(h.a.Ingest, c.body, map[string]string{"content-encoding": c.enc})
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			msg, _ := r.json(t)["error"].(string)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
	// An 8 MiB window, the most RFC 9659 asks of a decoder, is decoded.
	r := h.collect(h.a.Ingest, zstdBody(t, big, true, zstd.WithWindowSize(8<<20)), map[string]string{"content-encoding": "zstd"})
	if r.status != 200 || num(r.json(t), "accepted") != 1 {
		t.Fatalf("8 MiB window: %d %s", r.status, r.body)
	}
	if n := len(h.storedEvents("a")); n != 1 {
		t.Fatalf("%d events stored, want only the one of the accepted body", n)
	}
}
