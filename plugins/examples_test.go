package plugins

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

// batchOf validates raw events into a canonical batch, as the edge does.
func batchOf(t testing.TB, events ...string) *core.Batch {
	t.Helper()
	info := &core.RequestInfo{ProjectID: "proj", Channels: core.AllChannels(), Browser: "chrome", OS: "macos"}
	copy(info.VisitorID[:], "0123456789abcdef0123456789abcdef")
	b := &core.Batch{ProjectID: "proj", ProjectNum: 7, Info: info}
	var proc core.Processor
	var p fastjson.Parser
	proc.Begin(b, info)
	for _, e := range events {
		v, err := p.Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		if out, _, r := proc.Add(jsonvalue.Wrap(v)); out != core.Accepted {
			t.Fatalf("event rejected: %v", r)
		}
	}
	return b
}

// piiRedactAS runs the committed AssemblyScript pii-redact example as a
// plugin of a new test host (closed when the test ends).
func piiRedactAS(t *testing.T) *Plugin {
	t.Helper()
	wasm, err := os.ReadFile("examples/pii-redact/pii-redact.wasm")
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHost(t, Options{})
	mod, err := h.Compile(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.NewPlugin(context.Background(), "pii-redact", 1, mod, nil, PolicyQuarantine)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestPIIRedactAssemblyScriptUnderTheHost runs the committed AssemblyScript
// example through the host: planted PII is redacted, clean events pass
// untouched, and the output re-validates.
func TestPIIRedactAssemblyScriptUnderTheHost(t *testing.T) {
	p := piiRedactAS(t)
	f := NewFilter(testStore(t).Quarantine(), nil)
	f.SetChain(7, &Chain{Plugins: []*Plugin{p}})
	head := `"projectId":"proj","sessionId":"s1","sdkVersion":"0.5.0"`
	b := batchOf(t,
		`{"type":"custom",`+head+`,"ts":1,"name":"contact","props":{"email":"jane.doe@example.com","card":"4111 1111 1111 1111","note":"call +1 415 555 0100","n":3}}`,
		`{"type":"runtime_error",`+head+`,"ts":2,"kind":"error","message":"GET failed from 203.0.113.7 with Bearer Zq9Xw8Vu7Ts6","stack":"at x"}`,
		`{"type":"camera_sample",`+head+`,"ts":3,"position":[1,2,3],"direction":[0,0,1]}`,
	)
	clean := string(b.JSON(2))
	if err := f.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 3 || b.Quarantined != 0 {
		t.Fatalf("%d events, %d quarantined", len(b.Events), b.Quarantined)
	}
	for _, leak := range []string{"jane.doe@example.com", "4111 1111 1111 1111", "415 555 0100", "203.0.113.7", "Zq9Xw8Vu7Ts6"} {
		for i := range b.Events {
			if bytes.Contains(b.JSON(i), []byte(leak)) {
				t.Errorf("%q survived: %s", leak, b.JSON(i))
			}
		}
	}
	if !bytes.Contains(b.JSON(0), []byte(`"n":3`)) || string(b.JSON(2)) != clean {
		t.Fatalf("redaction touched what it should not: %s / %s", b.JSON(0), b.JSON(2))
	}
	t.Logf("%s\n%s", b.JSON(0), b.JSON(1))
}

// TestExampleModulesPassTheUploadChecks uploads every committed example
// module through the manager: each compiles, initialises and passes the
// self-test, and then filters a fixture batch without failing.
func TestExampleModulesPassTheUploadChecks(t *testing.T) {
	h := newTestHost(t, Options{})
	db := testStore(t)
	m := NewManager(h, db.Plugins(), NewFilter(db.Quarantine(), nil), nil)
	for name, c := range map[string]struct{ file, config string }{
		"pii-redact-as": {"examples/pii-redact/pii-redact.wasm", ""},
		"pii-redact-go": {"examples/pii-redact/go/pii-redact.wasm", ""},
		"schema-guard":  {"examples/schema-guard/go/schema-guard.wasm", `{"requiredCustomNames":["share_clicked"],"propAllowList":["color","step"]}`},
		"drop-internal": {"examples/drop-internal/go/drop-internal.wasm", `{"hosts":[".internal.example.com"]}`},
	} {
		wasm, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Upload(context.Background(), 7, "proj", name, wasm, []byte(c.config), ""); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	b := fixtureBatch(t, "batch200_00.json")
	if err := m.Filter().Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if b.Quarantined != 0 || len(b.Events) == 0 {
		t.Fatalf("the example chain failed: %d events, %d quarantined", len(b.Events), b.Quarantined)
	}
	for i := range b.Events {
		if b.Events[i].Type == core.TypeCustom && !bytes.Contains(b.JSON(i), []byte(`"name":"share_clicked"`)) {
			t.Fatalf("schema-guard kept a custom event it should drop: %s", b.JSON(i))
		}
	}
	t.Logf("chain of %d plugins: %d of 200 events kept, %d filtered", len(m.Filter().Chain(7).Plugins), len(b.Events), b.Filtered)
}
