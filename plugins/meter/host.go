package meter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// FuelGlobal returns the fuel global of an instance of an instrumented
// module, or nil if it has none.
func FuelGlobal(m api.Module) api.MutableGlobal {
	g, ok := m.ExportedGlobal(FuelExport).(api.MutableGlobal)
	if !ok || g.Type() != api.ValueTypeI64 {
		return nil
	}
	return g
}

// DefaultSlice is the fuel that InstantiateYield's function gives a guest
// each time it yields, when called with slice 0. One unit is roughly one
// wasm instruction; a slice lasts from about 50 µs (a tight AssemblyScript
// loop) to 1 ms (Go), which bounds both how late a deadline is noticed and
// how long a guest can hold off a garbage collection.
const DefaultSlice = 1 << 20

// ErrInterrupted is the cause of the error that a call to an instrumented
// guest returns when its context is done.
var ErrInterrupted = errors.New("meter: call interrupted")

// InstantiateYield instantiates, in rt, the host module that instrumented
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
			if c, ok := ctx.(*Cutter); ok {
				if !c.refill() {
					panic(fmt.Errorf("%w: %w", ErrInterrupted, context.DeadlineExceeded))
				}
				return
			}
			if err := ctx.Err(); err != nil {
				panic(fmt.Errorf("%w: %w", ErrInterrupted, err))
			}
			if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
				panic(fmt.Errorf("%w: %w", ErrInterrupted, context.DeadlineExceeded))
			}
			g := FuelGlobal(mod)
			if g == nil {
				panic(fmt.Errorf("%w: %s is not instrumented", ErrInterrupted, mod.Name()))
			}
			g.Set(uint64(slice))
		}), nil, nil).
		Export(YieldFunc).
		Instantiate(ctx)
}

// recut is how long a Cutter waits before it zeroes the fuel again, while
// the call it cut has not yet yielded (see Cutter).
const recut = 100 * time.Microsecond

// Cutter ends the calls of one instance promptly at their
// deadline, instead of at the end of the slice of fuel in which the
// deadline passes (a slice lasts up to a millisecond of Go code, and far
// longer if it is spent in bulk memory instructions, which cost one unit
// each whatever their length). It is the context of the instance's calls
// (see Arm): a timer set at the deadline zeroes the instance's fuel, so
// the guest yields at its next check, and the yield function, seeing the
// deadline passed, traps. The yield function also compares the clock with
// the deadline at every refill, so a timer that cannot run (every
// goroutine is stopped while a garbage collection waits for the guest)
// costs at most one slice, as without a Cutter.
//
// The guest updates its fuel with a read, a subtraction and a write; a
// zero stored between its read and its write is lost. The timer therefore
// zeroes the fuel again every 100 µs until the call ends. Every Go write
// of the fuel (the refill, the timer, Arm) happens under the Cutter's lock;
// the guest's own reads and writes are compiled code, which the race
// detector does not see (see the memory model in the package doc).
//
// A Cutter serves one call at a time, like its instance. Arm and Disarm
// allocate nothing.
type Cutter struct {
	fuel  api.MutableGlobal
	slice uint64
	timer *time.Timer

	mu       sync.Mutex
	parent   context.Context
	deadline time.Time
	armed    bool
	cut      bool
}

// NewCutter returns a disarmed Cutter for the fuel global of one instance
// (see FuelGlobal), refilled with slice units (0: DefaultSlice) at each
// yield. The runtime's yield function (InstantiateYield) recognises it as
// the context of a call.
func NewCutter(fuel api.MutableGlobal, slice int64) *Cutter {
	if slice <= 0 {
		slice = DefaultSlice
	}
	c := &Cutter{fuel: fuel, slice: uint64(slice), parent: context.Background()}
	c.timer = time.AfterFunc(time.Hour, c.ring)
	c.timer.Stop()
	return c
}

// Arm starts a call of at most d: it gives the instance a slice of fuel and
// sets the timer, and returns the context to call the instance with.
// Values are looked up in parent; its cancellation is not watched.
func (c *Cutter) Arm(parent context.Context, d time.Duration) context.Context {
	c.mu.Lock()
	c.parent, c.deadline = parent, time.Now().Add(d)
	c.armed, c.cut = true, false
	c.fuel.Set(c.slice)
	c.timer.Reset(d)
	c.mu.Unlock()
	return c
}

// Disarm ends the call: the timer stops, and a timer callback that is
// already running finds the Cutter disarmed. It reports whether the call
// was cut (its fuel zeroed or a refill refused).
func (c *Cutter) Disarm() (cut bool) {
	c.mu.Lock()
	c.armed = false
	c.timer.Stop()
	cut = c.cut
	c.mu.Unlock()
	return cut
}

// ring is the timer's callback.
func (c *Cutter) ring() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return
	}
	if left := time.Until(c.deadline); left > 0 {
		// A callback of an earlier call's timer, running late.
		c.timer.Reset(left)
		return
	}
	c.cut = true
	c.fuel.Set(0)
	c.timer.Reset(recut)
}

// refill is the yield function's work: false when the call must end.
func (c *Cutter) refill() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut || !time.Now().Before(c.deadline) {
		c.cut = true
		return false
	}
	c.fuel.Set(c.slice)
	return true
}

// Deadline, Done, Err and Value make a Cutter the context of its calls.
// Done is nil and Err nil: the deadline is enforced through the fuel, and
// the parent's cancellation does not stop a call at most one deadline
// long.
func (c *Cutter) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *Cutter) Done() <-chan struct{}       { return nil }
func (c *Cutter) Err() error                  { return nil }
func (c *Cutter) Value(key any) any           { return c.parent.Value(key) }
