package kafka

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/uptimizr/edge/fleet"
	"github.com/uptimizr/edge/fleet/internal/inflight"
)

// publisher is the Engine's fleet.Publisher: records produced through
// the Engine's client, each settled by its produce promise.
type publisher struct {
	cl     *kgo.Client
	topic  string
	tr     *inflight.Tracker
	ctx    context.Context // the records' context, cancelled when Close gives up
	cancel context.CancelFunc
}

// Publisher returns a fleet.Publisher to the topic, with at most
// Options.MaxInFlight records unacknowledged. Its Close settles them; the
// client stays the Engine's.
func (e *Engine) Publisher() fleet.Publisher {
	ctx, cancel := context.WithCancel(context.Background())
	return &publisher{cl: e.cl, topic: e.o.Stream, tr: inflight.New(e.o.MaxInFlight), ctx: ctx, cancel: cancel}
}

// Publish produces r to the topic, keyed by its session, with its
// headers and MsgIDHeader, its NDJSON body the value (which the producer's
// batches compress, Options.Compression).
func (p *publisher) Publish(ctx context.Context, r *fleet.Record, ack func(error)) error {
	settle, err := p.tr.Add(ctx, ack)
	if err != nil {
		return err
	}
	id := r.MsgID()
	value, err := r.AppendPlain(nil)
	if err != nil {
		settle(fmt.Errorf("kafka: produce %s: %w", id, err))
		return nil
	}
	hs := r.Headers(false)
	rec := &kgo.Record{
		Topic:   p.topic,
		Key:     slices.Clone(r.Session),
		Value:   value,
		Headers: make([]kgo.RecordHeader, 0, len(hs)+1),
	}
	for _, kv := range hs {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: kv[0], Value: []byte(kv[1])})
	}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: MsgIDHeader, Value: []byte(id)})
	p.cl.Produce(p.ctx, rec, func(_ *kgo.Record, err error) {
		if err != nil {
			err = fmt.Errorf("kafka: produce %s: %w", id, err)
		}
		settle(err)
	})
	return nil
}

// Close waits for the produce acknowledgements in flight until ctx is
// done, then fails the rest (and the client drops them when it can).
func (p *publisher) Close(ctx context.Context) error {
	err := p.tr.Close(ctx)
	p.cancel()
	return err
}
