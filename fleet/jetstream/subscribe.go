package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uptimizr/edge/fleet"
	"github.com/uptimizr/edge/fleet/internal/subjects"
)

// subscriber is a durable pull consumer of a stream as a fleet.Subscriber.
type subscriber struct {
	e       *Engine
	stream  string
	durable string
	filter  string
	dead    bool // a subscriber of the dead letters

	mu      sync.Mutex
	cur     *fleet.Message // the message fn has now
	curMsg  jetstream.Msg
	settled bool // cur was dead-lettered: acknowledge it whatever fn returns
	closed  bool
	stop    context.CancelFunc
	done    chan struct{} // closed when the running Consume returns
}

// Subscriber returns a fleet.Subscriber of the stream through the durable
// pull consumer durable ("" = DefaultConsumer), created or updated on the
// first Consume: explicit acknowledgements, Options.AckWait and
// Options.MaxAckPending, from the stream's first message. filterSubject
// ("" = every subject) shards by project: fleet.Subject(project), or a
// filter with wildcards under uptimizr.events.
func (e *Engine) Subscriber(durable, filterSubject string) (fleet.Subscriber, error) {
	if durable == "" {
		durable = DefaultConsumer
	}
	if !validDurable(durable) {
		return nil, fmt.Errorf("jetstream: consumer name %q: want 1–%d characters, none of . * > / \\ or white space", durable, maxStreamName)
	}
	if filterSubject != "" && (!subjects.Valid(filterSubject) || !subjects.Covers(eventsSubjects, filterSubject)) {
		return nil, fmt.Errorf("jetstream: filter subject %q is not under %s", filterSubject, eventsSubjects)
	}
	return &subscriber{e: e, stream: e.o.Stream, durable: durable, filter: filterSubject}, nil
}

// DeadLetters returns a fleet.Subscriber of the dead-letter stream
// through the durable consumer durable: to inspect or replay them. Its
// DeadLetter fails.
func (e *Engine) DeadLetters(durable string) (fleet.Subscriber, error) {
	if !validDurable(durable) {
		return nil, fmt.Errorf("jetstream: consumer name %q: want 1–%d characters, none of . * > / \\ or white space", durable, maxStreamName)
	}
	return &subscriber{e: e, stream: e.DeadLetterStream(), durable: durable, dead: true}, nil
}

// errClosed ends a Consume whose Subscriber was closed.
var errClosed = errors.New("jetstream: subscriber closed")

// Consume delivers the consumer's messages to fn one at a time, in the
// stream's order. A message is acknowledged when fn returns nil (or
// dead-lettered it); after any other error it is given back with a delay
// of Options.RetryDelay, and so is every later message delivered before it
// comes back, so that the order holds. Consume returns ctx's error, fn's
// error that wraps fleet.ErrStop, or an error of the consumer (the caller
// calls Consume again). Messages taken from the server and not given to fn
// when it returns are given back.
func (s *subscriber) Consume(ctx context.Context, fn func(*fleet.Message) error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	if s.stop != nil {
		s.mu.Unlock()
		return errors.New("jetstream: Consume is already running on this subscriber")
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.stop, s.done = cancel, done
	s.mu.Unlock()
	defer func() {
		cancel()
		s.mu.Lock()
		s.stop, s.done = nil, nil
		s.mu.Unlock()
		close(done)
	}()

	o := s.e.o
	cfg := jetstream.ConsumerConfig{
		Durable:       s.durable,
		Description:   "Uptimizr fleet hub",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: o.MaxAckPending,
		FilterSubject: s.filter,
	}
	cons, err := s.e.js.CreateOrUpdateConsumer(ctx, s.stream, cfg)
	if err != nil {
		if s.isClosed() {
			return errClosed
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("jetstream: consumer %s on %s: %w", s.durable, s.stream, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(min(o.MaxAckPending, 256)))
	if err != nil {
		return fmt.Errorf("jetstream: consumer %s on %s: %w", s.durable, s.stream, err)
	}

	// After fn failed on the message of stream sequence failedSeq, every
	// later message is given back until that one comes again.
	var failedSeq uint64
	var failedAt time.Time
	giveBack := func(m jetstream.Msg) {
		var err error
		if failedSeq != 0 {
			err = m.NakWithDelay(o.RetryDelay)
		} else {
			err = m.Nak()
		}
		if err != nil {
			s.e.log.Debug("cannot give a message back; the server sends it again after the ack wait", "err", err)
		}
	}
	defer func() {
		// Give back what the iterator holds, in order, and put the
		// acknowledgements on the wire before returning.
		iter.Drain()
		for {
			m, err := iter.Next(jetstream.NextMaxWait(5 * time.Second))
			if err != nil {
				break
			}
			giveBack(m)
		}
		if err := s.e.nc.FlushTimeout(5 * time.Second); err != nil {
			s.e.log.Debug("cannot flush the acknowledgements", "err", err)
		}
	}()

	for {
		m, err := iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			if s.isClosed() {
				return errClosed
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("jetstream: consumer %s on %s: %w", s.durable, s.stream, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			s.e.log.Warn("message without metadata, left to the ack wait", "subject", m.Subject(), "err", err)
			continue
		}
		seq := meta.Sequence.Stream
		if failedSeq != 0 {
			switch {
			case seq == failedSeq:
				failedSeq = 0
			case seq > failedSeq && time.Since(failedAt) < 2*o.RetryDelay+o.AckWait:
				giveBack(m)
				continue
			default:
				// Earlier than the failed one, or the failed one has not
				// come back (the stream dropped it): go on.
				failedSeq = 0
			}
		}
		hdr := m.Headers()
		msg := &fleet.Message{Subject: m.Subject(), Header: hdr.Get, Body: m.Data()}
		s.mu.Lock()
		s.cur, s.curMsg, s.settled = msg, m, false
		s.mu.Unlock()
		ferr := fn(msg)
		s.mu.Lock()
		settled := s.settled
		s.cur, s.curMsg, s.settled = nil, nil, false
		s.mu.Unlock()
		switch {
		case ferr == nil || settled:
			if err := m.Ack(); err != nil {
				s.e.log.Debug("cannot acknowledge; the server sends the message again after the ack wait", "err", err)
			}
		case errors.Is(ferr, fleet.ErrStop):
			giveBack(m)
		default:
			failedSeq, failedAt = seq, time.Now()
			giveBack(m)
		}
		if ferr != nil && errors.Is(ferr, fleet.ErrStop) {
			return ferr
		}
	}
}

func (s *subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// deadHeaders are the headers a dead letter keeps of a message that is
// not the one Consume has given fn (whose headers it keeps all).
var deadHeaders = []string{fleet.HeaderNode, fleet.HeaderProject, fleet.HeaderSeq, fleet.HeaderReceivedAt, fleet.HeaderFormat, jetstream.MsgIDHeader}

// DeadLetter stores m, with its headers and fleet.HeaderDeadReason, in the
// dead-letter stream, and returns once the stream has it. When m is the
// message Consume has given fn, it is then acknowledged whatever fn
// returns.
func (s *subscriber) DeadLetter(ctx context.Context, m *fleet.Message, reason error) error {
	if s.dead {
		return errors.New("jetstream: a dead letter cannot be dead-lettered again")
	}
	if reason == nil {
		reason = errors.New("no reason given")
	}
	hdr := nats.Header{}
	s.mu.Lock()
	current := s.cur == m && m != nil
	if current {
		for k, v := range s.curMsg.Headers() {
			hdr[k] = append([]string(nil), v...)
		}
	}
	s.mu.Unlock()
	if !current {
		for _, k := range deadHeaders {
			if v := m.Header(k); v != "" {
				hdr.Set(k, v)
			}
		}
	}
	hdr.Set(fleet.HeaderDeadReason, reason.Error())
	dm := &nats.Msg{Subject: s.e.DeadLetterSubject(), Header: hdr, Data: m.Body}
	if _, err := s.e.js.PublishMsg(ctx, dm); err != nil {
		return fmt.Errorf("jetstream: dead letter to %s: %w", dm.Subject, err)
	}
	if current {
		s.mu.Lock()
		if s.cur == m {
			s.settled = true
		}
		s.mu.Unlock()
	}
	return nil
}

// Pending returns the consumer's pending and unacknowledged messages,
// or, before the consumer exists, the stream's messages of its filter.
func (s *subscriber) Pending(ctx context.Context) (uint64, error) {
	c, err := s.e.js.Consumer(ctx, s.stream, s.durable)
	if err == nil {
		info, err := c.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("jetstream: consumer %s on %s: %w", s.durable, s.stream, err)
		}
		return info.NumPending + uint64(info.NumAckPending), nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, fmt.Errorf("jetstream: consumer %s on %s: %w", s.durable, s.stream, err)
	}
	st, err := s.e.js.Stream(ctx, s.stream)
	if err != nil {
		return 0, fmt.Errorf("jetstream: stream %s: %w", s.stream, err)
	}
	if s.filter == "" {
		info, err := st.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("jetstream: stream %s: %w", s.stream, err)
		}
		return info.State.Msgs, nil
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(s.filter))
	if err != nil {
		return 0, fmt.Errorf("jetstream: stream %s: %w", s.stream, err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// Close ends a Consume running on the Subscriber and waits for it to
// return (having given back what it held). The consumer stays on the
// server with its position. Do not call it from fn.
func (s *subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	return nil
}
