package fleettest

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KafkaCluster is an in-process Kafka (kfake) of one broker on a loopback
// port, its data in a test's temporary directory. Stop and Start keep the
// port and the data (topics, records, committed offsets, producer
// state), as a broker restarted on its host does.
type KafkaCluster struct {
	t    testing.TB
	dir  string
	port int

	opts []kfake.Opt

	mu sync.Mutex
	c  *kfake.Cluster
}

// StartKafka starts a KafkaCluster, stopped when the test ends.
func StartKafka(t testing.TB) *KafkaCluster { return StartKafkaWith(t) }

// StartKafkaWith starts a KafkaCluster with more options (SASL, TLS).
func StartKafkaWith(t testing.TB, opts ...kfake.Opt) *KafkaCluster {
	t.Helper()
	k := &KafkaCluster{t: t, dir: t.TempDir(), opts: opts}
	k.Start()
	t.Cleanup(k.Stop)
	return k
}

// Addr is the broker's HOST:PORT.
func (k *KafkaCluster) Addr() string { return fmt.Sprintf("127.0.0.1:%d", k.port) }

// Start starts the broker if it is stopped.
func (k *KafkaCluster) Start() {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil {
		return
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(k.dir), kfake.SyncWrites(),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, fmt.Sprintf("127.0.0.1:%d", k.port))
		})}
	opts = append(opts, k.opts...)
	var c *kfake.Cluster
	var err error
	// A restarted broker takes its port back; another socket may still
	// hold it for a moment after the close.
	for try := 0; ; try++ {
		c, err = kfake.NewCluster(opts...)
		if err == nil || try == 100 || k.port == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		k.t.Fatalf("kfake: %v", err)
	}
	if k.port == 0 {
		_, port, _ := net.SplitHostPort(c.ListenAddrs()[0])
		fmt.Sscan(port, &k.port)
	}
	k.c = c
}

// Stop closes the broker (its clients' connections with it).
func (k *KafkaCluster) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c == nil {
		return
	}
	k.c.Close()
	k.c = nil
}
