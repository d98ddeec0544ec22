package core

import (
	"bytes"
	"encoding/json"
	"testing"
)

// captureNames covers the envelope fields the Processor writes itself, a
// nested object, numbers, strings, vectors and gated fields.
var captureNames = []string{"sceneId", "visitorId", "device", "fps", "mesh", "screen", "hitPoint", "direction", "bounds", "hitMesh", "url"}

func testCapture(t testing.TB) *Capture {
	c, err := NewCapture(captureNames...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkSpans requires the spans of event i of b to be exactly the captured
// members of its canonical JSON, in order, each with the member's exact bytes.
func checkSpans(t testing.TB, b *Batch, i int, c *Capture) {
	t.Helper()
	spans, ok := b.Captured(i)
	if !ok {
		t.Fatalf("event %d: not captured", i)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b.JSON(i), &members); err != nil {
		t.Fatalf("event %d: %v", i, err)
	}
	got := map[string]string{}
	last := -1
	for _, s := range spans {
		if s.Field == 0 || int(s.Field) > len(c.Names()) {
			t.Fatalf("event %d: span of field number %d", i, s.Field)
		}
		name := c.Names()[s.Field-1]
		if _, dup := got[name]; dup {
			t.Fatalf("event %d: %s located twice", i, name)
		}
		// Spans follow the JSON: each starts after the one before.
		if int(s.start) <= last {
			t.Fatalf("event %d: spans out of order", i)
		}
		last = int(s.start)
		got[name] = string(b.Value(s))
	}
	for _, name := range c.Names() {
		want, present := members[name]
		v, located := got[name]
		switch {
		case present && !located:
			t.Errorf("event %d (%s): %s present but not located", i, b.Events[i].Type, name)
		case !present && located:
			t.Errorf("event %d (%s): %s located as %s but absent from %s", i, b.Events[i].Type, name, v, b.JSON(i))
		case present && v != string(want):
			t.Errorf("event %d (%s): %s located as %s, the JSON has %s", i, b.Events[i].Type, name, v, want)
		}
	}
}

func TestCaptureLocatesFields(t *testing.T) {
	c := testCapture(t)
	for _, ch := range []Channels{AllChannels(), DefaultChannels()} {
		var p Processor
		p.SetCapture(c)
		b := &Batch{}
		p.Begin(b, testInfo(ch))
		n := 0
		for _, cat := range catalog {
			for _, ev := range []*node{minimalEvent(t, cat.typ, cat.fields), fullEvent(t, cat.typ, cat.fields)} {
				out, _, r := p.Add(ev)
				if out == Filtered {
					continue
				}
				if out != Accepted {
					t.Fatalf("%s: %v", cat.typ, r)
				}
				// A rejected event between two accepted ones leaves no span.
				if out, _, _ := p.Add(ev.with("ts", numNode("-1"))); out != Rejected {
					t.Fatalf("%s: negative ts accepted", cat.typ)
				}
				n++
			}
		}
		if n != b.Len() || n < len(catalog) {
			t.Fatalf("%d accepted, %d in the batch", n, b.Len())
		}
		located := map[string]int{}
		for i := range b.Events {
			checkSpans(t, b, i, c)
			spans, _ := b.Captured(i)
			for _, s := range spans {
				located[c.Names()[s.Field-1]]++
			}
		}
		// Every name was found somewhere (bounds, which is gated wherever
		// it appears, only with its channel on; checkSpans already holds
		// each span to the gated JSON).
		for _, name := range c.Names() {
			gatedOff := name == "bounds" && !ch.BoundingBox
			if located[name] == 0 && !gatedOff {
				t.Errorf("%s never located", name)
			}
			if located[name] != 0 && gatedOff {
				t.Errorf("%s located though its channel is off", name)
			}
		}
		if located["sceneId"] != b.Len() || located["visitorId"] != b.Len() {
			t.Errorf("sceneId located %d times, visitorId %d, in %d events", located["sceneId"], located["visitorId"], b.Len())
		}
	}
}

func TestCaptureDefaultScene(t *testing.T) {
	var p Processor
	p.SetCapture(testCapture(t))
	b := &Batch{}
	p.Begin(b, testInfo(AllChannels()))
	if out, _, r := p.Add(baseEvent(t, "scene_change")); out != Accepted {
		t.Fatal(r)
	}
	spans, _ := b.Captured(0)
	if len(spans) != 2 || string(b.Value(spans[0])) != `"`+testVisitor+`"` {
		t.Fatalf("spans %v of %s", spans, b.JSON(0))
	}
	if got := string(b.Value(spans[1])); got != `"default"` {
		t.Fatalf("sceneId located as %s", got)
	}
}

func TestCaptureSurvivesCopies(t *testing.T) {
	c := testCapture(t)
	var p Processor
	p.SetCapture(c)
	src := &Batch{}
	p.Begin(src, testInfo(AllChannels()))
	for _, cat := range catalog {
		if out, _, r := p.Add(fullEvent(t, cat.typ, cat.fields)); out != Accepted {
			t.Fatalf("%s: %v", cat.typ, r)
		}
	}
	// An event appended without the Processor has nothing located.
	src.AppendEvent(TypeCustom, 1, []byte("s"), []byte(`{"type":"custom","fps":1}`))
	if spans, ok := src.Captured(src.Len() - 1); ok || len(spans) != 0 {
		t.Fatalf("AppendEvent: captured=%v, %d spans", ok, len(spans))
	}
	// Copy in reverse order behind some bytes, so every offset moves.
	dst := &Batch{Buf: []byte("some earlier bytes")}
	for i := src.Len() - 1; i >= 0; i-- {
		dst.AppendEventFrom(src, i)
	}
	for j := 0; j < dst.Len(); j++ {
		i := src.Len() - 1 - j
		if !bytes.Equal(dst.JSON(j), src.JSON(i)) || !bytes.Equal(dst.Session(j), src.Session(i)) {
			t.Fatalf("copy %d differs", j)
		}
		_, okSrc := src.Captured(i)
		_, okDst := dst.Captured(j)
		if okSrc != okDst {
			t.Fatalf("copy %d: captured %v, source %v", j, okDst, okSrc)
		}
		if okDst {
			checkSpans(t, dst, j, c)
		}
	}
	// Reset forgets the spans.
	dst.Reset()
	if len(dst.Spans) != 0 {
		t.Fatal("Reset kept spans")
	}
}

func TestNewCaptureRejects(t *testing.T) {
	for _, names := range [][]string{{"nope"}, {"ts"}, {"sessionId"}, {"fps", "fps"}, {"pageMeta.title"}} {
		if _, err := NewCapture(names...); err == nil {
			t.Errorf("NewCapture(%q) accepted", names)
		}
	}
	c, err := NewCapture("mesh", "sceneId")
	if err != nil || len(c.Names()) != 2 || c.Names()[1] != "sceneId" {
		t.Fatalf("%v %v", c, err)
	}
}

func TestCaptureAllocs(t *testing.T) {
	c := testCapture(t)
	var p Processor
	p.SetCapture(c)
	b := &Batch{}
	evs := make([]Value, 0, len(catalog))
	for _, cat := range catalog {
		evs = append(evs, fullEvent(t, cat.typ, cat.fields))
	}
	run := func() {
		b.Reset()
		p.Begin(b, testInfo(AllChannels()))
		for _, ev := range evs {
			p.Add(ev)
		}
	}
	run()
	if n := testing.AllocsPerRun(20, run); n > 1 {
		t.Fatalf("%.1f allocations per batch with a capture", n)
	}
}
