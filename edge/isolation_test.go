package edge_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// TestTenantIsolationProperty gives two projects random traffic with the
// same session ids and scene names (only mesh names and custom props carry
// the project's mark), then asks every read endpoint of each project, with
// every filter, and checks that no answer holds anything of the other.
func TestTenantIsolationProperty(t *testing.T) {
	h := newReadHarness(t, nil)
	allOn := []byte(`{"meshVisibility":true,"boundingBox":true,"hoverDwell":true,"resourceSample":true,"gaze":true,"captureErrors":true}`)
	h.do("PUT", "/api/v1/channels", allOn, map[string]string{"x-api-key": h.a.Admin})
	h.do("PUT", "/api/v1/channels", allOn, map[string]string{"x-api-key": h.b.Admin})
	r := rand.New(rand.NewSource(7))
	sessions := []string{"shared-1", "shared-2", "shared-3"}
	scenes := []string{"lobby", "showroom"}
	totals := map[string]int{}
	for round := 0; round < 6; round++ {
		for _, p := range []struct {
			name, key string
		}{{"A", h.a.Ingest}, {"B", h.b.Ingest}} {
			var evs []string
			n := 20 + r.Intn(40)
			for i := 0; i < n; i++ {
				sess, scene := sessions[r.Intn(3)], scenes[r.Intn(2)]
				ts := 1795892750000 + int64(r.Intn(7200000))
				mesh := fmt.Sprintf("%s-mesh-%d", p.name, r.Intn(5))
				head := fmt.Sprintf(`{"projectId":"%s","sessionId":%q,"sceneId":%q,"ts":%d,"sdkVersion":"1"`, strings.ToLower(p.name), sess, scene, ts)
				switch r.Intn(5) {
				case 0:
					evs = append(evs, head+`,"type":"mesh_interaction","kind":"pick","mesh":"`+mesh+`"}`)
				case 1:
					evs = append(evs, head+`,"type":"hover_dwell","dwellMs":5,"mesh":"`+mesh+`"}`)
				case 2:
					evs = append(evs, head+`,"type":"mesh_visibility","visibleMs":5,"mesh":"`+mesh+`"}`)
				case 3:
					evs = append(evs, head+`,"type":"frame_perf","fps":60}`)
				default:
					evs = append(evs, head+`,"type":"session_start","user":{"id":"`+p.name+`-user"},"connector":{"name":"`+p.name+`-sdk"}}`)
				}
			}
			res := h.collect(p.key, batchOf(evs...), nil)
			if num(res.json(t), "accepted") != n {
				t.Fatalf("%s: %s", p.name, res.body)
			}
			totals[p.name] += n
		}
	}
	h.sync()
	endpoints := []string{"event-counts", "timeseries?interval=60", "sessions", "scenes", "meshes/top", "meshes/dwell",
		"hover/dwell", "perf", "perf/resources", "heatmaps/pointer", "heatmaps/gaze", "heatmaps/camera"}
	filters := []string{"", "session=shared-1", "scene=lobby", "session=shared-2&scene=showroom", "projectId=b", "projectId=a"}
	for _, p := range []struct{ name, other, key string }{{"A", "B", h.a.Query}, {"B", "A", h.b.Query}} {
		var counted int64
		for _, ep := range endpoints {
			for _, f := range filters {
				sep := "?"
				if strings.Contains(ep, "?") {
					sep = "&"
				}
				path := "/api/v1/" + ep + sep + f + "&limit=1000"
				res := h.do("GET", path, nil, map[string]string{"x-api-key": p.key})
				if res.status != 200 {
					t.Fatalf("%s %s: %d %s", p.name, path, res.status, res.body)
				}
				if strings.Contains(string(res.body), p.other+"-") {
					t.Errorf("%s's answer to %s holds %s's data: %s", p.name, path, p.other, res.body)
				}
				if ep == "event-counts" && (f == "" || strings.HasPrefix(f, "projectId")) {
					var rows []struct{ Count int64 }
					json.Unmarshal(res.body, &rows)
					var sum int64
					for _, r := range rows {
						sum += r.Count
					}
					if sum != int64(totals[p.name]) {
						t.Errorf("%s %s: %d events, sent %d", p.name, path, sum, totals[p.name])
					}
					counted = sum
				}
			}
		}
		for _, sess := range sessions {
			res := h.do("GET", "/api/v1/sessions/"+sess+"/meta", nil, map[string]string{"x-api-key": p.key})
			if strings.Contains(string(res.body), p.other+"-") {
				t.Errorf("%s's meta of %s holds %s's data: %s", p.name, sess, p.other, res.body)
			}
		}
		if counted == 0 {
			t.Fatalf("%s: nothing counted", p.name)
		}
	}
	// Folded log records are gone: nothing raw outlives aggregation.
	if len(h.storedEvents("a")) == 0 || len(h.storedEvents("b")) == 0 {
		t.Fatal("nothing was committed")
	}
	if n := h.logRecords("a") + h.logRecords("b"); n != 0 {
		t.Fatalf("%d records still in the ingest log after aggregation", n)
	}
}
