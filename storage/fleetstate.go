package storage

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// A fleet revision states the registry a node must have: its projects
// with their channels, and their named keys by hash. Apply brings the
// registry there in one transaction, and keeps the revision, so a node
// restarts on the last one it applied (docs/FLEET.md).

// DesiredProject is a project as a fleet revision states it.
type DesiredProject struct {
	ID       string
	Channels core.Channels
	// RateLimit is the project's own ingest limit per key; nil, the node's.
	RateLimit *RateLimit
	// RawRetention keeps (or not) the project's raw per-session stream;
	// nil, the node's ENABLE_RAW_SESSION_RETENTION.
	RawRetention *bool
	Keys         []DesiredKey
}

// DesiredKey is a named key by its hash.
type DesiredKey struct {
	Name string
	Caps Capability
	Hash [32]byte
}

// Change is one difference between the registry and a revision.
type Change struct {
	Op      string `json:"op"` // create-project, set-channels, add-key, set-caps, revoke-key
	Project string `json:"project"`
	Key     string `json:"key,omitempty"` // the key's name
	KeyID   string `json:"keyId,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

func (c Change) String() string {
	s := c.Op + " " + c.Project
	if c.Key != "" {
		s += "/" + c.Key
	}
	if c.KeyID != "" {
		s += " (" + c.KeyID + ")"
	}
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// ErrStaleRevision is a revision older than the one the node has applied.
var ErrStaleRevision = errors.New("the node has applied a later revision")

// ErrRevisionTaken is a revision whose number the node has applied with
// other contents: two applies built the same next revision, and the other
// one won.
var ErrRevisionTaken = errors.New("another apply took this revision number")

// ErrKeyElsewhere is a revision giving a project a key another project
// has: a key only ever reaches its own project.
var ErrKeyElsewhere = errors.New("a key of the revision belongs to another project")

// metaFleetRevision holds the last fleet revision applied: its number and
// its signed bytes.
var metaFleetRevision = []byte{nsMeta, 'f', 'r'}

// FleetRevision is the last fleet revision this node applied.
type FleetRevision struct {
	Number    uint64          `json:"revision"`
	AppliedAt time.Time       `json:"appliedAt"`
	Signed    json.RawMessage `json:"signed"` // as received: bundle.Signed
	// SaltID names the last fleet visitor seed the node took (its id, never
	// the seed); "" when it has taken none.
	SaltID string `json:"saltId,omitempty"`
}

// Plan lists what Apply would change, in a stable order. Keys made on the
// node (without a name) are never touched; a named key the revision no
// longer has is revoked, including those of a project it no longer lists.
func (r *Registry) Plan(want []DesiredProject) ([]Change, error) {
	var out []Change
	keys := *r.keys.Load()
	wanted := map[[32]byte]bool{}
	listed := map[string]bool{}
	for _, p := range want {
		listed[p.ID] = true
		cur := r.Project(p.ID)
		switch {
		case cur == nil:
			out = append(out, Change{Op: "create-project", Project: p.ID})
			out = append(out, Change{Op: "set-channels", Project: p.ID, Detail: channelText(p.Channels)})
		case cur.Channels() != p.Channels:
			out = append(out, Change{Op: "set-channels", Project: p.ID, Detail: channelText(cur.Channels()) + " → " + channelText(p.Channels)})
		}
		var have *RateLimit
		if cur != nil {
			have = cur.rateLimit.Load()
		}
		if !sameRateLimit(have, p.RateLimit) {
			out = append(out, Change{Op: "set-rate-limit", Project: p.ID, Detail: rateText(have) + " → " + rateText(p.RateLimit)})
		}
		var raw *bool
		if cur != nil {
			raw = cur.rawRetention.Load()
		}
		if !sameBool(raw, p.RawRetention) {
			out = append(out, Change{Op: "set-raw-retention", Project: p.ID, Detail: core.RetentionChoice(raw) + " → " + core.RetentionChoice(p.RawRetention)})
		}
		for _, k := range p.Keys {
			wanted[k.Hash] = true
			have := keys[k.Hash]
			switch {
			case have == nil:
				out = append(out, Change{Op: "add-key", Project: p.ID, Key: k.Name, KeyID: core.KeyID(k.Hash), Detail: k.Caps.String()})
			case have.ProjectID != p.ID:
				return nil, fmt.Errorf("%w: %s/%s is a key of %s", ErrKeyElsewhere, p.ID, k.Name, have.ProjectID)
			case have.Caps != k.Caps || have.Name != k.Name:
				out = append(out, Change{Op: "set-caps", Project: p.ID, Key: k.Name, KeyID: have.ID, Detail: have.Caps.String() + " → " + k.Caps.String()})
			}
		}
	}
	var revoke []Change
	for h, k := range keys {
		if k.Name != "" && !wanted[h] {
			c := Change{Op: "revoke-key", Project: k.ProjectID, Key: k.Name, KeyID: k.ID}
			if !listed[k.ProjectID] {
				c.Detail = "its project is no longer in the bundle"
			}
			revoke = append(revoke, c)
		}
	}
	sort.Slice(revoke, func(i, j int) bool {
		if revoke[i].Project != revoke[j].Project {
			return revoke[i].Project < revoke[j].Project
		}
		return revoke[i].Key < revoke[j].Key
	})
	return append(out, revoke...), nil
}

func sameBool(a, b *bool) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func sameRateLimit(a, b *RateLimit) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func rateText(r *RateLimit) string {
	if r == nil {
		return "the node's"
	}
	return fmt.Sprintf("%d per %s", r.Max, r.Window)
}

func channelText(c core.Channels) string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Apply makes the registry the one want states and keeps rev as the last
// revision applied, in one transaction; the maps the request path reads
// are swapped after it commits, so a request sees the old registry or the
// new one, never a mix. It returns what changed (Plan's list).
func (r *Registry) Apply(want []DesiredProject, rev FleetRevision) ([]Change, error) {
	for _, p := range want {
		if !ValidProjectID(p.ID) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidID, p.ID)
		}
		for _, k := range p.Keys {
			if k.Caps == 0 || !core.ValidName(k.Name) {
				return nil, fmt.Errorf("storage: apply: key %q of %s", k.Name, p.ID)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, ok, err := r.LastFleetRevision(); err != nil {
		return nil, err
	} else if ok && rev.Number < last.Number {
		return nil, fmt.Errorf("%w: revision %d, the node has %d", ErrStaleRevision, rev.Number, last.Number)
	} else if ok && rev.Number == last.Number && !bytes.Equal(rev.Signed, last.Signed) {
		return nil, fmt.Errorf("%w: %d", ErrRevisionTaken, rev.Number)
	}
	changes, err := r.Plan(want)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	rev.AppliedAt = now
	keys := *r.keys.Load()
	newProjects := map[string]*Project{}
	newChannels := map[string]core.Channels{}
	newLimits := map[string]*RateLimit{}
	newRaw := map[string]*bool{}
	putKeys := map[[32]byte]*Key{}
	var revoked [][32]byte
	err = r.db.Update(func(txn *badger.Txn) error {
		for _, p := range want {
			cur := r.Project(p.ID)
			var rec projectRecord
			if cur == nil {
				num, err := nextProjectNum(txn)
				if err != nil {
					return err
				}
				rec = projectRecord{ID: p.ID, Num: num, CreatedAt: now, Channels: p.Channels, RateLimit: p.RateLimit, RawRetention: p.RawRetention}
				newProjects[p.ID] = newProject(rec)
			} else if cur.Channels() != p.Channels || !sameRateLimit(cur.rateLimit.Load(), p.RateLimit) || !sameBool(cur.rawRetention.Load(), p.RawRetention) {
				rec = projectRecord{ID: cur.ID, Num: cur.Num, CreatedAt: cur.CreatedAt, Channels: p.Channels, RateLimit: p.RateLimit, RawRetention: p.RawRetention}
				newChannels[p.ID] = p.Channels
				newLimits[p.ID] = p.RateLimit
				newRaw[p.ID] = p.RawRetention
			} else {
				rec.ID = ""
			}
			if rec.ID != "" {
				b, _ := json.Marshal(rec)
				if err := txn.Set(append([]byte{nsProject}, p.ID...), b); err != nil {
					return err
				}
			}
			for _, k := range p.Keys {
				have := keys[k.Hash]
				if have != nil && have.Caps == k.Caps && have.Name == k.Name {
					continue
				}
				created := now
				if have != nil {
					created = have.CreatedAt
				}
				nk := &Key{ID: core.KeyID(k.Hash), ProjectID: p.ID, Name: k.Name, Caps: k.Caps, CreatedAt: created}
				b, _ := json.Marshal(keyRecord{ID: nk.ID, ProjectID: p.ID, Name: k.Name, Caps: k.Caps, CreatedAt: created})
				if err := txn.Set(append([]byte{nsKey}, k.Hash[:]...), b); err != nil {
					return err
				}
				putKeys[k.Hash] = nk
			}
		}
		wanted := map[[32]byte]bool{}
		for _, p := range want {
			for _, k := range p.Keys {
				wanted[k.Hash] = true
			}
		}
		for h, k := range keys {
			if k.Name == "" || wanted[h] {
				continue
			}
			b, _ := json.Marshal(keyRecord{ID: k.ID, ProjectID: k.ProjectID, Name: k.Name, Caps: k.Caps, CreatedAt: k.CreatedAt, Revoked: true, RevokedAt: now})
			if err := txn.Set(append([]byte{nsKey}, h[:]...), b); err != nil {
				return err
			}
			revoked = append(revoked, h)
		}
		b, _ := json.Marshal(rev)
		return txn.Set(metaFleetRevision, b)
	})
	if err != nil {
		return nil, fmt.Errorf("storage: apply revision %d: %w", rev.Number, err)
	}
	r.swap(func(ps map[string]*Project, ks map[[32]byte]*Key) {
		for id, p := range newProjects {
			ps[id] = p
		}
		for h, k := range putKeys {
			k.Project = ps[k.ProjectID]
			ks[h] = k
		}
		for _, h := range revoked {
			delete(ks, h)
		}
	})
	for id, ch := range newChannels {
		if p := r.Project(id); p != nil {
			c := ch
			p.channels.Store(&c)
			p.rateLimit.Store(newLimits[id])
			var raw *bool
			if r := newRaw[id]; r != nil {
				on := *r
				raw = &on
			}
			p.rawRetention.Store(raw)
		}
	}
	return changes, nil
}

// LastFleetRevision is the last fleet revision this node applied; ok is
// false when it has applied none.
func (r *Registry) LastFleetRevision() (rev FleetRevision, ok bool, err error) {
	err = r.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaFleetRevision)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &rev) })
	})
	return rev, ok, err
}

// ParseKeyHash reads a key hash written as hex (a revision's).
func ParseKeyHash(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("not a key hash: %q", s)
	}
	copy(h[:], b)
	return h, nil
}
