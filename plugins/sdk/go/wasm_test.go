package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	sdk "github.com/uptimizr/edge/plugins/sdk/go"
	"github.com/uptimizr/edge/plugins/sdk/go/sdktest"
)

// The shared sample batches, relative to this directory (plugins/sdk/go).
var sharedFixtures = filepath.Join("..", "..", "..", "testdata", "fixtures")

// testPluginWasm is the path of testdata/testplugin built for wasip1,
// made once per test binary in a temporary directory.
var testPluginWasm string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "uptimizr-sdk-go-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPluginWasm = filepath.Join(dir, "testplugin.wasm")
	if err := sdktest.Build(filepath.Join("testdata", "testplugin"), testPluginWasm); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	compileOnce sync.Once
	compiled    *sdktest.Module
	compileErr  error
)

// module compiles the test plugin once (compilation of a Go guest takes
// a second or two; wazero's file cache makes later runs faster).
func module(t testing.TB) *sdktest.Module {
	t.Helper()
	compileOnce.Do(func() {
		wasm, err := os.ReadFile(testPluginWasm)
		if err != nil {
			compileErr = err
			return
		}
		compiled, compileErr = sdktest.Compile(context.Background(), wasm)
	})
	if compileErr != nil {
		t.Fatal(compileErr)
	}
	return compiled
}

func instantiate(t testing.TB, config string) *sdktest.Plugin {
	t.Helper()
	p, err := module(t).Instantiate(context.Background(), []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

const testConfig = `{"drop":["frame_perf"],"redact":["color","step"],"stripHitPoint":true,"reject":"custom-reject"}`

func TestWasmModuleShape(t *testing.T) {
	m := module(t)
	exports := m.Exports()
	for _, want := range []string{"memory", "uptimizr_abi_version", "uptimizr_alloc", "uptimizr_init", "uptimizr_filter", "_initialize"} {
		if !slices.Contains(exports, want) {
			t.Errorf("export %s missing (have %v)", want, exports)
		}
	}
	for _, imp := range m.Imports() {
		if !strings.HasPrefix(imp, "wasi_snapshot_preview1.") {
			t.Errorf("unexpected import %s", imp)
		}
	}
	t.Logf("imports: %v", m.Imports())
}

func fixtureFiles(t testing.TB) []string {
	paths := sdktest.Fixtures(sharedFixtures)
	if len(paths) == 0 {
		t.Fatalf("no sample batches in %s", sharedFixtures)
	}
	return paths
}

// immutables returns the host-owned members of an event, as raw JSON.
func immutables(t testing.TB, event []byte) map[string]string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(event, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, event)
	}
	out := map[string]string{}
	for _, k := range []string{"type", "projectId", "sessionId", "visitorId", "ts"} {
		out[k] = string(m[k])
	}
	return out
}

func TestWasmFixtures(t *testing.T) {
	p := instantiate(t, testConfig)
	ctx := context.Background()
	for _, path := range fixtureFiles(t) {
		events, err := sdktest.LoadFixture(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Filter(ctx, events)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(path), err)
		}
		if len(res) != len(events) {
			t.Fatalf("%s: %d results for %d events", filepath.Base(path), len(res), len(events))
		}
		counts := map[byte]int{}
		for i, r := range res {
			counts[r.Op]++
			ev, err := sdk.ParseEvent(events[i])
			if err != nil {
				t.Fatal(err)
			}
			typ := ev.Type()
			want := byte(sdktest.OpKeep)
			props, _ := ev.Get("props")
			_, hasColor := props.Get("color")
			_, hasStep := props.Get("step")
			colorIsString := false
			if c, ok := props.Get("color"); ok && c.Kind() == sdk.String {
				colorIsString = true
			}
			_, hasHit := ev.Get("hitPoint")
			switch {
			case typ == "frame_perf":
				want = sdktest.OpDrop
			case typ == "custom" && colorIsString:
				want = sdktest.OpReplace
			case typ == "camera_sample" && hasHit:
				want = sdktest.OpReplace
			}
			if r.Op != want {
				t.Errorf("%s event %d (%s): op %d, want %d", filepath.Base(path), i, typ, r.Op, want)
				continue
			}
			if r.Op != sdktest.OpReplace {
				continue
			}
			if !json.Valid(r.JSON) {
				t.Fatalf("replacement is not JSON: %s", r.JSON)
			}
			if got, orig := immutables(t, r.JSON), immutables(t, events[i]); fmt.Sprint(got) != fmt.Sprint(orig) {
				t.Errorf("immutable members changed: %v -> %v", orig, got)
			}
			out, _ := sdk.ParseEvent(r.JSON)
			switch typ {
			case "custom":
				if c, _ := out.Get("props", "color"); hasColor && !c.Is("[redacted]") {
					t.Errorf("color not redacted: %s", r.JSON)
				}
				if s, _ := out.Get("props", "step"); hasStep && s.Kind() != sdk.Number {
					t.Errorf("numeric step changed: %s", r.JSON)
				}
			case "camera_sample":
				if _, ok := out.Get("hitPoint"); ok {
					t.Errorf("hitPoint kept: %s", r.JSON)
				}
				// the rest is byte-for-byte the original minus the member
				orig := string(events[i])
				hp, _ := ev.Get("hitPoint")
				if !strings.Contains(orig, `"hitPoint":`+string(hp.Raw())) {
					t.Fatal("test assumption: compact hitPoint member")
				}
				if len(r.JSON) >= len(events[i]) {
					t.Errorf("replacement is not shorter")
				}
			}
		}
		t.Logf("%s: %d events: keep %d, drop %d, replace %d", filepath.Base(path), len(events),
			counts[sdktest.OpKeep], counts[sdktest.OpDrop], counts[sdktest.OpReplace])
		if counts[sdktest.OpDrop] == 0 || counts[sdktest.OpReplace] == 0 || counts[sdktest.OpKeep] == 0 {
			t.Errorf("%s: expected all three ops, got %v", filepath.Base(path), counts)
		}
	}
}

func TestWasmCodes(t *testing.T) {
	p := instantiate(t, testConfig)
	ctx := context.Background()
	ok := []byte(`{"type":"scene_change","projectId":"p","sessionId":"s","visitorId":"v","ts":1,"sdkVersion":"1","sceneId":"a"}`)
	good := sdktest.EncodeBatch([][]byte{ok})
	bad := map[string][]byte{
		"short":           good[:5],
		"version":         append([]byte{9, 0, 0, 0}, good[4:]...),
		"count":           append([]byte{1, 0, 0, 0, 3, 0, 0, 0}, good[8:]...),
		"trailing":        append(append([]byte(nil), good...), '!'),
		"truncated":       good[:len(good)-3],
		"malformed event": sdktest.EncodeBatch([][]byte{ok, []byte(`{"type":`)}),
	}
	for name, b := range bad {
		_, err := p.FilterBatch(ctx, b)
		if code := sdktest.Code(err); code != sdk.CodeBadInput {
			t.Errorf("%s: %v (code %d), want %d", name, err, code, sdk.CodeBadInput)
		}
	}
	rej := sdktest.EncodeBatch([][]byte{ok, []byte(`{"type":"custom","projectId":"p","sessionId":"s","visitorId":"v","ts":2,"name":"custom-reject"}`)})
	if _, err := p.FilterBatch(ctx, rej); sdktest.Code(err) != sdk.CodeRejected {
		t.Errorf("reject: %v", err)
	}
	// the SDK itself survives its error paths (the host would discard the
	// instance anyway)
	res, err := p.Filter(ctx, [][]byte{ok})
	if err != nil || len(res) != 1 || res[0].Op != sdktest.OpKeep {
		t.Errorf("after errors: %v %v", res, err)
	}
	// an empty batch
	if res, err := p.Filter(ctx, nil); err != nil || len(res) != 0 {
		t.Errorf("empty batch: %v %v", res, err)
	}
}

func TestWasmInitRefused(t *testing.T) {
	_, err := module(t).Instantiate(context.Background(), []byte(`{"fail":true}`))
	if code := sdktest.Code(err); code != sdk.CodeFailure {
		t.Errorf("refused config: %v (code %d)", err, code)
	}
	_, err = module(t).Instantiate(context.Background(), []byte(`{not json`))
	if code := sdktest.Code(err); code != sdk.CodeFailure {
		t.Errorf("malformed config: %v (code %d)", err, code)
	}
}

func TestWasmMemoryStaysBounded(t *testing.T) {
	paths := fixtureFiles(t)
	p := instantiate(t, testConfig)
	events, err := sdktest.LoadFixture(paths[len(paths)-1])
	if err != nil {
		t.Fatal(err)
	}
	batch := sdktest.EncodeBatch(events)
	ctx := context.Background()
	var sizes []uint32
	for i := range 300 {
		if _, err := p.FilterBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			sizes = append(sizes, p.MemoryBytes())
		}
	}
	t.Logf("linear memory after 100/200/300 batches: %v bytes", sizes)
	if sizes[2] > sizes[0] {
		t.Errorf("memory keeps growing: %v", sizes)
	}
	if sizes[2] > 16<<20 {
		t.Errorf("memory %d bytes", sizes[2])
	}
}

func TestWasmOutputMatchesNative(t *testing.T) {
	// the same edits made natively through ParseEvent give the same bytes
	p := instantiate(t, `{"redact":["color"]}`)
	ev := []byte(`{"type":"custom","projectId":"p","sessionId":"s","visitorId":"v","ts":5,"name":"color_selected","props":{"color":"pearl \"white\"\n","price":1.5}}`)
	res, err := p.Filter(context.Background(), [][]byte{ev})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := sdk.ParseEvent(ev)
	if err := e.SetString([]string{"props", "color"}, "[redacted]"); err != nil {
		t.Fatal(err)
	}
	want, _ := e.AppendJSON(nil)
	if res[0].Op != sdktest.OpReplace || !bytes.Equal(res[0].JSON, want) {
		t.Errorf("got %d %s\nwant %s", res[0].Op, res[0].JSON, want)
	}
}

func BenchmarkWasmFilter200(b *testing.B) {
	paths := sdktest.Fixtures(sharedFixtures)
	var path string
	for _, p := range paths {
		if strings.Contains(filepath.Base(p), "batch200_00") {
			path = p
		}
	}
	if path == "" {
		b.Skip("no 200-event sample batch")
	}
	events, err := sdktest.LoadFixture(path)
	if err != nil {
		b.Fatal(err)
	}
	batch := sdktest.EncodeBatch(events)
	for _, bc := range []struct{ name, config string }{
		{"keep-all", `{}`},
		{"edit", testConfig},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := instantiate(b, bc.config)
			ctx := context.Background()
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.FilterBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
