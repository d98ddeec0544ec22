package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/uptimizr/edge/fleet"
	"github.com/uptimizr/edge/fleet/fleettest"
	"github.com/uptimizr/edge/fleet/kafka"
)

// engine is the suite's Kafka: an in-process broker (kfake) of its own.
type engine struct {
	k *fleettest.KafkaCluster
	e *kafka.Engine
}

func newEngine(t *testing.T, c fleettest.Config) fleettest.Engine {
	k := fleettest.StartKafka(t)
	e, err := kafka.OpenWith(context.Background(), kafka.Options{
		EngineOptions: fleet.EngineOptions{Hosts: []string{k.Addr()}, MaxInFlight: c.MaxInFlight, Name: "fleettest", Compression: c.Compression},
		Partitions:    3,
		RetryDelay:    20 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.EnsureTopic(ctx); err != nil {
		t.Fatalf("EnsureTopic: %v", err)
	}
	return &engine{k: k, e: e}
}

func (g *engine) Publisher(t *testing.T) fleet.Publisher { return g.e.Publisher() }

func (g *engine) Subscriber(t *testing.T, group, filter string) fleet.Subscriber {
	s, err := g.e.Subscriber(group, filter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (g *engine) DeadLetters(t *testing.T, group string) fleet.Subscriber {
	s, err := g.e.DeadLetters(group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Caps: the idempotent producer drops its own retries, not a second
// publish of a record; kfake keeps its data across a restart (DataDir).
func (g *engine) Caps() fleettest.Caps { return fleettest.Caps{Dedup: false, Restart: true} }

func (g *engine) Stop(t *testing.T)  { g.k.Stop() }
func (g *engine) Start(t *testing.T) { g.k.Start() }

func TestConformance(t *testing.T) {
	fleettest.Run(t, newEngine)
}
