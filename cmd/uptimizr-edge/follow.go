package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/fleet/bundle"
	"github.com/uptimizr/edge/fleet/control"
	"github.com/uptimizr/edge/storage"
)

// follower keeps a node on the fleet's current revision
// (COLLECTOR_CONTROL_URL): it watches the control plane's bucket, checks
// and applies each new revision (the same path as fleet apply on the
// node), and reports a heartbeat. While the control plane is down the node
// serves on the last revision it applied, which its store keeps.
type follower struct {
	mu      sync.Mutex // one revision applied at a time
	seen    atomic.Uint64
	client  *control.Client
	env     *opEnv
	store   *storage.Store
	node    string
	log     *slog.Logger
	refused atomic.Int64
	applied atomic.Uint64
	lag     func() int64
	// dir is the data dir; key the node's sealing key (nodekey.go), which
	// a fleet visitor seed is sealed to, replaced once one is taken.
	dir    string
	key    atomic.Pointer[bundle.NodeKey]
	saltID atomic.Pointer[string]
}

// heartbeatEvery is how often a node reports to the control plane;
// retryEvery how soon it tries again a revision it could not apply.
const (
	heartbeatEvery = 2 * time.Second
	retryEvery     = 5 * time.Second
)

func startFollower(ctx context.Context, url, node, dir string, env *opEnv, store *storage.Store, lag func() int64, log *slog.Logger) (*follower, error) {
	key, err := loadNodeKey(dir)
	if err != nil {
		return nil, fmt.Errorf("the node's sealing key: %w", err)
	}
	client, err := control.Dial(url, true, log)
	if err != nil {
		return nil, err
	}
	if node == "" {
		node, _ = os.Hostname()
	}
	f := &follower{client: client, env: env, store: store, node: node, log: log.With("component", "fleet"), lag: lag, dir: dir}
	f.key.Store(key)
	if last, ok, err := env.reg.LastFleetRevision(); err == nil && ok {
		f.applied.Store(last.Number)
		f.saltID.Store(&last.SaltID)
	}
	go client.Watch(ctx, f.apply)
	go f.beat(ctx)
	return f, nil
}

// Refused is how many revisions the node refused.
func (f *follower) Refused() int64 { return f.refused.Load() }

// Revision is the last revision the node applied.
func (f *follower) Revision() uint64 { return f.applied.Load() }

func (f *follower) close() { f.client.Close() }

// apply checks and applies one published revision; a refused one is
// logged and counted, and the node keeps the one it has.
func (f *follower) apply(s *bundle.Signed, raw []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rev, err := bundle.Open(s, f.env.controlPub)
	if err != nil {
		f.refused.Add(1)
		f.log.Warn("fleet revision refused; keeping the last one applied", "err", err, "revision_applied", f.applied.Load())
		return
	}
	if rev.Number <= f.applied.Load() || rev.Number < f.seen.Load() {
		return // applied already (the watch starts with the current one), or a newer one came
	}
	f.seen.Store(rev.Number)
	// A revision that could not be applied now (a module not fetched, a
	// plugin's self-test past its deadline on a busy node) is tried again
	// until it is, or a newer one comes.
	retry := func() {
		time.AfterFunc(retryEvery, func() {
			if f.seen.Load() == rev.Number && f.applied.Load() < rev.Number {
				f.apply(s, raw)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	modules := map[string][]byte{}
	for _, p := range rev.Projects {
		for _, pl := range p.Plugins {
			if _, ok := modules[pl.Module]; ok {
				continue
			}
			if _, err := f.store.Plugins().Module(pl.Module); err == nil {
				modules[pl.Module] = nil // stored here already: fetched only if the chain changes
				continue
			}
			b, err := f.client.Module(ctx, pl.Module)
			if err != nil {
				f.log.Warn("fleet revision not applied yet: a module could not be fetched; trying again", "revision", rev.Number, "err", err)
				retry()
				return
			}
			modules[pl.Module] = b
		}
	}
	for h, b := range modules {
		if b == nil {
			if b, err = f.store.Plugins().Module(h); err == nil {
				modules[h] = b
			}
		}
	}
	o := &op{Name: "fleet.apply", Revision: raw, Modules: modules}
	if rs := rev.VisitorSalt; rs != nil && (f.saltID.Load() == nil || *f.saltID.Load() != rs.ID) {
		// Sealed to this node's key: opened here, handed to the apply, and
		// the key replaced once it is taken.
		seed, err := bundle.OpenSeed(rs, f.node, f.key.Load())
		switch {
		case err == nil:
			o.Seed = hex.EncodeToString(seed)
			core.Wipe(seed)
		case errors.Is(err, bundle.ErrNotSealedHere):
			f.log.Error("the fleet revision's visitor seed was not sealed to this node's key: the node keeps its own seed (salt import it, or apply the bundle again now that the node reports its key)", "revision", rev.Number, "seed", rs.ID)
		default:
			f.refused.Add(1)
			f.log.Warn("fleet revision refused: its visitor seed does not open; keeping the last one applied", "revision", rev.Number, "err", err)
			return
		}
	}
	v, err := o.runFleet(f.env)
	if err != nil {
		f.refused.Add(1)
		f.log.Warn("fleet revision not applied; keeping the last one applied and trying again", "revision", rev.Number, "err", err)
		retry()
		return
	}
	res := v.(fleetApplied)
	if res.SaltTaken {
		id := rev.VisitorSalt.ID
		f.saltID.Store(&id)
		if k, err := rotateNodeKey(f.dir); err != nil {
			f.log.Error("the node's sealing key could not be replaced after taking a visitor seed: the revision still opens with it", "err", err)
		} else {
			f.key.Store(k)
		}
		f.log.Info("fleet visitor seed taken", "seed", id, "from", rev.VisitorSalt.From)
	}
	f.applied.Store(res.Revision)
	f.log.Info("fleet revision applied", "revision", res.Revision, "changes", len(res.Changes))
	f.beatOnce(ctx)
}

func (f *follower) beat(ctx context.Context) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		f.beatOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *follower) beatOnce(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	hb := control.Heartbeat{Node: f.node, Revision: f.applied.Load(), At: time.Now().UTC(), Refused: f.refused.Load(), SealKey: f.key.Load().Public()}
	if id := f.saltID.Load(); id != nil {
		hb.SaltID = *id
	}
	if f.lag != nil {
		hb.ForwardLag = f.lag()
	}
	_ = f.client.Beat(c, hb) // unreachable: the next beat tries again
}

// fleetStatus answers GET /api/v1/fleet from the node's follower.
type fleetStatus struct{ f atomic.Pointer[follower] }

func (s *fleetStatus) FleetStatus(ctx context.Context) (any, error) {
	f := s.f.Load()
	if f == nil {
		return nil, errors.New("the node is starting")
	}
	nodes, err := f.client.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var current uint64
	if sg, _, err := f.client.Latest(ctx); err == nil {
		if rev, err := bundle.Open(sg, nil); err == nil {
			current = rev.Number
		}
	}
	if nodes == nil {
		nodes = []control.Heartbeat{}
	}
	return struct {
		Revision uint64              `json:"revision"`
		Nodes    []control.Heartbeat `json:"nodes"`
	}{current, nodes}, nil
}
