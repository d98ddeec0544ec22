package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/uptimizr/edge/bench/suite"
)

// runFleet runs the local fleet: nats-server, a hub and two edges on
// loopback (go tool task fleet builds the binaries first).
func runFleet(args []string) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	collector := fs.String("collector", "", "uptimizr-edge binary (required)")
	natsBin := fs.String("nats", "", "nats-server binary, built from its Go module (required)")
	batches := fs.Int("batches", 20, "batches sent to each edge")
	batch := fs.Int("batch", 200, "events per batch")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *collector == "" || *natsBin == "" {
		return fmt.Errorf("fleet needs -collector and -nats (go tool task fleet builds both)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := suite.RunFleet(ctx, suite.FleetOptions{Collector: *collector, NATS: *natsBin, Batches: *batches, BatchSize: *batch, Progress: os.Stderr})
	if err != nil {
		return err
	}
	sum := res.Accepted[0] + res.Accepted[1]
	fmt.Printf("\n| | events |\n|---|---:|\n| edge-0 accepted | %d |\n| edge-1 accepted | %d |\n| sum of the edges | %d |\n| the hub counts | %d |\n\n", res.Accepted[0], res.Accepted[1], sum, res.Hub)
	if res.Hub != sum {
		return fmt.Errorf("the hub counts %d events, the edges accepted %d", res.Hub, sum)
	}
	fmt.Printf("The hub counts every event the edges accepted, %.1f s after the first batch.\n", res.Took.Seconds())
	return nil
}
