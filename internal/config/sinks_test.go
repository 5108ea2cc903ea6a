package config

import (
	"strings"
	"testing"
)

func TestSinks(t *testing.T) {
	const (
		nats = "sinks:\n  - {name: siem, type: nats, url: \"nats://127.0.0.1:4222\", subject: writ.events, format: ocsf"
		web  = "sinks:\n  - {name: hook, type: http, url: \"https://siem.example/in\", format: cloudevents"
		file = "sinks:\n  - {name: archive, type: file, path: /var/log/writ/events.jsonl, format: writ"
	)
	tests := []struct {
		name, yaml, want string
	}{
		{"nats", nats + "}\n", ""},
		{"nats with options", nats + ", creds_file: /etc/writ/nats.creds, batch: 100, timeout: 2s, lag_bound: 50}\n", ""},
		{"http", web + ", secret_file: /etc/writ/hmac}\n", ""},
		{"http secret from env", web + ", secret_env: WRIT_SINK_SECRET}\n", ""},
		{"splunk", web + ", splunk_hec: {token_env: HEC_TOKEN, index: writ, sourcetype: writ:ocsf}}\n", ""},
		{"file", file + ", max_bytes: 1048576, max_files: 3}\n", ""},
		{"two sinks", nats + "}\n  - {name: archive, type: file, path: /tmp/x.jsonl, format: writ}\n", ""},

		{"no name", "sinks:\n  - {type: file, path: /tmp/x, format: writ}\n", "name: missing"},
		{"bad name", "sinks:\n  - {name: My Sink, type: file, path: /tmp/x, format: writ}\n", "lowercase"},
		{"same name", nats + "}\n  - {name: siem, type: file, path: /tmp/x.jsonl, format: writ}\n", "same name as sinks[0]"},
		{"no type", "sinks:\n  - {name: a, path: /tmp/x, format: writ}\n", "type: missing"},
		{"bad type", "sinks:\n  - {name: a, type: kafka, format: writ}\n", `type "kafka"`},
		{"no format", "sinks:\n  - {name: a, type: file, path: /tmp/x}\n", "format: missing"},
		{"bad format", "sinks:\n  - {name: a, type: file, path: /tmp/x, format: json}\n", `format "json"`},
		{"unknown key", file + ", rotate: daily}\n", "rotate"},
		{"nats without url", "sinks:\n  - {name: a, type: nats, subject: s, format: writ}\n", "url: missing"},
		{"nats http url", "sinks:\n  - {name: a, type: nats, url: \"http://x:4222\", subject: s, format: writ}\n", "nats://"},
		{"nats credentials in url", "sinks:\n  - {name: a, type: nats, url: \"nats://u:secretpw@x:4222\", subject: s, format: writ}\n", "creds_file"},
		{"nats without subject", "sinks:\n  - {name: a, type: nats, url: \"nats://x:4222\", format: writ}\n", "subject: missing"},
		{"nats wildcard subject", "sinks:\n  - {name: a, type: nats, url: \"nats://x:4222\", subject: writ.>, format: writ}\n", "wildcards"},
		{"nats empty token", "sinks:\n  - {name: a, type: nats, url: \"nats://x:4222\", subject: writ..x, format: writ}\n", "tokens"},
		{"nats with path", nats + ", path: /tmp/x}\n", "path: does not apply to a nats sink"},
		{"nats with secret", nats + ", secret_file: /x}\n", "secret_file: does not apply"},
		{"http without secret", web + "}\n", "secret_file or secret_env: missing"},
		{"http two secrets", web + ", secret_file: /x, secret_env: Y}\n", "set one, not both"},
		{"http bad url", "sinks:\n  - {name: a, type: http, url: \"ftp://x\", secret_env: S, format: writ}\n", "http or https"},
		{"http credentials in url", "sinks:\n  - {name: a, type: http, url: \"https://u:pw@x/\", secret_env: S, format: writ}\n", "would be logged"},
		{"http with subject", web + ", secret_env: S, subject: x}\n", "subject: does not apply to a http sink"},
		{"splunk without token", web + ", splunk_hec: {index: x}}\n", "token_file or token_env"},
		{"splunk two tokens", web + ", splunk_hec: {token_file: /t, token_env: T}}\n", "set one, not both"},
		{"file without path", "sinks:\n  - {name: a, type: file, format: writ}\n", "path: missing"},
		{"file tiny", file + ", max_bytes: 10}\n", "max_bytes 10"},
		{"file too many kept", file + ", max_files: 5000}\n", "max_files 5000"},
		{"file with url", file + ", url: \"https://x\"}\n", "url: does not apply to a file sink"},
		{"batch too big", file + ", batch: 100000}\n", "batch 100000"},
		{"negative batch", file + ", batch: -1}\n", "batch -1"},
		{"timeout too short", file + ", timeout: 1ms}\n", "timeout 1ms"},
	}
	for _, tt := range tests {
		c, err := Load(writeYAML(t, "data_dir: /tmp/d\n"+tt.yaml), nil)
		if err == nil {
			err = c.Validate()
		}
		wantValid(t, tt.name, err, tt.want)
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: the error shows the URL's password: %v", tt.name, err)
		}
	}
}

func TestSinkDefaults(t *testing.T) {
	c := loadYAML(t, "sinks:\n  - {name: a, type: file, path: /tmp/x, format: writ}\n", nil)
	s := c.Sinks[0].WithDefaults()
	if s.Batch != DefaultSinkBatch || s.Timeout != DefaultSinkTimeout || s.LagBound != DefaultSinkLagBound ||
		s.MaxBytes != DefaultSinkMaxBytes || s.MaxFiles != DefaultSinkMaxFiles {
		t.Errorf("defaults not applied: %+v", s)
	}
}

// FuzzSinks: no sinks configuration makes loading or validating panic.
func FuzzSinks(f *testing.F) {
	f.Add("- {name: siem, type: nats, url: \"nats://127.0.0.1:4222\", subject: writ.events, format: ocsf}")
	f.Add("- {name: a, type: http, url: \"https://x/\", splunk_hec: {token_env: T}, format: writ}")
	f.Add("- {name: a, type: file, path: /tmp/x, max_bytes: 4096, max_files: 1, format: cloudevents}")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Load(writeYAML(t, "sinks:\n"+s+"\n"), nil)
		if err == nil {
			c.Validate()
		}
	})
}
