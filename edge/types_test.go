package edge_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/uptimizr/edge/core"
)

// typeCase is, for one event type, a minimal valid payload and payloads that
// each break one bound of the catalog. They go through the real server.
type typeCase struct {
	typ     string
	valid   string
	invalid []string
}

var typeCases = []typeCase{
	{"session_start", `,"connector":{"name":"babylon"},"device":{"engine":"webgpu","isMobile":false}`,
		[]string{`,"connector":{"version":"1"}`, `,"device":{"engine":"vulkan"}`, `,"scene":{"meshCount":-1}`, `,"scene":{"cameraType":"orbit"}`,
			`,"user":{"id":"` + strings.Repeat("u", 129) + `"}`, `,"scene":{"description":"` + strings.Repeat("d", 257) + `"}`}},
	{"session_end", `,"durationMs":0,"reason":"unload"`, []string{`,"durationMs":-1`, `,"reason":"crash"`}},
	{"frame_perf", `,"fps":59.9`, []string{`,"fps":-0.5`, `,"longFrames":1.5`, `,"dpr":0,"fps":60`, `,"fps":1e999`, ``}},
	{"camera_sample", `,"position":[0,1,2],"direction":[0,0,-1]`,
		[]string{`,"position":[0,1],"direction":[0,0,-1]`, `,"position":[0,1,2],"direction":[0,0,-1],"aspect":0`, `,"position":[0,1,2]`, `,"position":[0,1,2],"direction":[0,0,-1],"near":-1`}},
	{"node_transform", `,"nodeId":"n","position":[0,0,0],"rotation":[0,0,0,1]`,
		[]string{`,"nodeId":"","position":[0,0,0],"rotation":[0,0,0,1]`, `,"nodeId":"n","position":[0,0,0],"rotation":[0,0,1]`, `,"nodeId":"n","position":[0,0,0],"rotation":[0,0,0,1],"childPath":""`}},
	{"pointer_move", `,"screen":[0.5,0.5]`, []string{`,"screen":[1.5,0.5]`, `,"source":"joystick"`, `,"sourceId":""`, `,"ray":{"origin":[0,0,0]}`}},
	{"pointer_click", `,"button":0`, []string{`,"button":-1`, `,"button":0.5`, `,"handedness":"both"`}},
	{"pointer_down", `,"button":2`, []string{`,"screen":[0,-0.1]`}},
	{"pointer_up", `,"button":1`, []string{`,"hitPoint":[0,0]`}},
	{"camera_gesture", `,"kind":"orbit","durationMs":10`, []string{`,"kind":"spin","durationMs":10`, `,"kind":"zoom"`, `,"kind":"zoom","durationMs":1,"zoomRatio":0`}},
	{"mesh_interaction", `,"mesh":"door","kind":"pick"`, []string{`,"mesh":"","kind":"pick"`, `,"mesh":"door","kind":"poke"`, `,"mesh":"` + strings.Repeat("m", 257) + `","kind":"pick"`}},
	{"mesh_visibility", `,"mesh":"door","visibleMs":5`, []string{`,"mesh":"door","visibleMs":5,"maxScreenFraction":1.01`, `,"mesh":"door","visibleMs":5,"bounds":[0,0,0,1,1]`, `,"mesh":"door"`}},
	{"hover_dwell", `,"mesh":"door","dwellMs":1`, []string{`,"mesh":"door","dwellMs":-1`, `,"dwellMs":1`}},
	{"compile_stall", `,"durationMs":3`, []string{`,"durationMs":3,"phase":"link"`, `,"phase":"shader"`}},
	{"resource_sample", `,"triangles":10`, []string{`,"triangles":10.5`, `,"textureBytes":-1`}},
	{"capability_change", `,"kind":"quality"`, []string{`,"kind":"speed"`, `,"kind":"other","reason":"` + strings.Repeat("r", 121) + `"`}},
	{"asset_load", `,"name":"car.glb","loadMs":12`, []string{`,"name":"car.glb"`, `,"name":"` + strings.Repeat("n", 1025) + `","loadMs":1`, `,"name":"a","loadMs":1,"bytes":-5`}},
	{"scene_change", ``, []string{`,"sceneId":"bad scene"`, `,"sceneId":"` + strings.Repeat("s", 65) + `"`}},
	{"viewport_resize", `,"width":800,"height":600`, []string{`,"width":0,"height":600`, `,"width":800`}},
	{"visibility_change", `,"state":"hidden"`, []string{`,"state":"gone"`, ``}},
	{"focus_change", `,"focused":false`, []string{`,"focused":"no"`, ``}},
	{"context_lost", ``, []string{`,"reason":"` + strings.Repeat("r", 513) + `"`}},
	{"context_restored", ``, []string{`,"ts":-1`}},
	{"graphics_diagnostic", `,"severity":"warning","category":"validation"`, []string{`,"severity":"panic","category":"validation"`, `,"severity":"info","category":"validation","count":0`, `,"severity":"info"`}},
	{"runtime_error", `,"kind":"error","message":"boom"`, []string{`,"kind":"warning","message":"x"`, `,"kind":"error"`, `,"kind":"error","message":"x","lineno":-1`, `,"kind":"error","message":"x","stack":"` + strings.Repeat("s", 4097) + `"`}},
	{"input_action", `,"action":"jump"`, []string{`,"action":""`, `,"action":"jump","pressed":1`}},
	{"custom", `,"name":"signup","props":{"plan":"pro","n":1,"ok":true,"x":null}`,
		[]string{`,"name":""`, `,"name":"x","props":{"nested":{"a":1}}`, `,"name":"x","props":{"s":"` + strings.Repeat("p", 1025) + `"}`}},
}

func TestEveryEventTypeThroughTheServer(t *testing.T) {
	if len(typeCases) != int(core.NumEventTypes)-1 {
		t.Fatalf("%d type cases for %d types", len(typeCases), core.NumEventTypes-1)
	}
	h := newHarness(t, nil)
	h.do("PUT", "/api/v1/channels", []byte(`{"meshPicks":true,"meshVisibility":true,"boundingBox":true,"hoverDwell":true,"resourceSample":true,"gaze":true,"captureErrors":true}`), map[string]string{"x-api-key": h.a.Admin})
	seen := map[string]bool{}
	for _, c := range typeCases {
		seen[c.typ] = true
		t.Run(c.typ, func(t *testing.T) {
			events := []string{validEvent(c.typ, c.valid)}
			for _, inv := range c.invalid {
				if strings.HasPrefix(inv, `,"ts":`) {
					events = append(events, `{"type":"`+c.typ+`","projectId":"a","sessionId":"s1","sdkVersion":"0.5.0"`+inv+`}`)
					continue
				}
				events = append(events, validEvent(c.typ, inv))
			}
			r := h.collect(h.a.Ingest, batchOf(events...), nil)
			var res struct {
				Accepted, Rejected int
				Errors             []struct {
					Index  int
					Reason string
				}
			}
			if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if res.Accepted != 1 || res.Rejected != len(c.invalid) {
				t.Fatalf("accepted %d rejected %d, want 1 and %d: %s", res.Accepted, res.Rejected, len(c.invalid), r.body)
			}
			for i, e := range res.Errors {
				if e.Index != i+1 || e.Reason == "" {
					t.Fatalf("error %d: %+v", i, e)
				}
			}
		})
	}
	for ty := core.TypeSessionStart; ty < core.NumEventTypes; ty++ {
		if !seen[ty.String()] {
			t.Errorf("no case for %s", ty)
		}
	}
	// Every stored event has the type it was sent as.
	stored := h.storedEvents("a")
	if len(stored) != len(typeCases) {
		t.Fatalf("stored %d, want %d", len(stored), len(typeCases))
	}
	for i, e := range stored {
		if e.Type.String() != typeCases[i].typ || e.JSON["type"] != typeCases[i].typ {
			t.Fatalf("stored #%d is %v / %v, want %s", i, e.Type, e.JSON["type"], typeCases[i].typ)
		}
	}
}
