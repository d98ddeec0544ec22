package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/uptimizr/edge/fleet"
	"github.com/uptimizr/edge/fleet/internal/subjects"
)

// subscriber is a consumer group member of the topic as a
// fleet.Subscriber, with a client of its own.
type subscriber struct {
	e      *Engine
	topic  string
	group  string
	filter string
	dead   bool // a subscriber of the dead letters
	cl     *kgo.Client

	mu      sync.Mutex
	cur     *fleet.Message
	curRec  *kgo.Record
	settled bool // cur was dead-lettered: done whatever fn returns
	closed  bool
	stop    context.CancelFunc
	done    chan struct{} // closed when the running Consume returns
}

// Subscriber returns a fleet.Subscriber of the topic as a member of the
// consumer group group ("" = DefaultGroup): offsets committed by hand,
// each once its record and every one before it in its partition is
// handled; a group with no offset yet starts at the topic's first record.
// filterSubject ("" = all) shards by project as JetStream's filters do,
// fleet.Subject(project) or a filter with wildcards under
// uptimizr.events.: the records of other projects are passed over
// (committed without fn), since a topic's partitions follow sessions,
// not projects.
func (e *Engine) Subscriber(group, filterSubject string) (fleet.Subscriber, error) {
	if group == "" {
		group = DefaultGroup
	}
	if filterSubject != "" && (!subjects.Valid(filterSubject) || !subjects.Covers(fleet.SubjectPrefix+">", filterSubject)) {
		return nil, fmt.Errorf("kafka: filter subject %q is not under %s>", filterSubject, fleet.SubjectPrefix)
	}
	s, err := e.subscriber(e.o.Stream, group, filterSubject, false)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DeadLetters returns a fleet.Subscriber of the dead-letter topic as a
// member of group: to inspect or replay them. Its DeadLetter fails.
func (e *Engine) DeadLetters(group string) (fleet.Subscriber, error) {
	s, err := e.subscriber(e.DeadLetterTopic(), group, "", true)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (e *Engine) subscriber(topic, group, filter string, dead bool) (*subscriber, error) {
	if !validGroup(group) {
		return nil, fmt.Errorf("kafka: group %q: want 1–255 characters", group)
	}
	cl, err := kgo.NewClient(e.opts(
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(time.Second),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(maxRecordBytes),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &subscriber{e: e, topic: topic, group: group, filter: filter, dead: dead, cl: cl}, nil
}

var errClosed = errors.New("kafka: subscriber closed")

// maxPoll bounds the records one poll takes: the group cannot rebalance
// while they are handled.
const maxPoll = 256

func (s *subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Consume delivers the group's records of the partitions the member is
// given to fn, one at a time, in each partition's order. When fn returns
// nil (or dead-lettered the record) the record counts as handled, and
// the offsets handled are committed after each poll; after any other
// error the partition goes back to that record and is delivered again
// from it after Options.RetryDelay. Consume returns ctx's error, fn's
// error that wraps fleet.ErrStop (the record it had is delivered again),
// or errClosed after Close.
func (s *subscriber) Consume(ctx context.Context, fn func(*fleet.Message) error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	if s.stop != nil {
		s.mu.Unlock()
		return errors.New("kafka: Consume is already running on this subscriber")
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

	for {
		fetches := s.cl.PollRecords(ctx, maxPoll)
		if fetches.IsClientClosed() {
			return errClosed
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				s.e.log.Warn("fetch", "topic", topic, "partition", partition, "err", err)
			}
		})
		done := map[string]map[int32]kgo.EpochOffset{}   // next offset, by partition handled
		rewind := map[string]map[int32]kgo.EpochOffset{} // back to a record not handled
		var stop error
		failed := false
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			for i, r := range p.Records {
				if stop != nil || ctx.Err() != nil {
					// Not given to fn: fetched again from here.
					setOffset(rewind, r)
					return
				}
				if s.filter != "" && !s.matches(r) {
					setNext(done, r)
					continue
				}
				ferr := s.deliver(r, fn)
				switch {
				case ferr == nil:
					setNext(done, r)
					continue
				case errors.Is(ferr, fleet.ErrStop):
					stop = ferr
				default:
					failed = true
					s.e.log.Debug("record not handled; delivered again", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", ferr)
				}
				setOffset(rewind, p.Records[i])
				return
			}
		})
		if len(rewind) > 0 {
			s.cl.SetOffsets(rewind)
		}
		if err := s.commit(done); err != nil {
			s.e.log.Warn("cannot commit offsets; the records after the last commit are delivered again", "group", s.group, "err", err)
		}
		s.cl.AllowRebalance()
		if stop != nil {
			return stop
		}
		if err := ctx.Err(); err != nil {
			if s.isClosed() {
				return errClosed
			}
			return err
		}
		if failed {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(s.e.o.RetryDelay):
			}
		}
	}
}

// Pending returns, summed over the topic's partitions, the end offset less
// the group's committed offset (less the first offset where the group has
// none): every project's records, whatever the filter.
func (s *subscriber) Pending(ctx context.Context) (uint64, error) {
	adm := kadm.NewClient(s.e.cl) // the engine's: it outlives the subscriber
	ends, err := adm.ListEndOffsets(ctx, s.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("kafka: end offsets of %s: %w", s.topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, s.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("kafka: start offsets of %s: %w", s.topic, err)
	}
	commits, err := adm.FetchOffsets(ctx, s.group)
	if err == nil {
		err = commits.Error()
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return 0, fmt.Errorf("kafka: offsets of group %s: %w", s.group, err)
	}
	var n uint64
	ends.Each(func(o kadm.ListedOffset) {
		from := int64(0)
		if st, ok := starts.Lookup(o.Topic, o.Partition); ok {
			from = st.Offset
		}
		if c, ok := commits.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			from = max(from, c.At)
		}
		if o.Offset > from {
			n += uint64(o.Offset - from)
		}
	})
	return n, nil
}

func setNext(m map[string]map[int32]kgo.EpochOffset, r *kgo.Record) {
	if m[r.Topic] == nil {
		m[r.Topic] = map[int32]kgo.EpochOffset{}
	}
	m[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
}

func setOffset(m map[string]map[int32]kgo.EpochOffset, r *kgo.Record) {
	if m[r.Topic] == nil {
		m[r.Topic] = map[int32]kgo.EpochOffset{}
	}
	m[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
}

// deliver gives r to fn; a record dead-lettered is handled whatever fn
// returns.
func (s *subscriber) deliver(r *kgo.Record, fn func(*fleet.Message) error) error {
	msg := &fleet.Message{Subject: r.Topic, Header: func(name string) string { return header(r, name) }, Body: r.Value}
	s.mu.Lock()
	s.cur, s.curRec, s.settled = msg, r, false
	s.mu.Unlock()
	err := fn(msg)
	s.mu.Lock()
	if s.settled {
		err = nil
	}
	s.cur, s.curRec, s.settled = nil, nil, false
	s.mu.Unlock()
	return err
}

func header(r *kgo.Record, name string) string {
	for _, h := range r.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}

func (s *subscriber) matches(r *kgo.Record) bool {
	return subjects.Covers(s.filter, fleet.Subject(header(r, fleet.HeaderProject)))
}

// commit commits the offsets handled, whatever ctx Consume had.
func (s *subscriber) commit(done map[string]map[int32]kgo.EpochOffset) error {
	if len(done) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cerr error
	s.cl.CommitOffsetsSync(ctx, done, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	return cerr
}

// deadHeaders are the headers a dead letter keeps of a message that is
// not the one Consume has given fn (whose headers it keeps all).
var deadHeaders = []string{fleet.HeaderNode, fleet.HeaderProject, fleet.HeaderSeq, fleet.HeaderReceivedAt, fleet.HeaderFormat, MsgIDHeader}

// DeadLetter produces m, with its key and headers and
// fleet.HeaderDeadReason, to the dead-letter topic, and returns once the
// brokers have it. When m is the record Consume has given fn, it then
// counts as handled whatever fn returns.
func (s *subscriber) DeadLetter(ctx context.Context, m *fleet.Message, reason error) error {
	if s.dead {
		return errors.New("kafka: a dead letter cannot be dead-lettered again")
	}
	if reason == nil {
		reason = errors.New("no reason given")
	}
	rec := &kgo.Record{Topic: s.e.DeadLetterTopic(), Value: m.Body}
	s.mu.Lock()
	current := m != nil && s.cur == m
	if current {
		rec.Key = slices.Clone(s.curRec.Key)
		for _, h := range s.curRec.Headers {
			if h.Key != fleet.HeaderDeadReason {
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: slices.Clone(h.Value)})
			}
		}
	}
	s.mu.Unlock()
	if !current {
		for _, k := range deadHeaders {
			if v := m.Header(k); v != "" {
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}
		}
	}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: fleet.HeaderDeadReason, Value: []byte(reason.Error())})
	if err := s.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("kafka: dead letter to %s: %w", rec.Topic, err)
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

// Close ends a Consume running on the Subscriber and waits for it to
// return (having committed what it handled), then leaves the group and
// closes the subscriber's client. The group's committed offsets stay.
// Do not call it from fn.
func (s *subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	s.cl.Close()
	return nil
}
