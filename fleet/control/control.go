// Package control is the fleet's control plane on NATS JetStream: the
// current revision in a KV bucket, the plugin modules in an Object Store
// by content hash, and the nodes' heartbeats in a second KV bucket
// (docs/FLEET.md). It carries revisions; checking and applying one is the
// node's (bundle.Open, storage).
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uptimizr/edge/fleet/bundle"
)

// The buckets.
const (
	RevisionBucket = "UPTIMIZR_FLEET"
	ModuleBucket   = "UPTIMIZR_FLEET_MODULES"
	NodeBucket     = "UPTIMIZR_FLEET_NODES"
	revisionKey    = "revision"
)

// Errors of the control plane.
var (
	// ErrNoRevision: nothing has been published yet.
	ErrNoRevision = errors.New("no fleet revision has been published")
	// ErrConflict: another apply published first.
	ErrConflict = errors.New("another apply published a revision first: run it again")
)

// Client is a connection to the control plane.
type Client struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	log   *slog.Logger
	kv    jetstream.KeyValue
	obj   jetstream.ObjectStore
	nodes jetstream.KeyValue
}

// Dial connects to url (nats://HOST:PORT[,HOST:PORT…]). With wait, it
// keeps trying while the servers are down (a node); without, it fails at
// once (a command).
func Dial(url string, wait bool, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	servers := strings.TrimPrefix(url, "nats://")
	if servers == "" || strings.Contains(servers, "://") {
		return nil, fmt.Errorf("control: %q: want nats://HOST:PORT[,HOST:PORT…]", url)
	}
	var urls []string
	for _, h := range strings.Split(servers, ",") {
		urls = append(urls, "nats://"+strings.TrimPrefix(h, "nats://"))
	}
	opts := []nats.Option{nats.Name("uptimizr-control"), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond)}
	if wait {
		opts = append(opts, nats.RetryOnFailedConnect(true),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("control plane: disconnected; reconnecting", "err", err) }),
			nats.ReconnectHandler(func(*nats.Conn) { log.Info("control plane: reconnected") }))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return &Client{nc: nc, js: js, log: log}, nil
}

// Close closes the connection.
func (c *Client) Close() { c.nc.Close() }

// Ensure creates the buckets when they are missing, and opens them.
func (c *Client) Ensure(ctx context.Context) error {
	var err error
	if c.kv == nil {
		if c.kv, err = c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: RevisionBucket, History: 16,
			Description: "Uptimizr Edge fleet revisions (docs/FLEET.md)"}); err != nil {
			return fmt.Errorf("control: bucket %s: %w", RevisionBucket, err)
		}
	}
	if c.obj == nil {
		if c.obj, err = c.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: ModuleBucket,
			Description: "Uptimizr Edge plugin modules by SHA-256"}); err != nil {
			return fmt.Errorf("control: bucket %s: %w", ModuleBucket, err)
		}
	}
	if c.nodes == nil {
		if c.nodes, err = c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: NodeBucket, History: 1,
			Description: "Uptimizr Edge nodes' heartbeats"}); err != nil {
			return fmt.Errorf("control: bucket %s: %w", NodeBucket, err)
		}
	}
	return nil
}

// Latest returns the current revision as published, with its sequence in
// the bucket (what Publish compares against); ErrNoRevision when there is
// none.
func (c *Client) Latest(ctx context.Context) (*bundle.Signed, uint64, error) {
	if err := c.Ensure(ctx); err != nil {
		return nil, 0, err
	}
	e, err := c.kv.Get(ctx, revisionKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNoRevision
	}
	if err != nil {
		return nil, 0, fmt.Errorf("control: %w", err)
	}
	var s bundle.Signed
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil, e.Revision(), fmt.Errorf("control: the published revision: %w", err)
	}
	return &s, e.Revision(), nil
}

// History returns the revisions the bucket still holds (up to 16),
// newest first, each with its sequence.
func (c *Client) History(ctx context.Context) ([]*bundle.Signed, error) {
	if err := c.Ensure(ctx); err != nil {
		return nil, err
	}
	entries, err := c.kv.History(ctx, revisionKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	var out []*bundle.Signed
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Operation() != jetstream.KeyValuePut {
			continue
		}
		var s bundle.Signed
		if json.Unmarshal(entries[i].Value(), &s) == nil {
			out = append(out, &s)
		}
	}
	return out, nil
}

// Publish puts the modules not already stored (by content hash), then the
// revision, if the bucket's latest is still seq (0: none yet); else
// ErrConflict and nothing is published but modules, which nothing names.
func (c *Client) Publish(ctx context.Context, s *bundle.Signed, modules map[string][]byte, seq uint64) (uint64, error) {
	if err := c.Ensure(ctx); err != nil {
		return 0, err
	}
	hashes := make([]string, 0, len(modules))
	for h := range modules {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	for _, h := range hashes {
		if bundle.ModuleHash(modules[h]) != h {
			return 0, fmt.Errorf("control: module %s: its bytes have another hash", h)
		}
		if _, err := c.obj.GetInfo(ctx, h); err == nil {
			continue
		}
		if _, err := c.obj.PutBytes(ctx, h, modules[h]); err != nil {
			return 0, fmt.Errorf("control: module %s: %w", h, err)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return 0, err
	}
	var n uint64
	if seq == 0 {
		n, err = c.kv.Create(ctx, revisionKey, b)
	} else {
		n, err = c.kv.Update(ctx, revisionKey, b, seq)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
		return 0, ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("control: %w", err)
	}
	return n, nil
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Module returns the module of content hash h, checked against it.
func (c *Client) Module(ctx context.Context, h string) ([]byte, error) {
	if err := c.Ensure(ctx); err != nil {
		return nil, err
	}
	r, err := c.obj.Get(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("control: module %s: %w", h, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("control: module %s: %w", h, err)
	}
	if bundle.ModuleHash(b) != h {
		return nil, fmt.Errorf("control: module %s: its bytes have another hash", h)
	}
	return b, nil
}

// Watch calls fn with the current revision and each one published after,
// until ctx ends, through disconnections (the bucket's watcher resumes
// once the connection is back). It waits while the buckets cannot be
// reached.
func (c *Client) Watch(ctx context.Context, fn func(s *bundle.Signed, raw []byte)) {
	for ctx.Err() == nil {
		if err := c.Ensure(ctx); err != nil {
			c.log.Warn("control plane unreachable; serving on the last revision", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		w, err := c.kv.Watch(ctx, revisionKey)
		if err != nil {
			c.log.Warn("control plane: watch", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // the end of the current values, or a delete
			}
			var s bundle.Signed
			if err := json.Unmarshal(e.Value(), &s); err != nil {
				c.log.Warn("control plane: a revision that is not one", "err", err)
				continue
			}
			fn(&s, e.Value())
		}
		w.Stop()
		if !sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Heartbeat is what a node reports.
type Heartbeat struct {
	Node     string    `json:"node"`
	Revision uint64    `json:"revision"`
	At       time.Time `json:"at"`
	// ForwardLag is the bytes of records the node has not yet forwarded.
	ForwardLag int64 `json:"forwardLag"`
	// Refused is how many revisions the node refused (signature, checks).
	Refused int64 `json:"refused"`
	// SealKey is the public key a fleet visitor seed is sealed to for this
	// node (bundle.NodeKey.Public); it changes once the node takes one.
	SealKey string `json:"sealKey,omitempty"`
	// SaltID names the last fleet visitor seed the node took.
	SaltID string `json:"saltId,omitempty"`
}

// Beat publishes a node's heartbeat.
func (c *Client) Beat(ctx context.Context, hb Heartbeat) error {
	if err := c.Ensure(ctx); err != nil {
		return err
	}
	b, _ := json.Marshal(hb)
	_, err := c.nodes.Put(ctx, hb.Node, b)
	return err
}

// Nodes lists the nodes' last heartbeats, by node id.
func (c *Client) Nodes(ctx context.Context) ([]Heartbeat, error) {
	if err := c.Ensure(ctx); err != nil {
		return nil, err
	}
	lister, err := c.nodes.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []Heartbeat
	for k := range lister.Keys() {
		e, err := c.nodes.Get(ctx, k)
		if err != nil {
			continue
		}
		var hb Heartbeat
		if json.Unmarshal(e.Value(), &hb) == nil {
			out = append(out, hb)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}
