package core

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// keyPrefix tells a key's capability at a glance (docs/API.md, "Keys").
var keyPrefix = map[Capability]string{CapIngest: "uzi_", CapQuery: "uzq_", CapAdmin: "uza_"}

// NewKeySecret makes an API key for caps: a prefix naming its capability
// ("uzk_" for a mix), then 24 random bytes, base64url. Only its hash
// (HashKeySecret) is ever kept.
func NewKeySecret(caps Capability) (string, error) {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	prefix, ok := keyPrefix[caps]
	if !ok {
		prefix = "uzk_"
	}
	return prefix + base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

// HashKeySecret is the SHA-256 of an API key: the only form in which keys
// are stored, published and looked up.
func HashKeySecret(secret []byte) [32]byte { return sha256.Sum256(secret) }

// KeyID is a key's short public handle: the first 12 hex digits of its
// hash.
func KeyID(hash [32]byte) string { return hex.EncodeToString(hash[:6]) }
