// Package fleet makes many edge nodes one: each node forwards every record
// its ingest log commits to a stream engine (NATS JetStream, or Kafka), and
// a hub folds the fleet's records into its own store and serves the read
// API (docs/ARCHITECTURE.md, "The fleet").
//
// This package holds what the engines share: the forwarded record and its
// message form (record.go), the forwarder that reads a node's log and
// publishes it with a bounded number in flight (forward.go), and the small
// interfaces an engine implements (Publisher, Subscriber). Engines live in
// fleet/jetstream and fleet/kafka; fleet/fleettest holds the conformance
// suite every engine passes. fleet imports core only: the store a forwarder
// reads and a hub writes is given to it behind interfaces it owns (Source,
// Committer), wired by cmd/uptimizr-edge.
package fleet
