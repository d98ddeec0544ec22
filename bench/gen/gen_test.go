package gen

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

const fixtureDir = "../../testdata/fixtures"

// verdict is what the collector's validator made of one body.
type verdict struct {
	types    []core.EventType // of every event, in order
	rejected []string         // "index: reason"
	filtered int
	stripped [core.NumStrips]int
	accepted int
}

// validate runs body through the decoding the edge does for a JSON body
// (fastjson → jsonvalue → core.Processor) under channel settings ch.
func validate(tb testing.TB, body []byte, ch core.Channels) verdict {
	tb.Helper()
	var p fastjson.Parser
	v, err := p.ParseBytes(body)
	if err != nil {
		tb.Fatalf("body is not JSON: %v", err)
	}
	sv := v.Get("schemaVersion")
	if sv == nil {
		tb.Fatal("body has no schemaVersion")
	}
	if b, err := sv.StringBytes(); err != nil || !(string(b) == "1" || bytes.HasPrefix(b, []byte("1."))) {
		tb.Fatalf("schemaVersion %s is not a 1.x string", sv)
	}
	events, err := v.Get("events").Array()
	if err != nil {
		tb.Fatalf("events: %v", err)
	}
	info := core.RequestInfo{ProjectID: "bench", Browser: "chrome", OS: "windows", Channels: ch}
	copy(info.VisitorID[:], "0123456789abcdef0123456789abcdef")
	var batch core.Batch
	var proc core.Processor
	proc.Begin(&batch, &info)
	var out verdict
	for i, ev := range events {
		o, t, reason := proc.Add(jsonvalue.Wrap(ev))
		out.types = append(out.types, t)
		switch o {
		case core.Accepted:
			out.accepted++
		case core.Filtered:
			out.filtered++
		case core.Rejected:
			out.rejected = append(out.rejected, t.String()+" #"+itoa(i)+": "+reason.String()+": "+ev.String())
		}
	}
	out.stripped = proc.Stripped()
	return out
}

func itoa(i int) string { return string(integer(nil, i)) }

func bodies(cfg Config, n int) [][]byte {
	g := New(cfg)
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Next(nil)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	cfg := Config{Seed: 42}
	a, b := bodies(cfg, 50), bodies(cfg, 50)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("body %d differs between two generators with the same seed", i)
		}
	}
	c := bodies(Config{Seed: 43}, 50)
	same := 0
	for i := range a {
		if bytes.Equal(a[i], c[i]) {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("%d of 50 bodies are identical for seeds 42 and 43", same)
	}
}

func TestNextAppends(t *testing.T) {
	g := New(Config{Seed: 1, BatchSize: 10})
	out := g.Next([]byte("prefix"))
	if !bytes.HasPrefix(out, []byte(`prefix{"events":[`)) || !bytes.HasSuffix(out, []byte(`],"schemaVersion":"1.0"}`)) {
		t.Fatalf("Next did not append a body after dst: %.80s…", out)
	}
	if !json.Valid(out[len("prefix"):]) {
		t.Fatal("body is not valid JSON")
	}
}

func TestEveryEventValid(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		g := New(Config{Seed: seed, BatchSize: 200, PIIRate: 0.2})
		var buf []byte
		for i := range 50 {
			buf = g.Next(buf[:0])
			if !json.Valid(buf) {
				t.Fatalf("seed %d body %d is not valid JSON", seed, i)
			}
			v := validate(t, buf, core.AllChannels())
			for j, r := range v.rejected {
				if j == 5 {
					t.Errorf("… %d more", len(v.rejected)-5)
					break
				}
				t.Errorf("seed %d body %d: rejected %s", seed, i, r)
			}
			if v.filtered != 0 || v.stripped != [core.NumStrips]int{} {
				t.Errorf("seed %d body %d: with every channel on, %d filtered, stripped %v", seed, i, v.filtered, v.stripped)
			}
			if v.accepted != 200 {
				t.Errorf("seed %d body %d: %d accepted of 200", seed, i, v.accepted)
			}
			if t.Failed() {
				t.FailNow()
			}
		}
	}
}

// TestValidatorCanReject guards the helper above: the fixtures pass it, and
// a broken event does not.
func TestValidatorCanReject(t *testing.T) {
	fx, err := Fixtures(fixtureDir)
	if err != nil {
		t.Fatal("fixtures not found: " + err.Error())
	}
	for _, b := range fx {
		if v := validate(t, b, core.AllChannels()); len(v.rejected) > 0 || v.filtered > 0 {
			t.Fatalf("a fixture fails validation: %v", v.rejected)
		}
	}
	body := New(Config{Seed: 9, BatchSize: 50}).Next(nil)
	broken := bytes.Replace(body, []byte(`"ts":`), []byte(`"ts":-`), 1)
	if v := validate(t, broken, core.AllChannels()); len(v.rejected) != 1 {
		t.Fatalf("a negative ts gave %d rejections, want 1", len(v.rejected))
	}
	// With default channels the opt-in types are filtered.
	if v := validate(t, New(Config{Seed: 9}).Next(nil), core.DefaultChannels()); v.filtered == 0 {
		t.Fatal("default channels filtered nothing out of a generated body")
	}
}

func TestAllTypesAppear(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 4, 5, 6, 7, 8} {
		var seen [core.NumEventTypes]int
		for _, b := range bodies(Config{Seed: seed, BatchSize: 200}, 20) {
			for _, typ := range validate(t, b, core.AllChannels()).types {
				seen[typ]++
			}
		}
		for typ := core.TypeSessionStart; typ < core.NumEventTypes; typ++ {
			if seen[typ] == 0 {
				t.Errorf("seed %d: no %s in 20 batches of 200", seed, typ)
			}
		}
		if seen[core.TypeInvalid] != 0 {
			t.Errorf("seed %d: %d events of unknown type", seed, seen[core.TypeInvalid])
		}
	}
}

func TestMix(t *testing.T) {
	var n [core.NumEventTypes]int
	total := 0
	for _, b := range bodies(Config{Seed: 7, BatchSize: 200}, 20) {
		for _, typ := range validate(t, b, core.AllChannels()).types {
			n[typ]++
			total++
		}
	}
	share := func(typ core.EventType) float64 { return float64(n[typ]) / float64(total) }
	for _, c := range []struct {
		typ    core.EventType
		lo, hi float64
	}{
		{core.TypeCameraSample, 0.30, 0.50},
		{core.TypePointerMove, 0.15, 0.35},
		{core.TypeFramePerf, 0.06, 0.14},
		{core.TypeMeshInteraction, 0.04, 0.12},
		{core.TypeMeshVisibility, 0.02, 0.08},
		{core.TypeHoverDwell, 0.02, 0.07},
		{core.TypeCustom, 0.01, 0.05},
	} {
		if s := share(c.typ); s < c.lo || s > c.hi {
			t.Errorf("%s is %.1f%% of events, want %.0f–%.0f%%", c.typ, 100*s, 100*c.lo, 100*c.hi)
		}
	}
}

// TestSessions checks the life cycle of every session across the bodies:
// it opens with session_start, its ts never go back, nothing follows its
// session_end, and its sceneId changes only at a scene_change.
func TestSessions(t *testing.T) {
	type state struct {
		lastTS int64
		scene  string
		ended  bool
	}
	sessions := map[string]*state{}
	idRE := regexp.MustCompile(`^[0-9a-f]{32}$`)
	ended := 0
	for i, b := range bodies(Config{Seed: 5, BatchSize: 200, SessionsInFlight: 4}, 40) {
		var body struct {
			Events []struct {
				Type      string `json:"type"`
				SessionID string `json:"sessionId"`
				TS        int64  `json:"ts"`
				SceneID   string `json:"sceneId"`
				ProjectID string `json:"projectId"`
			} `json:"events"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		for j, e := range body.Events {
			where := "body " + itoa(i) + " event " + itoa(j) + " (" + e.Type + ")"
			if !idRE.MatchString(e.SessionID) {
				t.Fatalf("%s: sessionId %q is not 32 hex", where, e.SessionID)
			}
			if e.ProjectID != DefaultProjectID {
				t.Fatalf("%s: projectId %q", where, e.ProjectID)
			}
			s := sessions[e.SessionID]
			if s == nil {
				if e.Type != "session_start" {
					t.Fatalf("%s: session %s begins without session_start", where, e.SessionID)
				}
				s = &state{lastTS: e.TS, scene: e.SceneID}
				sessions[e.SessionID] = s
				continue
			}
			switch {
			case s.ended:
				t.Fatalf("%s: event after session_end", where)
			case e.Type == "session_start":
				t.Fatalf("%s: second session_start", where)
			case e.TS < s.lastTS:
				t.Fatalf("%s: ts %d before %d", where, e.TS, s.lastTS)
			case e.SceneID != s.scene && e.Type != "scene_change":
				t.Fatalf("%s: sceneId %q changed from %q without a scene_change", where, e.SceneID, s.scene)
			case e.TS-s.lastTS > 200_000:
				t.Fatalf("%s: %d ms since the previous event", where, e.TS-s.lastTS)
			}
			s.lastTS, s.scene = e.TS, e.SceneID
			if e.Type == "session_end" {
				s.ended = true
				ended++
			}
		}
	}
	if ended < 5 || len(sessions) < 10 {
		t.Fatalf("%d sessions, %d ended: too few for 8000 events", len(sessions), ended)
	}
}

func TestBatchSize(t *testing.T) {
	for _, size := range []int{1, 7, 50, 200, 1000} {
		g := New(Config{Seed: int64(size), BatchSize: size})
		for range 5 {
			var p fastjson.Parser
			v, err := p.ParseBytes(g.Next(nil))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(v.GetArray("events")); n != size {
				t.Fatalf("BatchSize %d: body has %d events", size, n)
			}
		}
	}
	if n := len(validate(t, New(Config{}).Next(nil), core.AllChannels()).types); n != DefaultBatchSize {
		t.Fatalf("default BatchSize: %d events", n)
	}
}

var (
	emailRE = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	cardRE  = regexp.MustCompile(`(?:^|[^0-9])([0-9]{16})(?:[^0-9]|$)`)
	secrets = regexp.MustCompile(`sk_live_[A-Za-z0-9]{24}|Bearer [A-Za-z0-9._-]{20,}`)
)

func luhn(d string) bool {
	sum := 0
	for i := range len(d) {
		x := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
	}
	return sum%10 == 0
}

// pii counts the bodies with an e-mail address, with a Luhn-valid 16-digit
// number, and with a key or bearer token.
func pii(bs [][]byte) (emails, cards, keys int) {
	for _, b := range bs {
		if emailRE.Match(b) {
			emails++
		}
		for _, m := range cardRE.FindAllSubmatch(b, -1) {
			if luhn(string(m[1])) {
				cards++
				break
			}
		}
		if secrets.Match(b) {
			keys++
		}
	}
	return
}

func TestPII(t *testing.T) {
	if !luhn("4111111111111111") || luhn("4111111111111112") {
		t.Fatal("luhn helper is wrong")
	}
	g := New(Config{Seed: 3})
	for range 1000 {
		c := g.card(nil)
		c = bytes.NewBuffer(bytes.Map(func(r rune) rune {
			if r == ' ' || r == '-' {
				return -1
			}
			return r
		}, c)).Bytes()
		if len(c) != 16 || !luhn(string(c)) {
			t.Fatalf("card %s is not a Luhn-valid 16-digit number", c)
		}
	}

	e, c, k := pii(bodies(Config{Seed: 11, PIIRate: 0.2}, 50))
	if e == 0 || c == 0 || k == 0 {
		t.Fatalf("PIIRate 0.2: %d bodies with an e-mail, %d with a card number, %d with a secret; want some of each", e, c, k)
	}
	e, c, k = pii(bodies(Config{Seed: 11, PIIRate: NoPII}, 50))
	if e+c+k != 0 {
		t.Fatalf("NoPII: %d bodies with an e-mail, %d with a card number, %d with a secret; want none", e, c, k)
	}
	// The default rate leaks a little.
	if e, _, _ := pii(bodies(Config{Seed: 11}, 50)); e == 0 {
		t.Fatal("default PIIRate: no e-mail in 50 bodies")
	}
}

func TestUserIDPseudonymous(t *testing.T) {
	idRE := regexp.MustCompile(`"user":\{"id":"([^"]*)"`)
	for _, b := range bodies(Config{Seed: 2, PIIRate: NoPII}, 30) {
		for _, m := range idRE.FindAllSubmatch(b, -1) {
			if _, err := hex.DecodeString(string(m[1])); err != nil || len(m[1]) != 32 {
				t.Fatalf("user.id %q is not a 32-hex pseudonym", m[1])
			}
		}
	}
}

func TestFixtures(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"b.json": `{"b":1}`, "a.json": `{"a":1}`, "c.txt": "x", "README.md": "#"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Fixtures(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0]) != `{"a":1}` || string(got[1]) != `{"b":1}` {
		t.Fatalf("Fixtures = %q, want a.json then b.json", got)
	}
	if _, err := Fixtures(t.TempDir()); err == nil {
		t.Fatal("an empty directory gave no error")
	}
	if _, err := Fixtures(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing directory gave no error")
	}
	if fx, err := Fixtures(fixtureDir); err == nil {
		names, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
		slices.Sort(names)
		if len(fx) != len(names) {
			t.Fatalf("%d fixtures read, %d on disk", len(fx), len(names))
		}
		for i, n := range names {
			if b, _ := os.ReadFile(n); !bytes.Equal(b, fx[i]) {
				t.Fatalf("fixture %d is not %s verbatim", i, n)
			}
		}
	}
}

func BenchmarkNext(b *testing.B) {
	cfg := Config{Seed: 1, BatchSize: 200}
	size := 0
	for _, body := range bodies(cfg, 40) {
		size += len(body)
	}
	g := New(cfg)
	buf := g.Next(nil)
	b.SetBytes(int64(size / 40))
	b.ReportAllocs()
	for b.Loop() {
		buf = g.Next(buf[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
}

// TestCommittedFixtures: the sample batches in testdata/fixtures are what
// `uptimizr-bench fixtures` writes, byte for byte, and nothing else.
func TestCommittedFixtures(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFixtures(dir); err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	got, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("%d committed sample batches, the command writes %d: run go run ./bench/cmd/uptimizr-bench fixtures", len(got), len(want))
	}
	for _, w := range want {
		name := filepath.Base(w)
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("testdata/fixtures/%s differs from what the command writes (%v): run go run ./bench/cmd/uptimizr-bench fixtures", name, err)
		}
	}
}
