package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/uptimizr/edge/plugins/sdk/go"
	"github.com/uptimizr/edge/plugins/sdk/go/sdktest"
)

// guest is this directory built for wasip1 by TestMain.
var guest = &sdktest.Guest{Committed: "schema-guard.wasm"}

var sharedFixtures = filepath.Join("..", "..", "..", "..", "testdata", "fixtures")

func TestMain(m *testing.M) { os.Exit(guest.Main(m, "-ldflags=-s -w")) }

func plugin(t testing.TB, config string) *sdktest.Plugin { return guest.Plugin(t, config) }

const envelope = `"projectId":"768d1583-bec1-43a1-b54d-91d04a1a6453","sessionId":"b7a676a5dd97b8a985050fff417dc9f1","visitorId":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","ts":1795892682261,"sdkVersion":"0.5.0","sceneId":"configurator"`

func ev(typ, rest string) []byte {
	return []byte(`{"type":"` + typ + `",` + envelope + "," + rest + "}")
}

const fullConfig = `{"requiredCustomNames":["color_selected","add_to_cart"],"propAllowList":["color","price"],"userIdMustBeHashed":true}`

var hashed = strings.Repeat("0123456789abcdef", 4) // 64 hex digits

func TestRules(t *testing.T) {
	p := plugin(t, fullConfig)
	events := [][]byte{
		/* 0 */ ev("custom", `"name":"color_selected","props":{"color":"red","price":1.5}`), // all allowed
		/* 1 */ ev("custom", `"name":"debug_dump","props":{"color":"red"}`), // name not listed
		/* 2 */ ev("custom", `"name":"add_to_cart","props":{"color":"red","email":"x","price":2,"inCart":true}`),
		/* 3 */ ev("custom", `"name":"add_to_cart","props":{"email":"x","inCart":true}`), // every prop goes
		/* 4 */ ev("custom", `"name":"add_to_cart"`), // no props
		/* 5 */ ev("session_start", `"user":{"id":"`+hashed+`","traits":{"plan":"pro"}}`),
		/* 6 */ ev("session_start", `"user":{"id":"jane@example.com","traits":{"plan":"pro"}}`),
		/* 7 */ ev("session_start", `"user":{"id":"`+strings.ToUpper(hashed)+`"}`),
		/* 8 */ ev("session_start", `"user":{"id":"`+hashed[:31]+`"}`),
		/* 9 */ ev("session_start", `"user":{"id":"`+strings.Repeat("a", 128)+`"}`),
		/* 10 */ ev("session_start", `"user":{"id":"`+strings.Repeat("a", 129)+`"}`),
		/* 11 */ ev("session_start", `"device":{"engine":"webgl2"}`), // no user
		/* 12 */ ev("camera_sample", `"name":"debug_dump","props":{"email":"x"}`), // rules are for custom events only
		/* 13 */ ev("session_start", `"user":{"traits":{"id":"not-hashed"}}`), // traits.id is not user.id
	}
	res, err := p.Filter(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		op     byte
		member string // the member to check in a replacement, and its JSON
		json   string
	}
	wants := []want{
		{sdktest.OpKeep, "", ""},
		{sdktest.OpDrop, "", ""},
		{sdktest.OpReplace, "props", `{"color":"red","price":2}`},
		{sdktest.OpReplace, "props", `{}`},
		{sdktest.OpKeep, "", ""},
		{sdktest.OpKeep, "", ""},
		{sdktest.OpReplace, "user", `{"traits":{"plan":"pro"}}`},
		{sdktest.OpReplace, "user", `{}`},
		{sdktest.OpReplace, "user", `{}`},
		{sdktest.OpKeep, "", ""},
		{sdktest.OpReplace, "user", `{}`},
		{sdktest.OpKeep, "", ""},
		{sdktest.OpKeep, "", ""},
		{sdktest.OpKeep, "", ""},
	}
	for i, w := range wants {
		r := res[i]
		if r.Op != w.op {
			t.Errorf("event %d: op %d, want %d (%s)", i, r.Op, w.op, r.JSON)
			continue
		}
		if r.Op != sdktest.OpReplace {
			continue
		}
		var got, orig map[string]json.RawMessage
		if err := json.Unmarshal(r.JSON, &got); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		json.Unmarshal(events[i], &orig)
		for k, v := range orig {
			exp := string(v)
			if k == w.member {
				exp = w.json
			}
			if string(got[k]) != exp {
				t.Errorf("event %d member %s = %s, want %s", i, k, got[k], exp)
			}
		}
	}
}

func TestDropUnhashedAndReject(t *testing.T) {
	unhashed := ev("session_start", `"user":{"id":"jane"}`)
	res, err := plugin(t, `{"userIdMustBeHashed":true,"unhashedUserId":"drop"}`).Filter(context.Background(), [][]byte{unhashed})
	if err != nil || res[0].Op != sdktest.OpDrop {
		t.Errorf("drop: %v %v", res, err)
	}
	// rules off: everything is kept
	res, err = plugin(t, `{}`).Filter(context.Background(), [][]byte{unhashed, ev("custom", `"name":"x","props":{"a":1}`)})
	if err != nil || res[0].Op != sdktest.OpKeep || res[1].Op != sdktest.OpKeep {
		t.Errorf("no rules: %v %v", res, err)
	}
	// rejectBatch turns any violation into a failed batch
	p := plugin(t, `{"requiredCustomNames":["a"],"propAllowList":["x"],"userIdMustBeHashed":true,"rejectBatch":true}`)
	good := ev("custom", `"name":"a","props":{"x":1}`)
	for name, bad := range map[string][]byte{
		"name":    ev("custom", `"name":"b"`),
		"prop":    ev("custom", `"name":"a","props":{"y":1}`),
		"user id": unhashed,
	} {
		if _, err := p.Filter(context.Background(), [][]byte{good, bad}); sdktest.Code(err) != sdk.CodeRejected {
			t.Errorf("%s: %v, want code %d", name, err, sdk.CodeRejected)
		}
	}
	if res, err := p.Filter(context.Background(), [][]byte{good}); err != nil || res[0].Op != sdktest.OpKeep {
		t.Errorf("clean batch: %v %v", res, err)
	}
	// an empty name list drops every custom event
	res, err = plugin(t, `{"requiredCustomNames":[]}`).Filter(context.Background(), [][]byte{good})
	if err != nil || res[0].Op != sdktest.OpDrop {
		t.Errorf("empty list: %v %v", res, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for config, code := range map[string]int64{
		`{"requiredCustomNames":"a"}`:   codeWrongType,
		`{"propAllowList":[1]}`:         codeWrongType,
		`{"userIdMustBeHashed":"yes"}`:  codeWrongType,
		`{"unhashedUserId":"delete"}`:   codeBadValue,
		`{"requiredCustomName":["a"]}`:  codeUnknownOption,
		`[]`:                            codeWrongType,
		`{"rejectBatch":true,"x":null}`: codeUnknownOption,
	} {
		_, err := guest.Module(t).Instantiate(context.Background(), []byte(config))
		if sdktest.Code(err) != code {
			t.Errorf("%s: %v, want code %d", config, err, code)
		}
	}
	if _, err := guest.Module(t).Instantiate(context.Background(), []byte(`{"requiredCustomNames":null,"unhashedUserId":"remove"}`)); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestFixtures(t *testing.T) {
	paths := sdktest.Fixtures(sharedFixtures)
	if len(paths) == 0 {
		t.Fatalf("no sample batches in %s", sharedFixtures)
	}
	p := plugin(t, `{"requiredCustomNames":["color_selected","add_to_cart","tour_step"],"propAllowList":["color","price","step"]}`)
	for _, path := range paths {
		events, err := sdktest.LoadFixture(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Filter(context.Background(), events)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(events) {
			t.Fatalf("%d results for %d events", len(res), len(events))
		}
		ops := map[byte]int{}
		for i, r := range res {
			ops[r.Op]++
			e, _ := sdk.ParseEvent(events[i])
			name, _ := e.Get("name")
			_, hasInCart := e.Get("props", "inCart")
			want := byte(sdktest.OpKeep)
			switch {
			case e.Type() != "custom":
			case !name.Is("color_selected") && !name.Is("add_to_cart") && !name.Is("tour_step"):
				want = sdktest.OpDrop
			case hasInCart:
				want = sdktest.OpReplace
			}
			if r.Op != want {
				t.Errorf("%s event %d (%s %s): op %d, want %d", filepath.Base(path), i, e.Type(), name, r.Op, want)
			}
			if r.Op == sdktest.OpReplace && (strings.Contains(string(r.JSON), "inCart") || !json.Valid(r.JSON)) {
				t.Errorf("inCart kept or invalid JSON: %s", r.JSON)
			}
		}
		t.Logf("%s: keep %d, drop %d, replace %d", filepath.Base(path), ops[0], ops[1], ops[2])
	}
}

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
	p := plugin(b, fullConfig)
	batch := sdktest.EncodeBatch(events)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.FilterBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
