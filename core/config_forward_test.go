package core

import (
	"strings"
	"testing"
)

func TestParseEngineURL(t *testing.T) {
	for _, tc := range []struct {
		url, engine string
		hosts       int
	}{
		{"nats://127.0.0.1:4222", "nats", 1},
		{"nats://a:4222,b:4222, c:4222", "nats", 3},
		{"kafka://b1:9092,b2:9092", "kafka", 2},
		{"kafka://[::1]:9092", "kafka", 1},
	} {
		engine, hosts, err := ParseEngineURL(tc.url)
		if err != nil || engine != tc.engine || len(hosts) != tc.hosts {
			t.Errorf("ParseEngineURL(%q) = %q, %v, %v", tc.url, engine, hosts, err)
		}
	}
	for _, bad := range []string{"", "nats", "http://a:1", "nats://", "nats://a", "kafka://a:9092,", "nats://a:"} {
		if _, _, err := ParseEngineURL(bad); err == nil {
			t.Errorf("ParseEngineURL(%q) accepted", bad)
		}
	}
}

// Forwarding needs a node id; every forward setting is checked, and named.
func TestForwardConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.LoadEnv(func(k string) string {
		return map[string]string{"COLLECTOR_FORWARD_URL": "nats://127.0.0.1:4222", "COLLECTOR_FORWARD_MAX_BACKLOG": "64MiB"}[k]
	}); err != nil {
		t.Fatal(err)
	}
	if c.ForwardMaxBacklog != 64<<20 || c.ForwardCompression != "snappy" {
		t.Fatalf("backlog %d, compression %q", c.ForwardMaxBacklog, c.ForwardCompression)
	}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "COLLECTOR_NODE_ID") {
		t.Fatalf("forwarding without a node id: %v", err)
	}
	c.NodeID = "edge-eu-1"
	if err := c.Validate(); err != nil {
		t.Fatalf("valid forward config: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"COLLECTOR_NODE_ID":             func(c *Config) { c.NodeID = "edge/1" },
		"COLLECTOR_FORWARD_URL":         func(c *Config) { c.ForwardURL = "amqp://x:1" },
		"COLLECTOR_FORWARD_MAX_BACKLOG": func(c *Config) { c.ForwardMaxBacklog = 1000 },
		"COLLECTOR_FORWARD_REPLICAS":    func(c *Config) { c.ForwardReplicas = 0 },
		"COLLECTOR_FORWARD_SASL":        func(c *Config) { c.ForwardSASL = "md5" },
		"COLLECTOR_FORWARD_COMPRESSION": func(c *Config) { c.ForwardCompression = "gzip" },
		"COLLECTOR_FORWARD_TLS_CERT":    func(c *Config) { c.ForwardTLSCert = "c.pem" },
		"COLLECTOR_HUB_WORKERS":         func(c *Config) { c.HubWorkers = -1 },
	} {
		cc := c
		mut(&cc)
		if err := cc.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Without forwarding a bad node id is still refused; none is fine.
	c = DefaultConfig()
	c.NodeID = "a b"
	if err := c.Validate(); err == nil {
		t.Error("an invalid node id without forwarding was accepted")
	}
}
