package plugins

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uptimizr/edge/core"
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

	host *Host
	idle chan *instance
	rate atomic.Uint64 // fuel units per millisecond (float64 bits), measured on calls
	used atomic.Int64  // unix nanos of the last call
}

// IdleFor reports how long the plugin has not been called.
func (p *Plugin) IdleFor(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, p.used.Load()))
}

// defaultFuelRate is the fuel units per millisecond assumed before a
// plugin's own rate is measured. Guests range from about 1M (Go) to 25M
// (tight AssemblyScript) units per ms; assuming the slowest keeps an
// unmeasured plugin's overrun within its deadline, and a budget that runs
// out early in wall-clock terms is corrected on the spot (see Run).
const defaultFuelRate = 1e6

// budget is the fuel of one call: the plugin's measured rate times the
// deadline.
func (p *Plugin) budget() int64 {
	r := math.Float64frombits(p.rate.Load())
	if r == 0 {
		r = defaultFuelRate
	}
	b := r * float64(p.host.opts.CallTimeout) / float64(time.Millisecond)
	return int64(max(1e5, min(b, 1<<40)))
}

// observe folds a successful call's fuel and time into the rate.
func (p *Plugin) observe(used int64, elapsed time.Duration) {
	if used <= 0 || elapsed < 100*time.Microsecond { // shorter calls time too coarsely
		return
	}
	obs := float64(used) / (float64(elapsed) / float64(time.Millisecond))
	old := math.Float64frombits(p.rate.Load())
	if old != 0 {
		obs = 0.7*old + 0.3*obs
	}
	p.rate.Store(math.Float64bits(obs))
}

// NewPlugin prepares a plugin version: it instantiates and initialises one
// instance now, so a config the plugin refuses fails here, not on traffic.
func (h *Host) NewPlugin(ctx context.Context, name string, version int, m *Module, config []byte, policy Policy) (*Plugin, error) {
	p := &Plugin{Name: name, Version: version, Policy: policy, Config: config, Module: m, host: h, idle: make(chan *instance, h.opts.PoolSize)}
	in, err := h.newInstance(ctx, m, config)
	if err != nil {
		return nil, err
	}
	p.put(in)
	// Measure the plugin's fuel rate on the sample batch, so its first call
	// on traffic already has a budget matching the deadline. A plugin that
	// fails here is still returned: its calls fail the same way, and the
	// upload self-test reports it.
	cal := encodeBatch(nil, calibrationBatch())
	for i := 0; i < 3; i++ {
		if _, err := p.Run(ctx, cal, nil); err != nil {
			break
		}
	}
	return p, nil
}

func (p *Plugin) get(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.idle:
		return in, nil
	default:
		return p.host.newInstance(ctx, p.Module, p.Config)
	}
}

func (p *Plugin) put(in *instance) {
	select {
	case p.idle <- in:
	default:
		in.close() // the pool is full
	}
}

// Run filters one encoded batch and appends the guest's output to dst. A
// failed call closes the instance it used.
func (p *Plugin) Run(ctx context.Context, batch, dst []byte) ([]byte, error) {
	in, err := p.get(ctx)
	if err != nil {
		return dst, err
	}
	budget := p.budget()
	start := time.Now()
	p.used.Store(start.UnixNano())
	out, used, err := in.call(ctx, batch, dst, budget)
	elapsed := time.Since(start)
	if err != nil {
		in.close()
		// Fuel that ran out well before the deadline in wall-clock time,
		// while the plugin's rate was still unmeasured, means the assumed
		// rate was too low: learn it from this call and run it once more.
		if errors.Is(err, ErrTimeout) && elapsed < p.host.opts.CallTimeout/2 && p.rate.Load() == 0 {
			p.observe(used, elapsed)
			if p.budget() > budget {
				return p.Run(ctx, batch, dst)
			}
		}
		return dst, err
	}
	p.observe(used, elapsed)
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

// Close closes every idle instance.
func (p *Plugin) Close() { p.Shrink(0) }

// calibrationBatch is the self-test sample repeated to a realistic size, so
// that its run takes long enough to measure.
func calibrationBatch() *core.Batch {
	one := sampleBatch("calibration")
	b := &core.Batch{ProjectID: one.ProjectID, Info: one.Info}
	for r := 0; r < 40; r++ {
		for i := range one.Events {
			e := &one.Events[i]
			b.AppendEvent(e.Type, e.TS, one.Session(i), one.JSON(i))
		}
	}
	return b
}
