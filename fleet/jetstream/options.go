package jetstream

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptimizr/edge/fleet"
)

// Defaults of Options.
const (
	DefaultStream          = "UPTIMIZR_EVENTS"
	DefaultConsumer        = "uptimizr-hub"
	DefaultDuplicateWindow = 2 * time.Minute
	// MinDuplicateWindow is the shortest duplicate window the stream may
	// have: a node that restarts sends again what the engine acknowledged
	// after its last saved position, and the window is what drops it.
	MinDuplicateWindow   = 2 * time.Minute
	DefaultMaxAge        = 7 * 24 * time.Hour
	DefaultDeadMaxAge    = 30 * 24 * time.Hour
	DefaultDeadMaxBytes  = 1 << 30
	DefaultMaxInFlight   = 256
	DefaultAckTimeout    = 30 * time.Second
	DefaultAckWait       = 30 * time.Second
	DefaultMaxAckPending = 1024
	DefaultRetryDelay    = time.Second
	DefaultReconnectWait = 2 * time.Second
)

// DeadLetterPrefix is the subject prefix of the dead letters: a stream's
// dead letters go to DeadLetterPrefix + stream name.
const DeadLetterPrefix = "uptimizr.deadletter."

// Options configure an Engine: the settings every engine has, and
// JetStream's own. A zero field takes its default.
type Options struct {
	fleet.EngineOptions

	// DuplicateWindow is the stream's duplicate window (Nats-Msg-Id),
	// when the engine creates the stream or finds it shorter (at least
	// MinDuplicateWindow).
	DuplicateWindow time.Duration
	// MaxAge is how long the stream keeps a message, when the engine
	// creates it.
	MaxAge time.Duration
	// DeadMaxAge and DeadMaxBytes bound the dead-letter stream when the
	// engine creates it.
	DeadMaxAge   time.Duration
	DeadMaxBytes int64
	// AckTimeout is how long a publish waits for its PubAck before its
	// acknowledgement reports a timeout (and the forwarder sends it again).
	AckTimeout time.Duration
	// AckWait is how long a consumer waits for a delivered message's
	// acknowledgement before it delivers the message again.
	AckWait time.Duration
	// MaxAckPending bounds a consumer's messages delivered and not yet
	// acknowledged.
	MaxAckPending int
	// RetryDelay is how long a message whose callback failed waits before
	// it is delivered again.
	RetryDelay time.Duration
	// ReconnectWait is the pause between two connection attempts.
	ReconnectWait time.Duration
}

func (o Options) withDefaults() Options {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.DeadMaxAge == 0 {
		o.DeadMaxAge = DefaultDeadMaxAge
	}
	if o.DeadMaxBytes == 0 {
		o.DeadMaxBytes = DefaultDeadMaxBytes
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.AckWait == 0 {
		o.AckWait = DefaultAckWait
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = DefaultMaxAckPending
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.ReconnectWait == 0 {
		o.ReconnectWait = DefaultReconnectWait
	}
	return o
}

// Validate reports the first setting that is wrong, by name, after the
// defaults are applied.
func (o Options) Validate() error {
	o = o.withDefaults()
	if len(o.Hosts) == 0 {
		return errors.New("jetstream: Hosts: no NATS server")
	}
	for _, h := range o.Hosts {
		if h == "" || strings.ContainsAny(h, ", /") {
			return fmt.Errorf("jetstream: Hosts: %q is not HOST:PORT", h)
		}
	}
	if !validStreamName(o.Stream) {
		return fmt.Errorf("jetstream: Stream %q: want 1–%d characters, none of . * > / \\ or white space", o.Stream, maxStreamName)
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		return fmt.Errorf("jetstream: Replicas %d: want 1–5", o.Replicas)
	}
	if o.MaxInFlight < 1 {
		return fmt.Errorf("jetstream: MaxInFlight %d: want at least 1", o.MaxInFlight)
	}
	if !fleet.ValidCompression(o.Compression) {
		return fmt.Errorf("jetstream: Compression %q: want %s or %s", o.Compression, fleet.CompressionSnappy, fleet.CompressionNone)
	}
	if o.CredsFile != "" && (o.User != "" || o.Password != "") {
		return errors.New("jetstream: CredsFile and User/Password: give one or the other")
	}
	if o.Password != "" && o.User == "" {
		return errors.New("jetstream: Password without User")
	}
	if o.SASL != "" {
		return fmt.Errorf("jetstream: SASL %q: a Kafka setting; NATS authenticates with CredsFile, or User and Password", o.SASL)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("jetstream: TLSCert and TLSKey go together")
	}
	if o.DuplicateWindow < MinDuplicateWindow {
		return fmt.Errorf("jetstream: DuplicateWindow %v: want at least %v", o.DuplicateWindow, MinDuplicateWindow)
	}
	if o.MaxAge < 0 || (o.MaxAge > 0 && o.MaxAge < o.DuplicateWindow) {
		return fmt.Errorf("jetstream: MaxAge %v: want at least the duplicate window, %v", o.MaxAge, o.DuplicateWindow)
	}
	if o.DeadMaxAge < 0 {
		return fmt.Errorf("jetstream: DeadMaxAge %v: want positive", o.DeadMaxAge)
	}
	if o.DeadMaxBytes < 0 {
		return fmt.Errorf("jetstream: DeadMaxBytes %d: want positive", o.DeadMaxBytes)
	}
	if o.AckTimeout < 0 {
		return fmt.Errorf("jetstream: AckTimeout %v: want positive", o.AckTimeout)
	}
	if o.AckWait < time.Second {
		return fmt.Errorf("jetstream: AckWait %v: want at least 1s", o.AckWait)
	}
	if o.MaxAckPending < 1 {
		return fmt.Errorf("jetstream: MaxAckPending %d: want at least 1", o.MaxAckPending)
	}
	if o.RetryDelay < 0 {
		return fmt.Errorf("jetstream: RetryDelay %v: want positive", o.RetryDelay)
	}
	if o.ReconnectWait < 0 {
		return fmt.Errorf("jetstream: ReconnectWait %v: want positive", o.ReconnectWait)
	}
	return nil
}

const maxStreamName = 255

func validStreamName(s string) bool {
	if s == "" || len(s) > maxStreamName {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f || strings.ContainsRune(".*>/\\", c) {
			return false
		}
	}
	return true
}

// validDurable: consumer names follow the stream names' rules.
func validDurable(s string) bool { return validStreamName(s) }
