package core

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the collector's whole configuration: one struct with defaults
// (DefaultConfig), read from the environment (LoadEnv) and overridden by
// flags, checked by Validate, and passed down to every component.
type Config struct {
	Host    string // COLLECTOR_HOST
	Port    int    // COLLECTOR_PORT
	DataDir string // COLLECTOR_DATA_DIR

	CORSOrigins   []string // COLLECTOR_CORS_ORIGINS (comma list; "*" = any origin)
	RequireOrigin bool     // COLLECTOR_REQUIRE_ORIGIN: refuse API requests without an Origin header

	VisitorHashSecret string // VISITOR_HASH_SECRET: root of the visitor-salt ratchet (the migration path; optional once the data dir holds a seed)
	DevMode           bool   // set by the command line, never by the environment

	RawRetention     bool // ENABLE_RAW_SESSION_RETENTION
	RawRetentionDays int  // RAW_RETENTION_DAYS

	BodyLimit           int    // COLLECTOR_BODY_LIMIT: max decompressed body bytes
	CompressedBodyLimit int    // COLLECTOR_COMPRESSED_BODY_LIMIT: max bytes on the wire
	TrustProxy          string // COLLECTOR_TRUST_PROXY: false | true | hop count | CIDR list

	RateLimitWindow       time.Duration // COLLECTOR_RATE_LIMIT_WINDOW (Go duration)
	RateLimitMax          int           // COLLECTOR_RATE_LIMIT_MAX: non-ingest requests per client IP per window (0 = off)
	IngestRateLimitMax    int           // COLLECTOR_INGEST_RATE_LIMIT_MAX: ingest requests per client IP per window (0 = off)
	KeyIngestRateLimitMax int           // COLLECTOR_KEY_RATE_LIMIT_MAX: ingest requests per API key per window (0 = off)
	MaxConcurrentIngest   int           // COLLECTOR_MAX_CONCURRENT_INGEST: ingest requests processed at once (0 = twice the cores)

	SyncWrites  bool  // COLLECTOR_SYNC_WRITES: fsync each group commit
	MinFreeDisk int64 // COLLECTOR_MIN_FREE_DISK: refuse writes (503) below this many free bytes besides the store's reserve (negative = no floor; the reserve stays)

	ValueLogGCInterval time.Duration // COLLECTOR_VLOG_GC_INTERVAL: how often space is reclaimed (≤ 0 = never)

	PluginTimeout   time.Duration // COLLECTOR_PLUGIN_TIMEOUT: CPU deadline of one plugin call
	PluginMemoryMiB int           // COLLECTOR_PLUGIN_MEMORY_MB: linear memory cap per plugin instance
	PluginModuleMiB int           // COLLECTOR_PLUGIN_MAX_MODULE_MB: largest plugin module accepted at upload
	QuarantineTTL   time.Duration // COLLECTOR_QUARANTINE_TTL: how long batches whose plugin failed are kept

	// Plugins sharing the node, and ingest slots sharing it between projects.
	PluginMemoryBudget       int64         // COLLECTOR_PLUGIN_MEMORY_BUDGET: linear memory of every plugin instance together, bytes (0 = a quarter of the memory limit)
	PluginMaxInstances       int           // COLLECTOR_PLUGIN_MAX_INSTANCES: live plugin instances on the node (0 = one per 2 MiB of the budget)
	PluginProjectConcurrency int           // COLLECTOR_PLUGIN_PROJECT_CONCURRENCY: batches of one project in its plugins at once (0 = half the cores, at least 1)
	PluginWait               time.Duration // COLLECTOR_PLUGIN_WAIT: how long a batch waits for plugin room before 503 (0 = 10 × the plugin timeout)
	PluginNice               int           // COLLECTOR_PLUGIN_NICE: priority of the threads guest code runs on: "idle" (PluginNiceIdle, SCHED_IDLE), a nice value 1–19, or 0 (the request's own priority)
	MaxProjectIngest         int           // COLLECTOR_MAX_CONCURRENT_INGEST_PER_PROJECT: ingest slots one project may hold (0 = half the slots, at least 1)

	ShutdownTimeout time.Duration // COLLECTOR_SHUTDOWN_TIMEOUT
	ShutdownGrace   time.Duration // COLLECTOR_SHUTDOWN_GRACE: how long the listener stays open answering 503 after SIGTERM
	PprofAddr       string        // COLLECTOR_PPROF_ADDR: serve net/http/pprof on this loopback address ("" = off)
	LogLevel        string        // COLLECTOR_LOG_LEVEL: debug | info | warn | error
	LogFormat       string        // COLLECTOR_LOG_FORMAT: json | text

	// The fleet bundle (docs/FLEET.md).
	ControlPubKey string // COLLECTOR_CONTROL_PUBKEY: base64 ed25519 public key (fleet keygen); set, only revisions it signed are applied
	ControlURL    string // COLLECTOR_CONTROL_URL: nats://HOST:PORT[,…]: follow the fleet's revisions published there ("" = none)
	Bundle        string // COLLECTOR_BUNDLE: a bundle file the node applies at start and again when it changes or on SIGHUP ("" = none)

	// Forwarding to the fleet's stream engine (docs/OPERATIONS.md, "The fleet").
	ForwardURL         string // COLLECTOR_FORWARD_URL: nats://h:p[,h:p…] or kafka://b1:9092[,b2…] ("" = no forwarding)
	NodeID             string // COLLECTOR_NODE_ID: this node's id in the fleet, stable across restarts (required with forwarding)
	ForwardStream      string // COLLECTOR_FORWARD_STREAM: JetStream stream or Kafka topic ("" = UPTIMIZR_EVENTS / uptimizr-events)
	ForwardMaxBacklog  int64  // COLLECTOR_FORWARD_MAX_BACKLOG: bytes of records not yet forwarded the log may hold; past it ingest answers 503
	ForwardReplicas    int    // COLLECTOR_FORWARD_REPLICAS: the stream's replicas, or the topic's replication factor, when the node creates it
	ForwardCompression string // COLLECTOR_FORWARD_COMPRESSION: snappy (JetStream bodies as Snappy blocks; Kafka's batches) or none
	ForwardCreds       string // COLLECTOR_FORWARD_CREDS: NATS credentials file
	ForwardUser        string // COLLECTOR_FORWARD_USER: NATS user, or Kafka SASL user
	ForwardPassword    string // COLLECTOR_FORWARD_PASSWORD
	ForwardSASL        string // COLLECTOR_FORWARD_SASL: Kafka SASL mechanism: plain, scram-sha-256 or scram-sha-512 ("" = none)
	ForwardTLSCA       string // COLLECTOR_FORWARD_TLS_CA: CA file to verify the engine with (turns TLS on)
	ForwardTLSCert     string // COLLECTOR_FORWARD_TLS_CERT: client certificate file
	ForwardTLSKey      string // COLLECTOR_FORWARD_TLS_KEY: its key file

	// The fleet's hub (uptimizr-edge hub): where it reads the nodes' records.
	HubSource   string // COLLECTOR_HUB_SOURCE: nats://h:p[,…] or kafka://b1:9092[,…] (the hub command requires it)
	HubConsumer string // COLLECTOR_HUB_CONSUMER: the durable consumer, or Kafka consumer group (default uptimizr-hub)
	HubProject  string // COLLECTOR_HUB_PROJECT: only this project's records (a hub per shard of projects; "" = all)
	HubWorkers  int    // COLLECTOR_HUB_WORKERS: consumers sharing the hub's durable consumer (0 = one per CPU)

	// Live presence and streams (docs/API.md, "Live").
	LiveMaxSubscribers int           // COLLECTOR_LIVE_MAX_SUBSCRIBERS: live streams one project may hold open on the node
	LiveMaxStreams     int           // COLLECTOR_LIVE_MAX_STREAMS: live streams open on the node, every project's
	LiveBuffer         int64         // COLLECTOR_LIVE_BUFFER: bytes of events queued for one stream; a stream that falls further behind is dropped
	LiveWindow         time.Duration // COLLECTOR_LIVE_WINDOW: a session is present this long after its last batch
	LiveMaxSessions    int           // COLLECTOR_LIVE_MAX_SESSIONS: present sessions kept per project (the least recent go first)
	LiveTokenTTL       time.Duration // COLLECTOR_LIVE_TOKEN_TTL: lifetime of a token from POST /api/v1/live/token
	LiveHeartbeat      time.Duration // COLLECTOR_LIVE_HEARTBEAT: a quiet stream sends a comment this often (and its key is checked again)

	// ClockStart, when set, makes the node's clock start at this instant and
	// run at real speed (COLLECTOR_CLOCK_START, RFC 3339): a testing aid for
	// day turns; never set in production.
	ClockStart time.Time
}

// PluginNiceIdle is Config.PluginNice for COLLECTOR_PLUGIN_NICE=idle: guest
// code runs under the SCHED_IDLE policy, so any other thread of the node that
// wakes takes the CPU from it at once (docs/RATIONALE.md, "Why does guest
// code run at a lower priority?").
const PluginNiceIdle = -1

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Host:                  "0.0.0.0",
		Port:                  4318,
		DataDir:               "./data",
		RawRetentionDays:      30,
		BodyLimit:             1 << 20,
		CompressedBodyLimit:   0, // = BodyLimit
		TrustProxy:            "false",
		RateLimitWindow:       time.Minute,
		RateLimitMax:          600,
		IngestRateLimitMax:    1200,
		KeyIngestRateLimitMax: 0,
		MinFreeDisk:           64 << 20,
		ValueLogGCInterval:    5 * time.Minute,
		PluginTimeout:         50 * time.Millisecond,
		PluginNice:            PluginNiceIdle,
		PluginMemoryMiB:       64,
		PluginModuleMiB:       16,
		QuarantineTTL:         7 * 24 * time.Hour,
		ShutdownTimeout:       20 * time.Second,
		LogLevel:              "info",
		LogFormat:             "json",
		ForwardMaxBacklog:     1 << 30,
		HubConsumer:           "uptimizr-hub",
		ForwardReplicas:       1,
		ForwardCompression:    "snappy",
		LiveMaxSubscribers:    16,
		LiveMaxStreams:        256,
		LiveBuffer:            1 << 20,
		LiveWindow:            30 * time.Second,
		LiveMaxSessions:       10000,
		LiveTokenTTL:          15 * time.Minute,
		LiveHeartbeat:         15 * time.Second,
	}
}

// Addr is Host:Port.
func (c *Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// MaxWireBody is the effective compressed-size cap.
func (c *Config) MaxWireBody() int {
	if c.CompressedBodyLimit > 0 {
		return c.CompressedBodyLimit
	}
	return c.BodyLimit
}

// LoadEnv overrides c with the variables set in the environment (getenv is
// os.Getenv in production). It reports every malformed value at once.
func (c *Config) LoadEnv(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	num := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not an integer", name, v))
				return
			}
			*dst = n
		}
	}
	boolean := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want true or false", name, v))
				return
			}
			*dst = b
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want a duration such as 60s or 1m", name, v))
				return
			}
			*dst = d
		}
	}
	str("COLLECTOR_HOST", &c.Host)
	num("COLLECTOR_PORT", &c.Port)
	str("COLLECTOR_DATA_DIR", &c.DataDir)
	if v := getenv("COLLECTOR_CORS_ORIGINS"); v != "" {
		c.CORSOrigins = nil
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				c.CORSOrigins = append(c.CORSOrigins, strings.TrimRight(o, "/"))
			}
		}
	}
	boolean("COLLECTOR_REQUIRE_ORIGIN", &c.RequireOrigin)
	str("VISITOR_HASH_SECRET", &c.VisitorHashSecret)
	boolean("ENABLE_RAW_SESSION_RETENTION", &c.RawRetention)
	num("RAW_RETENTION_DAYS", &c.RawRetentionDays)
	num("COLLECTOR_BODY_LIMIT", &c.BodyLimit)
	num("COLLECTOR_COMPRESSED_BODY_LIMIT", &c.CompressedBodyLimit)
	str("COLLECTOR_TRUST_PROXY", &c.TrustProxy)
	dur("COLLECTOR_RATE_LIMIT_WINDOW", &c.RateLimitWindow)
	num("COLLECTOR_RATE_LIMIT_MAX", &c.RateLimitMax)
	num("COLLECTOR_INGEST_RATE_LIMIT_MAX", &c.IngestRateLimitMax)
	num("COLLECTOR_KEY_RATE_LIMIT_MAX", &c.KeyIngestRateLimitMax)
	num("COLLECTOR_MAX_CONCURRENT_INGEST", &c.MaxConcurrentIngest)
	boolean("COLLECTOR_SYNC_WRITES", &c.SyncWrites)
	if v := getenv("COLLECTOR_MIN_FREE_DISK"); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("COLLECTOR_MIN_FREE_DISK=%q: not an integer", v))
		} else {
			c.MinFreeDisk = n
		}
	}
	dur("COLLECTOR_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	dur("COLLECTOR_SHUTDOWN_GRACE", &c.ShutdownGrace)
	dur("COLLECTOR_VLOG_GC_INTERVAL", &c.ValueLogGCInterval)
	dur("COLLECTOR_PLUGIN_TIMEOUT", &c.PluginTimeout)
	num("COLLECTOR_PLUGIN_MEMORY_MB", &c.PluginMemoryMiB)
	num("COLLECTOR_PLUGIN_MAX_MODULE_MB", &c.PluginModuleMiB)
	dur("COLLECTOR_QUARANTINE_TTL", &c.QuarantineTTL)
	if v := getenv("COLLECTOR_PLUGIN_MEMORY_BUDGET"); v != "" {
		if n, err := ParseBytes(v); err != nil {
			errs = append(errs, fmt.Errorf("COLLECTOR_PLUGIN_MEMORY_BUDGET=%q: %v", v, err))
		} else {
			c.PluginMemoryBudget = n
		}
	}
	num("COLLECTOR_PLUGIN_MAX_INSTANCES", &c.PluginMaxInstances)
	num("COLLECTOR_PLUGIN_PROJECT_CONCURRENCY", &c.PluginProjectConcurrency)
	dur("COLLECTOR_PLUGIN_WAIT", &c.PluginWait)
	if v := strings.TrimSpace(getenv("COLLECTOR_PLUGIN_NICE")); strings.EqualFold(v, "idle") {
		c.PluginNice = PluginNiceIdle
	} else if v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 19 {
			errs = append(errs, fmt.Errorf("COLLECTOR_PLUGIN_NICE=%q: want idle (the default), a nice value 1 up to 19, or 0 (plugins at the request's priority)", v))
		} else {
			c.PluginNice = n
		}
	}
	num("COLLECTOR_MAX_CONCURRENT_INGEST_PER_PROJECT", &c.MaxProjectIngest)
	str("COLLECTOR_LOG_LEVEL", &c.LogLevel)
	str("COLLECTOR_LOG_FORMAT", &c.LogFormat)
	str("COLLECTOR_PPROF_ADDR", &c.PprofAddr)
	str("COLLECTOR_FORWARD_URL", &c.ForwardURL)
	str("COLLECTOR_CONTROL_PUBKEY", &c.ControlPubKey)
	str("COLLECTOR_CONTROL_URL", &c.ControlURL)
	str("COLLECTOR_BUNDLE", &c.Bundle)
	str("COLLECTOR_NODE_ID", &c.NodeID)
	str("COLLECTOR_FORWARD_STREAM", &c.ForwardStream)
	if v := getenv("COLLECTOR_FORWARD_MAX_BACKLOG"); v != "" {
		if n, err := ParseBytes(v); err != nil {
			errs = append(errs, fmt.Errorf("COLLECTOR_FORWARD_MAX_BACKLOG=%q: %v", v, err))
		} else {
			c.ForwardMaxBacklog = n
		}
	}
	num("COLLECTOR_FORWARD_REPLICAS", &c.ForwardReplicas)
	str("COLLECTOR_FORWARD_COMPRESSION", &c.ForwardCompression)
	str("COLLECTOR_FORWARD_CREDS", &c.ForwardCreds)
	str("COLLECTOR_FORWARD_USER", &c.ForwardUser)
	str("COLLECTOR_FORWARD_PASSWORD", &c.ForwardPassword)
	str("COLLECTOR_FORWARD_SASL", &c.ForwardSASL)
	str("COLLECTOR_FORWARD_TLS_CA", &c.ForwardTLSCA)
	str("COLLECTOR_FORWARD_TLS_CERT", &c.ForwardTLSCert)
	str("COLLECTOR_FORWARD_TLS_KEY", &c.ForwardTLSKey)
	str("COLLECTOR_HUB_SOURCE", &c.HubSource)
	str("COLLECTOR_HUB_CONSUMER", &c.HubConsumer)
	str("COLLECTOR_HUB_PROJECT", &c.HubProject)
	num("COLLECTOR_HUB_WORKERS", &c.HubWorkers)
	num("COLLECTOR_LIVE_MAX_SUBSCRIBERS", &c.LiveMaxSubscribers)
	num("COLLECTOR_LIVE_MAX_STREAMS", &c.LiveMaxStreams)
	if v := getenv("COLLECTOR_LIVE_BUFFER"); v != "" {
		if n, err := ParseBytes(v); err != nil {
			errs = append(errs, fmt.Errorf("COLLECTOR_LIVE_BUFFER=%q: %v", v, err))
		} else {
			c.LiveBuffer = n
		}
	}
	dur("COLLECTOR_LIVE_WINDOW", &c.LiveWindow)
	num("COLLECTOR_LIVE_MAX_SESSIONS", &c.LiveMaxSessions)
	dur("COLLECTOR_LIVE_TOKEN_TTL", &c.LiveTokenTTL)
	dur("COLLECTOR_LIVE_HEARTBEAT", &c.LiveHeartbeat)
	if v := getenv("COLLECTOR_CLOCK_START"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("COLLECTOR_CLOCK_START=%q: want an RFC 3339 time", v))
		} else {
			c.ClockStart = t
		}
	}
	return errors.Join(errs...)
}

// Validate checks the configuration and reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if c.Port < 0 || c.Port > 65535 {
		bad("COLLECTOR_PORT %d: want 0–65535", c.Port)
	}
	if c.DataDir == "" {
		bad("COLLECTOR_DATA_DIR: empty")
	}
	if c.VisitorHashSecret != "" && len(c.VisitorHashSecret) < MinVisitorSecretLen {
		bad("VISITOR_HASH_SECRET: at least 16 characters (e.g. openssl rand -hex 32), or unset it and use the data dir's visitor seed (uptimizr-edge salt init / salt import)")
	}
	if c.RawRetentionDays < 1 || c.RawRetentionDays > 3650 {
		bad("RAW_RETENTION_DAYS %d: want 1–3650", c.RawRetentionDays)
	}
	if c.BodyLimit < 1024 || c.BodyLimit > 64<<20 {
		bad("COLLECTOR_BODY_LIMIT %d: want 1024–67108864 bytes", c.BodyLimit)
	}
	if c.CompressedBodyLimit < 0 || c.CompressedBodyLimit > 64<<20 {
		bad("COLLECTOR_COMPRESSED_BODY_LIMIT %d: want 0 (same as the body limit) up to 67108864", c.CompressedBodyLimit)
	}
	if c.RateLimitWindow < time.Second {
		bad("COLLECTOR_RATE_LIMIT_WINDOW %s: want at least 1s", c.RateLimitWindow)
	}
	if c.RateLimitMax < 0 || c.IngestRateLimitMax < 0 || c.KeyIngestRateLimitMax < 0 {
		bad("rate limits must be ≥ 0 (0 turns a limit off)")
	}
	if c.MaxConcurrentIngest < 0 || c.MaxConcurrentIngest > 4096 {
		bad("COLLECTOR_MAX_CONCURRENT_INGEST %d: want 0 (twice the cores) up to 4096", c.MaxConcurrentIngest)
	}
	for _, o := range c.CORSOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			bad("COLLECTOR_CORS_ORIGINS: %q is not an origin (want https://host[:port] or *)", o)
		}
	}
	if c.PluginTimeout < time.Millisecond || c.PluginTimeout > 10*time.Second {
		bad("COLLECTOR_PLUGIN_TIMEOUT %s: want 1ms–10s", c.PluginTimeout)
	}
	if c.PluginMemoryMiB < 1 || c.PluginMemoryMiB > 4096 {
		bad("COLLECTOR_PLUGIN_MEMORY_MB %d: want 1–4096", c.PluginMemoryMiB)
	}
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			bad("COLLECTOR_PPROF_ADDR %q: want a loopback HOST:PORT (profiles are not for the public)", c.PprofAddr)
		}
	}
	if c.PluginModuleMiB < 1 || c.PluginModuleMiB > 256 {
		bad("COLLECTOR_PLUGIN_MAX_MODULE_MB %d: want 1–256", c.PluginModuleMiB)
	}
	if c.PluginMemoryBudget != 0 && c.PluginMemoryBudget < 1<<20 {
		bad("COLLECTOR_PLUGIN_MEMORY_BUDGET %d: want 0 (a quarter of the memory limit) or at least 1MiB", c.PluginMemoryBudget)
	}
	if c.PluginMaxInstances < 0 || c.PluginMaxInstances > 1<<20 {
		bad("COLLECTOR_PLUGIN_MAX_INSTANCES %d: want 0 (one per 2 MiB of the budget) up to 1048576", c.PluginMaxInstances)
	}
	if c.PluginProjectConcurrency < 0 || c.PluginProjectConcurrency > 4096 {
		bad("COLLECTOR_PLUGIN_PROJECT_CONCURRENCY %d: want 0 (half the cores) up to 4096", c.PluginProjectConcurrency)
	}
	if c.PluginNice != PluginNiceIdle && (c.PluginNice < 0 || c.PluginNice > 19) {
		bad("COLLECTOR_PLUGIN_NICE %d: want idle (the default), a nice value 1 up to 19, or 0 (plugins at the request's priority)", c.PluginNice)
	}
	if c.PluginWait < 0 || c.PluginWait > time.Minute {
		bad("COLLECTOR_PLUGIN_WAIT %s: want 0 (10 × the plugin timeout) up to 1m", c.PluginWait)
	}
	if c.MaxProjectIngest < 0 || c.MaxProjectIngest > 4096 {
		bad("COLLECTOR_MAX_CONCURRENT_INGEST_PER_PROJECT %d: want 0 (half the slots) up to 4096", c.MaxProjectIngest)
	}
	if c.QuarantineTTL < time.Minute {
		bad("COLLECTOR_QUARANTINE_TTL %s: want at least 1m", c.QuarantineTTL)
	}
	if c.ShutdownTimeout <= 0 {
		bad("COLLECTOR_SHUTDOWN_TIMEOUT must be positive")
	}
	if c.ShutdownGrace < 0 || c.ShutdownGrace >= c.ShutdownTimeout {
		bad("COLLECTOR_SHUTDOWN_GRACE %s: want 0 up to less than COLLECTOR_SHUTDOWN_TIMEOUT (%s)", c.ShutdownGrace, c.ShutdownTimeout)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("COLLECTOR_LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("COLLECTOR_LOG_FORMAT %q: want json or text", c.LogFormat)
	}
	if c.ControlPubKey != "" {
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.ControlPubKey)); err != nil || len(b) != ed25519.PublicKeySize {
			bad("COLLECTOR_CONTROL_PUBKEY: want an ed25519 public key, base64 of its 32 bytes (fleet keygen writes one)")
		}
	}
	if c.ControlURL != "" && c.Bundle != "" {
		bad("COLLECTOR_BUNDLE and COLLECTOR_CONTROL_URL: a node takes its revisions from one of them, not both")
	}
	if c.ControlURL != "" {
		if kind, _, err := ParseEngineURL(c.ControlURL); err != nil || kind != "nats" {
			bad("COLLECTOR_CONTROL_URL %q: want nats://HOST:PORT[,HOST:PORT…]", c.ControlURL)
		}
	}
	if c.ForwardURL != "" {
		if _, _, err := ParseEngineURL(c.ForwardURL); err != nil {
			bad("COLLECTOR_FORWARD_URL: %v", err)
		}
		if !ValidNodeID(c.NodeID) {
			bad("COLLECTOR_NODE_ID %q: forwarding needs this node's id, stable across restarts: 1–64 characters of A-Z a-z 0-9 . _ -", c.NodeID)
		}
	} else if c.NodeID != "" && !ValidNodeID(c.NodeID) {
		bad("COLLECTOR_NODE_ID %q: want 1–64 characters of A-Z a-z 0-9 . _ -", c.NodeID)
	}
	if c.ForwardMaxBacklog < 1<<20 {
		bad("COLLECTOR_FORWARD_MAX_BACKLOG %d: want at least 1MiB", c.ForwardMaxBacklog)
	}
	if c.ForwardReplicas < 1 || c.ForwardReplicas > 5 {
		bad("COLLECTOR_FORWARD_REPLICAS %d: want 1–5", c.ForwardReplicas)
	}
	if c.ForwardCompression != "snappy" && c.ForwardCompression != "none" {
		bad("COLLECTOR_FORWARD_COMPRESSION %q: want snappy or none", c.ForwardCompression)
	}
	switch c.ForwardSASL {
	case "", "plain", "scram-sha-256", "scram-sha-512":
	default:
		bad("COLLECTOR_FORWARD_SASL %q: want plain, scram-sha-256, scram-sha-512 or nothing", c.ForwardSASL)
	}
	if c.HubSource != "" {
		if _, _, err := ParseEngineURL(c.HubSource); err != nil {
			bad("COLLECTOR_HUB_SOURCE: %v", err)
		}
	}
	if !ValidNodeID(c.HubConsumer) {
		bad("COLLECTOR_HUB_CONSUMER %q: want 1–64 characters of A-Z a-z 0-9 . _ -", c.HubConsumer)
	}
	if c.HubProject != "" && !ValidProjectID(c.HubProject) {
		bad("COLLECTOR_HUB_PROJECT %q: not a project id", c.HubProject)
	}
	if c.HubWorkers < 0 || c.HubWorkers > 256 {
		bad("COLLECTOR_HUB_WORKERS %d: want 0 (one per CPU) to 256", c.HubWorkers)
	}
	if (c.ForwardTLSCert == "") != (c.ForwardTLSKey == "") {
		bad("COLLECTOR_FORWARD_TLS_CERT and COLLECTOR_FORWARD_TLS_KEY go together")
	}
	if c.LiveMaxSubscribers < 1 || c.LiveMaxSubscribers > 4096 {
		bad("COLLECTOR_LIVE_MAX_SUBSCRIBERS %d: want 1–4096", c.LiveMaxSubscribers)
	}
	if c.LiveMaxStreams < 1 || c.LiveMaxStreams > 65536 {
		bad("COLLECTOR_LIVE_MAX_STREAMS %d: want 1–65536", c.LiveMaxStreams)
	}
	if c.LiveBuffer < 64<<10 || c.LiveBuffer > 256<<20 {
		bad("COLLECTOR_LIVE_BUFFER %d: want 64KiB–256MiB", c.LiveBuffer)
	}
	if c.LiveWindow < time.Second || c.LiveWindow > time.Hour {
		bad("COLLECTOR_LIVE_WINDOW %s: want 1s–1h", c.LiveWindow)
	}
	if c.LiveMaxSessions < 1 || c.LiveMaxSessions > 1_000_000 {
		bad("COLLECTOR_LIVE_MAX_SESSIONS %d: want 1–1000000", c.LiveMaxSessions)
	}
	if c.LiveTokenTTL < time.Minute || c.LiveTokenTTL > 24*time.Hour {
		bad("COLLECTOR_LIVE_TOKEN_TTL %s: want 1m–24h", c.LiveTokenTTL)
	}
	if c.LiveHeartbeat < time.Second || c.LiveHeartbeat > 5*time.Minute {
		bad("COLLECTOR_LIVE_HEARTBEAT %s: want 1s–5m", c.LiveHeartbeat)
	}
	return errors.Join(errs...)
}

// ParseEngineURL reads COLLECTOR_FORWARD_URL (or a hub's source): the
// engine, "nats" or "kafka", and its hosts, each HOST:PORT.
func ParseEngineURL(u string) (engine string, hosts []string, err error) {
	engine, rest, ok := strings.Cut(u, "://")
	if !ok || (engine != "nats" && engine != "kafka") {
		return "", nil, fmt.Errorf("%q: want nats://HOST:PORT[,HOST:PORT…] or kafka://HOST:PORT[,HOST:PORT…]", u)
	}
	for _, h := range strings.Split(rest, ",") {
		h = strings.TrimSpace(h)
		if _, port, err := net.SplitHostPort(h); err != nil || port == "" {
			return "", nil, fmt.Errorf("%q: %q is not HOST:PORT", u, h)
		}
		hosts = append(hosts, h)
	}
	return engine, hosts, nil
}

// Setting names one configuration variable and the command-line flag that
// sets the same (docs/OPERATIONS.md: environment, with flags for the same).
type Setting struct {
	Env   string // environment variable
	Flag  string // flag name, without dashes
	Usage string
}

// Settings lists every variable LoadEnv reads, in the order of the
// operations guide. A flag given on the command line wins over the
// variable.
var Settings = []Setting{
	{"COLLECTOR_HOST", "host", "listen host"},
	{"COLLECTOR_PORT", "port", "listen port"},
	{"COLLECTOR_DATA_DIR", "data-dir", "data directory"},
	{"VISITOR_HASH_SECRET", "visitor-hash-secret", "root secret of the visitor-salt ratchet (≥ 16 characters; the migration path: not needed once the data dir holds a seed)"},
	{"COLLECTOR_CORS_ORIGINS", "cors-origins", "allowed browser origins, comma separated (* = any); a request from another origin gets 403"},
	{"COLLECTOR_REQUIRE_ORIGIN", "require-origin", "refuse API requests that carry no Origin header (true/false)"},
	{"ENABLE_RAW_SESSION_RETENTION", "enable-raw-session-retention", "keep the raw per-session stream (true/false)"},
	{"RAW_RETENTION_DAYS", "raw-retention-days", "days raw streams are kept"},
	{"COLLECTOR_BODY_LIMIT", "body-limit", "max decompressed body bytes"},
	{"COLLECTOR_COMPRESSED_BODY_LIMIT", "compressed-body-limit", "max body bytes on the wire (0 = body limit)"},
	{"COLLECTOR_TRUST_PROXY", "trust-proxy", "when X-Forwarded-For is believed: false, true, a hop count or CIDRs"},
	{"COLLECTOR_RATE_LIMIT_WINDOW", "rate-limit-window", "window of every rate limit"},
	{"COLLECTOR_INGEST_RATE_LIMIT_MAX", "ingest-rate-limit-max", "ingest requests per client address per window (0 = off)"},
	{"COLLECTOR_KEY_RATE_LIMIT_MAX", "key-rate-limit-max", "ingest requests per API key per window (0 = off)"},
	{"COLLECTOR_RATE_LIMIT_MAX", "rate-limit-max", "other API requests per client address per window (0 = off)"},
	{"COLLECTOR_MAX_CONCURRENT_INGEST", "max-concurrent-ingest", "ingest requests processed at once; the rest wait in arrival order (0 = twice the cores)"},
	{"COLLECTOR_SYNC_WRITES", "sync-writes", "fsync every group commit (true/false)"},
	{"COLLECTOR_MIN_FREE_DISK", "min-free-disk", "refuse writes below this many free bytes besides the store's own reserve (negative = no floor; the reserve stays)"},
	{"COLLECTOR_SHUTDOWN_TIMEOUT", "shutdown-timeout", "how long SIGTERM waits for in-flight requests"},
	{"COLLECTOR_SHUTDOWN_GRACE", "shutdown-grace", "after SIGTERM, keep the listener open this long answering new requests 503 (for load balancers to notice)"},
	{"COLLECTOR_PLUGIN_TIMEOUT", "plugin-timeout", "deadline of one plugin call"},
	{"COLLECTOR_PLUGIN_MEMORY_MB", "plugin-memory-mb", "linear memory cap of one plugin instance, MiB"},
	{"COLLECTOR_PLUGIN_MAX_MODULE_MB", "plugin-max-module-mb", "largest plugin module accepted at upload, MiB"},
	{"COLLECTOR_QUARANTINE_TTL", "quarantine-ttl", "how long batches whose plugin failed are kept"},
	{"COLLECTOR_PLUGIN_MEMORY_BUDGET", "plugin-memory-budget", "linear memory of all plugin instances together: bytes, or with KiB/MiB/GiB/TiB (0 = a quarter of the memory limit)"},
	{"COLLECTOR_PLUGIN_MAX_INSTANCES", "plugin-max-instances", "live plugin instances on the node (0 = one per 2 MiB of the budget)"},
	{"COLLECTOR_PLUGIN_PROJECT_CONCURRENCY", "plugin-project-concurrency", "batches of one project in its plugins at once (0 = half the cores)"},
	{"COLLECTOR_PLUGIN_WAIT", "plugin-wait", "how long a batch waits for plugin room before 503 (0 = 10 × plugin timeout)"},
	{"COLLECTOR_PLUGIN_NICE", "plugin-nice", "priority of plugin calls, below the request path: idle (SCHED_IDLE, the default), a nice value 1–19, or 0 (the request's own priority)"},
	{"COLLECTOR_MAX_CONCURRENT_INGEST_PER_PROJECT", "max-concurrent-ingest-per-project", "ingest slots one project may hold (0 = half the slots)"},
	{"COLLECTOR_VLOG_GC_INTERVAL", "vlog-gc-interval", "how often the value log is garbage-collected (0 = never)"},
	{"COLLECTOR_LOG_LEVEL", "log-level", "debug, info, warn or error"},
	{"COLLECTOR_LOG_FORMAT", "log-format", "json or text"},
	{"COLLECTOR_PPROF_ADDR", "pprof-addr", "serve Go's profiles on this loopback HOST:PORT"},
	{"COLLECTOR_BUNDLE", "bundle", "a fleet bundle file to apply at start and again when it changes or on SIGHUP (unset = none)"},
	{"COLLECTOR_CONTROL_URL", "control-url", "follow the fleet revisions published on this NATS control plane: nats://HOST:PORT[,…] (unset = none)"},
	{"COLLECTOR_CONTROL_PUBKEY", "control-pubkey", "apply only fleet revisions signed by this ed25519 public key (base64, from fleet keygen)"},
	{"COLLECTOR_FORWARD_URL", "forward-url", "forward every committed record to this stream engine: nats://HOST:PORT[,…] or kafka://HOST:PORT[,…] (unset = no forwarding)"},
	{"COLLECTOR_NODE_ID", "node-id", "this node's id in the fleet, stable across restarts (required with forwarding)"},
	{"COLLECTOR_FORWARD_STREAM", "forward-stream", "JetStream stream or Kafka topic (default UPTIMIZR_EVENTS or uptimizr-events)"},
	{"COLLECTOR_FORWARD_MAX_BACKLOG", "forward-max-backlog", "bytes of records not yet forwarded kept while the engine is unreachable; past it ingest answers 503 (KiB/MiB/GiB)"},
	{"COLLECTOR_FORWARD_REPLICAS", "forward-replicas", "replicas of the stream (replication factor of the topic) when the node creates it"},
	{"COLLECTOR_FORWARD_COMPRESSION", "forward-compression", "snappy (JetStream message bodies are Snappy blocks, header Uptimizr-Encoding: snappy; Kafka batches are Snappy-compressed) or none (bodies are the NDJSON as it is)"},
	{"COLLECTOR_FORWARD_CREDS", "forward-creds", "NATS credentials file"},
	{"COLLECTOR_FORWARD_USER", "forward-user", "NATS user, or Kafka SASL user"},
	{"COLLECTOR_FORWARD_PASSWORD", "forward-password", "NATS or Kafka SASL password"},
	{"COLLECTOR_FORWARD_SASL", "forward-sasl", "Kafka SASL mechanism: plain, scram-sha-256 or scram-sha-512"},
	{"COLLECTOR_FORWARD_TLS_CA", "forward-tls-ca", "CA file to verify the engine with (turns TLS on)"},
	{"COLLECTOR_FORWARD_TLS_CERT", "forward-tls-cert", "client certificate file for the engine"},
	{"COLLECTOR_FORWARD_TLS_KEY", "forward-tls-key", "its key file"},
	{"COLLECTOR_HUB_SOURCE", "hub-source", "the hub command: the stream engine to read the fleet's records from, nats://HOST:PORT[,…] or kafka://HOST:PORT[,…] (credentials and TLS as COLLECTOR_FORWARD_*)"},
	{"COLLECTOR_HUB_CONSUMER", "hub-consumer", "the hub's durable consumer (Kafka: consumer group)"},
	{"COLLECTOR_HUB_PROJECT", "hub-project", "a hub of one project's records only (hubs sharded by project); empty = all"},
	{"COLLECTOR_HUB_WORKERS", "hub-workers", "consumers sharing the hub's durable consumer or group, each validating and committing (0 = one per CPU)"},
	{"COLLECTOR_LIVE_MAX_SUBSCRIBERS", "live-max-subscribers", "live streams (presence, event stream, session tail) one project may hold open on the node; more are answered 429"},
	{"COLLECTOR_LIVE_MAX_STREAMS", "live-max-streams", "live streams open on the node, every project's; more are answered 503"},
	{"COLLECTOR_LIVE_BUFFER", "live-buffer", "bytes of events queued for one live stream (KiB/MiB); a reader that falls further behind is dropped, ingest never waits for it"},
	{"COLLECTOR_LIVE_WINDOW", "live-window", "a session is present (GET /api/v1/live/presence) this long after its last batch"},
	{"COLLECTOR_LIVE_MAX_SESSIONS", "live-max-sessions", "present sessions kept per project; past it the least recently seen is forgotten"},
	{"COLLECTOR_LIVE_TOKEN_TTL", "live-token-ttl", "lifetime of a token from POST /api/v1/live/token"},
	{"COLLECTOR_LIVE_HEARTBEAT", "live-heartbeat", "a quiet live stream sends a comment this often, and checks its key is still live"},
	{"COLLECTOR_CLOCK_START", "clock-start", "testing aid: start the node's clock at this RFC 3339 instant (never in production)"},
}

// ParseBytes reads a size: a number of bytes, or a number with a unit
// suffix K, M, G or T (optionally followed by "iB" or "B"; every unit is a
// power of 1024, as in COLLECTOR_PLUGIN_MEMORY_MB): 512MiB, 2G, 1.5GiB.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToUpper(strings.TrimSpace(s[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if num == "" || err != nil || f < 0 {
		return 0, errors.New("want a size such as 536870912, 512MiB or 2GiB")
	}
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	mult := map[string]float64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q (want KiB, MiB, GiB or TiB)", s[i:])
	}
	if f*mult > 1<<62 {
		return 0, errors.New("too large")
	}
	return int64(f * mult), nil
}

// FleetManaged is whether the node takes its projects, keys, channels and
// plugins from a fleet bundle (a control plane or a bundle file): local
// changes of them are then refused.
func (c *Config) FleetManaged() bool { return c.ControlURL != "" || c.Bundle != "" }

// RetentionChoice names a project's own raw-retention choice, as changes
// show it: "on", "off", or "the node's" when it has none (nil).
func RetentionChoice(r *bool) string {
	switch {
	case r == nil:
		return "the node's"
	case *r:
		return "on"
	}
	return "off"
}
