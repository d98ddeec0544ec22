package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// Plugin namespaces.
const (
	nsModule      = 'w' // w <sha256:32> → module bytes
	nsPlugin      = 'u' // u <pnum:4> <name> → PluginRecord (JSON)
	nsChain       = 'o' // o <pnum:4> → chain order (JSON list of names)
	nsQuarantine  = 'z' // z <pnum:4> <id:8> → quarantined batch (TTL)
	maxPluginName = 64
)

// Errors of the plugin store.
var (
	ErrPluginNotFound  = fmt.Errorf("plugin %w", core.ErrNotFound)
	ErrVersionNotFound = fmt.Errorf("plugin version %w", core.ErrNotFound)
	ErrNoRollback      = fmt.Errorf("%w: no earlier version to roll back to", core.ErrRejected)
	ErrBadPluginName   = fmt.Errorf("%w: invalid plugin name: use 1–64 characters of a-z 0-9 . _ -", core.ErrRejected)
)

// PluginVersion and PluginRecord are the core types, stored as JSON.
type (
	PluginVersion = core.PluginVersion
	PluginRecord  = core.PluginRecord
)

// PluginStore keeps plugin modules, versions and each project's chain order.
type PluginStore struct{ s *Store }

// Plugins returns the plugin store.
func (s *Store) Plugins() *PluginStore { return &PluginStore{s: s} }

// ValidPluginName reports whether name can name a plugin.
func ValidPluginName(name string) bool {
	if len(name) == 0 || len(name) > maxPluginName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func pluginKey(pnum uint32, name string) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{nsPlugin}, pnum), name...)
}

func chainKey(pnum uint32) []byte { return binary.BigEndian.AppendUint32([]byte{nsChain}, pnum) }

// PutModule stores module bytes by content hash (once) and returns the hash.
func (p *PluginStore) PutModule(wasm []byte) (string, error) {
	sum := sha256.Sum256(wasm)
	k := append([]byte{nsModule}, sum[:]...)
	adm, err := p.s.admitWrite(len(wasm) + 64)
	if err != nil {
		return "", err
	}
	defer adm.done()
	err = p.s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(k); err == nil {
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return txn.Set(k, wasm)
	})
	return hex.EncodeToString(sum[:]), err
}

// Module returns the module bytes of a hash.
func (p *PluginStore) Module(hash string) ([]byte, error) {
	sum, err := hex.DecodeString(hash)
	if err != nil || len(sum) != 32 {
		return nil, fmt.Errorf("bad module hash %q", hash)
	}
	var out []byte
	err = p.s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(append([]byte{nsModule}, sum...))
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	return out, err
}

// update reads, changes and writes a project's plugin record and chain in
// one transaction.
func (p *PluginStore) update(pnum uint32, name string, create bool, f func(r *PluginRecord, chain *[]string) error) (*PluginRecord, error) {
	if !ValidPluginName(name) {
		return nil, ErrBadPluginName
	}
	var out PluginRecord
	err := p.s.db.Update(func(txn *badger.Txn) error {
		var rec PluginRecord
		switch item, err := txn.Get(pluginKey(pnum, name)); {
		case err == nil:
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return err
			}
		case errors.Is(err, badger.ErrKeyNotFound):
			if !create {
				return fmt.Errorf("%w: %s", ErrPluginNotFound, name)
			}
			rec.Name = name
		default:
			return err
		}
		chain, err := readChain(txn, pnum)
		if err != nil {
			return err
		}
		if err := f(&rec, &chain); err != nil {
			return err
		}
		b, _ := json.Marshal(&rec)
		if err := txn.Set(pluginKey(pnum, name), b); err != nil {
			return err
		}
		cb, _ := json.Marshal(chain)
		out = rec
		return txn.Set(chainKey(pnum), cb)
	})
	return &out, err
}

func readChain(txn *badger.Txn, pnum uint32) ([]string, error) {
	var chain []string
	item, err := txn.Get(chainKey(pnum))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &chain) })
	return chain, err
}

func inChain(chain []string, name string) bool {
	for _, n := range chain {
		if n == name {
			return true
		}
	}
	return false
}

// AddVersion records a new version of a plugin (created if new) and makes
// it the active one; a new plugin joins the end of the chain.
func (p *PluginStore) AddVersion(pnum uint32, name, module string, size int, config json.RawMessage, policy string) (*PluginRecord, error) {
	return p.update(pnum, name, true, func(r *PluginRecord, chain *[]string) error {
		v := 1
		for _, x := range r.Versions {
			v = max(v, x.Version+1)
		}
		r.Versions = append(r.Versions, PluginVersion{Version: v, Module: module, Size: size, Config: config, Policy: policy,
			CreatedAt: time.Now().UTC().Truncate(time.Millisecond)})
		if r.Active != 0 {
			r.Previous = append(r.Previous, r.Active)
		}
		r.Active = v
		if !inChain(*chain, name) {
			*chain = append(*chain, name)
		}
		return nil
	})
}

// Activate makes version v live.
func (p *PluginStore) Activate(pnum uint32, name string, v int) (*PluginRecord, error) {
	return p.update(pnum, name, false, func(r *PluginRecord, chain *[]string) error {
		if r.Version(v) == nil {
			return fmt.Errorf("%w: %s version %d", ErrVersionNotFound, name, v)
		}
		if r.Active != v {
			if r.Active != 0 {
				r.Previous = append(r.Previous, r.Active)
			}
			r.Active = v
		}
		if !inChain(*chain, name) {
			*chain = append(*chain, name)
		}
		return nil
	})
}

// Rollback makes the previously active version live again.
func (p *PluginStore) Rollback(pnum uint32, name string) (*PluginRecord, error) {
	return p.update(pnum, name, false, func(r *PluginRecord, _ *[]string) error {
		if len(r.Previous) == 0 {
			return fmt.Errorf("%w: %s", ErrNoRollback, name)
		}
		r.Active = r.Previous[len(r.Previous)-1]
		r.Previous = r.Previous[:len(r.Previous)-1]
		return nil
	})
}

// Remove takes a plugin out of the chain and forgets it (its modules stay,
// shared by content hash).
func (p *PluginStore) Remove(pnum uint32, name string) error {
	if !ValidPluginName(name) {
		return ErrBadPluginName
	}
	return p.s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(pluginKey(pnum, name)); errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: %s", ErrPluginNotFound, name)
		} else if err != nil {
			return err
		}
		chain, err := readChain(txn, pnum)
		if err != nil {
			return err
		}
		next := chain[:0]
		for _, n := range chain {
			if n != name {
				next = append(next, n)
			}
		}
		cb, _ := json.Marshal(next)
		if err := txn.Set(chainKey(pnum), cb); err != nil {
			return err
		}
		return txn.Delete(pluginKey(pnum, name))
	})
}

// SetOrder reorders the chain; names must be exactly the chain's plugins.
func (p *PluginStore) SetOrder(pnum uint32, names []string) error {
	return p.s.db.Update(func(txn *badger.Txn) error {
		chain, err := readChain(txn, pnum)
		if err != nil {
			return err
		}
		a, b := append([]string(nil), chain...), append([]string(nil), names...)
		sort.Strings(a)
		sort.Strings(b)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return fmt.Errorf("%w: the order must name each plugin of the chain once: %v", core.ErrRejected, chain)
		}
		cb, _ := json.Marshal(names)
		return txn.Set(chainKey(pnum), cb)
	})
}

// List returns a project's plugins in chain order.
func (p *PluginStore) List(pnum uint32) ([]PluginRecord, error) {
	var out []PluginRecord
	err := p.s.db.View(func(txn *badger.Txn) error {
		chain, err := readChain(txn, pnum)
		if err != nil {
			return err
		}
		for _, name := range chain {
			item, err := txn.Get(pluginKey(pnum, name))
			if err != nil {
				return err
			}
			var rec PluginRecord
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}
