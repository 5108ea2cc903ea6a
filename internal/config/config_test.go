package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadLayers(t *testing.T) {
	c := loadYAML(t, "data_dir: /from/file\nlisten: 127.0.0.1:9000\nledger:\n  checkpoint_interval: 20ms\nlog:\n  level: debug\n",
		map[string]string{"WRIT_LISTEN": "127.0.0.1:9001", "WRIT_DEV": "true"})
	if c.DataDir != "/from/file" || c.Listen != "127.0.0.1:9001" || !c.Dev || c.Log.Level != "debug" ||
		c.Ledger.CheckpointInterval != 20*time.Millisecond || c.Ledger.MaxBatch != 1024 {
		t.Errorf("layers not applied as file < env over defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown key", "data_dri: x\n", nil, "data_dri"},
		{"bad yaml", "listen: [\n", nil, "config"},
		{"bad bool env", "", map[string]string{"WRIT_DEV": "maybe"}, "WRIT_DEV"},
		{"bad duration env", "", map[string]string{"WRIT_LEDGER_CHECKPOINT_INTERVAL": "soon"}, "WRIT_LEDGER_CHECKPOINT_INTERVAL"},
		{"bad int env", "", map[string]string{"WRIT_LEDGER_MAX_BODY_BYTES": "1MB"}, "WRIT_LEDGER_MAX_BODY_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeYAML(t, tt.file)
			}
			_, err := Load(path, func(k string) string { return tt.env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil {
		t.Error("a missing config file was accepted")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"listen without port", func(c *Config) { c.Listen = "localhost" }, "listen"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"body limit", func(c *Config) { c.Ledger.MaxBodyBytes = 0 }, "max_body_bytes"},
		{"checkpoint interval", func(c *Config) { c.Ledger.CheckpointInterval = time.Hour }, "checkpoint_interval"},
		{"batch", func(c *Config) { c.Ledger.MaxBatch = 0 }, "max_batch"},
		{"tls half set", func(c *Config) { c.TLS.CertFile = "cert.pem" }, "tls"},
		{"policy engine", func(c *Config) { c.Policy.Engine = "xacml" }, "policy.engine"},
		{"snapshot interval too small", func(c *Config) { c.TaskSnapshotInterval = 10 }, "task_snapshot_interval"},
		{"snapshot interval negative", func(c *Config) { c.TaskSnapshotInterval = -2 }, "task_snapshot_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	for _, n := range []int{-1, 1000, 250_000} {
		c := Default()
		c.TaskSnapshotInterval = n
		if err := c.Validate(); err != nil {
			t.Errorf("task_snapshot_interval %d: %v", n, err)
		}
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("data_dir: x\nlisten: 127.0.0.1:1\n")
	f.Add("ledger: {max_body_bytes: 10}\n")
	f.Add("identity:\n  audience: [writ]\n")
	f.Add("\x00\xff: [")
	f.Add("ledger:\n  witnesses:\n    - {url: 'https://w/', key: '" + testWitnessKey1 + "'}\n  witness_quorum: 1\n  witness_interval: 2s\n")
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Skip()
		}
		c, err := Load(p, nil)
		if err == nil {
			c.Validate() // must not panic
		}
	})
}

func TestStoreSettings(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name     string
		env      []string
		postgres bool
		bad      string
	}{
		{"default", nil, false, ""},
		{"a DSN selects postgres", []string{"WRIT_DSN", "postgres://x/y"}, true, ""},
		{"explicit postgres", []string{"WRIT_STORE", "postgres", "WRIT_DSN_FILE", "f"}, true, ""},
		{"postgres without a DSN", []string{"WRIT_STORE", "postgres"}, true, "exactly one"},
		{"sqlite with a DSN", []string{"WRIT_STORE", "sqlite", "WRIT_DSN", "postgres://x/y"}, false, "store is sqlite"},
		{"both DSN and file", []string{"WRIT_DSN", "postgres://x/y", "WRIT_DSN_FILE", "f"}, true, "not both"},
		{"unknown store", []string{"WRIT_STORE", "mysql"}, false, "want sqlite or postgres"},
		{"a shared query index on postgres", []string{"WRIT_DSN", "postgres://x/y", "WRIT_QUERY_INDEX", "shared"}, true, ""},
		{"a local query index on postgres", []string{"WRIT_DSN", "postgres://x/y", "WRIT_QUERY_INDEX", "local"}, true, ""},
		{"a shared query index on sqlite", []string{"WRIT_QUERY_INDEX", "shared"}, false, "always local"},
		{"an unknown query index", []string{"WRIT_DSN", "postgres://x/y", "WRIT_QUERY_INDEX", "remote"}, true, "want local or shared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("", env(tt.env...))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if tt.bad == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("Validate = %v, want an error containing %q", err, tt.bad)
				}
				return
			}
			if c.Postgres() != tt.postgres {
				t.Errorf("Postgres() = %v, want %v", c.Postgres(), tt.postgres)
			}
			if strings.Contains(fmt.Sprint(err), "postgres://") {
				t.Errorf("an error repeats the DSN: %v", err)
			}
		})
	}
}
