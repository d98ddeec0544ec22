package jetstream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/uptimizr/edge/fleet"
	"github.com/uptimizr/edge/fleet/fleettest"
	"github.com/uptimizr/edge/fleet/jetstream"
)

func TestValidate(t *testing.T) {
	ok := fleet.EngineOptions{Hosts: []string{"127.0.0.1:4222"}}
	for _, c := range []struct {
		o     jetstream.Options
		field string // "" = valid
	}{
		{jetstream.Options{EngineOptions: ok}, ""},
		{jetstream.Options{}, "Hosts"},
		{jetstream.Options{EngineOptions: fleet.EngineOptions{Hosts: []string{"a:1", "b:2,c:3"}}}, "Hosts"},
		{jetstream.Options{EngineOptions: fleet.EngineOptions{Hosts: ok.Hosts, Stream: "a.b"}}, "Stream"},
		{jetstream.Options{EngineOptions: fleet.EngineOptions{Hosts: ok.Hosts, Replicas: 7}}, "Replicas"},
		{jetstream.Options{EngineOptions: fleet.EngineOptions{Hosts: ok.Hosts, MaxInFlight: -1}}, "MaxInFlight"},
		{jetstream.Options{EngineOptions: fleet.EngineOptions{Hosts: ok.Hosts, CredsFile: "x.creds", User: "u"}}, "CredsFile"},
		{jetstream.Options{EngineOptions: fleet.EngineOptions{Hosts: ok.Hosts, Password: "p"}}, "Password"},
		{jetstream.Options{EngineOptions: fleet.EngineOptions{Hosts: ok.Hosts, SASL: "plain"}}, "SASL"},
		{jetstream.Options{EngineOptions: fleet.EngineOptions{Hosts: ok.Hosts, TLSCert: "c.pem"}}, "TLSCert"},
		{jetstream.Options{EngineOptions: ok, DuplicateWindow: time.Minute}, "DuplicateWindow"},
		{jetstream.Options{EngineOptions: ok, MaxAge: time.Minute}, "MaxAge"},
		{jetstream.Options{EngineOptions: ok, AckWait: time.Millisecond}, "AckWait"},
		{jetstream.Options{EngineOptions: ok, MaxAckPending: -1}, "MaxAckPending"},
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

func open(t *testing.T, addr string, o jetstream.Options) *jetstream.Engine {
	t.Helper()
	o.Hosts = []string{addr}
	if o.ReconnectWait == 0 {
		o.ReconnectWait = 20 * time.Millisecond
	}
	e, err := jetstream.OpenWith(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// TestOpenWhileDown: Open succeeds with the server down; EnsureStream and
// publishes fail until it is up, then work on the same Engine.
func TestOpenWhileDown(t *testing.T) {
	srv := fleettest.StartNATS(t)
	srv.Stop()
	e := open(t, srv.Addr(), jetstream.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.EnsureStream(ctx); err == nil {
		t.Fatal("EnsureStream with the server down: no error")
	}
	pub := e.Publisher()
	defer pub.Close(ctx)
	r := fleettest.NewRecord("n1", "shop", 0)
	acked := make(chan error, 1)
	if err := pub.Publish(ctx, &r, func(err error) { acked <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-acked; err == nil {
		t.Fatal("a publish with the server down was acknowledged without error")
	}

	srv.Start()
	ensure(t, e)
	if err := pub.Publish(ctx, &r, func(err error) { acked <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-acked; err != nil {
		t.Fatalf("publish after the server came up: %v", err)
	}
}

// TestEnsureStreamExisting: a stream that exists with a short duplicate
// window and other subjects is widened to cover the fleet's subjects and
// window, its other settings kept; one with memory storage is refused.
func TestEnsureStreamExisting(t *testing.T) {
	srv := fleettest.StartNATS(t)
	nc, err := nats.Connect("nats://" + srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := njs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, njs.StreamConfig{Name: "UPTIMIZR_EVENTS", Subjects: []string{"legacy.>"},
		Storage: njs.FileStorage, Duplicates: 30 * time.Second, MaxAge: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	e := open(t, srv.Addr(), jetstream.Options{})
	ensure(t, e)
	s, err := js.Stream(ctx, "UPTIMIZR_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if !strings.Contains(strings.Join(cfg.Subjects, " "), "uptimizr.events.>") || !strings.Contains(strings.Join(cfg.Subjects, " "), "legacy.>") {
		t.Errorf("subjects %v: want legacy.> kept and uptimizr.events.> added", cfg.Subjects)
	}
	if cfg.Duplicates < jetstream.MinDuplicateWindow {
		t.Errorf("duplicate window %v, want at least %v", cfg.Duplicates, jetstream.MinDuplicateWindow)
	}
	if cfg.MaxAge != 48*time.Hour {
		t.Errorf("max age %v: the operator's 48h should stay", cfg.MaxAge)
	}
	dl, err := js.Stream(ctx, e.DeadLetterStream())
	if err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	if got := dl.CachedInfo().Config.Subjects; len(got) != 1 || got[0] != "uptimizr.deadletter.UPTIMIZR_EVENTS" {
		t.Errorf("dead-letter subjects %v", got)
	}

	if _, err := js.CreateStream(ctx, njs.StreamConfig{Name: "MEM", Subjects: []string{"mem.>"}, Storage: njs.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	e2 := open(t, srv.Addr(), jetstream.Options{EngineOptions: fleet.EngineOptions{Stream: "MEM"}})
	waitConnected(t, e2)
	if err := e2.EnsureStream(ctx); err == nil || !strings.Contains(err.Error(), "file storage") {
		t.Fatalf("EnsureStream of a memory stream: %v, want an error about file storage", err)
	}
}

// TestSubscriberArgs: consumer names and filters are checked.
func TestSubscriberArgs(t *testing.T) {
	srv := fleettest.StartNATS(t)
	e := open(t, srv.Addr(), jetstream.Options{})
	for _, c := range []struct {
		durable, filter string
		ok              bool
	}{
		{"", "", true},
		{"hub-eu", fleet.Subject("shop.eu"), true},
		{"hub", "uptimizr.events.*", true},
		{"a.b", "", false},
		{"hub", "other.>", false},
		{"hub", "uptimizr.events..x", false},
	} {
		_, err := e.Subscriber(c.durable, c.filter)
		if (err == nil) != c.ok {
			t.Errorf("Subscriber(%q, %q): %v", c.durable, c.filter, err)
		}
	}
}

func waitConnected(t *testing.T, e *jetstream.Engine) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !e.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("not connected after a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCredentialsAndTLS: a server that requires a user and a client
// certificate of its CA is reached with User, Password, TLSCA, TLSCert
// and TLSKey; a wrong password is not.
func TestCredentialsAndTLS(t *testing.T) {
	tf := fleettest.NewTLS(t)
	srv := fleettest.StartNATSWith(t, func(o *server.Options) {
		o.Username, o.Password = "edge", "s3cret"
		o.TLSConfig, o.TLS, o.TLSVerify = tf.Server, true, true
	})
	eo := fleet.EngineOptions{User: "edge", Password: "s3cret", TLSCA: tf.CA, TLSCert: tf.ClientCert, TLSKey: tf.ClientKey}
	e := open(t, srv.Addr(), jetstream.Options{EngineOptions: eo})
	ensure(t, e)
	pub := e.Publisher()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := fleettest.NewRecord("n1", "shop", 0)
	acked := make(chan error, 1)
	if err := pub.Publish(ctx, &r, func(err error) { acked <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-acked; err != nil {
		t.Fatalf("publish over TLS: %v", err)
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
	bad := open(t, srv.Addr(), jetstream.Options{EngineOptions: eo})
	if err := bad.EnsureStream(ctx); err == nil {
		t.Fatal("EnsureStream with a wrong password: no error")
	}
	if bad.Connected() {
		t.Fatal("connected with a wrong password")
	}
}
