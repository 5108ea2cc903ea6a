package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Sink types and formats (docs/sinks.md).
const (
	SinkNATS = "nats"
	SinkHTTP = "http"
	SinkFile = "file"

	FormatOCSF        = "ocsf"
	FormatCloudEvents = "cloudevents"
	FormatWrit        = "writ"
)

// SinkConfig is one event sink: every ledger event, in index order, at
// least once, to a NATS JetStream subject, an HTTP endpoint or a JSONL
// file (docs/sinks.md). Keys that do not apply to its type are errors.
type SinkConfig struct {
	// Name names the sink in metrics, readiness and logs, and its cursor
	// in the store: renaming a sink starts it again from the first event.
	Name   string `yaml:"name"`
	Type   string `yaml:"type"`   // nats, http or file
	Format string `yaml:"format"` // ocsf, cloudevents or writ

	// URL is the NATS server (nats://, tls://) or the HTTP endpoint.
	URL string `yaml:"url"`
	// Subject prefixes the NATS subjects: each event is published to
	// <subject>.<event type>.
	Subject string `yaml:"subject"`
	// CredsFile is a NATS credentials file (JWT and NKey seed).
	CredsFile string `yaml:"creds_file"`

	// SecretFile or SecretEnv holds the HMAC key an HTTP sink signs each
	// batch with; required unless SplunkHEC is set. Never logged.
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
	// SplunkHEC sends the batches in Splunk's HTTP Event Collector format.
	SplunkHEC *SplunkHECConfig `yaml:"splunk_hec"`

	// Path is the file sink's JSONL file; past MaxBytes it is rotated to
	// Path.1 (Path.1 to Path.2, …), keeping MaxFiles rotated files.
	Path     string `yaml:"path"`
	MaxBytes int64  `yaml:"max_bytes"`
	MaxFiles int    `yaml:"max_files"`

	// Batch is the most events one delivery carries. Default 256.
	Batch int `yaml:"batch"`
	// Timeout bounds one delivery (a NATS batch's acknowledgements, an
	// HTTP request). Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// LagBound is how many undelivered events make the sink show in
	// /readyz's body as lagging. Default 10000.
	LagBound uint64 `yaml:"lag_bound"`
}

// SplunkHECConfig is an HTTP sink's Splunk HTTP Event Collector options.
// The token (TokenFile or TokenEnv) is sent as "Authorization: Splunk
// <token>" and never logged.
type SplunkHECConfig struct {
	TokenFile  string `yaml:"token_file"`
	TokenEnv   string `yaml:"token_env"`
	Index      string `yaml:"index"`
	Source     string `yaml:"source"`
	Sourcetype string `yaml:"sourcetype"`
}

// Defaults of a SinkConfig.
const (
	DefaultSinkBatch    = 256
	DefaultSinkTimeout  = 10 * time.Second
	DefaultSinkLagBound = 10000
	DefaultSinkMaxBytes = 100 << 20
	DefaultSinkMaxFiles = 10
	maxSinks            = 16
	maxSinkName         = 64
)

// WithDefaults returns s with its unset options at their defaults.
func (s SinkConfig) WithDefaults() SinkConfig {
	if s.Batch == 0 {
		s.Batch = DefaultSinkBatch
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultSinkTimeout
	}
	if s.LagBound == 0 {
		s.LagBound = DefaultSinkLagBound
	}
	if s.Type == SinkFile {
		if s.MaxBytes == 0 {
			s.MaxBytes = DefaultSinkMaxBytes
		}
		if s.MaxFiles == 0 {
			s.MaxFiles = DefaultSinkMaxFiles
		}
	}
	return s
}

func validateSinks(sinks []SinkConfig) error {
	if len(sinks) > maxSinks {
		return fmt.Errorf("sinks: %d sinks; at most %d", len(sinks), maxSinks)
	}
	names := map[string]int{}
	for i, s := range sinks {
		at := fmt.Sprintf("sinks[%d]", i)
		if s.Name != "" {
			at = fmt.Sprintf("sinks[%d] (%s)", i, s.Name)
		}
		if err := s.WithDefaults().validate(); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if j, ok := names[s.Name]; ok {
			return fmt.Errorf("%s: the same name as sinks[%d]; each sink needs its own (it names its cursor)", at, j)
		}
		names[s.Name] = i
	}
	return nil
}

func (s SinkConfig) validate() error {
	if err := checkSinkName(s.Name); err != nil {
		return err
	}
	switch s.Format {
	case FormatOCSF, FormatCloudEvents, FormatWrit:
	case "":
		return errors.New("format: missing: ocsf, cloudevents or writ")
	default:
		return fmt.Errorf("format %q: want ocsf, cloudevents or writ", s.Format)
	}
	var err error
	switch s.Type {
	case SinkNATS:
		err = s.validateNATS()
	case SinkHTTP:
		err = s.validateHTTP()
	case SinkFile:
		err = s.validateFile()
	case "":
		return errors.New("type: missing: nats, http or file")
	default:
		return fmt.Errorf("type %q: want nats, http or file", s.Type)
	}
	if err != nil {
		return err
	}
	switch {
	case s.Batch < 1 || s.Batch > 10000:
		return fmt.Errorf("batch %d: want 1 to 10000", s.Batch)
	case s.Timeout < 100*time.Millisecond || s.Timeout > 5*time.Minute:
		return fmt.Errorf("timeout %s: want 100ms to 5m", s.Timeout)
	}
	return nil
}

func checkSinkName(name string) error {
	if name == "" {
		return errors.New("name: missing: it names the sink's metrics and its cursor (lowercase letters, digits, - and _)")
	}
	if len(name) > maxSinkName {
		return fmt.Errorf("name %q: at most %d characters", name, maxSinkName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("name %q: want lowercase letters, digits, - and _", name)
		}
	}
	return nil
}

// notFor reports the first of the named options that is set although the
// sink's type does not use it.
func (s SinkConfig) notFor(opts map[string]bool) error {
	for _, name := range []string{"url", "subject", "creds_file", "secret_file", "secret_env", "splunk_hec", "path", "max_bytes", "max_files"} {
		if opts[name] {
			return fmt.Errorf("%s: does not apply to a %s sink", name, s.Type)
		}
	}
	return nil
}

func (s SinkConfig) validateNATS() error {
	if err := s.notFor(map[string]bool{"secret_file": s.SecretFile != "", "secret_env": s.SecretEnv != "",
		"splunk_hec": s.SplunkHEC != nil, "path": s.Path != "", "max_bytes": s.MaxBytes != 0, "max_files": s.MaxFiles != 0}); err != nil {
		return err
	}
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		return errors.New("url: missing: the NATS server, such as nats://127.0.0.1:4222")
	case err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "":
		return fmt.Errorf("url %q: want nats://HOST:PORT or tls://HOST:PORT", s.URL)
	case u.User != nil:
		return fmt.Errorf("url %q: credentials in the URL would be logged; use creds_file", u.Redacted())
	}
	if s.Subject == "" {
		return errors.New("subject: missing: events are published to <subject>.<event type>, such as writ.events.task.requested")
	}
	if len(s.Subject) > 200 {
		return errors.New("subject: at most 200 characters")
	}
	for _, tok := range strings.Split(s.Subject, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("subject %q: want dot-separated tokens without spaces or wildcards", s.Subject)
		}
	}
	return nil
}

func (s SinkConfig) validateHTTP() error {
	if err := s.notFor(map[string]bool{"subject": s.Subject != "", "creds_file": s.CredsFile != "",
		"path": s.Path != "", "max_bytes": s.MaxBytes != 0, "max_files": s.MaxFiles != 0}); err != nil {
		return err
	}
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		return errors.New("url: missing: the endpoint the batches are POSTed to")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("url %q: want an http or https URL", s.URL)
	case u.User != nil:
		return fmt.Errorf("url %q: credentials in the URL would be logged; use secret_file or splunk_hec.token_file", u.Redacted())
	}
	if err := onlyOne("secret_file", s.SecretFile, "secret_env", s.SecretEnv); err != nil {
		return err
	}
	if h := s.SplunkHEC; h != nil {
		if err := onlyOne("splunk_hec.token_file", h.TokenFile, "splunk_hec.token_env", h.TokenEnv); err != nil {
			return err
		}
		if h.TokenFile == "" && h.TokenEnv == "" {
			return errors.New("splunk_hec: needs token_file or token_env: the collector's token")
		}
		return nil
	}
	if s.SecretFile == "" && s.SecretEnv == "" {
		return errors.New("secret_file or secret_env: missing: the HMAC key each batch is signed with (at least 16 bytes)")
	}
	return nil
}

func onlyOne(a, av, b, bv string) error {
	if av != "" && bv != "" {
		return fmt.Errorf("%s and %s: set one, not both", a, b)
	}
	return nil
}

func (s SinkConfig) validateFile() error {
	if err := s.notFor(map[string]bool{"url": s.URL != "", "subject": s.Subject != "", "creds_file": s.CredsFile != "",
		"secret_file": s.SecretFile != "", "secret_env": s.SecretEnv != "", "splunk_hec": s.SplunkHEC != nil}); err != nil {
		return err
	}
	switch {
	case s.Path == "":
		return errors.New("path: missing: the JSONL file events are appended to")
	case s.MaxBytes < 4096:
		return fmt.Errorf("max_bytes %d: want at least 4096", s.MaxBytes)
	case s.MaxFiles < 1 || s.MaxFiles > 1000:
		return fmt.Errorf("max_files %d: want 1 to 1000 rotated files kept", s.MaxFiles)
	}
	return nil
}
