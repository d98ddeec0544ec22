package fleet

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func headersOf(r *Record) func(string) string {
	h := r.Headers()
	return func(name string) string {
		for _, kv := range h {
			if kv[0] == name {
				return kv[1]
			}
		}
		return ""
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := Record{Node: "edge-1", Project: "shop.eu", Seq: 42, ReceivedAt: 1765000000000,
		Events: [][]byte{[]byte(`{"type":"session_start","sessionId":"s1","ts":1}`), []byte(`{"type":"pointer_move","sessionId":"s1","ts":2,"x":"a\nb"}`)}}
	body := r.AppendBody(nil)
	if strings.Count(string(body), "\n") != 2 {
		t.Fatalf("body %q: want one line per event", body)
	}
	var got Record
	if err := ParseRecord(headersOf(&r), body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Node != r.Node || got.Project != r.Project || got.Seq != r.Seq || got.ReceivedAt != r.ReceivedAt ||
		!slices.EqualFunc(got.Events, r.Events, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("round trip: %+v, want %+v", got, r)
	}
	if id := r.MsgID(); id != "edge-1:shop.eu:42" {
		t.Fatalf("MsgID %q", id)
	}
}

func TestParseRecordRefuses(t *testing.T) {
	good := Record{Node: "n", Project: "p", Seq: 1, ReceivedAt: 5, Events: [][]byte{[]byte(`{"a":1}`)}}
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
			if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), tc.want) {
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
		if got := r.AppendBody(nil); string(got) != string(body) {
			t.Fatalf("accepted body %q encodes back to %q", body, got)
		}
		if !ValidNodeID(r.Node) || len(r.Events) == 0 || len(r.Events) > MaxEvents {
			t.Fatalf("accepted %+v", r)
		}
	})
}
