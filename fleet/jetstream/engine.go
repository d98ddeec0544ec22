// Package jetstream is the fleet's NATS JetStream engine: a node's
// forwarder publishes each record to the stream (default UPTIMIZR_EVENTS)
// on its project's subject, uptimizr.events.<project token>, with
// Nats-Msg-Id "<node>:<project>:<seq>" so that the stream drops a record
// sent again within its duplicate window; a hub reads the stream through a
// durable pull consumer (docs/OPERATIONS.md, "Stream engines").
//
// Open never waits for the servers: the connection is made, and made
// again after every loss, in the background, for as long as the Engine is
// open, so that a node starts and ingests while NATS is down. Until it is
// up, EnsureStream fails (the caller tries again) and every publish is
// acknowledged with an error (the forwarder keeps the records and sends
// them again).
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uptimizr/edge/fleet"
	"github.com/uptimizr/edge/fleet/internal/subjects"
)

// Engine is a connection to NATS and the fleet's stream on it.
type Engine struct {
	o   Options
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream
}

// Open connects to the servers of o (in the background: it returns at
// once, the servers up or not) with the defaults for JetStream's own
// settings.
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
	log = log.With("engine", "jetstream")
	urls := make([]string, len(o.Hosts))
	for i, h := range o.Hosts {
		urls[i] = "nats://" + h
	}
	opts := []nats.Option{
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(o.ReconnectWait),
		// No buffer while disconnected: a publish then fails at once and
		// the forwarder sends it again after the reconnect, in order,
		// instead of a buffer flushing records after ones the lost
		// connection took with it.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("disconnected from NATS; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("connected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("connected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("NATS error", "subject", subj, "err", err)
		}),
	}
	if o.Name != "" {
		opts = append(opts, nats.Name(o.Name))
	}
	switch {
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Engine{o: o, log: log, nc: nc, js: js}, nil
}

// Options returns the Engine's settings, defaults applied.
func (e *Engine) Options() Options { return e.o }

// Connected reports whether the Engine is connected to a server now.
func (e *Engine) Connected() bool { return e.nc.IsConnected() }

// MaxBody returns the largest message body the connected server takes:
// its max_payload less room for a record's headers (0 before the first
// connection).
func (e *Engine) MaxBody() int64 {
	n := e.nc.MaxPayload()
	if n <= headerRoom {
		return 0
	}
	return n - headerRoom
}

// headerRoom is what MaxBody keeps for a record's headers and subject.
const headerRoom = 4 << 10

// DeadLetterSubject returns the subject of the stream's dead letters,
// uptimizr.deadletter.<stream>.
func (e *Engine) DeadLetterSubject() string { return DeadLetterPrefix + e.o.Stream }

// DeadLetterStream returns the name of the stream that keeps the dead
// letters, <stream>_DEADLETTER.
func (e *Engine) DeadLetterStream() string { return e.o.Stream + "_DEADLETTER" }

// eventsSubjects are the subjects the fleet's stream must hold.
const eventsSubjects = fleet.SubjectPrefix + ">"

// EnsureStream makes sure the stream and its dead-letter stream exist:
// it creates one that is absent (subjects uptimizr.events.>, file storage,
// the replicas, duplicate window and max age of the Options), and checks
// one that exists: its subjects must cover uptimizr.events.> (it adds
// them otherwise), its duplicate window must be at least
// MinDuplicateWindow (it widens it otherwise), its storage must be file.
// What the operator set besides (replicas, max age, limits) is left as it
// is. It fails while no server is reachable; call it again.
func (e *Engine) EnsureStream(ctx context.Context) error {
	if !e.nc.IsConnected() {
		return fmt.Errorf("jetstream: not connected to NATS (%s): %v", strings.Join(e.o.Hosts, ","), e.nc.Status())
	}
	if err := e.ensure(ctx, jetstream.StreamConfig{
		Name:        e.o.Stream,
		Description: "Uptimizr fleet: every record the edge nodes commit",
		Subjects:    []string{eventsSubjects},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      e.o.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    e.o.Replicas,
		Duplicates:  e.o.DuplicateWindow,
	}); err != nil {
		return err
	}
	return e.ensure(ctx, jetstream.StreamConfig{
		Name:        e.DeadLetterStream(),
		Description: "Uptimizr fleet: the records a hub could not read, with the reason",
		Subjects:    []string{e.DeadLetterSubject()},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      e.o.DeadMaxAge,
		MaxBytes:    e.o.DeadMaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    e.o.Replicas,
		Duplicates:  e.o.DuplicateWindow,
	})
}

func (e *Engine) ensure(ctx context.Context, want jetstream.StreamConfig) error {
	s, err := e.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := e.js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("jetstream: create stream %s: %w", want.Name, err)
		}
		e.log.Info("created stream", "stream", want.Name, "subjects", want.Subjects, "replicas", want.Replicas, "max_age", want.MaxAge, "duplicate_window", want.Duplicates)
		return nil
	}
	if err != nil {
		return fmt.Errorf("jetstream: stream %s: %w", want.Name, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Storage != jetstream.FileStorage {
		return fmt.Errorf("jetstream: stream %s has %s storage: the fleet's records need file storage, so that a server restart keeps them; recreate it with file storage", want.Name, cfg.Storage)
	}
	update := false
	for _, subj := range want.Subjects {
		if !covered(cfg.Subjects, subj) {
			cfg.Subjects = append(slices.Clone(cfg.Subjects), subj)
			update = true
		}
	}
	if cfg.Duplicates < MinDuplicateWindow {
		cfg.Duplicates = max(want.Duplicates, MinDuplicateWindow)
		update = true
	}
	if !update {
		return nil
	}
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("jetstream: stream %s exists with subjects %v and duplicate window %v; it needs subjects covering %v and a window of at least %v, and updating it failed: %w",
			want.Name, s.CachedInfo().Config.Subjects, s.CachedInfo().Config.Duplicates, want.Subjects, MinDuplicateWindow, err)
	}
	e.log.Info("updated stream", "stream", want.Name, "subjects", cfg.Subjects, "duplicate_window", cfg.Duplicates)
	return nil
}

// covered reports whether one of the subject filters has every subject
// subj matches.
func covered(filters []string, subj string) bool {
	for _, f := range filters {
		if subjects.Covers(f, subj) {
			return true
		}
	}
	return false
}

// Close releases the connection: call it after the Publishers and
// Subscribers are closed (a Publisher's Close settles what it has in
// flight first).
func (e *Engine) Close() {
	e.nc.Close()
}
