package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	testWitnessKey1 = "witness.example/w1+0add778d+BOkLfQp/srLs+p7UMElAlm5pXXf+bP2JTrvmQK2p3oTC"
	testWitnessKey2 = "witness2.example/w2+5ba43469+BMQq9q/Wp38d2tSYtfUY2UX96gU401Iz8W+1B7Nj5ypN"
)

func TestWitnessSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writ.yaml")
	os.WriteFile(path, []byte(`ledger:
  witnesses:
    - url: https://witness.example/
      key: `+testWitnessKey1+`
    - url: http://127.0.0.1:7380
      key: `+testWitnessKey2+`
  witness_quorum: 1
`), 0o600)
	c, err := Load(path, func(k string) string { return map[string]string{"WRIT_LEDGER_WITNESS_INTERVAL": "250ms"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	l := c.Ledger
	if len(l.Witnesses) != 2 || l.Quorum() != 1 || l.WitnessInterval != 250*time.Millisecond ||
		l.Witnesses[1].SubmissionURL() != "http://127.0.0.1:7380/" || l.Witnesses[0].SubmissionURL() != "https://witness.example/" {
		t.Errorf("witness settings %+v", l)
	}
	l.WitnessQuorum = 0
	if l.Quorum() != 2 {
		t.Errorf("default quorum %d, want all (2)", l.Quorum())
	}
	if d := Default().Ledger; d.WitnessInterval != time.Second || len(d.Witnesses) != 0 {
		t.Errorf("defaults %+v", d)
	}
}

func TestWitnessSettingsInvalid(t *testing.T) {
	ok := WitnessConfig{URL: "https://witness.example/", Key: testWitnessKey1}
	ok2 := WitnessConfig{URL: "https://witness2.example/", Key: testWitnessKey2}
	for _, tc := range []struct {
		name      string
		witnesses []WitnessConfig
		quorum    int
		interval  time.Duration
		want      string
	}{
		{"no url", []WitnessConfig{{Key: testWitnessKey1}}, 0, time.Second, "ledger.witnesses[0].url: missing"},
		{"scheme", []WitnessConfig{{URL: "ftp://w/", Key: testWitnessKey1}}, 0, time.Second, "http or https"},
		{"relative", []WitnessConfig{{URL: "witness.example", Key: testWitnessKey1}}, 0, time.Second, "http or https"},
		{"no host", []WitnessConfig{{URL: "https:///x", Key: testWitnessKey1}}, 0, time.Second, "no host"},
		{"credentials", []WitnessConfig{{URL: "https://u:secret@w/", Key: testWitnessKey1}}, 0, time.Second, "credentials"},
		{"query", []WitnessConfig{{URL: "https://w/?a=b", Key: testWitnessKey1}}, 0, time.Second, "no query"},
		{"fragment", []WitnessConfig{{URL: "https://w/#x", Key: testWitnessKey1}}, 0, time.Second, "no query"},
		{"no key", []WitnessConfig{{URL: "https://w/"}}, 0, time.Second, "ledger.witnesses[0].key"},
		{"note key", []WitnessConfig{{URL: "https://w/", Key: "example.org/log+40c4bc4d+AZ7kBNvN5H6y8zDG5nwZX8mJyKD1T+xdz5hykYeyS4Cc"}}, 0, time.Second, "ledger.witnesses[0].key"},
		{"same key", []WitnessConfig{ok, {URL: "https://other/", Key: testWitnessKey1}}, 0, time.Second, "ledger.witnesses[1].key: the same witness key"},
		{"same url", []WitnessConfig{ok, {URL: "https://witness.example", Key: testWitnessKey2}}, 0, time.Second, "ledger.witnesses[1].url: the same URL"},
		{"quorum too high", []WitnessConfig{ok, ok2}, 3, time.Second, "want 1 to 2"},
		{"quorum negative", []WitnessConfig{ok}, -1, time.Second, "ledger.witness_quorum -1"},
		{"quorum without witnesses", nil, 1, time.Second, "no witnesses are configured"},
		{"interval", []WitnessConfig{ok}, 0, time.Millisecond, "ledger.witness_interval 1ms"},
		{"interval zero", nil, 0, 0, "ledger.witness_interval 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Ledger.Witnesses, c.Ledger.WitnessQuorum, c.Ledger.WitnessInterval = tc.witnesses, tc.quorum, tc.interval
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
