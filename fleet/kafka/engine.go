// Package kafka is the fleet's Kafka engine: a node's forwarder produces
// each record to the topic (default uptimizr-events), keyed by its
// session so that a session's records share a partition and keep their
// order, with the idempotent producer and acks from every in-sync
// replica; a hub reads the topic in a consumer group, committing a
// record's offset only once it has handled it and every one before it in
// its partition (docs/OPERATIONS.md, "Stream engines").
//
// Open never waits for the brokers: the client connects, and connects
// again after every loss, in the background, for as long as the Engine is
// open, so that a node starts and ingests while Kafka is down. Until it
// is up, EnsureTopic fails (the caller tries again) and produced records
// wait in the client, within the in-flight bound, for the brokers to
// take them.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/uptimizr/edge/fleet"
)

// Engine is a Kafka client for the fleet's topic.
type Engine struct {
	o    Options
	log  *slog.Logger
	base []kgo.Opt // brokers, credentials, TLS, logger
	cl   *kgo.Client
}

// Open makes a client of the brokers of o (it connects in the background:
// Open returns at once, the brokers up or not), with the defaults for
// Kafka's own settings.
func Open(ctx context.Context, o fleet.EngineOptions, log *slog.Logger) (*Engine, error) {
	return OpenWith(ctx, Options{EngineOptions: o}, log)
}

// OpenWith is Open with every setting.
func OpenWith(ctx context.Context, o Options, log *slog.Logger) (*Engine, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("engine", "kafka")
	name := o.Name
	if name == "" {
		name = "uptimizr-edge"
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(o.Hosts...),
		kgo.ClientID(name),
		kgo.WithLogger(logger{log}),
	}
	if o.SASL != "" {
		var m sasl.Mechanism
		switch o.SASL {
		case "plain":
			m = plain.Auth{User: o.User, Pass: o.Password}.AsMechanism()
		case "scram-sha-256":
			m = scram.Auth{User: o.User, Pass: o.Password}.AsSha256Mechanism()
		case "scram-sha-512":
			m = scram.Auth{User: o.User, Pass: o.Password}.AsSha512Mechanism()
		}
		base = append(base, kgo.SASL(m))
	}
	if o.TLSCA != "" {
		tc, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		base = append(base, kgo.DialTLSConfig(tc))
	}
	e := &Engine{o: o, log: log, base: base}
	cl, err := kgo.NewClient(e.opts(
		kgo.DefaultProduceTopic(o.Stream),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Records wait for the brokers as long as they are down: the
		// forwarder's bound, not a timeout, limits them.
		kgo.MaxBufferedRecords(2*o.MaxInFlight),
		kgo.ProducerBatchMaxBytes(maxRecordBytes),
		kgo.ProducerBatchCompression(compression(o.Compression)...),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	e.cl = cl
	return e, nil
}

// compression is the producer's batch compression of Options.Compression:
// Snappy (franz-go's default, which every Kafka client reads), or none.
func compression(c string) []kgo.CompressionCodec {
	if c == fleet.CompressionNone {
		return []kgo.CompressionCodec{kgo.NoCompression()}
	}
	return []kgo.CompressionCodec{kgo.SnappyCompression(), kgo.NoCompression()}
}

func (e *Engine) opts(more ...kgo.Opt) []kgo.Opt {
	return append(append([]kgo.Opt(nil), e.base...), more...)
}

func tlsConfig(o Options) (*tls.Config, error) {
	pem, err := os.ReadFile(o.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("kafka: TLSCA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("kafka: TLSCA %s: no PEM certificate in it", o.TLSCA)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("kafka: TLSCert/TLSKey: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Options returns the Engine's settings, defaults applied.
func (e *Engine) Options() Options { return e.o }

// DeadLetterTopic returns the topic of the dead letters, <topic>.deadletter.
func (e *Engine) DeadLetterTopic() string { return e.o.Stream + DeadLetterSuffix }

// EnsureTopic makes sure the topic and its dead-letter topic exist: it
// creates one that is absent, with Options.Partitions (the dead letters
// Options.DeadPartitions), the replication factor of Options.Replicas,
// retention.ms of Options.Retention, and max.message.bytes over the
// largest record; one that exists is left as it is. It fails while no
// broker is reachable; call it again.
func (e *Engine) EnsureTopic(ctx context.Context) error {
	adm := kadm.NewClient(e.cl)
	for _, t := range []struct {
		name       string
		partitions int
		retention  int64
	}{
		{e.o.Stream, e.o.Partitions, e.o.Retention.Milliseconds()},
		{e.DeadLetterTopic(), e.o.DeadPartitions, e.o.DeadRetention.Milliseconds()},
	} {
		retention := strconv.FormatInt(t.retention, 10)
		maxBytes := strconv.Itoa(maxTopicBytes)
		resp, err := adm.CreateTopic(ctx, int32(t.partitions), int16(e.o.Replicas), map[string]*string{
			"retention.ms":      &retention,
			"max.message.bytes": &maxBytes,
		}, t.name)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			e.log.Info("created topic", "topic", t.name, "partitions", t.partitions, "replication", e.o.Replicas, "retention", retention)
		case errors.Is(err, kerr.TopicAlreadyExists):
		default:
			return fmt.Errorf("kafka: create topic %s: %w", t.name, err)
		}
	}
	return nil
}

// Close closes the client: records still buffered fail. Close the
// Publishers first (their Close waits for what is in flight) and the
// Subscribers.
func (e *Engine) Close() {
	e.cl.Close()
}

// logger writes the client's log to the Engine's.
type logger struct{ l *slog.Logger }

func (l logger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case l.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case l.l.Enabled(ctx, slog.LevelInfo):
		return kgo.LogLevelInfo
	case l.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case l.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

func (l logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	case kgo.LogLevelInfo:
		// The client's info is chatty (every connection, every
		// rebalance step): the node's debug.
		lv = slog.LevelDebug
	}
	l.l.Log(context.Background(), lv, msg, keyvals...)
}
