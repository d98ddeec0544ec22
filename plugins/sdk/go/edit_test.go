package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// decode parses JSON with encoding/json, failing the test when invalid.
func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("output is not valid JSON: %v\n%s", err, b)
	}
	if d.More() {
		t.Fatalf("output has trailing data: %s", b)
	}
	return m
}

func output(t testing.TB, e *Event) []byte {
	t.Helper()
	out, err := e.AppendJSON(nil)
	if err != nil {
		t.Fatalf("AppendJSON: %v", err)
	}
	return out
}

func TestEditsProduceValidJSON(t *testing.T) {
	e := mustEvent(t, sampleEvent)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.SetString([]string{"url"}, `https://shop.example.com/c?token=[redacted] "q" \ `+"\n"))
	must(e.SetString([]string{"pageMeta", "title"}, "[email]"))
	must(e.Delete("user", "traits", "email"))
	must(e.SetFloat([]string{"user", "traits", "age"}, 42.5))
	must(e.SetString([]string{"user", "traits", "note"}, "added"))
	must(e.Delete("device", "deviceMemoryGb"))
	must(e.SetRaw([]string{"pageMeta", "viewport"}, []byte(` [1,2] `)))
	if !e.Edited() {
		t.Fatal("Edited() = false")
	}
	out := output(t, e)
	got := decode(t, out)
	want := decode(t, []byte(sampleEvent))
	want["url"] = `https://shop.example.com/c?token=[redacted] "q" \ ` + "\n"
	pm := want["pageMeta"].(map[string]any)
	pm["title"] = "[email]"
	pm["viewport"] = []any{json.Number("1"), json.Number("2")}
	traits := want["user"].(map[string]any)["traits"].(map[string]any)
	delete(traits, "email")
	traits["age"] = json.Number("42.5")
	traits["note"] = "added"
	delete(want["device"].(map[string]any), "deviceMemoryGb")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("edited event:\n got %v\nwant %v", got, want)
	}
	// untouched bytes are preserved verbatim: the prefix up to url and the
	// device object's remaining members
	prefix := sampleEvent[:strings.Index(sampleEvent, `"url":`)]
	if !bytes.HasPrefix(out, []byte(prefix)) {
		t.Errorf("prefix changed:\n%s", out)
	}
	if !bytes.Contains(out, []byte(`"device":{"engine":"webgl2","isMobile":true,"maxTextureSize":16384}`)) {
		t.Errorf("device member not as expected:\n%s", out)
	}
	if !bytes.Contains(out, []byte(`"traits":{"plan":"pro","age":42.5,"beta":false,"note":"added"}`)) {
		t.Errorf("traits not as expected:\n%s", out)
	}
	// reads still see the original
	if v, _ := e.Get("pageMeta", "title"); v.String() != `Configure "your" car` {
		t.Errorf("Get after edit sees %q", v.String())
	}
	e.Revert()
	if e.Edited() || string(output(t, e)) != sampleEvent {
		t.Error("Revert did not restore the original")
	}
}

func TestImmutables(t *testing.T) {
	e := mustEvent(t, sampleEvent)
	for _, name := range []string{"type", "projectId", "sessionId", "visitorId", "ts"} {
		if err := e.SetString([]string{name}, "x"); !errors.Is(err, ErrImmutable) {
			t.Errorf("SetString(%s) = %v", name, err)
		}
		if err := e.Delete(name); !errors.Is(err, ErrImmutable) {
			t.Errorf("Delete(%s) = %v", name, err)
		}
		v, _ := e.Get(name)
		if err := e.ReplaceString(v, "x"); !errors.Is(err, ErrImmutable) {
			t.Errorf("ReplaceString(%s) = %v", name, err)
		}
		if err := e.DeleteMember(v); !errors.Is(err, ErrImmutable) {
			t.Errorf("DeleteMember(%s) = %v", name, err)
		}
	}
	root, _ := e.Get()
	if err := e.ReplaceRaw(root, []byte(`{}`)); !errors.Is(err, ErrImmutable) {
		t.Errorf("replacing the event = %v", err)
	}
	if err := e.SetString(nil, "x"); !errors.Is(err, ErrImmutable) {
		t.Errorf("SetString(no path) = %v", err)
	}
	// an immutable name nested elsewhere is an ordinary member
	if err := e.SetString([]string{"user", "traits", "type"}, "x"); err != nil {
		t.Errorf("nested member named type: %v", err)
	}
	// adding a host-owned member that is absent is refused too
	e2 := mustEvent(t, `{"type":"custom","name":"n"}`)
	if err := e2.SetString([]string{"visitorId"}, "v"); !errors.Is(err, ErrImmutable) {
		t.Errorf("adding visitorId = %v", err)
	}
	if e.Edited() && !bytes.Contains(output(t, e), []byte(`"ts":1795892682261`)) {
		t.Error("ts changed")
	}
}

func TestDeleteCombinations(t *testing.T) {
	const doc = `{"type":"custom","o":{"a":1,"b":"2","c":[3],"d":{"x":4}}}`
	names := []string{"a", "b", "c", "d"}
	for mask := 0; mask < 16; mask++ {
		e := mustEvent(t, doc)
		want := map[string]any{}
		json.Unmarshal([]byte(`{"a":1,"b":"2","c":[3],"d":{"x":4}}`), &want)
		for i, n := range names {
			if mask&(1<<i) != 0 {
				if err := e.Delete("o", n); err != nil {
					t.Fatal(err)
				}
				delete(want, n)
			}
		}
		out := output(t, e)
		var got struct{ O map[string]any }
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("mask %04b: %v\n%s", mask, err, out)
		}
		if !reflect.DeepEqual(got.O, want) {
			t.Errorf("mask %04b: got %v want %v (%s)", mask, got.O, want, out)
		}
		// with insertions after the removals
		if err := e.SetString([]string{"o", "z"}, "new"); err != nil {
			t.Fatal(err)
		}
		want["z"] = "new"
		out = output(t, e)
		got.O = nil
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("mask %04b + insert: %v\n%s", mask, err, out)
		}
		if !reflect.DeepEqual(got.O, want) {
			t.Errorf("mask %04b + insert: got %v want %v", mask, got.O, want)
		}
	}
}

func TestDeleteWithWhitespace(t *testing.T) {
	doc := "{ \"type\" : \"custom\" ,\n \"a\" : 1 , \"b\" : { \"x\" : 1 , \"y\" : 2 } \t}"
	e := mustEvent(t, doc)
	for _, p := range [][]string{{"b", "x"}, {"b", "y"}, {"a"}} {
		if err := e.Delete(p...); err != nil {
			t.Fatal(err)
		}
	}
	m := decode(t, output(t, e))
	if len(m) != 2 || len(m["b"].(map[string]any)) != 0 {
		t.Errorf("got %v", m)
	}
}

func TestEditConflicts(t *testing.T) {
	e := mustEvent(t, `{"type":"custom","props":{"a":"x","b":{"c":"y"}},"n":1}`)
	if err := e.SetString([]string{"props", "b", "c"}, "z"); err != nil {
		t.Fatal(err)
	}
	// replacing an ancestor supersedes the nested edit
	if err := e.SetRaw([]string{"props", "b"}, []byte(`{"q":true}`)); err != nil {
		t.Fatal(err)
	}
	// an edit inside a replaced value is refused
	if err := e.SetString([]string{"props", "b", "c"}, "w"); !errors.Is(err, ErrConflict) {
		t.Errorf("edit inside replaced value = %v", err)
	}
	if err := e.Delete("props", "b", "c"); !errors.Is(err, ErrConflict) {
		t.Errorf("delete inside replaced value = %v", err)
	}
	if got := decode(t, output(t, e)); !reflect.DeepEqual(got["props"], map[string]any{"a": "x", "b": map[string]any{"q": true}}) {
		t.Errorf("props = %v", got["props"])
	}
	// deleting a member, then setting it, brings it back with the new value
	if err := e.Delete("props", "a"); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete("props", "a"); err != nil {
		t.Errorf("second delete = %v", err)
	}
	if err := e.SetString([]string{"props", "a"}, "back"); err != nil {
		t.Fatal(err)
	}
	if got := decode(t, output(t, e)); got["props"].(map[string]any)["a"] != "back" {
		t.Errorf("props = %v", got["props"])
	}
	// deleting an ancestor makes nested deletes no-ops and nested sets conflicts
	if err := e.Delete("props"); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete("props", "a"); err != nil {
		t.Errorf("delete inside deleted = %v", err)
	}
	if err := e.SetString([]string{"props", "a"}, "x"); !errors.Is(err, ErrConflict) {
		t.Errorf("set inside deleted = %v", err)
	}
	if err := e.SetString([]string{"props", "new"}, "x"); !errors.Is(err, ErrConflict) {
		t.Errorf("insert inside deleted = %v", err)
	}
	got := decode(t, output(t, e))
	if _, ok := got["props"]; ok || got["n"] != json.Number("1") {
		t.Errorf("got %v", got)
	}
	// errors for bad paths and values
	if err := e.SetString([]string{"missing", "x"}, "v"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing parent = %v", err)
	}
	if err := e.SetString([]string{"n", "x"}, "v"); !errors.Is(err, ErrNotObject) {
		t.Errorf("through a number = %v", err)
	}
	if err := e.Delete("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete missing = %v", err)
	}
	if err := e.SetRaw([]string{"n"}, []byte(`{bad`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad raw = %v", err)
	}
	if err := e.SetFloat([]string{"n"}, 3); err != nil {
		t.Errorf("finite float = %v", err)
	}
	if err := e.SetFloat([]string{"n"}, math.Inf(1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("infinite float = %v", err)
	}
	if err := e.SetFloat([]string{"n"}, math.NaN()); !errors.Is(err, ErrInvalid) {
		t.Errorf("NaN = %v", err)
	}
	other := mustEvent(t, `{"type":"custom","n":2}`)
	v, _ := other.Get("n")
	if err := e.ReplaceString(v, "x"); !errors.Is(err, ErrForeign) {
		t.Errorf("foreign value = %v", err)
	}
}

func TestInsertThenDelete(t *testing.T) {
	e := mustEvent(t, `{"type":"custom","props":{}}`)
	if err := e.SetString([]string{"props", "a"}, "1"); err != nil {
		t.Fatal(err)
	}
	if err := e.SetString([]string{"props", "a"}, "2"); err != nil {
		t.Fatal(err)
	}
	if err := e.SetString([]string{"props", "b"}, "3"); err != nil {
		t.Fatal(err)
	}
	if got := string(output(t, e)); got != `{"type":"custom","props":{"a":"2","b":"3"}}` {
		t.Errorf("got %s", got)
	}
	if err := e.Delete("props", "a"); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete("props", "b"); err != nil {
		t.Fatal(err)
	}
	if e.Edited() {
		t.Error("insert then delete left an edit")
	}
}

func TestValueEdits(t *testing.T) {
	e := mustEvent(t, `{"type":"custom","props":{"email":"a@b.co","n":1,"list":["x","secret"]}}`)
	props, _ := e.Get("props")
	for k, v := range props.Members() {
		switch k {
		case "email":
			if err := e.ReplaceString(v, "[email]"); err != nil {
				t.Fatal(err)
			}
		case "n":
			if err := e.DeleteMember(v); err != nil {
				t.Fatal(err)
			}
		case "list":
			for i, el := range v.Elements() {
				if i == 1 {
					if err := e.ReplaceString(el, "[secret]"); err != nil {
						t.Fatal(err)
					}
					if err := e.DeleteMember(el); !errors.Is(err, ErrNotObject) {
						t.Errorf("DeleteMember(array element) = %v", err)
					}
				}
			}
		}
	}
	if got := string(output(t, e)); got != `{"type":"custom","props":{"email":"[email]","list":["x","[secret]"]}}` {
		t.Errorf("got %s", got)
	}
}

func TestSetFloatFormat(t *testing.T) {
	for f, want := range map[float64]string{1: "1", 0.5: "0.5", 1e21: "1e+21", 1e-7: "1e-7", -2.25: "-2.25", 123456789: "123456789"} {
		e := mustEvent(t, `{"type":"custom","n":0}`)
		if err := e.SetFloat([]string{"n"}, f); err != nil {
			t.Fatal(err)
		}
		if got := string(output(t, e)); got != `{"type":"custom","n":`+want+`}` {
			t.Errorf("SetFloat(%v) = %s", f, got)
		}
	}
}
