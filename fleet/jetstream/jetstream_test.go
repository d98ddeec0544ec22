package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/uptimizr/edge/fleet"
	"github.com/uptimizr/edge/fleet/fleettest"
	"github.com/uptimizr/edge/fleet/jetstream"
)

// engine is the suite's JetStream: an embedded nats-server of its own.
type engine struct {
	srv *fleettest.NATSServer
	e   *jetstream.Engine
}

func newEngine(t *testing.T, c fleettest.Config) fleettest.Engine {
	srv := fleettest.StartNATS(t)
	e, err := jetstream.OpenWith(context.Background(), jetstream.Options{
		EngineOptions: fleet.EngineOptions{Hosts: []string{srv.Addr()}, MaxInFlight: c.MaxInFlight, Name: "fleettest", Compression: c.Compression},
		RetryDelay:    20 * time.Millisecond,
		ReconnectWait: 20 * time.Millisecond,
		AckTimeout:    10 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	ensure(t, e)
	return &engine{srv: srv, e: e}
}

// ensure creates the streams, waiting for the connection.
func ensure(t *testing.T, e *jetstream.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		err := e.EnsureStream(ctx)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("EnsureStream: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (g *engine) Publisher(t *testing.T) fleet.Publisher { return g.e.Publisher() }

func (g *engine) Subscriber(t *testing.T, durable, filter string) fleet.Subscriber {
	s, err := g.e.Subscriber(durable, filter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (g *engine) DeadLetters(t *testing.T, durable string) fleet.Subscriber {
	s, err := g.e.DeadLetters(durable)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (g *engine) Caps() fleettest.Caps {
	return fleettest.Caps{Dedup: true, Restart: true, SnappyBodies: true}
}

func (g *engine) Stop(t *testing.T)  { g.srv.Stop() }
func (g *engine) Start(t *testing.T) { g.srv.Start() }

func TestConformance(t *testing.T) {
	fleettest.Run(t, newEngine)
}
