package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/uptimizr/edge/core"
)

// Revision is what a node applies: a bundle made concrete and numbered.
// Its keys are there by hash, its modules by content hash (the modules
// themselves travel apart), every channel spelt out.
type Revision struct {
	Number   uint64       `json:"revision"`
	Created  time.Time    `json:"created"`
	Projects []RevProject `json:"projects"`
	// VisitorSalt re-keys the visitor hash (salt.go): the seed by its id,
	// and sealed to each node, never as it is.
	VisitorSalt *RevSalt `json:"visitorSalt,omitempty"`
	// Source is the digest of the bundle file it was built from, by a
	// node that loads one (COLLECTOR_BUNDLE); "" otherwise.
	Source string `json:"source,omitempty"`
}

// RevProject is a project of a revision.
type RevProject struct {
	ID           string        `json:"id"`
	Channels     core.Channels `json:"channels"`
	RawRetention *bool         `json:"rawRetention,omitempty"`
	RateLimit    *RateLimit    `json:"rateLimit,omitempty"`
	Keys         []RevKey      `json:"keys"`
	Plugins      []RevPlugin   `json:"plugins"`
}

// RevKey is a named key by its hash.
type RevKey struct {
	Name string          `json:"name"`
	Caps core.Capability `json:"caps"`
	Hash string          `json:"hash"` // SHA-256 of the secret, hex
}

// RevPlugin is a chain entry by its module's content hash.
type RevPlugin struct {
	Name   string          `json:"name"`
	Module string          `json:"module"` // ModuleHash
	Config json.RawMessage `json:"config,omitempty"`
	Policy string          `json:"policy"`
}

// Project returns the revision's project id, or nil.
func (r *Revision) Project(id string) *RevProject {
	for i := range r.Projects {
		if r.Projects[i].ID == id {
			return &r.Projects[i]
		}
	}
	return nil
}

// Key returns the project's key named name, or nil.
func (p *RevProject) Key(name string) *RevKey {
	for i := range p.Keys {
		if p.Keys[i].Name == name {
			return &p.Keys[i]
		}
	}
	return nil
}

// Build makes revision number n of b. A key already in prev (same project
// and name) keeps its hash, with the caps b gives it; a new key gets a
// fresh secret, returned in secrets as "project/name" → key (to be shown
// once, never kept). modules maps each plugin entry's Module path to its
// content hash.
func Build(b *Bundle, prev *Revision, n uint64, modules map[string]string, now time.Time) (*Revision, map[string]string, error) {
	rev := &Revision{Number: n, Created: now.UTC().Truncate(time.Millisecond), Source: b.Source}
	if s := b.VisitorSalt; s != nil {
		seed, err := ParseSeed(s.Seed)
		if err != nil {
			return nil, nil, err
		}
		rev.VisitorSalt = &RevSalt{From: s.From, ID: SeedID(seed)}
	}
	secrets := map[string]string{}
	for _, p := range b.Projects {
		ch := core.DefaultChannels()
		for name, on := range p.Channels {
			if !ch.Set(name, on) {
				return nil, nil, fmt.Errorf("project %s: no such channel %q", p.ID, name)
			}
		}
		rp := RevProject{ID: p.ID, Channels: ch, RawRetention: p.RawRetention, RateLimit: p.RateLimit, Keys: []RevKey{}, Plugins: []RevPlugin{}}
		var old *RevProject
		if prev != nil {
			old = prev.Project(p.ID)
		}
		for _, k := range p.Keys {
			caps, err := ParseCaps(k.Caps)
			if err != nil {
				return nil, nil, fmt.Errorf("project %s key %s: %w", p.ID, k.Name, err)
			}
			rk := RevKey{Name: k.Name, Caps: caps, Hash: k.Hash}
			if old != nil && rk.Hash == "" {
				if ok := old.Key(k.Name); ok != nil {
					rk.Hash = ok.Hash
				}
			}
			if rk.Hash == "" {
				secret, err := core.NewKeySecret(caps)
				if err != nil {
					return nil, nil, err
				}
				h := core.HashKeySecret([]byte(secret))
				rk.Hash = hex.EncodeToString(h[:])
				secrets[p.ID+"/"+k.Name] = secret
			}
			rp.Keys = append(rp.Keys, rk)
		}
		for _, pl := range p.Plugins {
			h, ok := modules[pl.Module]
			if !ok {
				return nil, nil, fmt.Errorf("project %s plugin %s: module %s was not read", p.ID, pl.Name, pl.Module)
			}
			policy := strings.ToLower(pl.Policy)
			if policy == "" {
				policy = "quarantine"
			}
			rp.Plugins = append(rp.Plugins, RevPlugin{Name: pl.Name, Module: h, Config: configBytes(pl.Config), Policy: policy})
		}
		rev.Projects = append(rev.Projects, rp)
	}
	return rev, secrets, nil
}

// configBytes is the bytes a plugin's init gets: a JSON string's text, or
// any other JSON value as written.
func configBytes(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// Signed is a revision as published and stored: its exact bytes and,
// when the control plane signs, their ed25519 signature.
type Signed struct {
	Payload   json.RawMessage `json:"payload"`             // the Revision's JSON
	Signature string          `json:"signature,omitempty"` // base64 of ed25519.Sign(key, Payload)
	KeyID     string          `json:"keyId,omitempty"`     // KeyIDOf the signing key's public half
}

// Errors of signatures.
var (
	ErrUnsigned     = errors.New("the revision is not signed, and this node accepts only signed ones")
	ErrBadSignature = errors.New("the revision's signature does not verify with this node's public key")
)

// Seal encodes rev and signs it with key when key is not nil.
func Seal(rev *Revision, key ed25519.PrivateKey) (*Signed, error) {
	payload, err := json.Marshal(rev)
	if err != nil {
		return nil, err
	}
	s := &Signed{Payload: payload}
	if key != nil {
		s.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload))
		s.KeyID = KeyIDOf(key.Public().(ed25519.PublicKey))
	}
	return s, nil
}

// Open checks s's signature when pub is not nil (a node started with
// COLLECTOR_CONTROL_PUBKEY takes only revisions it signed) and decodes its
// revision.
func Open(s *Signed, pub ed25519.PublicKey) (*Revision, error) {
	if pub != nil {
		if s.Signature == "" {
			return nil, ErrUnsigned
		}
		sig, err := base64.StdEncoding.DecodeString(s.Signature)
		if err != nil || !ed25519.Verify(pub, s.Payload, sig) {
			return nil, ErrBadSignature
		}
	}
	var rev Revision
	if err := json.Unmarshal(s.Payload, &rev); err != nil {
		return nil, fmt.Errorf("revision: %w", err)
	}
	for _, p := range rev.Projects {
		if !core.ValidProjectID(p.ID) {
			return nil, fmt.Errorf("revision: project id %q", p.ID)
		}
		for _, k := range p.Keys {
			if h, err := hex.DecodeString(k.Hash); err != nil || len(h) != 32 || k.Caps == 0 || !core.ValidName(k.Name) {
				return nil, fmt.Errorf("revision: project %s key %q", p.ID, k.Name)
			}
		}
		for _, pl := range p.Plugins {
			if h, err := hex.DecodeString(pl.Module); err != nil || len(h) != 32 || !core.ValidName(pl.Name) {
				return nil, fmt.Errorf("revision: project %s plugin %q", p.ID, pl.Name)
			}
		}
	}
	return &rev, nil
}

// KeyIDOf names a public key: the first 8 bytes of it, hex.
func KeyIDOf(pub ed25519.PublicKey) string { return hex.EncodeToString(pub[:8]) }

// GenerateKey makes a signing key pair, each half as text: the private
// key's seed and the public key, base64.
func GenerateKey() (private, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(priv.Seed()), base64.StdEncoding.EncodeToString(pub), nil
}

// ParsePrivateKey reads GenerateKey's private half.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("not an ed25519 private key (base64 of its 32-byte seed, as fleet keygen writes it)")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePublicKey reads GenerateKey's public half (COLLECTOR_CONTROL_PUBKEY).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("not an ed25519 public key (base64 of its 32 bytes, as fleet keygen writes it)")
	}
	return ed25519.PublicKey(b), nil
}

// Diff lists what going from prev (nil: nothing published yet) to next
// changes, a line per change, in a stable order: projects, channels,
// keys (by name and caps) and plugin entries.
func Diff(prev, next *Revision) []string {
	out := []string{}
	if prev == nil {
		prev = &Revision{}
	}
	for _, p := range next.Projects {
		old := prev.Project(p.ID)
		if old == nil {
			out = append(out, "create-project "+p.ID)
			old = &RevProject{ID: p.ID, Channels: core.DefaultChannels()}
		}
		if old.Channels != p.Channels {
			a, _ := json.Marshal(old.Channels)
			b, _ := json.Marshal(p.Channels)
			out = append(out, fmt.Sprintf("set-channels %s: %s → %s", p.ID, a, b))
		}
		if a, b := core.RetentionChoice(old.RawRetention), core.RetentionChoice(p.RawRetention); a != b {
			out = append(out, fmt.Sprintf("set-raw-retention %s: %s → %s", p.ID, a, b))
		}
		if a, b := rateText(old.RateLimit), rateText(p.RateLimit); a != b {
			out = append(out, fmt.Sprintf("set-rate-limit %s: %s → %s", p.ID, a, b))
		}
		for _, k := range p.Keys {
			switch ok := old.Key(k.Name); {
			case ok == nil:
				out = append(out, fmt.Sprintf("add-key %s/%s: %s", p.ID, k.Name, k.Caps))
			case ok.Caps != k.Caps:
				out = append(out, fmt.Sprintf("set-caps %s/%s: %s → %s", p.ID, k.Name, ok.Caps, k.Caps))
			}
		}
		for _, k := range old.Keys {
			if p.Key(k.Name) == nil {
				out = append(out, fmt.Sprintf("revoke-key %s/%s", p.ID, k.Name))
			}
		}
		oldPlugins := map[string]RevPlugin{}
		for _, pl := range old.Plugins {
			oldPlugins[pl.Name] = pl
		}
		for _, pl := range p.Plugins {
			o, ok := oldPlugins[pl.Name]
			if !ok || o.Module != pl.Module || o.Policy != pl.Policy || string(o.Config) != string(pl.Config) {
				out = append(out, fmt.Sprintf("set-plugin %s/%s: module %s, policy %s", p.ID, pl.Name, pl.Module[:min(12, len(pl.Module))], pl.Policy))
			}
			delete(oldPlugins, pl.Name)
		}
		for _, pl := range old.Plugins { // in the old chain's order
			if _, gone := oldPlugins[pl.Name]; gone {
				out = append(out, fmt.Sprintf("remove-plugin %s/%s", p.ID, pl.Name))
			}
		}
	}
	for _, p := range prev.Projects {
		if next.Project(p.ID) == nil {
			for _, k := range p.Keys {
				out = append(out, fmt.Sprintf("revoke-key %s/%s: its project is no longer in the bundle", p.ID, k.Name))
			}
		}
	}
	if s := next.VisitorSalt; s != nil && (prev.VisitorSalt == nil || prev.VisitorSalt.ID != s.ID || prev.VisitorSalt.From != s.From) {
		out = append(out, fmt.Sprintf("set-visitor-salt: seed %s from %s", s.ID, s.From))
	}
	return out
}

func rateText(r *RateLimit) string {
	if r == nil {
		return "the node's"
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// Digest is what a signature over a bundle file covers: the file's
// SHA-256 and each module it names (its path as written, and its
// SHA-256), one per line in path order.
func Digest(file []byte, modules map[string]string) []byte {
	h := sha256.Sum256(file)
	out := []byte("uptimizr-bundle-v1\n" + hex.EncodeToString(h[:]) + "\n")
	paths := make([]string, 0, len(modules))
	for p := range modules {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		out = append(out, p+" "+modules[p]+"\n"...)
	}
	return out
}

// SignFile signs a bundle file's Digest: the text of its .sig file.
func SignFile(digest []byte, key ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, digest)) + "\n"
}

// VerifyFile checks a bundle file's .sig text against its Digest.
func VerifyFile(digest []byte, sig string, pub ed25519.PublicKey) error {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
	if err != nil || !ed25519.Verify(pub, digest, b) {
		return ErrBadSignature
	}
	return nil
}
