package bundle

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
)

// minimal is the bundle, accepted as it is.
const minimal = `{"projects":[{"id":"shop","channels":{"gaze":true},"keys":[{"name":"web","caps":["ingest"]},{"name":"dash","caps":["query"]}]}]}`

func TestParseMinimal(t *testing.T) {
	b, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Projects) != 1 || b.Projects[0].ID != "shop" || !b.Projects[0].Channels["gaze"] || len(b.Projects[0].Keys) != 2 ||
		b.Projects[0].Keys[1].Name != "dash" || b.Projects[0].Keys[1].Caps[0] != "query" {
		t.Fatalf("%+v", b)
	}
	// The same in YAML.
	y, err := Parse([]byte(`
projects:
  - id: shop
    channels: {gaze: true}
    keys:
      - name: web
        caps: [ingest]
      - {name: dash, caps: [query]}
`))
	if err != nil {
		t.Fatal(err)
	}
	bj, _ := json.Marshal(b)
	yj, _ := json.Marshal(y)
	if string(bj) != string(yj) {
		t.Fatalf("YAML reads otherwise:\n%s\n%s", yj, bj)
	}
}

// TestParseListsEveryProblem: a bad bundle is refused whole, naming each
// problem at its path.
func TestParseListsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`{"projects":[
		{"id":"bad id","channels":{"gaze":true,"x-ray":true},"rateLimit":{"max":-1,"window":"48h"},
		 "keys":[{"name":"web","caps":["ingest"]},{"name":"web","caps":["root"]},{"name":"","caps":[]}],
		 "plugins":[{"name":"p","module":"","policy":"explode","config":"x=1"}]},
		{"id":"shop"},{"id":"shop"}],
		"visitorSalt":{"seed":"00","from":"tomorrow"}}`))
	var inv *Invalid
	if !errors.As(err, &inv) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("%v", err)
	}
	want := []string{
		`projects[0].id: "bad id" is not a project id`,
		"projects[0].channels.x-ray: no such channel",
		"projects[0].rateLimit.max: -1 is not a request count",
		"projects[0].rateLimit.window: 48h0m0s is not a window",
		`projects[0].keys[1].name: key "web" is also keys[0]`,
		`projects[0].keys[1].caps: unknown capability "root"`,
		`projects[0].keys[2].name: "" is not a key name`,
		"projects[0].keys[2].caps: no capability",
		"projects[0].plugins[0].module: the module file is missing",
		"projects[0].plugins[0].config: want a JSON object",
		`projects[0].plugins[0].policy: unknown failure policy "explode"`,
		`projects[2].id: project "shop" is also projects[1]`,
		"visitorSalt.seed: want 32 bytes as 64 hex digits",
		`visitorSalt.from: "tomorrow" is not a UTC day`,
	}
	if len(inv.Problems) != len(want) {
		t.Errorf("%d problems, want %d: %v", len(inv.Problems), len(want), err)
	}
	for i, w := range want {
		if i >= len(inv.Problems) || !strings.HasPrefix(inv.Problems[i].String(), w) {
			t.Errorf("problem %d: %v, want %q…", i, inv.Problems[min(i, len(inv.Problems)-1)], w)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"unknown field", `{"projects":[{"id":"a","chanels":{}}]}`, `unknown field "chanels"`},
		{"wrong type", `{"projects":{"id":"a"}}`, "cannot unmarshal"},
		{"alias", "a: &x [1]\nb: *x\n", "not accepted"},
		{"merge key", "a: {b: 1}\nc:\n  <<: {b: 1}\n", "merge keys"},
		{"duplicate key", "projects: []\nprojects: []\n", "given twice"},
		{"non-string key", "1: a\n", "key must be a string"},
		{"two documents", "projects: []\n---\nprojects: []\n", "one YAML document"},
		{"syntax", `{"projects":[`, "bundle:"},
		{"too large", strings.Repeat(" ", MaxBytes+1), "at most"},
		{"too deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), "deeper"},
	} {
		_, err := Parse([]byte(c.in))
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an invalid bundle saying %q", c.name, err, c.want)
		}
	}
	// An empty file is an empty fleet.
	if b, err := Parse(nil); err != nil || len(b.Projects) != 0 {
		t.Errorf("empty: %+v, %v", b, err)
	}
}

func TestParseValues(t *testing.T) {
	b, err := Parse([]byte(`
projects:
  - id: shop
    rawRetention: true
    rateLimit: {max: 120, window: 1m}
    plugins:
      - {name: pii, module: pii.wasm, policy: Drop, config: {fields: [email]}}
      - {name: tag, module: tag.wasm}
visitorSalt: {seed: ` + strings.Repeat("ab", 32) + `, from: 2027-01-01}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := b.Projects[0]
	if !*p.RawRetention || p.RateLimit.Max != 120 || time.Duration(p.RateLimit.Window) != time.Minute {
		t.Errorf("%+v %+v", p, p.RateLimit)
	}
	if string(p.Plugins[0].Config) != `{"fields":["email"]}` || len(p.Plugins[1].Config) != 0 {
		t.Errorf("configs %s %s", p.Plugins[0].Config, p.Plugins[1].Config)
	}
	if b.VisitorSalt.From != "2027-01-01" {
		t.Errorf("salt from %q", b.VisitorSalt.From)
	}
}

// TestBuildKeepsKeys: a key the last revision has keeps its hash; a new
// one gets a fresh secret whose hash the revision carries; a key left out
// is gone from the revision.
func TestBuildKeepsKeys(t *testing.T) {
	b, _ := Parse([]byte(minimal))
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r1, s1, err := Build(b, nil, 1, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1) != 2 || !strings.HasPrefix(s1["shop/web"], "uzi_") || !strings.HasPrefix(s1["shop/dash"], "uzq_") {
		t.Fatalf("secrets %v", s1)
	}
	for name, secret := range s1 {
		h := core.HashKeySecret([]byte(secret))
		if got := r1.Project("shop").Key(strings.TrimPrefix(name, "shop/")).Hash; got != hex.EncodeToString(h[:]) {
			t.Errorf("%s: hash %s", name, got)
		}
	}
	if ch := r1.Project("shop").Channels; !ch.Gaze || !ch.MeshPicks || ch.HoverDwell {
		t.Errorf("channels %+v (gaze on, the rest at their defaults)", ch)
	}
	b2, _ := Parse([]byte(`{"projects":[{"id":"shop","keys":[{"name":"web","caps":["ingest","query"]},{"name":"ops","caps":["admin"]}]}]}`))
	r2, s2, err := Build(b2, r1, 2, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(s2) != 1 || s2["shop/ops"] == "" {
		t.Errorf("secrets of the second build %v (only the new key)", s2)
	}
	web := r2.Project("shop").Key("web")
	if web.Hash != r1.Project("shop").Key("web").Hash || web.Caps != core.CapIngest|core.CapQuery {
		t.Errorf("web %+v", web)
	}
	if r2.Project("shop").Key("dash") != nil {
		t.Error("dash was left out and is still there")
	}
}

func TestSealOpen(t *testing.T) {
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Parse([]byte(minimal))
	rev, _, _ := Build(b, nil, 7, nil, time.Now())
	signed, err := Seal(rev, sk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(signed, pk)
	if err != nil || got.Number != 7 || got.Project("shop") == nil {
		t.Fatalf("%+v, %v", got, err)
	}
	// Tampered: a key's caps raised.
	bad := *signed
	bad.Payload = json.RawMessage(strings.Replace(string(signed.Payload), `"caps":1`, `"caps":7`, 1))
	if string(bad.Payload) == string(signed.Payload) {
		t.Fatal("nothing tampered")
	}
	if _, err := Open(&bad, pk); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered: %v", err)
	}
	// Signed by another key.
	otherPriv, _, _ := GenerateKey()
	ok, _ := ParsePrivateKey(otherPriv)
	other, _ := Seal(rev, ok)
	if _, err := Open(other, pk); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another key: %v", err)
	}
	unsigned, _ := Seal(rev, nil)
	if _, err := Open(unsigned, pk); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	// A node without a public key takes either.
	if _, err := Open(unsigned, nil); err != nil {
		t.Errorf("unsigned, no key: %v", err)
	}
	for _, s := range []string{"", "AAAA", priv + "x"} {
		if _, err := ParsePrivateKey(s); err == nil {
			t.Errorf("private key %q read", s)
		}
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("public key %q read", s)
		}
	}
}

// FuzzParse: any input gives a bundle or an invalid-bundle error, never a
// panic; a bundle accepted passes its own Check, and reads back the same
// from its JSON.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("projects:\n  - id: a\n    keys: [{name: k, caps: [admin]}]\n"))
	f.Add([]byte(`{"projects":[{"id":"a","plugins":[{"name":"p","module":"m.wasm","config":{"a":[1,2]}}]}],"visitorSalt":{"seed":"` + strings.Repeat("0", 64) + `","from":"2027-01-01"}}`))
	f.Add([]byte("a: &x 1\nb: *x\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error of another kind: %v", err)
			}
			return
		}
		if ps := b.Check(); len(ps) != 0 {
			t.Fatalf("accepted with problems: %v", ps)
		}
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(js)
		if err != nil {
			t.Fatalf("its own JSON refused: %v\n%s", err, js)
		}
		js2, _ := json.Marshal(again)
		if string(js) != string(js2) {
			t.Fatalf("reads back otherwise:\n%s\n%s", js, js2)
		}
	})
}

// TestExampleBundle: the example in docs parses, and its modules are there.
func TestExampleBundle(t *testing.T) {
	path := "../../docs/fleet-bundle.example.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Projects) != 2 || len(b.Projects[0].Keys) != 3 || !b.Projects[0].Channels["gaze"] {
		t.Fatalf("%+v", b)
	}
	for _, pl := range b.Projects[0].Plugins {
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), pl.Module)); err != nil {
			t.Errorf("plugin %s: %v", pl.Name, err)
		}
	}
}

// TestKeysByHash: a key the bundle gives by hash is that key, on every
// build, with no secret made; a hash that is not one is a problem.
func TestKeysByHash(t *testing.T) {
	h := core.HashKeySecret([]byte("uzi_example"))
	hx := hex.EncodeToString(h[:])
	b, err := Parse([]byte(`{"projects":[{"id":"a","keys":[{"name":"web","caps":["ingest"],"hash":"` + hx + `"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rev, secrets, err := Build(b, nil, 1, nil, time.Now())
	if err != nil || len(secrets) != 0 || rev.Project("a").Key("web").Hash != hx {
		t.Fatalf("%+v %v %v", rev, secrets, err)
	}
	for _, bad := range []string{"xyz", strings.ToUpper(hx), hx[:62]} {
		if _, err := Parse([]byte(`{"projects":[{"id":"a","keys":[{"name":"web","caps":["ingest"],"hash":"` + bad + `"}]}]}`)); err == nil || !strings.Contains(err.Error(), "keys[0].hash") {
			t.Errorf("hash %q: %v", bad, err)
		}
	}
	// A file's signature covers the file and its modules.
	priv, pub, _ := GenerateKey()
	sk, _ := ParsePrivateKey(priv)
	pk, _ := ParsePublicKey(pub)
	d := Digest([]byte("projects: []"), map[string]string{"m.wasm": "00"})
	sig := SignFile(d, sk)
	if err := VerifyFile(d, sig, pk); err != nil {
		t.Fatal(err)
	}
	for _, other := range [][]byte{Digest([]byte("projects: [] "), map[string]string{"m.wasm": "00"}), Digest([]byte("projects: []"), map[string]string{"m.wasm": "01"})} {
		if VerifyFile(other, sig, pk) == nil {
			t.Error("a signature verifies over other contents")
		}
	}
}
