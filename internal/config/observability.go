package config

import (
	"fmt"
	"net"
	"net/url"
)

// MetricsConfig configures writ's Prometheus metrics (docs/observability.md).
// /metrics is always served on the main listener, to auditor and admin
// tokens.
type MetricsConfig struct {
	// Listen, when set, also serves /metrics on this address without
	// authentication: for a scraper on a network that only operators
	// reach. Empty serves no second listener.
	Listen string `yaml:"listen"`
}

// Validate reports a setting that cannot work.
func (c MetricsConfig) Validate() error {
	if c.Listen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("metrics.listen %q: want HOST:PORT", c.Listen)
	}
	return nil
}

// TracingConfig configures OpenTelemetry traces (docs/observability.md).
// Tracing is off unless an endpoint is set here or in the standard
// OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// variables; the other OTEL_* variables (headers, timeout, sampler,
// resource attributes…) apply as the OpenTelemetry SDK defines them, and
// win over these keys where both say the same thing.
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP collector's URL, such as
	// http://127.0.0.1:4318 (a URL without a path posts to /v1/traces).
	Endpoint string `yaml:"endpoint"`
	// ServiceName is service.name in the spans' resource (default writ).
	ServiceName string `yaml:"service_name"`
	// SampleRatio samples that fraction (0 to 1) of the traces writ
	// starts itself; a caller's sampled flag is always followed. Unset:
	// OTEL_TRACES_SAMPLER, or every trace.
	SampleRatio *float64 `yaml:"sample_ratio"`
}

// Validate reports a setting that cannot work.
func (c TracingConfig) Validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("tracing.endpoint %q: want an http:// or https:// URL of an OTLP/HTTP collector", c.Endpoint)
		}
	}
	if r := c.SampleRatio; r != nil && !(*r >= 0 && *r <= 1) {
		return fmt.Errorf("tracing.sample_ratio %v: want 0 to 1", *r)
	}
	return nil
}
