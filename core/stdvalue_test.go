package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// node is a test-only Value over the standard library's tokenizer. It keeps
// member order, duplicate keys and raw number tokens, which is what the edge's
// own parser hands the Processor. Trees can also be built by hand to hold what
// encoding/json refuses to produce (NaN, 01, invalid UTF-8…).
type node struct {
	kind   Kind
	raw    []byte // number token or string bytes
	elems  []*node
	fields []Field
}

func (n *node) Kind() Kind                     { return n.kind }
func (n *node) AppendNumber(dst []byte) []byte { return append(dst, n.raw...) }
func (n *node) Str() []byte                    { return n.raw }
func (n *node) Len() int                       { return len(n.elems) }
func (n *node) At(i int) Value                 { return n.elems[i] }
func (n *node) Fields(dst []Field) []Field     { return append(dst, n.fields...) }

// parseValue parses one JSON document into a node tree.
func parseValue(data []byte) (*node, error) { return parseWith(data, false) }

// parseAsEdge parses one JSON document into a node tree whose strings are
// what the edge's parser hands the Processor: raw bytes as sent (invalid
// UTF-8 included), and an unpaired surrogate escape as the surrogate's
// three-byte encoded form, where encoding/json would make U+FFFD of both.
func parseAsEdge(data []byte) (*node, error) { return parseWith(data, true) }

func parseWith(data []byte, asEdge bool) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var src []byte
	if asEdge {
		src = data
	}
	n, err := parseNode(dec, src)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return n, nil
}

// edgeString re-reads the string token that ends at data[end-1] (the
// closing quote) and starts after offset from: the raw token unescaped as
// the edge unescapes it.
func edgeString(data []byte, from, end int) ([]byte, error) {
	i := from
	for i < end && data[i] != '"' {
		i++ // whitespace, ',' and ':' between tokens
	}
	raw := data[i+1 : end-1]
	var out []byte
	for j := 0; j < len(raw); j++ {
		if raw[j] != '\\' {
			out = append(out, raw[j])
			continue
		}
		j++
		switch c := raw[j]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			var u rune
			if _, err := fmt.Sscanf(string(raw[j+1:j+5]), "%04x", &u); err != nil {
				return nil, err
			}
			j += 4
			if u >= 0xD800 && u < 0xDC00 && j+6 < len(raw) && raw[j+1] == '\\' && raw[j+2] == 'u' {
				var lo rune
				if _, err := fmt.Sscanf(string(raw[j+3:j+7]), "%04x", &lo); err == nil && lo >= 0xDC00 && lo <= 0xDFFF {
					out = utf8.AppendRune(out, 0x10000+(u-0xD800)<<10+(lo-0xDC00))
					j += 6
					continue
				}
			}
			if u >= 0xD800 && u <= 0xDFFF {
				out = append(out, 0xE0|byte(u>>12), 0x80|byte(u>>6)&0x3F, 0x80|byte(u)&0x3F)
				continue
			}
			out = utf8.AppendRune(out, u)
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

func parseNode(dec *json.Decoder, src []byte) (*node, error) {
	from := int(dec.InputOffset())
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &node{kind: KindNull}, nil
	case bool:
		if t {
			return &node{kind: KindTrue}, nil
		}
		return &node{kind: KindFalse}, nil
	case json.Number:
		return &node{kind: KindNumber, raw: []byte(t)}, nil
	case string:
		if src != nil {
			b, err := edgeString(src, from, int(dec.InputOffset()))
			return &node{kind: KindString, raw: b}, err
		}
		return &node{kind: KindString, raw: []byte(t)}, nil
	case json.Delim:
		switch t {
		case '[':
			n := &node{kind: KindArray}
			for dec.More() {
				e, err := parseNode(dec, src)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, e)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return n, nil
		case '{':
			n := &node{kind: KindObject}
			for dec.More() {
				from := int(dec.InputOffset())
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				if src != nil {
					b, err := edgeString(src, from, int(dec.InputOffset()))
					if err != nil {
						return nil, err
					}
					k = string(b)
				}
				v, err := parseNode(dec, src)
				if err != nil {
					return nil, err
				}
				n.fields = append(n.fields, Field{Key: []byte(k), Val: v})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return n, nil
		}
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func mustParse(t testing.TB, s string) *node {
	t.Helper()
	n, err := parseValue([]byte(s))
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return n
}

// Hand-built nodes.

func numNode(tok string) *node { return &node{kind: KindNumber, raw: []byte(tok)} }
func strNode(s string) *node   { return &node{kind: KindString, raw: []byte(s)} }

// clone deep-copies a tree.
func (n *node) clone() *node {
	c := &node{kind: n.kind, raw: append([]byte(nil), n.raw...)}
	for _, e := range n.elems {
		c.elems = append(c.elems, e.clone())
	}
	for _, f := range n.fields {
		c.fields = append(c.fields, Field{Key: append([]byte(nil), f.Key...), Val: f.Val.(*node).clone()})
	}
	return c
}

// with returns a copy of the object n with the member at the dotted path set
// to v (replacing the first member of that name, or appended). Intermediate
// objects are created when missing.
func (n *node) with(path string, v *node) *node {
	c := n.clone()
	c.set(strings.Split(path, "."), v)
	return c
}

func (n *node) set(path []string, v *node) {
	for i := range n.fields {
		if string(n.fields[i].Key) == path[0] {
			if len(path) == 1 {
				n.fields[i].Val = v
			} else {
				n.fields[i].Val.(*node).set(path[1:], v)
			}
			return
		}
	}
	if len(path) == 1 {
		n.fields = append(n.fields, Field{Key: []byte(path[0]), Val: v})
		return
	}
	child := &node{kind: KindObject}
	child.set(path[1:], v)
	n.fields = append(n.fields, Field{Key: []byte(path[0]), Val: child})
}

// without returns a copy of n without any member at the dotted path.
func (n *node) without(path string) *node {
	c := n.clone()
	c.del(strings.Split(path, "."))
	return c
}

func (n *node) del(path []string) {
	kept := n.fields[:0]
	for _, f := range n.fields {
		if string(f.Key) == path[0] {
			if len(path) == 1 {
				continue
			}
			f.Val.(*node).del(path[1:])
		}
		kept = append(kept, f)
	}
	n.fields = kept
}

// appendMember returns a copy of n with one more member k (even if k is
// already there).
func (n *node) appendMember(k string, v *node) *node {
	c := n.clone()
	c.fields = append(c.fields, Field{Key: []byte(k), Val: v})
	return c
}

// Fixtures.

const fixturesDir = "../testdata/fixtures"

type fixture struct {
	name   string
	raw    []json.RawMessage // each event as it appears in the body
	events []Value
	bytes  int // sum of the events' sizes
}

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	if _, err := os.Stat(fixturesDir); err != nil {
		t.Fatalf("fixtures not available: %v", err)
	}
	paths, err := filepath.Glob(filepath.Join(fixturesDir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in %s (%v)", fixturesDir, err)
	}
	var out []fixture
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(data, &body); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		fx := fixture{name: filepath.Base(path), raw: body.Events}
		for i, ev := range body.Events {
			v, err := parseValue(ev)
			if err != nil {
				t.Fatalf("%s event %d: %v", path, i, err)
			}
			fx.events = append(fx.events, v)
			fx.bytes += len(ev)
		}
		out = append(out, fx)
	}
	return out
}

func TestStdValuePreservesOrderDuplicatesAndTokens(t *testing.T) {
	n := mustParse(t, `{"b":1.50,"a":[1e3,-0],"b":"x\u00e9","c":{"z":null,"y":true}}`)
	var keys []string
	for _, f := range n.Fields(nil) {
		keys = append(keys, string(f.Key))
	}
	if got := strings.Join(keys, ","); got != "b,a,b,c" {
		t.Fatalf("keys = %s", got)
	}
	fs := n.Fields(nil)
	if got := string(fs[0].Val.AppendNumber(nil)); got != "1.50" {
		t.Errorf("raw token = %q", got)
	}
	arr := fs[1].Val
	if arr.Len() != 2 || string(arr.At(0).AppendNumber(nil)) != "1e3" || string(arr.At(1).AppendNumber(nil)) != "-0" {
		t.Errorf("array tokens wrong")
	}
	if got := string(fs[2].Val.Str()); got != "xé" {
		t.Errorf("string = %q", got)
	}
	if fs[3].Val.Fields(nil)[1].Val.Kind() != KindTrue {
		t.Errorf("nested kind wrong")
	}
}
