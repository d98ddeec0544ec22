package kafka

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptimizr/edge/fleet"
)

// Defaults of Options.
const (
	DefaultTopic         = "uptimizr-events"
	DefaultGroup         = "uptimizr-hub"
	DefaultPartitions    = 6
	DefaultMaxInFlight   = 256
	DefaultRetention     = 7 * 24 * time.Hour
	DefaultDeadRetention = 30 * 24 * time.Hour
	DefaultRetryDelay    = time.Second
)

// DeadLetterSuffix makes a topic's dead-letter topic: <topic>.deadletter.
const DeadLetterSuffix = ".deadletter"

// MsgIDHeader carries a record's fleet.Record.MsgID, by which a hub
// drops a record it has (Kafka does not: the idempotent producer drops its
// own retries only).
const MsgIDHeader = "Uptimizr-Msg-Id"

// maxRecordBytes bounds a produced record (its body, headers and key),
// over fleet.MaxMessageBytes; the topics take messages of maxTopicBytes.
const (
	maxRecordBytes = fleet.MaxMessageBytes + 512<<10
	maxTopicBytes  = fleet.MaxMessageBytes + 1<<20
)

// Options configure an Engine: the settings every engine has, and Kafka's
// own. A zero field takes its default.
type Options struct {
	fleet.EngineOptions

	// Partitions of the topic when the engine creates it. A session's
	// records share one partition (the key is the session id), so the
	// partitions bound how many hub consumers of a group share the work.
	Partitions int
	// DeadPartitions of the dead-letter topic when the engine creates it
	// (default 1).
	DeadPartitions int
	// Retention is the topic's retention.ms, DeadRetention the
	// dead-letter topic's, when the engine creates them.
	Retention, DeadRetention time.Duration
	// RetryDelay is how long a partition waits, after a callback failed,
	// before its records are delivered again from the failed one.
	RetryDelay time.Duration
}

func (o Options) withDefaults() Options {
	if o.Stream == "" {
		o.Stream = DefaultTopic
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Partitions == 0 {
		o.Partitions = DefaultPartitions
	}
	if o.DeadPartitions == 0 {
		o.DeadPartitions = 1
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.DeadRetention == 0 {
		o.DeadRetention = DefaultDeadRetention
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	return o
}

// Validate reports the first setting that is wrong, by name, after the
// defaults are applied.
func (o Options) Validate() error {
	o = o.withDefaults()
	if len(o.Hosts) == 0 {
		return errors.New("kafka: Hosts: no broker")
	}
	for _, h := range o.Hosts {
		if h == "" || strings.ContainsAny(h, ", /") {
			return fmt.Errorf("kafka: Hosts: %q is not HOST:PORT", h)
		}
	}
	if !validTopic(o.Stream + DeadLetterSuffix) {
		return fmt.Errorf("kafka: Stream (the topic) %q: want 1–%d characters of a-z A-Z 0-9 . _ -", o.Stream, maxTopic-len(DeadLetterSuffix))
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		return fmt.Errorf("kafka: Replicas %d: want 1–5", o.Replicas)
	}
	if o.MaxInFlight < 1 {
		return fmt.Errorf("kafka: MaxInFlight %d: want at least 1", o.MaxInFlight)
	}
	if !fleet.ValidCompression(o.Compression) {
		return fmt.Errorf("kafka: Compression %q: want %s or %s", o.Compression, fleet.CompressionSnappy, fleet.CompressionNone)
	}
	if o.Partitions < 1 {
		return fmt.Errorf("kafka: Partitions %d: want at least 1", o.Partitions)
	}
	if o.DeadPartitions < 1 {
		return fmt.Errorf("kafka: DeadPartitions %d: want at least 1", o.DeadPartitions)
	}
	if o.CredsFile != "" {
		return errors.New("kafka: CredsFile: a NATS setting; Kafka authenticates with SASL, User and Password")
	}
	switch o.SASL {
	case "":
		if o.User != "" || o.Password != "" {
			return errors.New("kafka: User and Password need SASL (plain, scram-sha-256 or scram-sha-512)")
		}
	case "plain", "scram-sha-256", "scram-sha-512":
		if o.User == "" || o.Password == "" {
			return fmt.Errorf("kafka: SASL %s needs User and Password", o.SASL)
		}
	default:
		return fmt.Errorf("kafka: SASL %q: want plain, scram-sha-256 or scram-sha-512", o.SASL)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("kafka: TLSCert and TLSKey go together")
	}
	if o.TLSCert != "" && o.TLSCA == "" {
		return errors.New("kafka: TLSCert without TLSCA: TLSCA turns TLS on")
	}
	if o.Retention < 0 {
		return fmt.Errorf("kafka: Retention %v: want positive", o.Retention)
	}
	if o.DeadRetention < 0 {
		return fmt.Errorf("kafka: DeadRetention %v: want positive", o.DeadRetention)
	}
	if o.RetryDelay < 0 {
		return fmt.Errorf("kafka: RetryDelay %v: want positive", o.RetryDelay)
	}
	return nil
}

const maxTopic = 249

func validTopic(s string) bool {
	if s == "" || len(s) > maxTopic || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validGroup: a group id is any non-empty string; bound its length as
// Kafka tools do.
func validGroup(s string) bool { return s != "" && len(s) <= 255 }
