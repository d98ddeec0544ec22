package fleet

import "context"

// Publisher sends records to a stream engine: one message per record,
// with its headers, on its project's subject (JetStream) or keyed by its
// session (Kafka), deduplicated by MsgID where the engine can.
type Publisher interface {
	// Publish sends r and may return before the engine has it. ack is
	// called exactly once, from any goroutine, with nil once the engine has
	// stored r durably (a JetStream PubAck; Kafka's acks=all), or with the
	// error that stopped it. Publish copies what it keeps of r before it
	// returns (r's events alias the caller's buffers). It blocks while the
	// Publisher has its limit of records in flight, and returns an error,
	// without calling ack, only when r was not sent at all (ctx done, the
	// Publisher closed).
	Publish(ctx context.Context, r *Record, ack func(error)) error
	// Close waits for the acknowledgements in flight (until ctx is done),
	// then releases the connection. Acks not received by then are called
	// with an error.
	Close(ctx context.Context) error
}

// Message is one message as a Subscriber delivers it.
type Message struct {
	Subject string              // JetStream subject, or Kafka topic
	Header  func(string) string // a header's value, "" when absent
	Body    []byte
}

// Subscriber delivers a stream's messages to a hub, from a durable
// position the engine keeps (a JetStream durable consumer, a Kafka consumer
// group).
type Subscriber interface {
	// Consume calls fn for each message, in the stream's order within a
	// subject or partition, until ctx is done or fn returns an error that
	// wraps ErrStop. When fn returns nil the message is acknowledged (it is
	// not delivered again, except after a crash before the acknowledgement
	// reached the engine); any other error leaves it to be delivered again.
	Consume(ctx context.Context, fn func(*Message) error) error
	// DeadLetter publishes a message the hub cannot read, with the reason,
	// to the dead letters (the subject uptimizr.deadletter.<stream>, or
	// the topic <topic>.deadletter), so that it no longer blocks the stream.
	DeadLetter(ctx context.Context, m *Message, reason error) error
	// Pending returns the consumer's lag: the messages of the stream it
	// has not acknowledged yet (JetStream: the consumer's pending and
	// unacknowledged messages, or the stream's messages of its filter
	// before it exists; Kafka: per partition, the end offset less the
	// group's committed offset, or less the first offset without one,
	// counting the records of every project, since a filter is applied
	// as the records are read).
	Pending(ctx context.Context) (uint64, error)
	Close() error
}

// HeaderDeadReason carries, on a dead letter, why the hub could not read
// the message (Subscriber.DeadLetter).
const HeaderDeadReason = "Uptimizr-Dead-Reason"

// ErrStop, wrapped by an error a Consume callback returns, ends Consume.
var ErrStop = errStop{}

type errStop struct{}

func (errStop) Error() string { return "fleet: stop consuming" }

// EngineOptions are what every engine is configured with (from the
// COLLECTOR_FORWARD_* settings, docs/OPERATIONS.md); each engine package
// reads the ones it knows and has its own defaults for the rest.
type EngineOptions struct {
	// Hosts are the engine's servers or brokers, HOST:PORT each
	// (core.ParseEngineURL).
	Hosts []string
	// Stream is the JetStream stream or the Kafka topic ("" = the
	// engine's default: UPTIMIZR_EVENTS, uptimizr-events).
	Stream string
	// Replicas of the stream, or the topic's replication factor, when
	// it is created (0 = 1).
	Replicas int
	// MaxInFlight bounds the records published and not yet acknowledged
	// (0 = 256).
	MaxInFlight int
	// Credentials: a NATS credentials file, or a user and password (NATS,
	// or Kafka SASL with the mechanism SASL: plain, scram-sha-256,
	// scram-sha-512).
	CredsFile, User, Password, SASL string
	// TLS: a CA file to verify the engine with (turns TLS on), and a
	// client certificate and key.
	TLSCA, TLSCert, TLSKey string
	// Name identifies the connection to the engine (the node id).
	Name string
	// Compression of the records on their way: CompressionSnappy (""
	// means it) or CompressionNone. On JetStream a message's body is then a
	// Snappy block of the NDJSON (header Uptimizr-Encoding: snappy), or the
	// NDJSON itself; on Kafka it is the producer's batch compression, and a
	// record's value is always the NDJSON.
	Compression string
}

// The values of EngineOptions.Compression.
const (
	CompressionSnappy = "snappy"
	CompressionNone   = "none"
)

// ValidCompression reports whether c is a value of
// EngineOptions.Compression ("" is CompressionSnappy).
func ValidCompression(c string) bool {
	return c == "" || c == CompressionSnappy || c == CompressionNone
}
