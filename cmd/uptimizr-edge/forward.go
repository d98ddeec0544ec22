package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/edge"
	"github.com/uptimizr/edge/fleet"
	"github.com/uptimizr/edge/fleet/jetstream"
	"github.com/uptimizr/edge/fleet/kafka"
	"github.com/uptimizr/edge/storage"
)

// forwardSource is the store's forward reader as the fleet forwarder reads
// it: the node's records, stamped with its id.
type forwardSource struct {
	f    *storage.Forward
	node string
	buf  []storage.ForwardRecord
}

func (s *forwardSource) Read(ctx context.Context, dst []fleet.Record, max int) ([]fleet.Record, error) {
	var err error
	s.buf, err = s.f.Read(ctx, s.buf[:0], max)
	for _, r := range s.buf {
		dst = append(dst, fleet.Record{Node: s.node, Project: r.Project, Seq: r.Seq, ReceivedAt: r.ReceivedAt, Body: r.Body, Snappy: r.Snappy, Session: r.Session})
	}
	return dst, err
}

func (s *forwardSource) Rewind()                          { s.f.Rewind() }
func (s *forwardSource) Ack(project string, below uint64) { s.f.Ack(project, below) }
func (s *forwardSource) Commit() error                    { return s.f.Commit() }

// fleetEngine is what a node's forwarder and a hub need of a stream
// engine.
type fleetEngine interface {
	ensure(ctx context.Context) error
	// maxBody is the largest record body the engine takes (0: no bound
	// below a record's own, fleet.MaxMessageBytes).
	maxBody() int64
	Publisher() fleet.Publisher
	Subscriber(durable, filter string) (fleet.Subscriber, error)
	Close()
}

type jsEngine struct{ *jetstream.Engine }

func (e jsEngine) ensure(ctx context.Context) error { return e.EnsureStream(ctx) }
func (e jsEngine) maxBody() int64                   { return e.MaxBody() }

type kafkaEngine struct{ *kafka.Engine }

func (e kafkaEngine) ensure(ctx context.Context) error { return e.EnsureTopic(ctx) }

// maxBody: the client takes records up to past fleet.MaxMessageBytes; the
// topic's max.message.bytes is the operator's to set (docs/OPERATIONS.md).
func (e kafkaEngine) maxBody() int64 { return 0 }

// openEngine connects (in the background) to the engine of url, with the
// COLLECTOR_FORWARD_* credentials and TLS.
func openEngine(ctx context.Context, url string, cfg *core.Config, log *slog.Logger) (fleetEngine, error) {
	kind, hosts, err := core.ParseEngineURL(url)
	if err != nil {
		return nil, err
	}
	o := fleet.EngineOptions{
		Hosts: hosts, Stream: cfg.ForwardStream, Replicas: cfg.ForwardReplicas,
		CredsFile: cfg.ForwardCreds, User: cfg.ForwardUser, Password: cfg.ForwardPassword, SASL: cfg.ForwardSASL,
		TLSCA: cfg.ForwardTLSCA, TLSCert: cfg.ForwardTLSCert, TLSKey: cfg.ForwardTLSKey,
		Name: cfg.NodeID, Compression: cfg.ForwardCompression,
	}
	if kind == "kafka" {
		e, err := kafka.Open(ctx, o, log)
		if err != nil {
			return nil, err
		}
		return kafkaEngine{e}, nil
	}
	e, err := jetstream.Open(ctx, o, log)
	if err != nil {
		return nil, err
	}
	return jsEngine{e}, nil
}

// ensureEngine makes sure of the stream (or topic), trying again until it
// can or ctx is done; it logs once that the engine is unreachable and once
// that it is back.
func ensureEngine(ctx context.Context, e fleetEngine, log *slog.Logger, down *atomic.Bool) error {
	wait := 200 * time.Millisecond
	for {
		err := e.ensure(ctx)
		if err == nil {
			if down.Swap(false) {
				log.Info("fleet: the stream engine is reachable again")
			}
			return nil
		}
		if !down.Swap(true) {
			log.Warn("fleet: the stream engine is unreachable; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// forwarding is a node's forwarder to the fleet's engine.
type forwarding struct {
	store *storage.Store
	fw    *fleet.Forwarder
	eng   fleetEngine
	down  atomic.Bool // the stream could not be made sure of yet
	stop  context.CancelFunc
	done  chan struct{}
}

// startForwarding starts forwarding the store's records when
// COLLECTOR_FORWARD_URL is set (nil when not).
func startForwarding(cfg *core.Config, store *storage.Store, log *slog.Logger) (*forwarding, error) {
	if cfg.ForwardURL == "" || store.Forward() == nil {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	eng, err := openEngine(ctx, cfg.ForwardURL, cfg, log)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("COLLECTOR_FORWARD_URL: %w", err)
	}
	f := &forwarding{store: store, eng: eng, stop: cancel, done: make(chan struct{})}
	f.fw = fleet.NewForwarder(&forwardSource{f: store.Forward(), node: cfg.NodeID}, eng.Publisher(), fleet.ForwarderOptions{Logger: log})
	go func() {
		defer close(f.done)
		if err := ensureEngine(ctx, eng, log, &f.down); err != nil {
			return
		}
		// A batch whose record would not fit in one message is refused
		// (413) from now on, not accepted and never sent.
		store.Forward().SetMaxBody(eng.maxBody())
		_ = f.fw.Run(ctx)
	}()
	log.Info("forwarding to the fleet's stream engine", "url", cfg.ForwardURL, "node_id", cfg.NodeID)
	return f, nil
}

// degraded says why forwarding needs an operator's eye, or "".
func (f *forwarding) degraded() string {
	if f == nil {
		return ""
	}
	st := f.store.Forward().Stats()
	if f.down.Load() || f.fw.Stats().Down {
		return fmt.Sprintf("forwarding: the stream engine is unreachable; %d records (%d bytes) kept until it is back", st.Backlog, st.BacklogBytes)
	}
	return ""
}

// gauges exposes the forwarder's figures.
func (f *forwarding) gauges(add func(name string, fn func() float64)) {
	if f == nil {
		return
	}
	fwd := f.store.Forward()
	add("uptimizr_forward_backlog_records", func() float64 { return float64(fwd.Stats().Backlog) })
	add("uptimizr_forward_backlog_bytes", func() float64 { return float64(fwd.Stats().BacklogBytes) })
	add("uptimizr_forward_forwarded_records", func() float64 { return float64(f.fw.Stats().Forwarded) })
	add("uptimizr_forward_published_messages", func() float64 { return float64(f.fw.Stats().Published) })
	add("uptimizr_forward_publish_errors", func() float64 { return float64(f.fw.Stats().Errors) })
	add("uptimizr_forward_in_flight", func() float64 { return float64(f.fw.Stats().InFlight) })
	add("uptimizr_forward_unforwardable_records", func() float64 { return float64(fwd.Stats().Unforwardable) })
	add("uptimizr_forward_engine_down", func() float64 {
		if f.degraded() != "" {
			return 1
		}
		return 0
	})
}

// close stops forwarding. With the engine up, it first forwards what the
// log still holds, until ctx is done (COLLECTOR_SHUTDOWN_TIMEOUT), so that a
// node stopped for good leaves nothing behind; then what is in flight is
// settled and the positions acknowledged are committed. What is left is
// sent at the next start.
func (f *forwarding) close(ctx context.Context) error {
	if f == nil {
		return nil
	}
	drain := ctx
	if dl, ok := ctx.Deadline(); ok {
		// A quarter of the time left is kept to settle what is in flight.
		var cancel context.CancelFunc
		drain, cancel = context.WithDeadline(ctx, dl.Add(-time.Until(dl)/4))
		defer cancel()
	}
	for f.degraded() == "" && f.store.Forward().Stats().Backlog > 0 && drain.Err() == nil {
		select {
		case <-drain.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	f.stop()
	<-f.done
	err := f.fw.Shutdown(ctx)
	f.eng.Close()
	return err
}

// hubStore is the store as the fleet's hub writes into it.
type hubStore struct {
	s   *storage.Store
	log *slog.Logger
	// live, once the server runs, takes every batch committed (not a
	// duplicate), so that the hub's live routes show the fleet's flow.
	live *liveFeed
}

// liveFeed hands committed batches to the server's live presence and
// streams; it is set once the server is made (the hub starts before it).
type liveFeed struct{ srv atomic.Pointer[edge.Server] }

func (f *liveFeed) observe(b *core.Batch) {
	if f == nil {
		return
	}
	if srv := f.srv.Load(); srv != nil {
		srv.ObserveBatch(b)
	}
}

func (h hubStore) Project(id string) (core.Project, error) {
	p, made, err := h.s.Registry().EnsureProject(id)
	if err != nil {
		return nil, err
	}
	if made {
		h.log.Info("hub: a project first seen in the stream was made; give it keys with uptimizr-edge key create", "project", id)
	}
	return p, nil
}

func (h hubStore) Commit(ctx context.Context, node string, seq uint64, b *core.Batch) (bool, error) {
	err := h.s.Committer().CommitForwarded(ctx, storage.Origin{Node: node, Seq: seq}, b)
	if errors.Is(err, storage.ErrDuplicate) {
		return true, nil
	}
	if err == nil {
		h.live.observe(b)
	}
	return false, err
}

// hubbing is a hub's consumers of the fleet's stream: COLLECTOR_HUB_WORKERS
// subscribers of the one durable consumer (consumer group), each with a
// fleet.Hub of its own, so that validation and commits run on every CPU.
// The store commits each record once whichever worker has it.
type hubbing struct {
	hubs    atomic.Pointer[[]*fleet.Hub] // set once they run
	pending atomic.Int64                 // the consumer's lag, -1 until known
	eng     fleetEngine
	down    atomic.Bool
	stop    context.CancelFunc
	done    chan struct{}
}

// hubPendingEvery is how often the consumer's lag is read from the engine.
const hubPendingEvery = 2 * time.Second

// startHub consumes the fleet's stream (COLLECTOR_HUB_SOURCE) into store.
func startHub(cfg *core.Config, store *storage.Store, log *slog.Logger, live *liveFeed) (*hubbing, error) {
	ctx, cancel := context.WithCancel(context.Background())
	eng, err := openEngine(ctx, cfg.HubSource, cfg, log)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("COLLECTOR_HUB_SOURCE: %w", err)
	}
	workers := cfg.HubWorkers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	h := &hubbing{eng: eng, stop: cancel, done: make(chan struct{})}
	h.pending.Store(-1)
	go func() {
		defer close(h.done)
		if err := ensureEngine(ctx, eng, log, &h.down); err != nil {
			return
		}
		filter := ""
		if cfg.HubProject != "" {
			filter = fleet.Subject(cfg.HubProject)
		}
		var hubs []*fleet.Hub
		var subs []fleet.Subscriber
		for range workers {
			sub, err := eng.Subscriber(cfg.HubConsumer, filter)
			if err != nil {
				log.Error("hub: cannot consume the stream", "err", err)
				for _, s := range subs {
					s.Close()
				}
				return
			}
			subs = append(subs, sub)
			hubs = append(hubs, fleet.NewHub(sub, hubStore{store, log, live}, fleet.HubOptions{Capture: storage.Capture(), Logger: log}))
		}
		h.hubs.Store(&hubs)
		var wg sync.WaitGroup
		for i, hub := range hubs {
			wg.Go(func() {
				defer subs[i].Close()
				_ = hub.Run(ctx)
			})
		}
		wg.Go(func() {
			t := time.NewTicker(hubPendingEvery)
			defer t.Stop()
			for {
				if n, err := subs[0].Pending(ctx); err == nil {
					h.pending.Store(int64(n))
				} else if ctx.Err() == nil {
					log.Debug("hub: cannot read the consumer's lag", "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
		wg.Wait()
	}()
	log.Info("hub: consuming the fleet's stream", "source", cfg.HubSource, "consumer", cfg.HubConsumer, "project", cfg.HubProject, "workers", workers)
	return h, nil
}

func (h *hubbing) gauges(add func(name string, fn func() float64)) {
	if h == nil {
		return
	}
	stat := func(f func(fleet.HubStats) uint64) func() float64 {
		return func() float64 {
			var n uint64
			if hubs := h.hubs.Load(); hubs != nil {
				for _, hub := range *hubs {
					n += f(hub.Stats())
				}
			}
			return float64(n)
		}
	}
	add("uptimizr_hub_committed_records", stat(func(s fleet.HubStats) uint64 { return s.Committed }))
	add("uptimizr_hub_committed_events", stat(func(s fleet.HubStats) uint64 { return s.Events }))
	add("uptimizr_hub_duplicate_records", stat(func(s fleet.HubStats) uint64 { return s.Duplicates }))
	add("uptimizr_hub_dead_letters", stat(func(s fleet.HubStats) uint64 { return s.Dead }))
	add("uptimizr_hub_consumer_pending_messages", func() float64 { return float64(h.pending.Load()) })
}

func (h *hubbing) degraded() string {
	if h != nil && h.down.Load() {
		return "hub: the stream engine is unreachable"
	}
	return ""
}

func (h *hubbing) close() {
	if h == nil {
		return
	}
	h.stop()
	<-h.done
	h.eng.Close()
}
