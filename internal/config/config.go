// Package config loads writ's configuration: a YAML file, then WRIT_*
// environment variables, then command-line flags, each overriding the last.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole of writ's configuration. Field names are the YAML keys.
type Config struct {
	// DataDir holds the SQLite store, the signing keys and the policy store.
	DataDir string `yaml:"data_dir"`
	// Store is the ledger's backend: sqlite (default, in DataDir) or
	// postgres (DSN; several replicas may share it) (store.go).
	Store string `yaml:"store"`
	// DSN is the PostgreSQL connection string; DSNFile reads it from a file.
	DSN     string `yaml:"dsn"`
	DSNFile string `yaml:"dsn_file"`
	// QueryIndex is where the event query index lives: local (query.db in
	// DataDir, each replica its own; the default) or shared (the
	// PostgreSQL store's database, one index for all replicas) (store.go).
	QueryIndex string `yaml:"query_index"`
	// Listen is the HTTP listen address.
	Listen string `yaml:"listen"`
	// Environment names the runtime environment policy sees (dev, staging, prod…).
	Environment string `yaml:"environment"`
	// Dev trusts the local dev identity issuer. Never enable in production.
	Dev bool `yaml:"dev"`
	// DevAllowRemoteInsecure lets a dev server listen on an address other
	// machines can reach, where anyone could sign in as anyone (startup
	// refuses that otherwise).
	DevAllowRemoteInsecure bool `yaml:"dev_allow_remote_insecure"`

	// TLS serves HTTPS and accepts client X.509-SVIDs when set.
	TLS TLSConfig `yaml:"tls"`

	Log      LogConfig      `yaml:"log"`
	Ledger   LedgerConfig   `yaml:"ledger"`
	Policy   PolicyConfig   `yaml:"policy"`
	Identity IdentityConfig `yaml:"identity"`
	// Approvals configures how approvers hear of pending approvals.
	Approvals ApprovalsConfig `yaml:"approvals"`

	// Credentials configures the task credentials writ issues.
	Credentials CredentialsConfig `yaml:"credentials"`

	// Console configures the web console at /ui/ (console.go).
	Console ConsoleConfig `yaml:"console"`

	// RepairProjections starts the server even when the task, approval and
	// credential tables disagree with the ledger, rewriting them from the
	// ledger. Only for recovery, once the cause is understood.
	RepairProjections bool `yaml:"repair_projections"`
	// TaskSnapshotInterval is how many ledger events the task state applies
	// between two snapshots of it, which a start loads to replay only the
	// events after it (docs/tasks.md); default 1,000,000, so that a start
	// after a crash replays at most about that many. A snapshot is built
	// apart from the state, so decisions do not wait for it. 0 takes one
	// at a graceful stop only; -1 writes and loads none.
	TaskSnapshotInterval int `yaml:"task_snapshot_interval"`

	// MCP configures the MCP gateway's upstream servers (gateway.go).
	MCP MCPConfig `yaml:"mcp"`
	// Proxy configures the HTTP proxy's upstreams (gateway.go).
	Proxy ProxyConfig `yaml:"proxy"`

	// Redaction adds keys and paths to the built-in redaction (redaction.go).
	Redaction RedactionConfig `yaml:"redaction"`
	// RateLimits bounds how often each caller is served and what refusals
	// write to the ledger (ratelimits.go).
	RateLimits RateLimitsConfig `yaml:"rate_limits"`

	// Metrics and Tracing configure Prometheus metrics and OpenTelemetry
	// traces (observability.go).
	Metrics MetricsConfig `yaml:"metrics"`
	Tracing TracingConfig `yaml:"tracing"`

	// Retention says how long payload bodies are kept (retention.go).
	Retention RetentionConfig `yaml:"retention"`
	// Sinks stream every ledger event to NATS, HTTP or files (sinks.go).
	Sinks []SinkConfig `yaml:"sinks"`
}

// TLSConfig names the server's certificate and key (PEM files).
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// ApprovalsConfig configures approver notifications.
type ApprovalsConfig struct {
	// Webhook receives a signed JSON POST for each pending approval.
	Webhook WebhookConfig `yaml:"webhook"`
}

// WebhookConfig is a notification endpoint and the file holding its HMAC key.
type WebhookConfig struct {
	URL        string        `yaml:"url"`
	SecretFile string        `yaml:"secret_file"`
	Timeout    time.Duration `yaml:"timeout"`
}

// LogConfig configures the operational log (not the audit ledger).
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// LedgerConfig configures the evidence ledger.
type LedgerConfig struct {
	// Origin is the log's name in checkpoints and the verifier key. Empty means
	// one is derived at first start and kept in the store.
	Origin string `yaml:"origin"`
	// MaxBodyBytes limits one payload body (arguments, outputs, intent).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// CheckpointInterval is the least time between two checkpoints under load.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// MaxBatch is the most events committed in one transaction.
	MaxBatch int `yaml:"max_batch"`
	// CommitDelay is the longest a commit waits to take in more events while
	// several callers append at once (0: never wait).
	CommitDelay time.Duration `yaml:"commit_delay"`
	// KeyFile is the checkpoint signing key; empty means ledger.key in the
	// data directory. Replicas sharing a store must share the key.
	KeyFile string `yaml:"key_file"`
	// Witnesses cosign the checkpoints (C2SP tlog-witness); WitnessQuorum
	// is how many cosignatures a checkpoint needs to be served (0: all);
	// WitnessInterval the least time between two submissions to one
	// witness (witness.go).
	Witnesses       []WitnessConfig `yaml:"witnesses"`
	WitnessQuorum   int             `yaml:"witness_quorum"`
	WitnessInterval time.Duration   `yaml:"witness_interval"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		DataDir:     "./writ-data",
		Listen:      "127.0.0.1:7780",
		Environment: "dev",
		Log:         LogConfig{Level: "info", Format: "json"},
		Ledger: LedgerConfig{
			MaxBodyBytes:       1 << 20,
			CheckpointInterval: 5 * time.Millisecond,
			MaxBatch:           1024,
			CommitDelay:        time.Millisecond,
			WitnessInterval:    time.Second,
		},
		Policy:   DefaultPolicy(),
		Identity: DefaultIdentity(),

		Credentials: DefaultCredentials(),
		RateLimits:  DefaultRateLimits(),
		Retention:   DefaultRetention(),

		TaskSnapshotInterval: 1_000_000,
	}
}

// Load reads the YAML file at path (if path is not empty) over the defaults and
// then applies WRIT_* variables from getenv. Unknown YAML keys are an error.
func Load(path string, getenv func(string) string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("reading config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if getenv != nil {
		if err := c.applyEnv(getenv); err != nil {
			return c, err
		}
	}
	return c, nil
}

// envVars maps each WRIT_* variable to the field it sets.
func (c *Config) envVars() map[string]any {
	return map[string]any{
		"WRIT_DATA_DIR":                      &c.DataDir,
		"WRIT_STORE":                         &c.Store,
		"WRIT_DSN":                           &c.DSN,
		"WRIT_DSN_FILE":                      &c.DSNFile,
		"WRIT_QUERY_INDEX":                   &c.QueryIndex,
		"WRIT_LEDGER_KEY_FILE":               &c.Ledger.KeyFile,
		"WRIT_CREDENTIALS_KEY_FILE":          &c.Credentials.KeyFile,
		"WRIT_LISTEN":                        &c.Listen,
		"WRIT_ENVIRONMENT":                   &c.Environment,
		"WRIT_DEV":                           &c.Dev,
		"WRIT_LOG_LEVEL":                     &c.Log.Level,
		"WRIT_LOG_FORMAT":                    &c.Log.Format,
		"WRIT_LEDGER_ORIGIN":                 &c.Ledger.Origin,
		"WRIT_LEDGER_MAX_BODY_BYTES":         &c.Ledger.MaxBodyBytes,
		"WRIT_LEDGER_CHECKPOINT_INTERVAL":    &c.Ledger.CheckpointInterval,
		"WRIT_LEDGER_WITNESS_QUORUM":         &c.Ledger.WitnessQuorum,
		"WRIT_LEDGER_WITNESS_INTERVAL":       &c.Ledger.WitnessInterval,
		"WRIT_TLS_CERT_FILE":                 &c.TLS.CertFile,
		"WRIT_TLS_KEY_FILE":                  &c.TLS.KeyFile,
		"WRIT_POLICY_DIR":                    &c.Policy.Dir,
		"WRIT_POLICY_ENGINE":                 &c.Policy.Engine,
		"WRIT_POLICY_TIMEOUT":                &c.Policy.Timeout,
		"WRIT_POLICY_SHADOW_DIR":             &c.Policy.ShadowDir,
		"WRIT_POLICY_SHADOW_ENGINE":          &c.Policy.ShadowEngine,
		"WRIT_CREDENTIALS_ISSUER":            &c.Credentials.Issuer,
		"WRIT_CREDENTIALS_MAX_TTL":           &c.Credentials.MaxTTL,
		"WRIT_CREDENTIALS_PUBLIC_URL":        &c.Credentials.PublicURL,
		"WRIT_REPAIR_PROJECTIONS":            &c.RepairProjections,
		"WRIT_TASK_SNAPSHOT_INTERVAL":        &c.TaskSnapshotInterval,
		"WRIT_APPROVALS_WEBHOOK_URL":         &c.Approvals.Webhook.URL,
		"WRIT_APPROVALS_WEBHOOK_SECRET_FILE": &c.Approvals.Webhook.SecretFile,
		"WRIT_METRICS_LISTEN":                &c.Metrics.Listen,
	}
}

func (c *Config) applyEnv(getenv func(string) string) error {
	for name, field := range c.envVars() {
		v := getenv(name)
		if v == "" {
			continue
		}
		if err := setString(field, v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func setString(field any, v string) error {
	switch f := field.(type) {
	case *string:
		*f = v
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*f = b
	case *int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", v)
		}
		*f = n
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", v)
		}
		*f = n
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("want a duration such as 5ms, got %q", v)
		}
		*f = d
	default:
		return fmt.Errorf("unsupported field type %T", field)
	}
	return nil
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data_dir must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: want HOST:PORT", c.Listen)
	}
	if c.Environment == "" {
		return errors.New("environment must not be empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return fmt.Errorf("log.format %q: want json or text", c.Log.Format)
	}
	if c.Ledger.MaxBodyBytes <= 0 || c.Ledger.MaxBodyBytes > 64<<20 {
		return fmt.Errorf("ledger.max_body_bytes %d: want 1 to %d", c.Ledger.MaxBodyBytes, 64<<20)
	}
	if c.Ledger.CheckpointInterval < 0 || c.Ledger.CheckpointInterval > time.Minute {
		return fmt.Errorf("ledger.checkpoint_interval %s: want 0 to 1m", c.Ledger.CheckpointInterval)
	}
	if c.Ledger.CommitDelay < 0 || c.Ledger.CommitDelay > 100*time.Millisecond {
		return fmt.Errorf("ledger.commit_delay %s: want 0 to 100ms", c.Ledger.CommitDelay)
	}
	if c.Ledger.MaxBatch < 1 || c.Ledger.MaxBatch > 65536 {
		return fmt.Errorf("ledger.max_batch %d: want 1 to 65536", c.Ledger.MaxBatch)
	}
	if c.TaskSnapshotInterval != 0 && c.TaskSnapshotInterval != -1 && (c.TaskSnapshotInterval < 1000 || c.TaskSnapshotInterval > 100_000_000) {
		return fmt.Errorf("task_snapshot_interval %d: want 0 (a snapshot at a graceful stop only), -1 (none) or 1000 to 100000000", c.TaskSnapshotInterval)
	}
	if err := c.Ledger.validateWitnesses(); err != nil {
		return err
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("tls.cert_file and tls.key_file must be set together")
	}
	if err := c.Policy.Validate(); err != nil {
		return err
	}
	if w := c.Approvals.Webhook; (w.URL == "") != (w.SecretFile == "") {
		return errors.New("approvals.webhook.url and approvals.webhook.secret_file must be set together")
	}
	if err := c.Credentials.Validate(); err != nil {
		return err
	}
	if err := c.validateStore(); err != nil {
		return err
	}
	if err := c.Console.Validate(); err != nil {
		return err
	}
	if err := c.MCP.Validate(); err != nil {
		return err
	}
	if err := c.Proxy.Validate(); err != nil {
		return err
	}
	if err := c.Redaction.Validate(); err != nil {
		return err
	}
	if err := c.RateLimits.Validate(); err != nil {
		return err
	}
	if err := c.Metrics.Validate(); err != nil {
		return err
	}
	if err := c.Tracing.Validate(); err != nil {
		return err
	}
	if err := c.Retention.Validate(); err != nil {
		return err
	}
	if err := validateSinks(c.Sinks); err != nil {
		return err
	}
	return c.Identity.Validate()
}
