package sdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uptimizr/edge/plugins/sdk/go/sdktest"
)

// fixturesDir is the shared sample batches, from this directory
// (plugins/sdk/go of the repository: its testdata/fixtures).
var fixturesDir = filepath.Join("..", "..", "..", "testdata", "fixtures")

// setHandler registers a handler and config function as a plugin's init
// would, runs initPlugin, and returns a function restoring the previous
// state.
func setHandler(h func(*Event) Verdict, c func([]byte) error) func() {
	ph, pc, pr := handler, configure, ready
	Handle(h)
	Configure(c)
	initPlugin([]byte("{}"))
	return func() { handler, configure, ready = ph, pc, pr }
}

// editingHandler drops frame_perf, rejects events of type "reject",
// panics on type "panic", redacts custom props.a and removes url.
func editingHandler(e *Event) Verdict {
	switch e.Type() {
	case "frame_perf":
		return Drop
	case "reject":
		return Reject
	case "panic":
		panic("handler panic")
	case "custom":
		if _, ok := e.Get("props", "a"); ok {
			e.SetString([]string{"props", "a"}, "[redacted]")
		}
	}
	e.Delete("url")
	return Keep
}

func decodeOutput(out []byte, count int) ([]sdktest.Result, error) {
	return sdktest.DecodeOutput(out, count)
}

func TestFilterBatch(t *testing.T) {
	defer setHandler(editingHandler, nil)()
	events := []string{
		`{"type":"frame_perf","projectId":"p","sessionId":"s","visitorId":"v","ts":1,"fps":60}`,
		`{"type":"custom","projectId":"p","sessionId":"s","visitorId":"v","ts":2,"name":"n","props":{"a":"secret","b":1}}`,
		`{"type":"camera_sample","projectId":"p","sessionId":"s","visitorId":"v","ts":3,"url":"https://x/","position":[0,0,0]}`,
		`{"type":"scene_change","projectId":"p","sessionId":"s","visitorId":"v","ts":4}`,
	}
	var evs [][]byte
	for _, e := range events {
		evs = append(evs, []byte(e))
	}
	out, code := filterBatch(sdktest.EncodeBatch(evs))
	if code != 0 {
		t.Fatalf("code %d", code)
	}
	res, err := decodeOutput(out, len(events))
	if err != nil {
		t.Fatal(err)
	}
	wantOps := []byte{OpDrop, OpReplace, OpReplace, OpKeep}
	for i, r := range res {
		if r.Op != wantOps[i] {
			t.Errorf("event %d: op %d, want %d", i, r.Op, wantOps[i])
		}
	}
	if got := string(res[1].JSON); got != `{"type":"custom","projectId":"p","sessionId":"s","visitorId":"v","ts":2,"name":"n","props":{"a":"[redacted]","b":1}}` {
		t.Errorf("replacement 1 = %s", got)
	}
	if got := string(res[2].JSON); got != `{"type":"camera_sample","projectId":"p","sessionId":"s","visitorId":"v","ts":3,"position":[0,0,0]}` {
		t.Errorf("replacement 2 = %s", got)
	}

	// the buffers are reused: a second, smaller batch works the same
	out, code = filterBatch(sdktest.EncodeBatch(evs[3:]))
	if code != 0 || !bytes.Equal(out, []byte{1, 0, 0, 0, OpKeep}) {
		t.Errorf("second batch: %v %d", out, code)
	}
	// an empty batch is a count of zero
	if out, code = filterBatch(sdktest.EncodeBatch(nil)); code != 0 || !bytes.Equal(out, []byte{0, 0, 0, 0}) {
		t.Errorf("empty batch: %v %d", out, code)
	}
}

func TestFilterCodes(t *testing.T) {
	defer setHandler(editingHandler, nil)()
	ok := []byte(`{"type":"scene_change","ts":1}`)
	good := sdktest.EncodeBatch([][]byte{ok})
	cases := map[string][]byte{
		"empty":            nil,
		"short header":     good[:6],
		"version 2":        append([]byte{2, 0, 0, 0}, good[4:]...),
		"count too large":  append([]byte{1, 0, 0, 0, 2, 0, 0, 0}, good[8:]...),
		"huge count":       []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
		"truncated length": good[:10],
		"truncated event":  good[:len(good)-1],
		"trailing bytes":   append(append([]byte(nil), good...), 0),
		"malformed event":  sdktest.EncodeBatch([][]byte{ok, []byte(`{"type":"custom",}`)}),
		"not an object":    sdktest.EncodeBatch([][]byte{[]byte(`[1]`)}),
		"length overflows": append([]byte{1, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, ok...),
	}
	for name, b := range cases {
		if _, code := filterBatch(b); code != CodeBadInput {
			t.Errorf("%s: code %d, want %d", name, code, CodeBadInput)
		}
	}
	reject := sdktest.EncodeBatch([][]byte{ok, []byte(`{"type":"reject"}`)})
	if _, code := filterBatch(reject); code != CodeRejected {
		t.Errorf("reject: code %d", code)
	}
	panics := sdktest.EncodeBatch([][]byte{[]byte(`{"type":"panic"}`)})
	if _, code := filterBatch(panics); code != CodeFailure {
		t.Errorf("panic: code %d", code)
	}
	// still usable after a panic
	if _, code := filterBatch(good); code != 0 {
		t.Errorf("after panic: code %d", code)
	}
	// bad verdict
	Handle(func(*Event) Verdict { return 9 })
	if _, code := filterBatch(good); code != CodeFailure {
		t.Errorf("unknown verdict: code %d", code)
	}
}

func TestInit(t *testing.T) {
	defer setHandler(nil, nil)()
	good := sdktest.EncodeBatch([][]byte{[]byte(`{"type":"scene_change"}`)})
	if code := initPlugin([]byte("{}")); code != CodeNotConfigured {
		t.Errorf("init without handler: %d", code)
	}
	if _, code := filterBatch(good); code != CodeNotConfigured {
		t.Errorf("filter before init: %d", code)
	}
	Handle(func(*Event) Verdict { return Keep })
	var got []byte
	Configure(func(c []byte) error {
		got = c
		if _, err := ParseValue(c); err != nil {
			return err
		}
		return nil
	})
	cfg := []byte(`{"hosts":["a"]}`)
	if code := initPlugin(cfg); code != 0 {
		t.Fatalf("init: %d", code)
	}
	cfg[2] = 'X'
	if string(got) != `{"hosts":["a"]}` {
		t.Errorf("config not copied: %s", got)
	}
	if _, code := filterBatch(good); code != 0 {
		t.Errorf("filter after init: %d", code)
	}
	if code := initPlugin([]byte(`{bad`)); code != CodeFailure {
		t.Errorf("init with a refused config: %d", code)
	}
	if _, code := filterBatch(good); code != CodeNotConfigured {
		t.Errorf("filter after failed init: %d", code)
	}
	Configure(func([]byte) error { panic("boom") })
	if code := initPlugin(nil); code != CodeFailure {
		t.Errorf("init with panicking config: %d", code)
	}
	Configure(func([]byte) error { return errors.New("no") })
	if code := initPlugin(nil); code != CodeFailure {
		t.Errorf("init with refusing config: %d", code)
	}
	Configure(func([]byte) error { return fmt.Errorf("option x: %w", &Error{Code: -101, Msg: "wrong type"}) })
	if code := initPlugin(nil); code != -101 {
		t.Errorf("init with a coded error: %d", code)
	}
	Configure(func([]byte) error { return &Error{Code: 5, Msg: "positive code"} })
	if code := initPlugin(nil); code != CodeFailure {
		t.Errorf("init with a non-negative code: %d", code)
	}
}

func TestAllocIn(t *testing.T) {
	defer func(prev []byte) { in = prev }(in)
	b := allocIn(10)
	if len(b) != 10 {
		t.Fatalf("len %d", len(b))
	}
	first := &b[:1][0]
	if b2 := allocIn(5); &b2[:1][0] != first {
		t.Error("a smaller allocation did not reuse the buffer")
	}
	if b3 := allocIn(cap(in) + 1); len(b3) != cap(b)+1 {
		t.Errorf("grown len %d", len(b3))
	}
	if allocIn(-1) != nil || allocIn(maxAlloc+1) != nil {
		t.Error("out-of-range sizes allocated")
	}
	if b4 := allocIn(0); b4 == nil || cap(b4) == 0 {
		t.Error("allocIn(0) must return a usable address")
	}
}

func TestBatchWithOutputLengths(t *testing.T) {
	// check the replacement length prefix against the bytes that follow
	defer setHandler(func(e *Event) Verdict {
		e.SetString([]string{"note"}, string(bytes.Repeat([]byte("é"), e.Index()*100)))
		return Replace
	}, nil)()
	var evs [][]byte
	for range 5 {
		evs = append(evs, []byte(`{"type":"custom","name":"n"}`))
	}
	out, code := filterBatch(sdktest.EncodeBatch(evs))
	if code != 0 {
		t.Fatal(code)
	}
	res, err := decodeOutput(out, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Op != OpReplace || !bytes.HasSuffix(r.JSON, []byte(`"}`)) {
			t.Errorf("%d: %d %s", i, r.Op, r.JSON)
		}
	}
	if n := binary.LittleEndian.Uint32(out); n != 5 {
		t.Errorf("count %d", n)
	}
}

// Events from the host get a structural check, not a full one: broken
// structure fails the batch, odd tokens inside well-formed structure do
// not (the collector validated them).
func TestBatchStructureChecks(t *testing.T) {
	defer setHandler(func(e *Event) Verdict { return Keep }, nil)()
	for _, bad := range []string{
		`{"a":[1}}`, `{"a":{"b":1]}`, `{"a":"x}`, `{"a" 1}`, `{"a":}`, `{"a":1,}`, `{"a":1`, `{"a":1}}`,
		`{"a":[[[1]]}`, `{"a":1} x`, `{a:1}`, `["type"]`, ``, `{"a":"\"}`,
		`{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`,
	} {
		if _, code := filterBatch(sdktest.EncodeBatch([][]byte{[]byte(bad)})); code != CodeBadInput {
			t.Errorf("%.40s: code %d, want %d", bad, code, CodeBadInput)
		}
	}
	for _, odd := range []string{`{"type":"custom","n":01}`, `{"type":"custom","b":tru}`, "{\"type\":\"custom\",\"s\":\"\x01\"}"} {
		if out, code := filterBatch(sdktest.EncodeBatch([][]byte{[]byte(odd)})); code != 0 || !bytes.Equal(out, []byte{1, 0, 0, 0, OpKeep}) {
			t.Errorf("%s: %v %d", odd, out, code)
		}
	}
	deep := `{"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`
	if _, code := filterBatch(sdktest.EncodeBatch([][]byte{[]byte(deep)})); code != 0 {
		t.Errorf("nesting at MaxDepth: code %d", code)
	}
	if _, err := ParseEvent([]byte(deep)); err != nil {
		t.Errorf("ParseEvent at MaxDepth: %v", err)
	}
}
