package fleettest

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServer is an embedded nats-server with JetStream on a loopback
// port, its store in a test's temporary directory. Stop and Start keep
// the port and the store, as a server restarted on its host does.
type NATSServer struct {
	t    testing.TB
	dir  string
	port int

	configure func(*server.Options)

	mu  sync.Mutex
	srv *server.Server
}

// StartNATS starts a NATSServer, stopped when the test ends.
func StartNATS(t testing.TB) *NATSServer { return StartNATSWith(t, nil) }

// StartNATSWith starts a NATSServer whose options configure changes (a
// user, TLS) before each start.
func StartNATSWith(t testing.TB, configure func(*server.Options)) *NATSServer {
	t.Helper()
	s := &NATSServer{t: t, dir: t.TempDir(), port: -1, configure: configure}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Addr is the server's HOST:PORT.
func (s *NATSServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Start starts the server if it is stopped.
func (s *NATSServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	opts := &server.Options{
		ServerName: "fleettest",
		Host:       "127.0.0.1",
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.dir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	if s.configure != nil {
		s.configure(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		s.t.Fatalf("nats-server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		s.t.Fatal("nats-server: not ready after 30 s")
	}
	s.port = srv.Addr().(*net.TCPAddr).Port
	s.srv = srv
}

// Stop shuts the server down and waits until it is.
func (s *NATSServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}
