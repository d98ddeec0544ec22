package plugins

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Policy decides what happens to a batch whose plugin failed.
type Policy uint8

const (
	// PolicyQuarantine keeps the batch apart (admin-only, TTL) for replay.
	PolicyQuarantine Policy = iota
	// PolicyDrop discards the batch.
	PolicyDrop
	// PolicyPass lets the batch continue unfiltered.
	PolicyPass
)

// ParsePolicy reads quarantine, drop or pass ("" = quarantine).
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(s) {
	case "", "quarantine":
		return PolicyQuarantine, nil
	case "drop":
		return PolicyDrop, nil
	case "pass":
		return PolicyPass, nil
	}
	return 0, fmt.Errorf("unknown failure policy %q (want quarantine, drop or pass)", s)
}

func (p Policy) String() string {
	switch p {
	case PolicyDrop:
		return "drop"
	case PolicyPass:
		return "pass"
	}
	return "quarantine"
}

// Plugin is one version of a project's plugin: a module, its config and
// failure policy, and a bounded pool of initialised instances.
type Plugin struct {
	Name    string
	Version int
	Policy  Policy
	Config  []byte
	Module  *Module

	host   *Host
	idle   chan *instance
	used   atomic.Int64 // unix nanos of the last call
	closed atomic.Bool
}

// IdleFor reports how long the plugin has not been called.
func (p *Plugin) IdleFor(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, p.used.Load()))
}

// NewPlugin prepares a plugin version: it instantiates and initialises one
// instance now, so a config the plugin refuses fails here, not on traffic.
func (h *Host) NewPlugin(ctx context.Context, name string, version int, m *Module, config []byte, policy Policy) (*Plugin, error) {
	p := h.plugin(name, version, m, config, policy)
	in, err := h.newInstance(ctx, p, m, config)
	if err != nil {
		return nil, err
	}
	h.budget.register(p)
	p.put(in)
	return p, nil
}

// plugin makes a plugin version with an empty pool, not yet registered.
func (h *Host) plugin(name string, version int, m *Module, config []byte, policy Policy) *Plugin {
	p := &Plugin{Name: name, Version: version, Policy: policy, Config: config, Module: m, host: h, idle: make(chan *instance, h.opts.PoolSize)}
	p.used.Store(time.Now().UnixNano())
	return p
}

// loadPlugin is NewPlugin for a version that passed its checks at upload
// (loading at start, activation, rollback): when the budget has no room
// for its first instance now, the plugin goes live with an empty pool and
// makes its instance with its first batch, instead of leaving the chain
// (its project's batches would then pass unfiltered).
func (h *Host) loadPlugin(ctx context.Context, name string, version int, m *Module, config []byte, policy Policy) (*Plugin, error) {
	p, err := h.NewPlugin(ctx, name, version, m, config, policy)
	if errors.Is(err, ErrBusy) {
		p = h.plugin(name, version, m, config, policy)
		h.budget.register(p)
		h.opts.Logger.Warn("plugin goes live without an instance: the plugin budget is full", "plugin", name, "version", version)
		return p, nil
	}
	return p, err
}

func (p *Plugin) get(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.idle:
		return in, nil
	default:
		return p.host.newInstance(ctx, p, p.Module, p.Config)
	}
}

func (p *Plugin) put(in *instance) {
	if p.closed.Load() {
		in.close()
		return
	}
	select {
	case p.idle <- in:
		if p.closed.Load() { // Close ran meanwhile
			p.Shrink(0)
		}
		p.host.budget.idled()
	default:
		in.close() // the pool is full
	}
}

// evictOne closes one idle instance to make room in the budget; false if
// the pool was empty.
func (p *Plugin) evictOne() bool {
	select {
	case in := <-p.idle:
		in.close()
		return true
	default:
		return false
	}
}

// Run filters one encoded batch and appends the guest's output to dst. A
// failed call closes the instance it used.
func (p *Plugin) Run(ctx context.Context, batch, dst []byte) ([]byte, error) {
	in, err := p.get(ctx)
	if err != nil {
		return dst, err
	}
	p.used.Store(time.Now().UnixNano())
	out, err := p.host.guests.call(in, ctx, batch, dst, p.host.opts.CallTimeout)
	if err != nil {
		in.close()
		return dst, err
	}
	p.put(in)
	return out, nil
}

// Shrink closes idle instances beyond keep (an idle project gives back its
// memory).
func (p *Plugin) Shrink(keep int) {
	for len(p.idle) > keep {
		select {
		case in := <-p.idle:
			in.close()
		default:
			return
		}
	}
}

// Close closes every idle instance, and those in use as they come back.
func (p *Plugin) Close() {
	p.closed.Store(true)
	p.host.budget.unregister(p)
	p.Shrink(0)
}
