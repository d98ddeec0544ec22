// Package archtest holds the architecture's import rules as a test: the
// dependencies of the module's packages point inward, core ← {edge, plugins,
// storage, fleet} ← cmd (docs/ARCHITECTURE.md, "Packages").
package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/uptimizr/edge"

// layer names the part of the design a package of the module belongs to.
func layer(pkg string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	first, _, _ := strings.Cut(rel, "/")
	return first
}

// allowed lists, for each layer, the layers of the module it may import
// (its own always). internal holds shared helpers below core's callers;
// internal/jsonscan, which core's callers and core's tests share, is the
// standard library's kind of package.
var allowed = map[string][]string{
	"core":     {},
	"internal": {"core"},
	"edge":     {"core", "internal"},
	"plugins":  {"core", "internal"},
	"storage":  {"core", "internal"},
	"fleet":    {"core", "internal"},
	"cmd":      {"core", "internal", "edge", "plugins", "storage", "fleet"},
	"bench":    {"core", "internal", "edge", "plugins", "storage", "fleet"},
}

// violations checks an import graph (package → its non-test imports)
// against the rules: core imports the standard library only; every other
// layer only the layers allowed to it; nothing imports cmd or bench from
// outside.
func violations(graph map[string][]string) []string {
	var out []string
	for pkg, imports := range graph {
		from := layer(pkg)
		ok, known := allowed[from]
		if !known {
			out = append(out, pkg+": a top-level package the architecture does not name")
			continue
		}
		for _, imp := range imports {
			if !strings.HasPrefix(imp, module+"/") {
				if from == "core" && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
					out = append(out, pkg+" imports "+imp+": core takes the standard library only")
				}
				continue
			}
			to := layer(imp)
			if to != from && !slices.Contains(ok, to) {
				out = append(out, pkg+" imports "+imp+": "+from+" may not depend on "+to)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestImportGraph runs the rules on the module's packages as go list sees
// them (nested modules such as plugins/sdk/go are not part of it).
func TestImportGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	graph := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		graph[f[0]] = f[1:]
	}
	for _, want := range []string{"core", "edge", "plugins", "storage", "cmd/uptimizr-edge"} {
		if _, ok := graph[module+"/"+want]; !ok {
			t.Fatalf("go list did not list %s: %v", want, graph)
		}
	}
	for _, v := range violations(graph) {
		t.Error(v)
	}
}

// TestRulesCatchBadEdges: each kind of wrong edge is reported.
func TestRulesCatchBadEdges(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	graph := map[string][]string{
		m("core"):              {"strings", "github.com/valyala/fastjson"},
		m("edge"):              {m("core"), m("storage")},
		m("storage"):           {m("core"), m("internal/jsonscan"), "github.com/dgraph-io/badger/v4"},
		m("plugins"):           {m("cmd/uptimizr-edge")},
		m("cmd/uptimizr-edge"): {m("edge"), m("plugins"), m("storage")},
		m("toys"):              nil,
	}
	got := violations(graph)
	want := []string{
		m("core") + " imports github.com/valyala/fastjson: core takes the standard library only",
		m("edge") + " imports " + m("storage") + ": edge may not depend on storage",
		m("plugins") + " imports " + m("cmd/uptimizr-edge") + ": plugins may not depend on cmd",
		m("toys") + ": a top-level package the architecture does not name",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
