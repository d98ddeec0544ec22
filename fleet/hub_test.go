package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

type hubProject struct {
	id  string
	num uint32
}

func (p hubProject) ProjectID() string       { return p.id }
func (p hubProject) ProjectNum() uint32      { return p.num }
func (p hubProject) Channels() core.Channels { return core.AllChannels() }

// memHubStore is a HubStore in memory, deduplicating as the store does.
type memHubStore struct {
	mu       sync.Mutex
	projects map[string]uint32
	seen     map[string]bool
	batches  []*core.Batch
	fail     int // the next commits that fail as unavailable
}

func newMemHubStore() *memHubStore {
	return &memHubStore{projects: map[string]uint32{}, seen: map[string]bool{}}
}

func (s *memHubStore) Project(id string) (core.Project, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.projects[id]
	if !ok {
		n = uint32(len(s.projects) + 1)
		s.projects[id] = n
	}
	return hubProject{id, n}, nil
}

func (s *memHubStore) Commit(ctx context.Context, node string, seq uint64, b *core.Batch) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return false, fmt.Errorf("%w: disk full", core.ErrUnavailable)
	}
	k := fmt.Sprintf("%s/%d/%d", node, b.ProjectNum, seq)
	if s.seen[k] {
		return true, nil
	}
	s.seen[k] = true
	cp := &core.Batch{ProjectID: b.ProjectID, ProjectNum: b.ProjectNum, ReceivedAt: b.ReceivedAt}
	for i := range b.Events {
		cp.AppendEventFrom(b, i)
	}
	s.batches = append(s.batches, cp)
	return false, nil
}

// edgeBatch validates a fixture's events as the edge does.
func edgeBatch(t *testing.T, path, project string) *core.Batch {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	var proc core.Processor
	b := &core.Batch{ProjectID: project, ProjectNum: 1, ReceivedAt: 1765000000000}
	info := &core.RequestInfo{ProjectID: project, Browser: "chrome", OS: "macos", Channels: core.AllChannels()}
	copy(info.VisitorID[:], "0123456789abcdef0123456789abcdef")
	proc.Begin(b, info)
	for _, e := range v.GetArray("events") {
		proc.Add(jsonvalue.Wrap(e))
	}
	if len(b.Events) == 0 {
		t.Fatal("no event of the fixture accepted")
	}
	return b
}

func recordOf(b *core.Batch, node string, seq uint64) *Record {
	r := &Record{Node: node, Project: b.ProjectID, Seq: seq, ReceivedAt: b.ReceivedAt}
	for i := range b.Events {
		r.Events = append(r.Events, b.JSON(i))
	}
	return r
}

// messageOf returns r as a publisher sends it, its body r.Events as NDJSON.
func messageOf(r *Record) *Message { return encodedMessage(r, false) }

// snappyMessageOf is messageOf with the body a Snappy block.
func snappyMessageOf(r *Record) *Message { return encodedMessage(r, true) }

func encodedMessage(r *Record, snappy bool) *Message {
	r.Body, r.Snappy = AppendNDJSON(nil, r.Events), false
	body := r.Body
	if snappy {
		body = r.AppendSnappy(nil)
	}
	h := r.Headers(snappy)
	return &Message{Subject: Subject(r.Project), Body: body, Header: func(n string) string {
		for _, kv := range h {
			if kv[0] == n {
				return kv[1]
			}
		}
		return ""
	}}
}

// TestHubKeepsStoredForm: the events a node stored, validated again on the
// hub, are committed byte for byte as the node stored them.
func TestHubKeepsStoredForm(t *testing.T) {
	paths, _ := filepath.Glob("../testdata/fixtures/batch*.json")
	if len(paths) == 0 {
		t.Fatal("no fixtures in ../testdata/fixtures")
	}
	for i, path := range paths {
		b1 := edgeBatch(t, path, "shop.eu")
		store := newMemHubStore()
		h := NewHub(nil, store, HubOptions{})
		if err := h.Handle(t.Context(), messageOf(recordOf(b1, "edge-1", uint64(i)))); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b2 := store.batches[0]
		if len(b2.Events) != len(b1.Events) || b2.ReceivedAt != b1.ReceivedAt {
			t.Fatalf("%s: %d events at %d, want %d at %d", path, len(b2.Events), b2.ReceivedAt, len(b1.Events), b1.ReceivedAt)
		}
		for j := range b1.Events {
			if string(b2.JSON(j)) != string(b1.JSON(j)) {
				t.Fatalf("%s event %d changed on the hub:\n%s\nwas\n%s", path, j, b2.JSON(j), b1.JSON(j))
			}
			if b2.Events[j].Type != b1.Events[j].Type || b2.Events[j].TS != b1.Events[j].TS || string(b2.Session(j)) != string(b1.Session(j)) {
				t.Fatalf("%s event %d: type, ts or session changed", path, j)
			}
		}
	}
}

// listSub delivers its messages in order, each again while the callback
// fails, and records the dead letters.
type listSub struct {
	msgs      []*Message
	delivered int
	dead      []string
	done      chan struct{}
}

func (s *listSub) Consume(ctx context.Context, fn func(*Message) error) error {
	for s.delivered < len(s.msgs) {
		if err := fn(s.msgs[s.delivered]); err != nil {
			return err
		}
		s.delivered++
	}
	close(s.done)
	<-ctx.Done()
	return ctx.Err()
}

func (s *listSub) DeadLetter(ctx context.Context, m *Message, reason error) error {
	s.dead = append(s.dead, reason.Error())
	return nil
}

func (s *listSub) Pending(context.Context) (uint64, error) {
	return uint64(len(s.msgs) - s.delivered), nil
}

func (s *listSub) Close() error { return nil }

// TestHubRun: records are committed once (a record sent twice is a
// duplicate), a store that cannot take a record now has it again after a
// backoff, and messages that can never be committed go to the dead letters
// with their reason, without holding up those after them.
func TestHubRun(t *testing.T) {
	b := edgeBatch(t, "../testdata/fixtures/batch50_00.json", "shop")
	good := func(seq uint64) *Message { return messageOf(recordOf(b, "edge-1", seq)) }
	notJSON := recordOf(b, "edge-1", 90)
	notJSON.Events = [][]byte{[]byte(`{"type":}`)}
	invalid := recordOf(b, "edge-1", 91)
	invalid.Events = [][]byte{[]byte(`{"type":"no_such_type","sessionId":"s","ts":1}`)}
	wrongSubject := messageOf(recordOf(b, "edge-1", 92))
	wrongSubject.Subject = Subject("other")
	badHeader := good(93)
	badHeader.Header = func(string) string { return "" }
	notSnappy := snappyMessageOf(recordOf(b, "edge-1", 94))
	notSnappy.Body = notSnappy.Body[:len(notSnappy.Body)/2]
	sub := &listSub{done: make(chan struct{}), msgs: []*Message{
		good(0), good(1), messageOf(notJSON), good(1), messageOf(invalid), wrongSubject, badHeader, notSnappy,
		snappyMessageOf(recordOf(b, "edge-1", 2)), good(2), snappyMessageOf(recordOf(b, "edge-1", 3)),
	}}
	store := newMemHubStore()
	store.fail = 2
	h := NewHub(sub, store, HubOptions{Backoff: time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	select {
	case <-sub.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the hub did not get through its messages")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	st := h.Stats()
	if st.Committed != 4 || st.Duplicates != 2 || st.Dead != 5 || len(store.batches) != 4 {
		t.Fatalf("stats %+v, %d batches: want 4 committed, 2 duplicates, 5 dead", st, len(store.batches))
	}
	// The Snappy-encoded record 3 is committed as the NDJSON one would be.
	if got, want := len(store.batches[3].Events), len(b.Events); got != want {
		t.Fatalf("the Snappy-encoded record: %d events, want %d", got, want)
	}
	for i, want := range []string{"not JSON", "unknown event type", "not project", "format", "snappy"} {
		if !strings.Contains(sub.dead[i], want) && !strings.Contains(strings.ToLower(sub.dead[i]), want) {
			t.Errorf("dead letter %d: %q, want it to name %q", i, sub.dead[i], want)
		}
	}
}

// FuzzHubHandle: any message body, with a record's headers, is committed
// or refused as dead, never panics, and what is committed holds valid
// events only (as many as the message had lines).
func FuzzHubHandle(f *testing.F) {
	f.Add([]byte("{\"type\":\"custom\",\"sessionId\":\"s\",\"ts\":1,\"name\":\"x\"}\n"))
	f.Add([]byte("{}\n"))
	f.Add([]byte("{\"type\":\"session_start\",\"sessionId\":\"s\",\"ts\":1,\"device\":{\"browser\":\"x\"}}\n{\"type\":\"custom\"}\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := &Record{Node: "n", Project: "p", Seq: 1, ReceivedAt: 1}
		m := messageOf(r)
		m.Body = body
		store := newMemHubStore()
		h := NewHub(nil, store, HubOptions{})
		err := h.Handle(context.Background(), m)
		var dead errDead
		switch {
		case err == nil:
			if len(store.batches) != 1 || len(store.batches[0].Events) != strings.Count(string(body), "\n") {
				t.Fatalf("committed %d batches for a body of %d lines", len(store.batches), strings.Count(string(body), "\n"))
			}
		case errors.As(err, &dead):
			if len(store.batches) != 0 {
				t.Fatal("a dead message was committed")
			}
		default:
			t.Fatalf("error neither dead nor nil: %v", err)
		}
	})
}
