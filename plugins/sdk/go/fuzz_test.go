package sdk

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// nesting returns the deepest bracket nesting of b outside strings.
func nesting(b []byte) int {
	depth, deepest, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '{' || c == '['):
			depth++
			deepest = max(deepest, depth)
		case !inStr && (c == '}' || c == ']'):
			depth--
		}
	}
	return deepest
}

func addSeeds(f *testing.F) {
	f.Add([]byte(sampleEvent))
	for _, s := range []string{
		`{}`, `{"type":"custom","props":{"a":"\u00e9\ud83d\ude00","b":[1,-2.5e3,true,null]}}`,
		`{"a":1,"a":2}`, `{"a":"\"\\\/\b\f\n\r\t"}`, ` { "x" : [ ] } `, `{"a":01}`, `{"a":"\ud800"}`,
		`[1,2]`, `"s"`, `{"a":[{"b":{"c":[[]]}}]}`, `{"k\u0065y":{"":""}}`,
	} {
		f.Add([]byte(s))
	}
	// a few canonical fixture events, when the shared fixtures are around
	paths, _ := filepath.Glob(filepath.Join(fixturesDir, "batch50_*.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var body struct{ Events []json.RawMessage }
		if json.Unmarshal(data, &body) == nil {
			for i, ev := range body.Events {
				if i%10 == 0 {
					f.Add([]byte(ev))
				}
			}
		}
	}
}

// FuzzScanner checks the scanner against encoding/json: same verdict on
// validity, same member lookup and string values, and edits that always
// leave valid JSON with the expected content.
func FuzzScanner(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, perr := ParseValue(b)
		if nesting(b) <= MaxDepth {
			if valid := json.Valid(b); valid != (perr == nil) {
				t.Fatalf("ParseValue error %v, json.Valid %v", perr, valid)
			}
		}
		// the structural index used for the host's events never panics,
		// and agrees with the full check on valid input
		var fast Event
		fastErr := fast.reset(b, 0, false)
		if fastErr == nil {
			exercise(&fast)
		}
		e, err := ParseEvent(b)
		if err != nil {
			return
		}
		if fastErr != nil {
			t.Fatalf("index refused what scan accepts: %v", fastErr)
		}
		var idx []member
		if _, err := indexObject(b, skipSpace(b, 0), &idx); err != nil || !reflect.DeepEqual(idx, e.members) {
			t.Fatalf("index %v (%v), scan %v", idx, err, e.members)
		}
		var want map[string]any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&want); err != nil {
			t.Fatalf("ParseEvent accepted what encoding/json refuses: %v", err)
		}
		root, _ := e.Get()
		dup := hasDuplicates(root)
		checkValue(t, root, dup)

		// edit every other member: delete even ones, overwrite odd ones
		i := 0
		for name := range root.Members() {
			if IsImmutable(name) {
				continue
			}
			// encoding/json reads each invalid UTF-8 byte as U+FFFD
			key := string([]rune(name))
			var err error
			if i%2 == 0 {
				err = e.Delete(name)
				delete(want, key)
			} else {
				err = e.SetString([]string{name}, "v\"\\\x01"+name)
				want[key] = "v\"\\\x01" + key
			}
			if err != nil {
				t.Fatalf("edit of %q: %v", name, err)
			}
			i++
		}
		if err := e.SetString([]string{"zz_added"}, "new"); err != nil {
			t.Fatal(err)
		}
		want["zz_added"] = "new"
		out, err := e.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) {
			t.Fatalf("edited output is not valid JSON:\n%s", out)
		}
		if dup {
			return
		}
		var got map[string]any
		d = json.NewDecoder(bytes.NewReader(out))
		d.UseNumber()
		if err := d.Decode(&got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("edited output\n got %v\nwant %v\n%s", got, want, out)
		}
	})
}

// exercise reads every value of an event and edits it, for inputs that
// are only structurally sound: it checks nothing but the absence of
// panics and endless loops.
func exercise(e *Event) {
	var walk func(v Value, path []string)
	walk = func(v Value, path []string) {
		_ = v.String()
		_, _ = v.Float()
		_, _ = v.Int()
		_, _ = v.Bool()
		_ = v.Len()
		_ = v.Is("x")
		_ = v.AppendText(nil)
		for k, m := range v.Members() {
			walk(m, append(path, k))
			e.SetString(append(path, k), "x")
			e.Delete(append(path, k)...)
		}
		for _, el := range v.Elements() {
			walk(el, path)
			e.ReplaceString(el, "y")
		}
	}
	_ = e.Type()
	root, _ := e.Get()
	walk(root, nil)
	e.SetString([]string{"added"}, "z")
	e.AppendJSON(nil)
}

func hasDuplicates(v Value) bool {
	switch v.Kind() {
	case Object:
		seen := map[string]bool{}
		for k, m := range v.Members() {
			k = string([]rune(k)) // as encoding/json reads invalid UTF-8
			if seen[k] || hasDuplicates(m) {
				return true
			}
			seen[k] = true
		}
	case Array:
		for _, el := range v.Elements() {
			if hasDuplicates(el) {
				return true
			}
		}
	}
	return false
}

// checkValue walks v and compares every node with encoding/json's reading
// of the same bytes.
func checkValue(t *testing.T, v Value, dup bool) {
	raw := v.Raw()
	var want any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&want); err != nil {
		t.Fatalf("value %q: encoding/json: %v", raw, err)
	}
	switch v.Kind() {
	case String:
		// encoding/json reads each invalid UTF-8 byte as U+FFFD; the
		// scanner leaves such bytes alone (the host sends valid UTF-8)
		if string([]rune(v.String())) != want.(string) || !v.Is(v.String()) {
			t.Fatalf("String() = %q, encoding/json %q", v.String(), want)
		}
	case Number:
		if _, ok := v.Float(); !ok {
			t.Fatalf("Float() of %s failed", raw)
		}
	case Object:
		n := 0
		for k, m := range v.Members() {
			n++
			if !dup {
				got, ok := v.Get(k)
				if !ok || !bytes.Equal(got.Raw(), m.Raw()) {
					t.Fatalf("Get(%q) = %s, member %s", k, got.Raw(), m.Raw())
				}
			}
			checkValue(t, m, dup)
		}
		if !dup && n != len(want.(map[string]any)) {
			t.Fatalf("%d members, encoding/json %d", n, len(want.(map[string]any)))
		}
	case Array:
		n := 0
		for _, el := range v.Elements() {
			n++
			checkValue(t, el, dup)
		}
		if n != len(want.([]any)) {
			t.Fatalf("%d elements, encoding/json %d", n, len(want.([]any)))
		}
	}
}

// FuzzFilterBatch feeds arbitrary batches to the batch decoder with an
// editing handler: it must answer a code or an output that decodes, never
// panic.
func FuzzFilterBatch(f *testing.F) {
	batch := func(events ...string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, 1)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(events)))
		for _, e := range events {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
			b = append(b, e...)
		}
		return b
	}
	f.Add(batch(sampleEvent, `{"type":"custom","name":"x","props":{"a":"b"}}`))
	f.Add(batch(`{"type":"frame_perf","fps":60}`))
	f.Add(batch())
	f.Add([]byte{1, 0, 0, 0, 5, 0, 0, 0})
	defer setHandler(editingHandler, nil)()
	f.Fuzz(func(t *testing.T, b []byte) {
		out, code := filterBatch(b)
		if code != 0 {
			if code != CodeBadInput {
				t.Fatalf("code %d", code)
			}
			return
		}
		count, ok := checkBatch(b)
		if !ok {
			t.Fatal("accepted a batch with bad framing")
		}
		if _, err := decodeOutput(out, int(count)); err != nil {
			t.Fatal(err)
		}
	})
}
