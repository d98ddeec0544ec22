package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/uptimizr/edge/fleet"
	"github.com/uptimizr/edge/fleet/fleettest"
	"github.com/uptimizr/edge/fleet/kafka"
)

func TestValidate(t *testing.T) {
	ok := fleet.EngineOptions{Hosts: []string{"127.0.0.1:9092"}}
	with := func(f func(*fleet.EngineOptions)) kafka.Options {
		o := ok
		f(&o)
		return kafka.Options{EngineOptions: o}
	}
	for _, c := range []struct {
		o     kafka.Options
		field string // "" = valid
	}{
		{kafka.Options{EngineOptions: ok}, ""},
		{with(func(o *fleet.EngineOptions) { o.SASL, o.User, o.Password = "scram-sha-512", "u", "p" }), ""},
		{kafka.Options{}, "Hosts"},
		{with(func(o *fleet.EngineOptions) { o.Stream = "bad topic" }), "Stream"},
		{with(func(o *fleet.EngineOptions) { o.Stream = strings.Repeat("t", 245) }), "Stream"},
		{with(func(o *fleet.EngineOptions) { o.Replicas = 6 }), "Replicas"},
		{with(func(o *fleet.EngineOptions) { o.MaxInFlight = -2 }), "MaxInFlight"},
		{with(func(o *fleet.EngineOptions) { o.CredsFile = "x.creds" }), "CredsFile"},
		{with(func(o *fleet.EngineOptions) { o.User = "u" }), "SASL"},
		{with(func(o *fleet.EngineOptions) { o.SASL = "plain" }), "User"},
		{with(func(o *fleet.EngineOptions) { o.SASL, o.User, o.Password = "gssapi", "u", "p" }), "SASL"},
		{with(func(o *fleet.EngineOptions) { o.TLSCert, o.TLSKey = "c", "k" }), "TLSCA"},
		{with(func(o *fleet.EngineOptions) { o.TLSCA, o.TLSKey = "ca", "k" }), "TLSCert"},
		{kafka.Options{EngineOptions: ok, Partitions: -1}, "Partitions"},
	} {
		err := c.o.Validate()
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%+v: %v", c.o, err)
		case c.field != "" && (err == nil || !strings.Contains(err.Error(), c.field)):
			t.Errorf("%+v: %v, want an error naming %s", c.o, err, c.field)
		}
	}
}

// TestOpenWhileDown: Open succeeds with the broker down; EnsureTopic fails
// until it is up; a record published meanwhile waits in the client and
// is acknowledged once the broker is back.
func TestOpenWhileDown(t *testing.T) {
	k := fleettest.StartKafka(t)
	k.Stop()
	e, err := kafka.OpenWith(context.Background(), kafka.Options{EngineOptions: fleet.EngineOptions{Hosts: []string{k.Addr()}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := e.EnsureTopic(short); err == nil {
		t.Fatal("EnsureTopic with the broker down: no error")
	}
	pub := e.Publisher()
	r := fleettest.NewRecord("n1", "shop", 0)
	acked := make(chan error, 1)
	if err := pub.Publish(context.Background(), &r, func(err error) { acked <- err }); err != nil {
		t.Fatal(err)
	}
	k.Start()
	ctx, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	for {
		err := e.EnsureTopic(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("EnsureTopic after the broker came up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-acked:
		// Produced before the topic existed, the record may have
		// failed (unknown topic): the forwarder sends it again.
		t.Logf("record published while down: %v", err)
	case <-ctx.Done():
		t.Fatal("no acknowledgement after the broker came up")
	}
	if err := pub.Publish(ctx, &r, func(err error) { acked <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-acked; err != nil {
		t.Fatalf("publish after the broker came up: %v", err)
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestEnsureTopic: the topics are created with the partitions asked for,
// and a second EnsureTopic finds them.
func TestEnsureTopic(t *testing.T) {
	k := fleettest.StartKafka(t)
	e, err := kafka.OpenWith(context.Background(), kafka.Options{EngineOptions: fleet.EngineOptions{Hosts: []string{k.Addr()}, Stream: "events"}, Partitions: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 {
		if err := e.EnsureTopic(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, "events", "events.deadletter")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["events"].Partitions); n != 4 {
		t.Errorf("events has %d partitions, want 4", n)
	}
	if n := len(td["events.deadletter"].Partitions); n != 1 {
		t.Errorf("events.deadletter has %d partitions, want 1", n)
	}
}

func TestSubscriberArgs(t *testing.T) {
	k := fleettest.StartKafka(t)
	e, err := kafka.Open(context.Background(), fleet.EngineOptions{Hosts: []string{k.Addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, c := range []struct {
		group, filter string
		ok            bool
	}{
		{"", "", true},
		{"hub-eu", fleet.Subject("shop.eu"), true},
		{"hub", "uptimizr.events.*", true},
		{"hub", "other.>", false},
		{strings.Repeat("g", 300), "", false},
	} {
		s, err := e.Subscriber(c.group, c.filter)
		if (err == nil) != c.ok {
			t.Errorf("Subscriber(%q, %q): %v", c.group, c.filter, err)
		}
		if s != nil {
			s.Close()
		}
	}
}

// TestCredentialsAndTLS: a broker that requires SASL (SCRAM-SHA-256) over
// TLS with a client certificate of its CA is reached with SASL, User,
// Password, TLSCA, TLSCert and TLSKey; a wrong password is not.
func TestCredentialsAndTLS(t *testing.T) {
	tf := fleettest.NewTLS(t)
	k := fleettest.StartKafkaWith(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "edge", "s3cret"), kfake.TLS(tf.Server))
	eo := fleet.EngineOptions{Hosts: []string{k.Addr()}, SASL: "scram-sha-256", User: "edge", Password: "s3cret",
		TLSCA: tf.CA, TLSCert: tf.ClientCert, TLSKey: tf.ClientKey}
	e, err := kafka.Open(context.Background(), eo, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.EnsureTopic(ctx); err != nil {
		t.Fatal(err)
	}
	pub := e.Publisher()
	r := fleettest.NewRecord("n1", "shop", 0)
	acked := make(chan error, 1)
	if err := pub.Publish(ctx, &r, func(err error) { acked <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-acked; err != nil {
		t.Fatalf("publish over TLS with SASL: %v", err)
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sub, err := e.Subscriber("", "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	cctx, ccancel := context.WithCancel(ctx)
	var got fleet.Record
	err = sub.Consume(cctx, func(m *fleet.Message) error {
		defer ccancel()
		return fleet.ParseRecord(m.Header, m.Body, &got)
	})
	if got.MsgID() != r.MsgID() {
		t.Fatalf("consumed %q (%v), want %s", got.MsgID(), err, r.MsgID())
	}

	eo.Password = "wrong"
	bad, err := kafka.Open(context.Background(), eo, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	short, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	if err := bad.EnsureTopic(short); err == nil {
		t.Fatal("EnsureTopic with a wrong password: no error")
	}
}
