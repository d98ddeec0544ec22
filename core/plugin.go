package core

import (
	"encoding/json"
	"time"
)

// PluginVersion is one immutable version of a project's plugin: a module
// (by content hash), its config and its failure policy. A config change
// makes a new version.
type PluginVersion struct {
	Version   int             `json:"version"`
	Module    string          `json:"module"` // hex SHA-256 of the module bytes
	Size      int             `json:"size"`
	Config    json.RawMessage `json:"config"`
	Policy    string          `json:"policy"`
	CreatedAt time.Time       `json:"createdAt"`
}

// PluginRecord is a project's plugin: its versions and which one is live
// (Active 0: none), with the activation history rollback walks back.
type PluginRecord struct {
	Name     string          `json:"name"`
	Active   int             `json:"active"`
	Previous []int           `json:"previous,omitempty"`
	Versions []PluginVersion `json:"versions"`
}

// Version returns version v, or nil.
func (r *PluginRecord) Version(v int) *PluginVersion {
	for i := range r.Versions {
		if r.Versions[i].Version == v {
			return &r.Versions[i]
		}
	}
	return nil
}

// QuarantineEntry describes one batch set apart because a plugin failed.
type QuarantineEntry struct {
	ID      string    `json:"id"`
	Plugin  string    `json:"plugin"`
	Version int       `json:"version"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	Events  int       `json:"events"`
	// ReceivedAt is when the batch reached the collector (epoch ms).
	ReceivedAt int64 `json:"receivedAt"`
}
