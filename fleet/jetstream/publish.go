package jetstream

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uptimizr/edge/fleet"
	"github.com/uptimizr/edge/fleet/internal/inflight"
)

// publisher is the Engine's fleet.Publisher: asynchronous publishes, each
// settled by its PubAck, its error, its timeout (Options.AckTimeout), or
// the loss of the connection it went out on.
type publisher struct {
	stream string
	js     jetstream.JetStream
	tr     *inflight.Tracker
	snappy bool // bodies go as Snappy blocks (Options.Compression)

	mu      sync.Mutex
	waiting map[*nats.Msg]func(error)
	// free holds the bodies of settled messages for the next ones (at most
	// MaxInFlight): the client copies a body as it sends it, and reads it
	// again only to resend it before the message is settled.
	free [][]byte
	max  int
}

// maxFreeBody bounds a body kept for reuse.
const maxFreeBody = 1 << 20

// Publisher returns a fleet.Publisher to the stream, with at most
// Options.MaxInFlight records unacknowledged. Its Close settles them; the
// connection stays the Engine's.
func (e *Engine) Publisher() fleet.Publisher {
	p := &publisher{stream: e.o.Stream, tr: inflight.New(e.o.MaxInFlight), max: e.o.MaxInFlight, snappy: e.o.Compression != fleet.CompressionNone, waiting: map[*nats.Msg]func(error){}}
	js, err := jetstream.New(e.nc,
		jetstream.WithPublishAsyncMaxPending(e.o.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(e.o.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(p.onAck),
		jetstream.WithPublishAsyncErrHandler(p.onErr),
	)
	if err != nil {
		// New fails only on invalid options, which these are not.
		panic(fmt.Sprintf("jetstream: %v", err))
	}
	p.js = js
	return p
}

// take removes m from the messages waiting and returns its settle
// function (nil when it has none: settled already). With settled, the
// client is done with m, and its body is kept for reuse.
func (p *publisher) take(m *nats.Msg, settled bool) func(error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	settle := p.waiting[m]
	delete(p.waiting, m)
	if settled && settle != nil && len(p.free) < p.max && cap(m.Data) <= maxFreeBody {
		p.free = append(p.free, m.Data[:0])
		m.Data = nil
	}
	return settle
}

// body returns a buffer for a message's body.
func (p *publisher) body() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	return nil
}

func (p *publisher) onAck(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
	settle := p.take(m, true)
	if settle == nil {
		return
	}
	if ack.Stream != p.stream {
		settle(fmt.Errorf("jetstream: %s was stored in stream %s, not %s: the subjects %s belong to another stream", m.Subject, ack.Stream, p.stream, eventsSubjects))
		return
	}
	settle(nil)
}

func (p *publisher) onErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	if settle := p.take(m, true); settle != nil {
		settle(fmt.Errorf("jetstream: publish %s: %w", m.Header.Get(jetstream.MsgIDHeader), err))
	}
}

// Publish sends r on its project's subject with its headers and
// Nats-Msg-Id, its body a Snappy block or the NDJSON (Options.Compression).
// A publish the connection refuses (NATS unreachable) is acknowledged with
// the error at once.
func (p *publisher) Publish(ctx context.Context, r *fleet.Record, ack func(error)) error {
	settle, err := p.tr.Add(ctx, ack)
	if err != nil {
		return err
	}
	id := r.MsgID()
	m := nats.NewMsg(fleet.Subject(r.Project))
	if p.snappy {
		m.Data = r.AppendSnappy(p.body())
	} else if m.Data, err = r.AppendPlain(p.body()); err != nil {
		settle(fmt.Errorf("jetstream: publish %s: %w", id, err))
		return nil
	}
	for _, kv := range r.Headers(p.snappy) {
		m.Header.Set(kv[0], kv[1])
	}
	m.Header.Set(jetstream.MsgIDHeader, id)
	p.mu.Lock()
	p.waiting[m] = settle
	p.mu.Unlock()
	if _, err := p.js.PublishMsgAsync(m); err != nil {
		if settle := p.take(m, false); settle != nil {
			settle(fmt.Errorf("jetstream: publish %s: %w", id, err))
		}
	}
	return nil
}

// Close waits for the PubAcks in flight until ctx is done, then fails the
// rest.
func (p *publisher) Close(ctx context.Context) error {
	err := p.tr.Close(ctx)
	p.js.CleanupPublisher()
	return err
}
