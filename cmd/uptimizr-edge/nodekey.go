package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/fleet/bundle"
	"github.com/uptimizr/edge/storage"
)

// nodeKeyFile holds a following node's sealing key (bundle.NodeKey) in its
// data dir, mode 0600: a fleet visitor seed is sealed to its public half,
// which the node's heartbeat reports. Once the node has taken a seed it
// writes a new key over the old one, so that the revision, kept in the
// bucket's history and in the node's store, no longer opens.
const nodeKeyFile = "fleet-node.key"

// loadNodeKey reads the node's sealing key, making one the first time.
func loadNodeKey(dir string) (*bundle.NodeKey, error) {
	b, err := os.ReadFile(filepath.Join(dir, nodeKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return rotateNodeKey(dir)
	}
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	core.Wipe(b)
	if err != nil {
		return nil, fmt.Errorf("%s is not a sealing key (base64): delete it and the node makes a new one", filepath.Join(dir, nodeKeyFile))
	}
	defer core.Wipe(raw)
	k, err := bundle.ParseNodeKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: delete it and the node makes a new one", filepath.Join(dir, nodeKeyFile), err)
	}
	return k, nil
}

// rotateNodeKey makes a new sealing key and puts it in place of the old
// one: written and synced beside it, the old file's bytes overwritten with
// zeros and synced, then renamed over it (at every instant one whole key
// is there).
func rotateNodeKey(dir string) (*bundle.NodeKey, error) {
	k, err := bundle.NewNodeKey()
	if err != nil {
		return nil, err
	}
	raw, err := k.Bytes()
	if err != nil {
		return nil, err
	}
	text := []byte(base64.StdEncoding.EncodeToString(raw) + "\n")
	core.Wipe(raw)
	defer core.Wipe(text)
	path := filepath.Join(dir, nodeKeyFile)
	tmp := path + ".new"
	if err := writeSynced(tmp, text); err != nil {
		return nil, err
	}
	if err := storage.OverwriteZeros(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return k, nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
