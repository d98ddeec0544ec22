package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

// Store keeps plugin modules, versions and chain order. The storage
// package implements it.
type Store interface {
	PutModule(wasm []byte) (string, error)
	Module(hash string) ([]byte, error)
	AddVersion(pnum uint32, name, module string, size int, config json.RawMessage, policy string) (*core.PluginRecord, error)
	Activate(pnum uint32, name string, v int) (*core.PluginRecord, error)
	Rollback(pnum uint32, name string) (*core.PluginRecord, error)
	Remove(pnum uint32, name string) error
	SetOrder(pnum uint32, names []string) error
	List(pnum uint32) ([]core.PluginRecord, error)
}

// ErrRejected wraps the reason an upload (or a config) was refused; the
// caller answers 400 with it.
var ErrRejected = core.ErrRejected

// MaxConfigSize bounds a plugin's JSON config.
const MaxConfigSize = 64 << 10

// Manager is the plugin lifecycle: upload (checked, self-tested), list,
// activate, roll back, remove, reorder, configure. Every change rebuilds
// the project's chain and swaps it in atomically.
type Manager struct {
	host   *Host
	store  Store
	filter *Filter
	log    *slog.Logger

	mu   sync.Mutex // serialises lifecycle changes
	live map[liveKey]*Plugin
}

type liveKey struct {
	pnum    uint32
	name    string
	version int
}

// NewManager ties a host, a store and the filter the edge calls.
func NewManager(h *Host, s Store, f *Filter, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{host: h, store: s, filter: f, log: log, live: map[liveKey]*Plugin{}}
}

// ShrinkIdle closes the idle instances of every plugin not called for at
// least idle: a project that stops sending gives its memory back, and its
// next batch instantiates afresh (a few milliseconds). It returns how many
// plugins it shrank.
func (m *Manager) ShrinkIdle(idle time.Duration) int {
	m.mu.Lock()
	live := make([]*Plugin, 0, len(m.live))
	for _, p := range m.live {
		live = append(live, p)
	}
	m.mu.Unlock()
	now, n := time.Now(), 0
	for _, p := range live {
		if len(p.idle) > 0 && p.IdleFor(now) >= idle {
			p.Shrink(0)
			n++
		}
	}
	return n
}

// RunShrinker calls ShrinkIdle every period until ctx ends.
func (m *Manager) RunShrinker(ctx context.Context, period, idle time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.ShrinkIdle(idle)
		}
	}
}

// Filter returns the core.Filter to wire into the edge.
func (m *Manager) Filter() *Filter { return m.filter }

// Load builds the chains of the given projects from the store (at start).
// A plugin that no longer loads is left out of its chain and logged; the
// project's other plugins keep running.
func (m *Manager) Load(ctx context.Context, pnums []uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range pnums {
		if err := m.rebuild(ctx, p); err != nil {
			m.log.Error("loading plugins failed", "project_num", p, "err", err)
		}
	}
}

// rebuild makes the project's chain match the store. A plugin that does not
// load is left out (and logged); the error is only the store's. Callers
// hold m.mu.
func (m *Manager) rebuild(ctx context.Context, pnum uint32) error {
	recs, err := m.store.List(pnum)
	if err != nil {
		return err
	}
	chain := &Chain{}
	keep := map[liveKey]bool{}
	for _, r := range recs {
		v := r.Version(r.Active)
		if v == nil {
			continue
		}
		k := liveKey{pnum, r.Name, v.Version}
		p := m.live[k]
		if p == nil {
			if p, err = m.load(ctx, r.Name, v); err != nil {
				m.log.Error("plugin left out of the chain", "project_num", pnum, "plugin", r.Name, "version", v.Version, "err", err)
				continue
			}
			m.live[k] = p
		}
		keep[k] = true
		chain.Plugins = append(chain.Plugins, p)
	}
	m.filter.SetChain(pnum, chain)
	for k, p := range m.live {
		if k.pnum == pnum && !keep[k] {
			delete(m.live, k)
			p.Close()
		}
	}
	return nil
}

func (m *Manager) load(ctx context.Context, name string, v *core.PluginVersion) (*Plugin, error) {
	wasm, err := m.store.Module(v.Module)
	if err != nil {
		return nil, err
	}
	mod, err := m.host.Compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	pol, err := ParsePolicy(v.Policy)
	if err != nil {
		return nil, err
	}
	return m.host.loadPlugin(ctx, name, v.Version, mod, v.Config, pol)
}

// Upload checks a module — size, compilation, imports, the ABI, init with
// its config, and a self-test on a sample batch within the CPU deadline —
// then stores it as the plugin's new version and makes it live. Checks that
// fail return ErrRejected with the reason.
func (m *Manager) Upload(ctx context.Context, pnum uint32, projectID, name string, wasm, config []byte, policy string) (*core.PluginRecord, error) {
	pol, err := ParsePolicy(policy)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	if config, err = normConfig(config); err != nil {
		return nil, err
	}
	mod, err := m.host.Compile(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	p, err := m.check(ctx, name, mod, config, pol, projectID)
	if err != nil {
		return nil, err
	}
	hash, err := m.store.PutModule(wasm)
	if err != nil {
		p.Close()
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.store.AddVersion(pnum, name, hash, len(wasm), config, pol.String())
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Version = rec.Active
	m.live[liveKey{pnum, name, rec.Active}] = p
	return rec, m.rebuild(ctx, pnum)
}

// Check runs an upload's checks on a module without storing it or making
// it live: a fleet bundle's every plugin passes them before any of the
// bundle is applied.
func (m *Manager) Check(ctx context.Context, projectID, name string, wasm, config []byte, policy string) error {
	pol, err := ParsePolicy(policy)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	if config, err = normConfig(config); err != nil {
		return err
	}
	mod, err := m.host.Compile(ctx, wasm)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	p, err := m.check(ctx, name, mod, config, pol, projectID)
	if err != nil {
		return err
	}
	p.Close()
	return nil
}

// SetConfig makes a new version of a plugin with the same module and a new
// config (and policy, when not empty), checked like an upload.
func (m *Manager) SetConfig(ctx context.Context, pnum uint32, projectID, name string, config []byte, policy string) (*core.PluginRecord, error) {
	cur, err := m.current(pnum, name)
	if err != nil {
		return nil, err
	}
	if policy == "" {
		policy = cur.Policy
	}
	wasm, err := m.store.Module(cur.Module)
	if err != nil {
		return nil, err
	}
	return m.Upload(ctx, pnum, projectID, name, wasm, config, policy)
}

func (m *Manager) current(pnum uint32, name string) (*core.PluginVersion, error) {
	recs, err := m.store.List(pnum)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Name == name {
			if v := r.Version(r.Active); v != nil {
				return v, nil
			}
		}
	}
	return nil, fmt.Errorf("plugin %s: %w", name, core.ErrNotFound)
}

// Activate makes version v of a plugin live.
func (m *Manager) Activate(ctx context.Context, pnum uint32, name string, v int) (*core.PluginRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.store.Activate(pnum, name, v)
	if err != nil {
		return nil, err
	}
	return rec, m.rebuild(ctx, pnum)
}

// Rollback makes the previously active version live again.
func (m *Manager) Rollback(ctx context.Context, pnum uint32, name string) (*core.PluginRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.store.Rollback(pnum, name)
	if err != nil {
		return nil, err
	}
	return rec, m.rebuild(ctx, pnum)
}

// Remove takes a plugin out of the chain.
func (m *Manager) Remove(ctx context.Context, pnum uint32, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.store.Remove(pnum, name); err != nil {
		return err
	}
	return m.rebuild(ctx, pnum)
}

// SetOrder reorders the chain.
func (m *Manager) SetOrder(ctx context.Context, pnum uint32, names []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.store.SetOrder(pnum, names); err != nil {
		return err
	}
	return m.rebuild(ctx, pnum)
}

// List returns the project's plugins in chain order.
func (m *Manager) List(pnum uint32) ([]core.PluginRecord, error) { return m.store.List(pnum) }

func normConfig(config []byte) ([]byte, error) {
	if len(config) == 0 {
		return []byte("{}"), nil
	}
	if len(config) > MaxConfigSize {
		return nil, fmt.Errorf("%w: config is %d bytes, the limit is %d", ErrRejected, len(config), MaxConfigSize)
	}
	var v fastjson.Parser
	pv, err := v.ParseBytes(config)
	if err != nil || pv.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("%w: config must be a JSON object", ErrRejected)
	}
	return append([]byte(nil), config...), nil
}

// check instantiates the plugin with its config and runs it on the sample
// batch; the output must be well-formed and valid.
func (m *Manager) check(ctx context.Context, name string, mod *Module, config []byte, pol Policy, projectID string) (*Plugin, error) {
	p, err := m.host.NewPlugin(ctx, name, 0, mod, config, pol)
	if errors.Is(err, ErrBusy) {
		return nil, err // the node is full now, the module may be fine
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	b := sampleBatch(projectID)
	st := &runState{}
	st.in = encodeBatch(nil, b)
	out, err := p.Run(ctx, st.in, nil)
	if err == nil {
		_, err = applyOutput(st, b, out)
	}
	if errors.Is(err, ErrBusy) {
		p.Close()
		return nil, err
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%w: self-test on a sample batch failed: %v", ErrRejected, err)
	}
	return p, nil
}

// sampleEvents is the self-test batch: one event of each kind a plugin
// usually rewrites, with the free-text fields a redactor looks at.
var sampleEvents = []string{
	`{"type":"session_start","projectId":"p","sessionId":"selftest-session","ts":1795892750000,"sdkVersion":"0.5.0","sceneId":"showroom","url":"https://shop.example.com/configurator?ref=mail&email=jane%40example.com","pageMeta":{"title":"Configure","viewport":[1920,1080]},"device":{"engine":"webgl2"},"user":{"id":"5f4dcc3b5aa765d61d8327deb882cf99","traits":{"plan":"pro","contact":"jane@example.com"}},"connector":{"name":"babylon","version":"9.13.0"}}`,
	`{"type":"custom","projectId":"p","sessionId":"selftest-session","ts":1795892750100,"sdkVersion":"0.5.0","name":"checkout","props":{"card":"4111 1111 1111 1111","phone":"+1 415 555 0100","step":2,"ok":true}}`,
	`{"type":"runtime_error","projectId":"p","sessionId":"selftest-session","ts":1795892750200,"sdkVersion":"0.5.0","kind":"error","message":"fetch failed for 203.0.113.7 with Bearer abc.def.ghi","stack":"at load (app.js:10:5)","source":"https://shop.example.com/app.js","lineno":10,"colno":5}`,
	`{"type":"asset_load","projectId":"p","sessionId":"selftest-session","ts":1795892750300,"sdkVersion":"0.5.0","name":"car.glb","loadMs":120}`,
	`{"type":"camera_sample","projectId":"p","sessionId":"selftest-session","ts":1795892750400,"sdkVersion":"0.5.0","position":[4.5,2.2,1.9],"direction":[-0.84,-0.41,-0.35]}`,
	`{"type":"pointer_click","projectId":"p","sessionId":"selftest-session","ts":1795892750500,"sdkVersion":"0.5.0","screen":[0.3,0.15],"button":0,"source":"mouse"}`,
}

var sampleVisitor = [32]byte([]byte("00000000000000000000000000000000"))

func sampleBatch(projectID string) *core.Batch {
	info := &core.RequestInfo{ProjectID: projectID, VisitorID: sampleVisitor, Browser: "chrome", OS: "macos", Channels: core.AllChannels()}
	b := &core.Batch{ProjectID: projectID, Info: info, ReceivedAt: time.Now().UnixMilli()}
	var proc core.Processor
	var parser fastjson.Parser
	proc.Begin(b, info)
	for _, e := range sampleEvents {
		v, err := parser.Parse(e)
		if err != nil {
			panic(err)
		}
		if out, _, r := proc.Add(jsonvalue.Wrap(v)); out != core.Accepted {
			panic("sample event rejected: " + r.String())
		}
	}
	return b
}
