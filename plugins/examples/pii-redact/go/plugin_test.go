package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	sdk "github.com/uptimizr/edge/plugins/sdk/go"
	"github.com/uptimizr/edge/plugins/sdk/go/sdktest"
)

// committedWasm is the built plugin kept next to the source.
// guest is this directory built for wasip1 by TestMain.
var guest = &sdktest.Guest{Committed: "pii-redact.wasm"}

// sharedFixtures holds the sample batches, relative to this directory.
var sharedFixtures = filepath.Join("..", "..", "..", "..", "testdata", "fixtures")

func TestMain(m *testing.M) { os.Exit(guest.Main(m, "-ldflags=-s -w")) }

var ()

func plugin(t testing.TB, config string) *sdktest.Plugin { return guest.Plugin(t, config) }

const envelope = `"projectId":"768d1583-bec1-43a1-b54d-91d04a1a6453","sessionId":"b7a676a5dd97b8a985050fff417dc9f1","visitorId":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","ts":1795892682261,"sdkVersion":"0.5.0","sceneId":"configurator"`

func ev(typ, rest string) []byte {
	s := `{"type":"` + typ + `",` + envelope
	if rest != "" {
		s += "," + rest
	}
	return []byte(s + "}")
}

// decode parses an event into a map of raw members.
func decode(t testing.TB, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return m
}

func TestPluginRedactsFreeText(t *testing.T) {
	p := plugin(t, `{}`)
	events := [][]byte{
		ev("session_start", `"url":"https://shop.example.com/p?access_token=abc123&ref=mail","pageMeta":{"title":"Order for jane@example.com","referrer":"http://10.1.2.3/intranet","viewport":[1920,1080]},"device":{"engine":"webgl2","renderer":"ANGLE (NVIDIA 4111 1111 1111 1111)"},"user":{"id":"u-42","traits":{"phone":"+44 20 7946 0958","plan":"pro","age":41,"vip":true,"note":null}}`),
		ev("custom", `"name":"checkout","props":{"email":"Jane.Doe@Example.com","card":"4111-1111-1111-1111","step":3,"color":"red"}`),
		ev("runtime_error", `"kind":"error","message":"fetch failed: Authorization: Bearer abc123.def-456_ghi","source":"https://x.io/app.js?key=k1","lineno":1,"colno":2,"stack":"Error\n    at f (https://x.io/app.js?sid=s9:1:2)\n    at 192.168.0.7"`),
		ev("asset_load", `"name":"https://cdn.example.com/car.glb?token=s3cr3t","loadMs":12.5`),
		ev("graphics_diagnostic", `"severity":"error","category":"validation","message":"key AKIAIOSFODNN7EXAMPLE leaked"`),
		ev("context_lost", `"reason":"user jane@example.com closed the tab"`),
		// nothing to redact
		ev("camera_sample", `"position":[1,2,3],"direction":[0,0,1]`),
		ev("custom", `"name":"color_selected","props":{"color":"pearl-white","price":25069.81}`),
		ev("session_start", `"url":"https://shop.example.com/configurator/model-x","pageMeta":{"title":"Configure your car"}`),
		// a field that is not free text keeps its PII-like content
		ev("mesh_interaction", `"mesh":"jane@example.com","kind":"pick"`),
	}
	res, err := p.Filter(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{"url": `"https://shop.example.com/p?access_token=[redacted]&ref=mail"`,
			"pageMeta": `{"title":"Order for [email]","referrer":"http://[ip]/intranet","viewport":[1920,1080]}`,
			"user":     `{"id":"u-42","traits":{"phone":"[phone]","plan":"pro","age":41,"vip":true,"note":null}}`},
		{"props": `{"email":"[email]","card":"[card]","step":3,"color":"red"}`},
		{"message": `"fetch failed: Authorization: Bearer [token]"`, "source": `"https://x.io/app.js?key=[redacted]"`,
			"stack": `"Error\n    at f (https://x.io/app.js?sid=[redacted]\n    at [ip]"`}, // a value runs to & # ; space quote < >
		{"name": `"https://cdn.example.com/car.glb?token=[redacted]"`},
		{"message": `"key [secret] leaked"`},
		{"reason": `"user [email] closed the tab"`},
	}
	for i, r := range res {
		if i >= len(want) {
			if r.Op != sdktest.OpKeep {
				t.Errorf("event %d: op %d, want keep; %s", i, r.Op, r.JSON)
			}
			continue
		}
		if r.Op != sdktest.OpReplace {
			t.Errorf("event %d: op %d, want replace", i, r.Op)
			continue
		}
		got, orig := decode(t, r.JSON), decode(t, events[i])
		for k, v := range orig {
			w, changed := want[i][k]
			if !changed {
				w = string(v)
			}
			if string(got[k]) != w {
				t.Errorf("event %d member %s:\n got %s\nwant %s", i, k, got[k], w)
			}
		}
		if len(got) != len(orig) {
			t.Errorf("event %d: %d members, had %d", i, len(got), len(orig))
		}
	}
	// untouched members keep their bytes: the replacement differs from the
	// original only inside the redacted values
	if !bytes.HasPrefix(res[1].JSON, events[1][:bytes.Index(events[1], []byte(`"props"`))]) {
		t.Errorf("prefix not preserved: %s", res[1].JSON)
	}
}

func utf16Len(s string) int { return len(utf16.Encode([]rune(s))) }

func TestPluginKeepsLengthLimits(t *testing.T) {
	p := plugin(t, `{}`)
	// a 512-unit title ending in an address: the marker is one longer
	title := strings.Repeat("é", 506) + "a@b.co"
	events := [][]byte{ev("session_start", `"pageMeta":{"title":"`+title+`"}`)}
	res, err := p.Filter(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ PageMeta struct{ Title string } }
	if err := json.Unmarshal(res[0].JSON, &out); err != nil {
		t.Fatal(err)
	}
	if n := utf16Len(out.PageMeta.Title); n != 512 || !strings.HasSuffix(out.PageMeta.Title, "[email") {
		t.Errorf("title of %d units: ...%q", n, out.PageMeta.Title[len(out.PageMeta.Title)-12:])
	}
}

func TestPluginConfig(t *testing.T) {
	p := plugin(t, `{"redactEmails":false,"extraDenyParams":["utm_source"]}`)
	res, err := p.Filter(context.Background(), [][]byte{
		ev("custom", `"name":"n","props":{"a":"jane@example.com","b":"https://x.io/?utm_source=news&token=1"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(decode(t, res[0].JSON)["props"]); got != `{"a":"jane@example.com","b":"https://x.io/?utm_source=[redacted]&token=[redacted]"}` {
		t.Errorf("props = %s", got)
	}
	for config, code := range map[string]int64{`{"redactAll":true}`: codeUnknownOption, `{"redactIPs":1}`: codeWrongType, `{"denyParams":["a b"]}`: codeBadParamName} {
		_, err := guest.Module(t).Instantiate(context.Background(), []byte(config))
		if sdktest.Code(err) != code {
			t.Errorf("%s: %v, want code %d", config, err, code)
		}
	}
}

// The plugin as built for wasm answers exactly what its handler answers
// natively, on the sample batches and on a copy of them with PII added.
func TestPluginMatchesNativeOnFixtures(t *testing.T) {
	paths := sdktest.Fixtures(sharedFixtures)
	if len(paths) == 0 {
		t.Fatalf("no sample batches in %s", sharedFixtures)
	}
	p := plugin(t, `{}`)
	for _, path := range paths {
		events, err := sdktest.LoadFixture(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, tainted := range []bool{false, true} {
			batch := events
			if tainted {
				batch = taint(t, events)
			}
			res, err := p.Filter(context.Background(), batch)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(batch) {
				t.Fatalf("%d results for %d events", len(res), len(batch))
			}
			replaced, taintable := 0, 0
			for i, r := range res {
				e, err := sdk.ParseEvent(batch[i])
				if err != nil {
					t.Fatal(err)
				}
				if typ := e.Type(); typ == "session_start" || typ == "custom" {
					taintable++
				}
				filter(e)
				wantOp := byte(sdktest.OpKeep)
				var wantJSON []byte
				if e.Edited() {
					wantOp = sdktest.OpReplace
					wantJSON, _ = e.AppendJSON(nil)
				}
				if r.Op != wantOp || !bytes.Equal(r.JSON, wantJSON) {
					t.Fatalf("%s event %d: wasm %d %s, native %d %s", filepath.Base(path), i, r.Op, r.JSON, wantOp, wantJSON)
				}
				if r.Op == sdktest.OpReplace {
					replaced++
					if bytes.Contains(r.JSON, []byte("jane.doe")) || !json.Valid(r.JSON) {
						t.Errorf("not redacted or invalid: %s", r.JSON)
					}
				}
			}
			if !tainted && replaced != 0 {
				t.Errorf("%s: %d clean events replaced", filepath.Base(path), replaced)
			}
			if tainted && replaced != taintable {
				t.Errorf("%s: %d events redacted in the tainted copy, want %d", filepath.Base(path), replaced, taintable)
			}
		}
	}
}

// taint returns a copy of events with PII put into the free-text fields.
func taint(t testing.TB, events [][]byte) [][]byte {
	out := make([][]byte, len(events))
	for i, b := range events {
		e, err := sdk.ParseEvent(b)
		if err != nil {
			t.Fatal(err)
		}
		switch e.Type() {
		case "session_start":
			e.SetString([]string{"url"}, "https://shop.example.com/configurator/model-x?email=jane.doe%40example.com&session=abc")
			e.SetString([]string{"pageMeta", "referrer"}, "https://mail.example.com/?u=jane.doe@example.com")
		case "custom":
			e.SetString([]string{"props", "color"}, "jane.doe@example.com, +1 (555) 123-4567")
		}
		out[i], _ = e.AppendJSON(nil)
	}
	return out
}

// The committed pii-redact.wasm is what this source builds to (with the
// same Go release: the toolchain is part of the output).
func TestCommittedWasmIsCurrent(t *testing.T) {
	guest.CheckCommitted(t)
}

func BenchmarkPlugin200(b *testing.B) {
	var path string
	for _, p := range sdktest.Fixtures(sharedFixtures) {
		if strings.Contains(p, "batch200_00") {
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
	for _, bc := range []struct {
		name   string
		events [][]byte
	}{{"clean", events}, {"tainted", taint(b, events)}} {
		b.Run(bc.name, func(b *testing.B) {
			p := plugin(b, `{}`)
			batch := sdktest.EncodeBatch(bc.events)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.FilterBatch(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
