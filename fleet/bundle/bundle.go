// Package bundle reads, checks and signs a fleet bundle: the one
// declarative file that states a fleet's projects, their channel settings,
// raw-retention choice and rate limits, their named keys and their plugin
// chains (docs/FLEET.md). It knows nothing of storage or transport: a node
// applies a Revision (storage), the control plane publishes one (fleet).
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/uptimizr/edge/core"
)

// MaxBytes bounds a bundle file: 100 projects with keys and plugin
// entries take a few tens of kilobytes.
const MaxBytes = 4 << 20

// Limits of a bundle's contents.
const (
	MaxProjects       = 10_000
	MaxKeysPerProject = 100
	MaxPlugins        = 16 // per project, as an upload's chain
	maxConfigBytes    = 64 << 10
)

// Bundle is a fleet's whole configuration, as written by an operator.
type Bundle struct {
	Projects []Project `json:"projects"`
	// Source, set by the node that loads a bundle file, is the digest of
	// the file and its modules (Digest): a revision built from it carries
	// it, so the same file is not applied twice.
	Source string `json:"-"`
	// VisitorSalt re-keys the visitor hash from a UTC day on, on every
	// node at once (recovery after a node's state was stolen).
	VisitorSalt *VisitorSalt `json:"visitorSalt,omitempty"`
}

// Project is one tenant's settings.
type Project struct {
	ID string `json:"id"`
	// Channels turns the opt-in capture channels on or off by name
	// (core.ChannelNames); a channel not named keeps its default.
	Channels map[string]bool `json:"channels,omitempty"`
	// RawRetention keeps the project's raw per-session stream (when the
	// node's retention allows it); nil is the node's setting.
	RawRetention *bool `json:"rawRetention,omitempty"`
	// RateLimit bounds the ingest requests of each of the project's keys;
	// nil is the node's setting.
	RateLimit *RateLimit  `json:"rateLimit,omitempty"`
	Keys      []Key       `json:"keys,omitempty"`
	Plugins   []PluginRef `json:"plugins,omitempty"`
}

// RateLimit is a number of ingest requests per window, per key.
type RateLimit struct {
	Max    int      `json:"max"`
	Window Duration `json:"window,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("1m").
type Duration time.Duration

// UnmarshalJSON reads "90s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string such as \"1m\" or a number of seconds")
	}
	*d = Duration(n * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Key is a named API key of a project. Its secret is made on the apply
// that first sees it and shown once; only its hash is kept or published.
// With Hash, the key is the one whose secret has that SHA-256 (made with
// fleet key): the bundle then says which key it is, and every node that
// loads the file (COLLECTOR_BUNDLE) has the same one.
type Key struct {
	Name string   `json:"name"`
	Caps []string `json:"caps"`
	Hash string   `json:"hash,omitempty"`
}

// PluginRef is one entry of a project's plugin chain, in chain order.
type PluginRef struct {
	Name string `json:"name"`
	// Module is the .wasm file, relative to the bundle's folder.
	Module string `json:"module"`
	// Config is handed to the plugin's init: a JSON object, as an upload's.
	Config json.RawMessage `json:"config,omitempty"`
	// Policy is what a failure does: quarantine (the default), drop or
	// pass.
	Policy string `json:"policy,omitempty"`
}

// VisitorSalt is a fresh visitor-salt seed and the UTC day it takes over.
type VisitorSalt struct {
	// Seed is 32 bytes of secret, as 64 hex digits.
	Seed string `json:"seed"`
	// From is the first UTC day (YYYY-MM-DD) hashed with it.
	From string `json:"from"`
}

// Problem is one thing wrong with a bundle, at a path into it
// ("projects[2].keys[0].caps").
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Invalid is a bundle refused whole, with every problem found.
type Invalid struct{ Problems []Problem }

// ErrInvalid is what errors.Is matches an *Invalid with.
var ErrInvalid = errors.New("invalid bundle")

func (e *Invalid) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return fmt.Sprintf("invalid bundle (%d problems): %s", len(e.Problems), strings.Join(parts, "; "))
}

// Is matches ErrInvalid.
func (e *Invalid) Is(target error) bool { return target == ErrInvalid }

// Parse reads a bundle in JSON or YAML (JSON is YAML too: the same parser
// reads both) and checks its shape and values (Check). Unknown fields are
// refused, so a misspelt setting is not silently ignored.
func Parse(data []byte) (*Bundle, error) {
	if len(data) > MaxBytes {
		return nil, &Invalid{[]Problem{{"", fmt.Sprintf("the bundle is %d bytes; at most %d", len(data), MaxBytes)}}}
	}
	js, err := yamlToJSON(data)
	if err != nil {
		return nil, &Invalid{[]Problem{{"", err.Error()}}}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, &Invalid{[]Problem{{"", "bundle: " + err.Error()}}}
	}
	if ps := b.Check(); len(ps) > 0 {
		return nil, &Invalid{ps}
	}
	return &b, nil
}

// yamlToJSON decodes YAML (of which JSON is a subset) into plain values
// and writes them as JSON. Mapping keys must be strings; anchors and
// aliases are refused, so a small file cannot expand into a large one.
func yamlToJSON(data []byte) ([]byte, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF): // an empty file
		return []byte("{}"), nil
	case err != nil:
		return nil, fmt.Errorf("bundle: %v", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("bundle: want one YAML document")
	}
	v, err := nodeValue(&doc, 0)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// maxDepth bounds a bundle's nesting (a plugin's config included).
const maxDepth = 64

func nodeValue(n *yaml.Node, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("bundle: nested deeper than %d at line %d", maxDepth, n.Line)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, fmt.Errorf("bundle: want one document")
		}
		return nodeValue(n.Content[0], depth+1)
	case yaml.AliasNode:
		return nil, fmt.Errorf("bundle: line %d: aliases are not accepted", n.Line)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				return nil, fmt.Errorf("bundle: line %d: merge keys are not accepted", k.Line)
			}
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "") {
				return nil, fmt.Errorf("bundle: line %d: a key must be a string", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("bundle: line %d: key %q given twice", k.Line, k.Value)
			}
			x, err := nodeValue(v, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = x
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			x, err := nodeValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, x)
		}
		return s, nil
	case yaml.ScalarNode:
		if n.Anchor != "" {
			return nil, fmt.Errorf("bundle: line %d: anchors are not accepted", n.Line)
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("bundle: line %d: %v", n.Line, err)
		}
		switch x := v.(type) {
		case nil, bool, string, int, int64, uint64, float64:
			return x, nil
		}
		return n.Value, nil // timestamps and other tags: their text
	}
	return nil, fmt.Errorf("bundle: line %d: unexpected node", n.Line)
}

// Check lists every problem of the bundle's values: ids, names, caps,
// channels, policies, limits, the visitor salt. It does not read plugin
// modules: a Checker does (CheckModules).
func (b *Bundle) Check() []Problem {
	var ps []Problem
	add := func(path, format string, args ...any) { ps = append(ps, Problem{path, fmt.Sprintf(format, args...)}) }
	if len(b.Projects) > MaxProjects {
		add("projects", "%d projects; at most %d", len(b.Projects), MaxProjects)
	}
	seen := map[string]int{}
	for i, p := range b.Projects {
		at := fmt.Sprintf("projects[%d]", i)
		switch {
		case !core.ValidProjectID(p.ID):
			add(at+".id", "%q is not a project id (1–64 characters of A-Z a-z 0-9 . _ : -)", p.ID)
		default:
			if j, dup := seen[p.ID]; dup {
				add(at+".id", "project %q is also projects[%d]", p.ID, j)
			}
			seen[p.ID] = i
		}
		for _, name := range sortedKeys(p.Channels) {
			if !slices.Contains(core.ChannelNames, name) {
				add(at+".channels."+name, "no such channel (want one of %s)", strings.Join(core.ChannelNames, ", "))
			}
		}
		if r := p.RateLimit; r != nil {
			if r.Max < 0 || r.Max > 1_000_000_000 {
				add(at+".rateLimit.max", "%d is not a request count (0 turns the limit off)", r.Max)
			}
			if r.Window < 0 || time.Duration(r.Window) > 24*time.Hour {
				add(at+".rateLimit.window", "%s is not a window of up to 24h", time.Duration(r.Window))
			}
		}
		if len(p.Keys) > MaxKeysPerProject {
			add(at+".keys", "%d keys; at most %d", len(p.Keys), MaxKeysPerProject)
		}
		names := map[string]int{}
		for j, k := range p.Keys {
			kat := fmt.Sprintf("%s.keys[%d]", at, j)
			checkName(add, kat, "key", "keys", k.Name, j, names)
			if _, err := ParseCaps(k.Caps); err != nil {
				add(kat+".caps", "%v", err)
			}
			if h, err := hex.DecodeString(k.Hash); k.Hash != "" && (err != nil || len(h) != 32 || strings.ToLower(k.Hash) != k.Hash) {
				add(kat+".hash", "want the key's SHA-256 as 64 lower-case hex digits (fleet key prints it)")
			}
		}
		if len(p.Plugins) > MaxPlugins {
			add(at+".plugins", "%d plugins; at most %d", len(p.Plugins), MaxPlugins)
		}
		plugins := map[string]int{}
		for j, pl := range p.Plugins {
			pat := fmt.Sprintf("%s.plugins[%d]", at, j)
			checkName(add, pat, "plugin", "plugins", pl.Name, j, plugins)
			if pl.Module == "" {
				add(pat+".module", "the module file is missing")
			}
			if len(pl.Config) > maxConfigBytes {
				add(pat+".config", "%d bytes; at most %d", len(pl.Config), maxConfigBytes)
			} else if c := bytes.TrimSpace(pl.Config); len(c) > 0 && string(c) != "null" && c[0] != '{' {
				add(pat+".config", "want a JSON object, as an upload's")
			}
			switch strings.ToLower(pl.Policy) {
			case "", "quarantine", "drop", "pass":
			default:
				add(pat+".policy", "unknown failure policy %q (want quarantine, drop or pass)", pl.Policy)
			}
		}
	}
	if s := b.VisitorSalt; s != nil {
		if _, err := ParseSeed(s.Seed); err != nil {
			add("visitorSalt.seed", "%s", err.Error())
		}
		if _, err := time.Parse(time.DateOnly, s.From); err != nil {
			add("visitorSalt.from", "%q is not a UTC day (YYYY-MM-DD)", s.From)
		}
	}
	return ps
}

// checkName adds a problem at path when name (a kind's, entry j of list)
// is not a valid name or is one an earlier entry has.
func checkName(add func(path, format string, args ...any), path, kind, list, name string, j int, seen map[string]int) {
	if !core.ValidName(name) {
		add(path+".name", "%q is not a %s name (1–64 characters of A-Z a-z 0-9 . _ -)", name, kind)
	} else if o, dup := seen[name]; dup {
		add(path+".name", "%s %q is also %s[%d]", kind, name, list, o)
	}
	seen[name] = j
}

// ParseCaps reads a key's capabilities: one or more of ingest, query and
// admin, each once.
func ParseCaps(caps []string) (core.Capability, error) {
	if len(caps) == 0 {
		return 0, errors.New("no capability (want ingest, query or admin)")
	}
	var c core.Capability
	for _, s := range caps {
		one, err := core.ParseCapabilities(s)
		if err != nil || strings.Contains(s, ",") {
			return 0, fmt.Errorf("unknown capability %q (want ingest, query or admin)", s)
		}
		if c&one != 0 {
			return 0, fmt.Errorf("capability %q given twice", s)
		}
		c |= one
	}
	return c, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ModuleHash is the content address of a module: its SHA-256, hex.
func ModuleHash(wasm []byte) string {
	h := sha256.Sum256(wasm)
	return hex.EncodeToString(h[:])
}
