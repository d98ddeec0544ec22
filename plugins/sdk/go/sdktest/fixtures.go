package sdktest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// envelopeOrder is the order of the envelope members in canonical JSON
// (docs/PLUGIN_ABI.md); payload members follow in name order.
var envelopeOrder = []string{"type", "projectId", "sessionId", "visitorId", "ts", "sdkVersion", "sceneId", "url", "pageMeta"}

// Canonical turns one client event into the shape the collector stores
// and plugins receive: compact, envelope members first, with a visitorId
// (derived from the sessionId, as a stand-in for the server's hash) and a
// sceneId ("default") when missing. It is a test approximation: it does
// not validate the event or reorder payload fields by catalog.
func Canonical(event []byte) ([]byte, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(event, &members); err != nil {
		return nil, err
	}
	if members == nil {
		return nil, errors.New("event is not an object")
	}
	if _, ok := members["visitorId"]; !ok {
		sum := sha256.Sum256(members["sessionId"])
		members["visitorId"] = json.RawMessage(`"` + hex.EncodeToString(sum[:16]) + `"`)
	}
	if _, ok := members["sceneId"]; !ok {
		members["sceneId"] = json.RawMessage(`"default"`)
	}
	var rest []string
	for k := range members {
		if !slices.Contains(envelopeOrder, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	for _, k := range append(slices.Clone(envelopeOrder), rest...) {
		v, ok := members[k]
		if !ok {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		name, _ := json.Marshal(k)
		buf.Write(name)
		buf.WriteByte(':')
		if err := json.Compact(&buf, v); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// LoadFixture reads a collect body ({"events":[…]} or a bare array) and
// returns its events in canonical form.
func LoadFixture(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw []json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) {
		err = json.Unmarshal(data, &raw)
	} else {
		var body struct {
			Events []json.RawMessage `json:"events"`
		}
		err = json.Unmarshal(data, &body)
		raw = body.Events
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	events := make([][]byte, len(raw))
	for i, r := range raw {
		if events[i], err = Canonical(r); err != nil {
			return nil, fmt.Errorf("%s: event %d: %w", path, i, err)
		}
	}
	return events, nil
}

// Fixtures returns the paths of the sample batches (*.json) in dir, or
// nil when dir does not exist.
func Fixtures(dir string) []string {
	paths, _ := filepath.Glob(filepath.Join(dir, "batch*.json"))
	return paths
}
