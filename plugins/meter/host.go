package meter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// FuelGlobal returns the fuel global of an instance of a module
// instrumented with ModeFuel or ModeYield, or nil if it has none.
func FuelGlobal(m api.Module) api.MutableGlobal {
	return mutableGlobal(m, FuelExport, api.ValueTypeI64)
}

// StopGlobal returns the stop flag of an instance of a module instrumented
// with ModeFlag, or nil if it has none.
func StopGlobal(m api.Module) api.MutableGlobal {
	return mutableGlobal(m, StopExport, api.ValueTypeI32)
}

func mutableGlobal(m api.Module, name string, t api.ValueType) api.MutableGlobal {
	g, ok := m.ExportedGlobal(name).(api.MutableGlobal)
	if !ok || g.Type() != t {
		return nil
	}
	return g
}

// Alarm sets an instance's stop flag when a deadline passes. It is made
// once per instance and armed around each call:
//
//	a.Arm(deadline)
//	res, err := fn.Call(ctx, args...)
//	late := a.Disarm()
//
// If the call failed and late is true, the deadline interrupted it. Either
// way a failed call leaves the instance dead: close it. A call that
// returned without error is valid even if late is true (it finished before
// it saw the flag), and Disarm has cleared the flag for the next call.
//
// An Alarm is used by one goroutine at a time, like the instance it guards.
// Arm and Disarm do not allocate.
type Alarm struct {
	stop  api.MutableGlobal
	timer *time.Timer
	fired chan struct{}
	armed bool
}

// NewAlarm returns a disarmed alarm for the stop flag of one instance (see
// StopGlobal).
func NewAlarm(stop api.MutableGlobal) *Alarm {
	a := &Alarm{stop: stop, fired: make(chan struct{}, 1)}
	a.timer = time.AfterFunc(time.Hour, a.ring)
	a.timer.Stop()
	return a
}

func (a *Alarm) ring() {
	a.stop.Set(1)
	a.fired <- struct{}{}
}

// Arm clears the flag and starts the timer.
func (a *Alarm) Arm(d time.Duration) {
	a.stop.Set(0)
	a.armed = true
	a.timer.Reset(d)
}

// Disarm stops the timer and reports whether it had fired. After it
// returns the flag is clear and the timer is idle.
func (a *Alarm) Disarm() (fired bool) {
	if !a.armed {
		return false
	}
	a.armed = false
	if a.timer.Stop() {
		return false
	}
	<-a.fired // wait until ring has set the flag
	a.stop.Set(0)
	return true
}

// DefaultSlice is the fuel that InstantiateYield's function gives a
// ModeYield guest each time it yields, when called with slice 0. One unit
// is roughly one wasm instruction; a slice lasts from about 50 µs (a tight
// AssemblyScript loop) to 1 ms (Go), which bounds both how late a deadline
// is noticed and how long a guest can hold off a garbage collection.
const DefaultSlice = 1 << 20

// ErrInterrupted is the cause of the error that a call to a ModeYield
// guest returns when its context is done.
var ErrInterrupted = errors.New("meter: call interrupted")

// InstantiateYield instantiates, in rt, the host module that ModeYield
// guests import. Its function traps if the calling context is done (its
// deadline passed, or it was cancelled), and otherwise gives the calling
// instance slice more fuel. The deadline is read from the clock, so it
// holds even if the context's own timer has not fired yet. Instantiate it
// once per runtime, before the guests.
func InstantiateYield(ctx context.Context, rt wazero.Runtime, slice int64) (api.Module, error) {
	if slice <= 0 {
		slice = DefaultSlice
	}
	return rt.NewHostModuleBuilder(YieldModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, _ []uint64) {
			if err := ctx.Err(); err != nil {
				panic(fmt.Errorf("%w: %w", ErrInterrupted, err))
			}
			if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
				panic(fmt.Errorf("%w: %w", ErrInterrupted, context.DeadlineExceeded))
			}
			g := FuelGlobal(mod)
			if g == nil {
				panic(fmt.Errorf("%w: %s is not instrumented with ModeYield", ErrInterrupted, mod.Name()))
			}
			g.Set(uint64(slice))
		}), nil, nil).
		Export(YieldFunc).
		Instantiate(ctx)
}
