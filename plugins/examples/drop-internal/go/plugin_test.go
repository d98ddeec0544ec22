package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/uptimizr/edge/plugins/sdk/go"
	"github.com/uptimizr/edge/plugins/sdk/go/sdktest"
)

// guest is this directory built for wasip1 by TestMain.
var guest = &sdktest.Guest{Committed: "drop-internal.wasm"}

var sharedFixtures = filepath.Join("..", "..", "..", "..", "testdata", "fixtures")

func TestMain(m *testing.M) { os.Exit(guest.Main(m, "-ldflags=-s -w")) }

func plugin(t testing.TB, config string) *sdktest.Plugin { return guest.Plugin(t, config) }

func ev(typ, session, rest string) []byte {
	s := `{"type":"` + typ + `","projectId":"768d1583-bec1-43a1-b54d-91d04a1a6453","sessionId":"` + session +
		`","visitorId":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","ts":1795892682261,"sdkVersion":"0.5.0","sceneId":"configurator"`
	if rest != "" {
		s += "," + rest
	}
	return []byte(s + "}")
}

const config = `{"hosts":["localhost","127.0.0.1","[::1]",".internal.example.com"]}`

func ops(t *testing.T, p *sdktest.Plugin, events ...[]byte) string {
	t.Helper()
	res, err := p.Filter(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range res {
		if r.Op == sdktest.OpReplace {
			t.Errorf("replacement from a plugin that only drops: %s", r.JSON)
		}
		b.WriteByte("kdr"[r.Op])
	}
	return b.String()
}

func TestDropsInternalURLs(t *testing.T) {
	p := plugin(t, config)
	got := ops(t, p,
		ev("session_start", "s1", `"url":"http://localhost:5173/configurator"`),
		ev("session_start", "s2", `"url":"https://qa.internal.example.com/x"`),
		ev("pointer_click", "s3", `"url":"http://[::1]:8080/","screen":[0.5,0.5]`),
		ev("session_start", "s4", `"url":"http://127.0.0.1/"`),
		ev("session_start", "s5", `"url":"https://shop.example.com/configurator/model-x"`),
		ev("session_start", "s6", `"url":"https://internal.example.com/"`), // the dot form is for subdomains
		ev("session_start", "s7", `"url":"https://shop.example.com/?next=http://localhost/"`),
		ev("camera_sample", "s8", `"position":[1,2,3],"direction":[0,0,1]`), // no url
		ev("session_start", "s9", `"url":"not a url"`),
	)
	if want := "dddd" + "kkkkk"; got != want {
		t.Errorf("ops %s, want %s", got, want)
	}
}

func TestDropSession(t *testing.T) {
	start := ev("session_start", "dev", `"url":"http://localhost:5173/"`)
	later := ev("camera_sample", "dev", `"position":[1,2,3],"direction":[0,0,1]`)
	other := ev("camera_sample", "prod", `"position":[1,2,3],"direction":[0,0,1]`)
	// without dropSession only the event with the url goes
	if got := ops(t, plugin(t, config), start, later, other); got != "dkk" {
		t.Errorf("without dropSession: %s", got)
	}
	p := plugin(t, `{"hosts":["localhost"],"dropSession":true}`)
	if got := ops(t, p, start, later, other); got != "ddk" {
		t.Errorf("with dropSession: %s", got)
	}
	// a later batch to the same instance
	if got := ops(t, p, later, other); got != "dk" {
		t.Errorf("with dropSession, next batch: %s", got)
	}
	// a new instance does not know the session
	if got := ops(t, plugin(t, `{"hosts":["localhost"],"dropSession":true}`), later); got != "k" {
		t.Errorf("new instance: %s", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for cfg, code := range map[string]int64{
		`{}`:                             codeWrongType,
		`{"hosts":"localhost"}`:          codeWrongType,
		`{"hosts":[1]}`:                  codeWrongType,
		`{"hosts":["http://localhost"]}`: codeBadHost,
		`{"hosts":[""]}`:                 codeBadHost,
		`{"hosts":[],"dropSession":1}`:   codeWrongType,
		`{"hosts":[],"host":[]}`:         codeUnknownOption,
	} {
		_, err := guest.Module(t).Instantiate(context.Background(), []byte(cfg))
		if sdktest.Code(err) != code {
			t.Errorf("%s: %v, want code %d", cfg, err, code)
		}
	}
}

func TestFixtures(t *testing.T) {
	paths := sdktest.Fixtures(sharedFixtures)
	if len(paths) == 0 {
		t.Fatalf("no sample batches in %s", sharedFixtures)
	}
	for _, c := range []struct {
		config  string
		dropped func(e *sdk.Event) bool
	}{
		// the samples' apps are on public hosts: nothing is internal
		{config, func(*sdk.Event) bool { return false }},
		// listing a host drops the events that carry a url on it (the
		// session starts of the apps there), and only those
		{`{"hosts":["shop.example.com"]}`, func(e *sdk.Event) bool { return eventHost(e) == "shop.example.com" }},
		{`{"hosts":[".example.com"]}`, func(e *sdk.Event) bool { return strings.HasSuffix(eventHost(e), ".example.com") }},
	} {
		p := plugin(t, c.config)
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
			for i, r := range res {
				e, _ := sdk.ParseEvent(events[i])
				want := byte(sdktest.OpKeep)
				if c.dropped(e) {
					want = sdktest.OpDrop
				}
				if r.Op != want {
					t.Errorf("%s %s event %d (%s): op %d, want %d", c.config, filepath.Base(path), i, e.Type(), r.Op, want)
				}
			}
		}
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
	p := plugin(b, `{"hosts":["localhost",".internal.example.com"],"dropSession":true}`)
	batch := sdktest.EncodeBatch(events)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.FilterBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// eventHost is the host of an event's url field ("" without one).
func eventHost(e *sdk.Event) string {
	v, ok := e.Get("url")
	if !ok {
		return ""
	}
	u, err := url.Parse(v.String())
	if err != nil {
		return ""
	}
	return u.Hostname()
}
