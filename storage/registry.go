package storage

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// Capability aliases core.Capability for callers of this package.
type Capability = core.Capability

// Capabilities (docs/API.md, "Keys").
const (
	CapIngest = core.CapIngest
	CapQuery  = core.CapQuery
	CapAdmin  = core.CapAdmin
)

// Errors of the registry.
var (
	ErrProjectExists   = errors.New("project already exists")
	ErrProjectNotFound = errors.New("project not found")
	ErrKeyNotFound     = errors.New("key not found")
	ErrInvalidID       = errors.New("invalid project id: use 1–64 characters of A-Z a-z 0-9 . _ : -")
)

// Project is a tenant. Its identity fields never change; its channel settings
// are swapped atomically so readers on the hot path take no lock.
type Project struct {
	ID        string
	Num       uint32
	CreatedAt time.Time

	channels  atomic.Pointer[core.Channels]
	rateLimit atomic.Pointer[RateLimit] // nil: the node's
	// rawRetention is the project's own raw-retention choice (a fleet
	// bundle's rawRetention); nil: the node's ENABLE_RAW_SESSION_RETENTION.
	rawRetention atomic.Pointer[bool]
}

// RawRetention is the project's own choice to keep its raw per-session
// stream; set is false when it has none (the node's setting applies).
func (p *Project) RawRetention() (on, set bool) {
	if r := p.rawRetention.Load(); r != nil {
		return *r, true
	}
	return false, false
}

// RateLimit is a project's own bound on each of its keys' ingest
// requests (a fleet bundle's rateLimit): Max per Window, 0 for none.
type RateLimit struct {
	Max    int           `json:"max"`
	Window time.Duration `json:"window"`
}

// KeyRateLimit is the project's own ingest limit per key; ok is false when
// it has none (the node's COLLECTOR_KEY_RATE_LIMIT_MAX applies).
func (p *Project) KeyRateLimit() (max int, window time.Duration, ok bool) {
	if r := p.rateLimit.Load(); r != nil {
		return r.Max, r.Window, true
	}
	return 0, 0, false
}

// Channels returns the project's current channel settings.
func (p *Project) Channels() core.Channels { return *p.channels.Load() }

// ProjectID implements core.Project.
func (p *Project) ProjectID() string { return p.ID }

// ProjectNum implements core.Project.
func (p *Project) ProjectNum() uint32 { return p.Num }

// Key is an API key's record. The key itself is never stored: only its
// SHA-256. ID is a short public handle (the first 12 hex digits of the hash)
// for listings and revocation.
type Key struct {
	ID        string
	ProjectID string
	// Name is the key's name in the fleet bundle that made it; "" for a
	// key made on this node (CLI, admin API, dev mode).
	Name      string
	Caps      Capability
	CreatedAt time.Time
	Project   *Project
}

type projectRecord struct {
	ID        string        `json:"id"`
	Num       uint32        `json:"num"`
	CreatedAt time.Time     `json:"createdAt"`
	Channels  core.Channels `json:"channels"`
	RateLimit *RateLimit    `json:"rateLimit,omitempty"`
	// RawRetention is the project's own raw-retention choice; nil, the
	// node's.
	RawRetention *bool `json:"rawRetention,omitempty"`
}

type keyRecord struct {
	ID        string     `json:"id"`
	ProjectID string     `json:"project"`
	Name      string     `json:"name,omitempty"`
	Caps      Capability `json:"caps"`
	CreatedAt time.Time  `json:"createdAt"`
	Revoked   bool       `json:"revoked,omitempty"`
	RevokedAt time.Time  `json:"revokedAt,omitzero"`
}

// Registry holds every project and live key in memory, so that resolving a key
// on the hot path never touches disk. Writes go to Badger first, then swap
// the in-memory maps (copy on write), so a revocation takes effect for the
// very next request.
type Registry struct {
	db *badger.DB
	mu sync.Mutex // serialises writers

	keys     atomic.Pointer[map[[32]byte]*Key]
	projects atomic.Pointer[map[string]*Project]
}

func loadRegistry(db *badger.DB) (*Registry, error) {
	r := &Registry{db: db}
	projects := map[string]*Project{}
	keys := map[[32]byte]*Key{}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{nsProject}, PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			var rec projectRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				it.Close()
				return fmt.Errorf("storage: project record %q: %w", it.Item().Key(), err)
			}
			projects[rec.ID] = newProject(rec)
		}
		it.Close()
		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{nsKey}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var rec keyRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return fmt.Errorf("storage: key record: %w", err)
			}
			if rec.Revoked {
				continue
			}
			var h [32]byte
			copy(h[:], it.Item().Key()[1:])
			keys[h] = &Key{ID: rec.ID, ProjectID: rec.ProjectID, Name: rec.Name, Caps: rec.Caps, CreatedAt: rec.CreatedAt, Project: projects[rec.ProjectID]}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.projects.Store(&projects)
	r.keys.Store(&keys)
	return r, nil
}

func newProject(rec projectRecord) *Project {
	p := &Project{ID: rec.ID, Num: rec.Num, CreatedAt: rec.CreatedAt}
	ch := rec.Channels
	p.channels.Store(&ch)
	if rec.RateLimit != nil {
		rl := *rec.RateLimit
		p.rateLimit.Store(&rl)
	}
	if rec.RawRetention != nil {
		on := *rec.RawRetention
		p.rawRetention.Store(&on)
	}
	return p
}

// HashKey returns the SHA-256 of an API key, the only form in which keys are
// stored and looked up.
func HashKey(key []byte) [32]byte { return core.HashKeySecret(key) }

// Lookup resolves a key hash to its live record; nil if unknown or revoked.
// It does not allocate and never touches disk.
func (r *Registry) Lookup(hash *[32]byte) *Key { return (*r.keys.Load())[*hash] }

// Resolve maps a key hash to its project and capabilities; ok is false for an
// unknown or revoked key. It does not allocate and never touches disk.
func (r *Registry) Resolve(hash *[32]byte) (p core.Project, caps core.Capability, ok bool) {
	k := (*r.keys.Load())[*hash]
	if k == nil || k.Project == nil {
		return nil, 0, false
	}
	return k.Project, k.Caps, true
}

// Project returns the project with this id, or nil.
func (r *Registry) Project(id string) *Project { return (*r.projects.Load())[id] }

// Projects lists projects ordered by id.
func (r *Registry) Projects() []*Project {
	m := *r.projects.Load()
	out := make([]*Project, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Keys lists the live keys of a project ordered by creation.
func (r *Registry) Keys(projectID string) []*Key {
	var out []*Key
	for _, k := range *r.keys.Load() {
		if k.ProjectID == projectID {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// ValidProjectID reports whether id is a valid project id (core.ValidProjectID).
func ValidProjectID(id string) bool { return core.ValidProjectID(id) }

// NewKeys is what CreateProject returns: the only time the keys are shown.
type NewKeys struct {
	Ingest string `json:"ingest"`
	Query  string `json:"query"`
	Admin  string `json:"admin"`
}

// CreateProject creates a project with default channels and one key of each
// capability.
func (r *Registry) CreateProject(id string) (NewKeys, error) {
	if !ValidProjectID(id) {
		return NewKeys{}, ErrInvalidID
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Project(id) != nil {
		return NewKeys{}, fmt.Errorf("%w: %s", ErrProjectExists, id)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var nk NewKeys
	var newKeys []*Key
	var hashes [][32]byte
	var proj *Project
	err := r.db.Update(func(txn *badger.Txn) error {
		num, err := nextProjectNum(txn)
		if err != nil {
			return err
		}
		rec := projectRecord{ID: id, Num: num, CreatedAt: now, Channels: core.DefaultChannels()}
		b, _ := json.Marshal(rec)
		if err := txn.Set(append([]byte{nsProject}, id...), b); err != nil {
			return err
		}
		proj = newProject(rec)
		for _, c := range []struct {
			cap Capability
			dst *string
		}{{CapIngest, &nk.Ingest}, {CapQuery, &nk.Query}, {CapAdmin, &nk.Admin}} {
			secret, h, k, err := putKey(txn, id, c.cap, now)
			if err != nil {
				return err
			}
			*c.dst = secret
			k.Project = proj
			newKeys = append(newKeys, k)
			hashes = append(hashes, h)
		}
		return nil
	})
	if err != nil {
		return NewKeys{}, fmt.Errorf("storage: create project: %w", err)
	}
	r.swap(func(ps map[string]*Project, ks map[[32]byte]*Key) {
		ps[id] = proj
		for i, k := range newKeys {
			ks[hashes[i]] = k
		}
	})
	return nk, nil
}

// EnsureProject returns the project with this id, creating it, with the
// default channels and no key, when there is none: a fleet's hub takes the
// projects of the records it is sent (the same id on every node is the
// same project); an operator gives it keys with CreateKey.
func (r *Registry) EnsureProject(id string) (*Project, bool, error) {
	if p := r.Project(id); p != nil {
		return p, false, nil
	}
	if !ValidProjectID(id) {
		return nil, false, ErrInvalidID
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.Project(id); p != nil {
		return p, false, nil
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var proj *Project
	err := r.db.Update(func(txn *badger.Txn) error {
		num, err := nextProjectNum(txn)
		if err != nil {
			return err
		}
		rec := projectRecord{ID: id, Num: num, CreatedAt: now, Channels: core.DefaultChannels()}
		b, _ := json.Marshal(rec)
		proj = newProject(rec)
		return txn.Set(append([]byte{nsProject}, id...), b)
	})
	if err != nil {
		return nil, false, fmt.Errorf("storage: create project: %w", err)
	}
	r.swap(func(ps map[string]*Project, _ map[[32]byte]*Key) { ps[id] = proj })
	return proj, true, nil
}

// CreateKey creates a key for an existing project and returns it (shown once)
// with its public id.
func (r *Registry) CreateKey(projectID string, caps Capability) (secret, id string, err error) {
	if caps == 0 {
		return "", "", errors.New("a key needs at least one capability")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.Project(projectID)
	if p == nil {
		return "", "", fmt.Errorf("%w: %s", ErrProjectNotFound, projectID)
	}
	var h [32]byte
	var k *Key
	err = r.db.Update(func(txn *badger.Txn) error {
		secret, h, k, err = putKey(txn, projectID, caps, time.Now().UTC().Truncate(time.Millisecond))
		return err
	})
	if err != nil {
		return "", "", fmt.Errorf("storage: create key: %w", err)
	}
	k.Project = p
	r.swap(func(_ map[string]*Project, ks map[[32]byte]*Key) { ks[h] = k })
	return secret, k.ID, nil
}

// RevokeKey revokes a key of the project, named by its public id or by the
// key itself. It takes effect for the very next request.
func (r *Registry) RevokeKey(projectID, idOrKey string) (id string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var h [32]byte
	var found *Key
	if k := r.Lookup(ptr(HashKey([]byte(idOrKey)))); k != nil && k.ProjectID == projectID {
		h, found = HashKey([]byte(idOrKey)), k
	} else {
		for kh, k := range *r.keys.Load() {
			if k.ID == idOrKey && k.ProjectID == projectID {
				h, found = kh, k
				break
			}
		}
	}
	if found == nil {
		return "", fmt.Errorf("%w: %s in project %s", ErrKeyNotFound, idOrKey, projectID)
	}
	err = r.db.Update(func(txn *badger.Txn) error {
		rec := keyRecord{ID: found.ID, ProjectID: found.ProjectID, Name: found.Name, Caps: found.Caps, CreatedAt: found.CreatedAt,
			Revoked: true, RevokedAt: time.Now().UTC().Truncate(time.Millisecond)}
		b, _ := json.Marshal(rec)
		return txn.Set(append([]byte{nsKey}, h[:]...), b)
	})
	if err != nil {
		return "", fmt.Errorf("storage: revoke key: %w", err)
	}
	r.swap(func(_ map[string]*Project, ks map[[32]byte]*Key) { delete(ks, h) })
	return found.ID, nil
}

// SetChannels stores a project's channel settings and makes them live.
func (r *Registry) SetChannels(projectID string, ch core.Channels) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.Project(projectID)
	if p == nil {
		return fmt.Errorf("%w: %s", ErrProjectNotFound, projectID)
	}
	rec := projectRecord{ID: p.ID, Num: p.Num, CreatedAt: p.CreatedAt, Channels: ch, RateLimit: p.rateLimit.Load(), RawRetention: p.rawRetention.Load()}
	b, _ := json.Marshal(rec)
	if err := r.db.Update(func(txn *badger.Txn) error {
		return txn.Set(append([]byte{nsProject}, p.ID...), b)
	}); err != nil {
		return fmt.Errorf("storage: set channels: %w", err)
	}
	p.channels.Store(&ch)
	return nil
}

// swap applies f to copies of the maps and publishes them. Callers hold r.mu.
func (r *Registry) swap(f func(map[string]*Project, map[[32]byte]*Key)) {
	oldP, oldK := *r.projects.Load(), *r.keys.Load()
	ps := make(map[string]*Project, len(oldP)+1)
	for k, v := range oldP {
		ps[k] = v
	}
	ks := make(map[[32]byte]*Key, len(oldK)+3)
	for k, v := range oldK {
		ks[k] = v
	}
	f(ps, ks)
	r.projects.Store(&ps)
	r.keys.Store(&ks)
}

func ptr[T any](v T) *T { return &v }

// putKey generates a key, writes its hashed record and returns the secret.
func putKey(txn *badger.Txn, projectID string, caps Capability, now time.Time) (string, [32]byte, *Key, error) {
	secret, err := core.NewKeySecret(caps)
	if err != nil {
		return "", [32]byte{}, nil, err
	}
	h := HashKey([]byte(secret))
	id := core.KeyID(h)
	rec := keyRecord{ID: id, ProjectID: projectID, Caps: caps, CreatedAt: now}
	b, _ := json.Marshal(rec)
	if err := txn.Set(append([]byte{nsKey}, h[:]...), b); err != nil {
		return "", h, nil, err
	}
	return secret, h, &Key{ID: id, ProjectID: projectID, Caps: caps, CreatedAt: now}, nil
}

var metaProjectNum = []byte{nsMeta, 'p', 'n'}

// projectNumCounter reads the last project number handed out (0: none yet).
func projectNumCounter(txn *badger.Txn) (uint32, error) {
	var n uint32
	item, err := txn.Get(metaProjectNum)
	switch {
	case err == nil:
		err = item.Value(func(v []byte) error {
			if len(v) != 4 {
				return errors.New("corrupt project counter")
			}
			n = binary.BigEndian.Uint32(v)
			return nil
		})
	case errors.Is(err, badger.ErrKeyNotFound):
		err = nil
	}
	return n, err
}

func setProjectNumCounter(txn *badger.Txn, n uint32) error {
	return txn.Set(metaProjectNum, binary.BigEndian.AppendUint32(nil, n))
}

func nextProjectNum(txn *badger.Txn) (uint32, error) {
	n, err := projectNumCounter(txn)
	if err != nil {
		return 0, err
	}
	n++
	return n, setProjectNumCounter(txn, n)
}

// KeyInfos lists a project's live keys for the admin API.
func (r *Registry) KeyInfos(projectID string) []core.KeyInfo {
	keys := r.Keys(projectID)
	out := make([]core.KeyInfo, len(keys))
	for i, k := range keys {
		out[i] = core.KeyInfo{ID: k.ID, Name: k.Name, Caps: k.Caps, CapList: k.Caps.String(), CreatedAt: k.CreatedAt.Format(time.RFC3339)}
	}
	return out
}
