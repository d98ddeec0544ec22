package fleet

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
)

func headersOf(r *Record) func(string) string {
	h := r.Headers(r.Snappy)
	return func(name string) string {
		for _, kv := range h {
			if kv[0] == name {
				return kv[1]
			}
		}
		return ""
	}
}

// TestRecordRoundTrip: a record's body, NDJSON or a Snappy block of it,
// parses back to its events, and converts from one to the other.
func TestRecordRoundTrip(t *testing.T) {
	events := [][]byte{[]byte(`{"type":"session_start","sessionId":"s1","ts":1}`), []byte(`{"type":"pointer_move","sessionId":"s1","ts":2,"x":"a\nb"}`)}
	ndjson := AppendNDJSON(nil, events)
	if strings.Count(string(ndjson), "\n") != 2 {
		t.Fatalf("body %q: want one line per event", ndjson)
	}
	plain := Record{Node: "edge-1", Project: "shop.eu", Seq: 42, ReceivedAt: 1765000000000, Body: ndjson}
	packed := plain
	packed.Body, packed.Snappy = plain.AppendSnappy(nil), true
	if len(packed.Body) >= len(ndjson) && len(ndjson) > 64 {
		t.Fatalf("Snappy body of %d bytes for %d of NDJSON", len(packed.Body), len(ndjson))
	}
	for _, r := range []Record{plain, packed} {
		var got Record
		if err := ParseRecord(headersOf(&r), r.Body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Node != r.Node || got.Project != r.Project || got.Seq != r.Seq || got.ReceivedAt != r.ReceivedAt || got.Snappy != r.Snappy ||
			!slices.EqualFunc(got.Events, events, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Fatalf("round trip (Snappy %v): %+v", r.Snappy, got)
		}
		if b, err := r.AppendPlain([]byte("x")); err != nil || string(b) != "x"+string(ndjson) {
			t.Fatalf("AppendPlain (Snappy %v): %q, %v", r.Snappy, b, err)
		}
		if b, err := (&Record{Body: r.AppendSnappy(nil), Snappy: true}).AppendPlain(nil); err != nil || string(b) != string(ndjson) {
			t.Fatalf("AppendSnappy (Snappy %v) does not decode to the NDJSON: %q, %v", r.Snappy, b, err)
		}
	}
	if id := plain.MsgID(); id != "edge-1:shop.eu:42" {
		t.Fatalf("MsgID %q", id)
	}
}

func TestParseRecordRefuses(t *testing.T) {
	good := Record{Node: "n", Project: "p", Seq: 1, ReceivedAt: 5, Body: []byte("{\"a\":1}\n")}
	// A Snappy block whose header claims 1 GiB: refused before decoding.
	bomb := binary.AppendUvarint(nil, 1<<30)
	for _, tc := range []struct {
		name   string
		header map[string]string
		body   string
		want   string
	}{
		{"format", map[string]string{HeaderFormat: "json"}, "{}\n", "format"},
		{"node", map[string]string{HeaderNode: "a b"}, "{}\n", "node id"},
		{"no node", map[string]string{HeaderNode: ""}, "{}\n", "node id"},
		{"project", map[string]string{HeaderProject: "x/y"}, "{}\n", "project id"},
		{"seq", map[string]string{HeaderSeq: "-1"}, "{}\n", "sequence"},
		{"received", map[string]string{HeaderReceivedAt: "x"}, "{}\n", "received-at"},
		{"no newline", nil, `{"a":1}`, "newline"},
		{"not an object", nil, "[1]\n", "not a JSON object"},
		{"empty line", nil, "{}\n\n", "not a JSON object"},
		{"no events", nil, "", "no events"},
		{"too many", nil, strings.Repeat("{}\n", MaxEvents+1), "more than"},
		{"encoding", map[string]string{HeaderEncoding: "gzip"}, "{}\n", "encoding"},
		{"not Snappy", map[string]string{HeaderEncoding: EncodingSnappy}, "{}\n", "snappy"},
		{"Snappy bomb", map[string]string{HeaderEncoding: EncodingSnappy}, string(bomb), "decompresses to"},
		{"Snappy of nothing", map[string]string{HeaderEncoding: EncodingSnappy}, string(s2.EncodeSnappy(nil, nil)), "no events"},
		{"Snappy not NDJSON", map[string]string{HeaderEncoding: EncodingSnappy}, string(s2.EncodeSnappy(nil, []byte("[1]\n"))), "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := headersOf(&good)
			hdr := func(name string) string {
				if v, ok := tc.header[name]; ok {
					return v
				}
				return h(name)
			}
			var r Record
			err := ParseRecord(hdr, []byte(tc.body), &r)
			if !errors.Is(err, ErrBadMessage) || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Fatalf("ParseRecord: %v, want ErrBadMessage naming %q", err, tc.want)
			}
		})
	}
}

func TestSubjectOfProject(t *testing.T) {
	for _, p := range []string{"shop", "shop.eu", "a:b-c_d", "x.y.z"} {
		s := Subject(p)
		if strings.Count(s, ".") != 2 {
			t.Fatalf("Subject(%q) = %q: not one token", p, s)
		}
		if got, ok := ProjectOfSubject(s); !ok || got != p {
			t.Fatalf("ProjectOfSubject(%q) = %q, %v", s, got, ok)
		}
	}
	for _, s := range []string{"uptimizr.events.", "uptimizr.events.a.b", "other.events.a", "uptimizr.events.a%2Fb"} {
		if _, ok := ProjectOfSubject(s); ok {
			t.Errorf("ProjectOfSubject(%q) accepted", s)
		}
	}
}

// FuzzParseRecord: any headers and body parse without a panic; what is
// accepted encodes back to the same body.
func FuzzParseRecord(f *testing.F) {
	f.Add("edge-1", "shop", "7", "1765000000000", FormatNDJSON, []byte("{\"a\":1}\n{\"b\":2}\n"))
	f.Add("n", "p", "18446744073709551615", "0", FormatNDJSON, []byte("{}\n"))
	f.Add("", "", "", "", "", []byte{})
	f.Add("n", "p", "1", "1", FormatNDJSON, []byte("{\n}\n"))
	f.Fuzz(func(t *testing.T, node, project, seq, at, format string, body []byte) {
		h := map[string]string{HeaderNode: node, HeaderProject: project, HeaderSeq: seq, HeaderReceivedAt: at, HeaderFormat: format}
		var r Record
		if err := ParseRecord(func(n string) string { return h[n] }, body, &r); err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error not ErrBadMessage: %v", err)
			}
			return
		}
		if got := AppendNDJSON(nil, r.Events); string(got) != string(body) {
			t.Fatalf("accepted body %q encodes back to %q", body, got)
		}
		if !ValidNodeID(r.Node) || len(r.Events) == 0 || len(r.Events) > MaxEvents {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzParseSnappyRecord: any body sent as a Snappy block parses without a
// panic; what is accepted is the NDJSON of its events, compressed.
func FuzzParseSnappyRecord(f *testing.F) {
	f.Add(s2.EncodeSnappy(nil, []byte("{\"a\":1}\n{\"b\":2}\n")))
	f.Add(s2.EncodeSnappy(nil, []byte("{}\n")))
	f.Add(binary.AppendUvarint(nil, 1<<30))
	f.Add([]byte{0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		h := map[string]string{HeaderNode: "n", HeaderProject: "p", HeaderSeq: "1", HeaderReceivedAt: "1", HeaderFormat: FormatNDJSON, HeaderEncoding: EncodingSnappy}
		var r Record
		if err := ParseRecord(func(n string) string { return h[n] }, body, &r); err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error not ErrBadMessage: %v", err)
			}
			return
		}
		plain, err := s2.Decode(nil, body)
		if err != nil {
			t.Fatalf("accepted a body S2 cannot decode: %v", err)
		}
		if got := AppendNDJSON(nil, r.Events); string(got) != string(plain) {
			t.Fatalf("accepted body %q: events %q", plain, got)
		}
	})
}
