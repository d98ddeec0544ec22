package core

import (
	"fmt"
	"strings"
)

// Capability is a bit set of what an API key may do (docs/API.md, "Keys").
type Capability uint8

// Capabilities.
const (
	CapIngest Capability = 1 << iota // write events; safe to embed in a web page
	CapQuery                         // read
	CapAdmin                         // plugins, channels, keys
)

// String renders caps as a comma list ("ingest,query").
func (c Capability) String() string {
	var parts []string
	if c&CapIngest != 0 {
		parts = append(parts, "ingest")
	}
	if c&CapQuery != 0 {
		parts = append(parts, "query")
	}
	if c&CapAdmin != 0 {
		parts = append(parts, "admin")
	}
	return strings.Join(parts, ",")
}

// ParseCapabilities parses a comma list of ingest, query, admin.
func ParseCapabilities(s string) (Capability, error) {
	var c Capability
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "ingest":
			c |= CapIngest
		case "query":
			c |= CapQuery
		case "admin":
			c |= CapAdmin
		default:
			return 0, fmt.Errorf("unknown capability %q (want ingest, query or admin)", strings.TrimSpace(p))
		}
	}
	return c, nil
}

// Project is the tenant an API key resolves to. Every read and write is scoped
// to it; nothing a client sends can name another.
type Project interface {
	ProjectID() string
	ProjectNum() uint32 // compact internal number used in storage keys
	Channels() Channels // current channel settings
}

// KeyInfo describes a live API key without the key itself.
type KeyInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name,omitempty"` // a fleet bundle's key
	Caps      Capability `json:"-"`
	CapList   string     `json:"caps"`
	CreatedAt string     `json:"createdAt"`
}
