package bundle

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// A bundle's visitorSalt carries a secret: whoever has a day's seed can
// compute every later day's salt. A revision therefore never holds the
// seed itself. It names it (SeedID) and carries it sealed to each node's
// own key (HPKE, RFC 9180: X25519, HKDF-SHA256, ChaCha20-Poly1305), which
// the node makes in its data dir and reports in its heartbeat; once a node
// has taken the seed it replaces that key, so neither a revision kept in
// the bucket's history nor the node's later state opens the seed again
// (docs/FLEET.md, "Re-keying the fleet").

// RevSalt is a revision's visitor-salt re-key.
type RevSalt struct {
	// From is the first UTC day (YYYY-MM-DD) hashed with the seed.
	From string `json:"from"`
	// ID names the seed (SeedID) without revealing it.
	ID string `json:"id"`
	// Sealed is the seed sealed to each node that had reported its key
	// when the revision was published, by node id. A revision a node
	// builds from its own bundle file has none: the node read the seed.
	Sealed []SealedSeed `json:"sealed,omitempty"`
}

// SealedSeed is the seed sealed to one node's key.
type SealedSeed struct {
	Node string `json:"node"`
	Key  string `json:"key"` // NodeKeyID of the key it is sealed to
	Box  string `json:"box"` // base64: HPKE's encapsulated key, then the ciphertext
}

// SeedID names a seed: the first 16 bytes of a SHA-256 of it, hex. A seed
// is 32 random bytes, so its id tells nothing of it.
func SeedID(seed []byte) string {
	h := sha256.New()
	h.Write([]byte("uptimizr visitor seed id\x00"))
	h.Write(seed)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// ParseSeed reads a bundle's visitorSalt seed: 32 bytes as 64 hex
// digits, as `salt init` prints one.
func ParseSeed(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return nil, errors.New("want 32 bytes as 64 hex digits (as `uptimizr-edge salt init` prints one)")
	}
	if bytes.Count(b, []byte{0}) == len(b) {
		return nil, errors.New("a seed of all zeros is not a seed")
	}
	return b, nil
}

var (
	sealKEM  = hpke.DHKEM(ecdh.X25519())
	sealKDF  = hpke.HKDFSHA256()
	sealAEAD = hpke.ChaCha20Poly1305()
)

// sealInfo binds a box to its node and day: a box cannot be moved to
// another node's entry or another day.
func sealInfo(node, from string) []byte {
	return []byte("uptimizr-visitor-seed-v1\x00" + node + "\x00" + from)
}

// NodeKey is a node's sealing key pair: the private half stays in its
// data dir.
type NodeKey struct{ priv hpke.PrivateKey }

// NewNodeKey makes a sealing key pair.
func NewNodeKey() (*NodeKey, error) {
	k, err := sealKEM.GenerateKey()
	if err != nil {
		return nil, err
	}
	return &NodeKey{k}, nil
}

// ParseNodeKey reads a private key as Bytes wrote it.
func ParseNodeKey(b []byte) (*NodeKey, error) {
	k, err := sealKEM.NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("not a node sealing key: %w", err)
	}
	return &NodeKey{k}, nil
}

// Bytes is the private key, to keep in the data dir.
func (k *NodeKey) Bytes() ([]byte, error) { return k.priv.Bytes() }

// Public is the public half as a heartbeat carries it (base64).
func (k *NodeKey) Public() string {
	return base64.StdEncoding.EncodeToString(k.priv.PublicKey().Bytes())
}

// NodeKeyID names a public key (as Public writes it): the first 8 bytes
// of its SHA-256, hex.
func NodeKeyID(public string) string {
	h := sha256.Sum256([]byte(public))
	return hex.EncodeToString(h[:8])
}

// Recipient is a node a seed is sealed to, with its public key (Public).
type Recipient struct {
	Node string
	Key  string
}

// SealSeed seals seed to each recipient, in node order. A recipient whose
// key does not parse is returned in skipped, with why.
func SealSeed(salt *RevSalt, seed []byte, to []Recipient) (skipped []string, err error) {
	if SeedID(seed) != salt.ID {
		return nil, errors.New("visitorSalt: the seed is not the revision's")
	}
	sort.Slice(to, func(i, j int) bool { return to[i].Node < to[j].Node })
	salt.Sealed = salt.Sealed[:0]
	for _, r := range to {
		raw, err := base64.StdEncoding.DecodeString(r.Key)
		if err != nil {
			skipped = append(skipped, r.Node+": its key is not base64")
			continue
		}
		pk, err := sealKEM.NewPublicKey(raw)
		if err != nil {
			skipped = append(skipped, r.Node+": "+err.Error())
			continue
		}
		box, err := hpke.Seal(pk, sealKDF, sealAEAD, sealInfo(r.Node, salt.From), seed)
		if err != nil {
			return nil, err
		}
		salt.Sealed = append(salt.Sealed, SealedSeed{Node: r.Node, Key: NodeKeyID(r.Key), Box: base64.StdEncoding.EncodeToString(box)})
	}
	return skipped, nil
}

// ErrNotSealedHere is a revision's salt sealed to other nodes, or to
// another key of this one.
var ErrNotSealedHere = errors.New("the revision's visitor seed is not sealed to this node's key")

// OpenSeed opens the seed sealed to node with key, and checks it is the
// one the revision names.
func OpenSeed(salt *RevSalt, node string, key *NodeKey) ([]byte, error) {
	id := NodeKeyID(key.Public())
	for _, s := range salt.Sealed {
		if s.Node != node || s.Key != id {
			continue
		}
		box, err := base64.StdEncoding.DecodeString(s.Box)
		if err != nil {
			return nil, fmt.Errorf("visitor seed box: %w", err)
		}
		seed, err := hpke.Open(key.priv, sealKDF, sealAEAD, sealInfo(node, salt.From), box)
		if err != nil {
			return nil, fmt.Errorf("visitor seed box: %w", err)
		}
		if SeedID(seed) != salt.ID {
			return nil, errors.New("visitor seed box: not the revision's seed")
		}
		return seed, nil
	}
	return nil, ErrNotSealedHere
}
