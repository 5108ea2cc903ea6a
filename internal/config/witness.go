package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/writhq/writ/internal/witness"
)

// WitnessConfig is one C2SP tlog-witness: writ POSTs <url>add-checkpoint,
// and key is the witness's tlog-cosignature/v1 verifier key.
type WitnessConfig struct {
	URL string `yaml:"url"`
	Key string `yaml:"key"`
}

// maxWitnesses bounds ledger.witnesses.
const maxWitnesses = 32

// SubmissionURL returns the witness's URL with the one final "/" that
// add-checkpoint is appended to.
func (w WitnessConfig) SubmissionURL() string { return strings.TrimRight(w.URL, "/") + "/" }

// Quorum returns how many cosignatures a checkpoint needs: witness_quorum,
// or all the witnesses when it is 0.
func (l LedgerConfig) Quorum() int {
	if l.WitnessQuorum == 0 {
		return len(l.Witnesses)
	}
	return l.WitnessQuorum
}

func (l LedgerConfig) validateWitnesses() error {
	if len(l.Witnesses) > maxWitnesses {
		return fmt.Errorf("ledger.witnesses: %d witnesses; at most %d", len(l.Witnesses), maxWitnesses)
	}
	keys, urls := map[string]int{}, map[string]int{}
	for i, w := range l.Witnesses {
		where := fmt.Sprintf("ledger.witnesses[%d]", i)
		if err := checkWitnessURL(w.URL); err != nil {
			return fmt.Errorf("%s.url: %w", where, err)
		}
		k, err := witness.ParseKey(w.Key)
		if err != nil {
			return fmt.Errorf("%s.key: %w", where, err)
		}
		if j, ok := keys[k.String()]; ok {
			return fmt.Errorf("%s.key: the same witness key as ledger.witnesses[%d]", where, j)
		}
		if j, ok := urls[w.SubmissionURL()]; ok {
			return fmt.Errorf("%s.url: the same URL as ledger.witnesses[%d]", where, j)
		}
		keys[k.String()], urls[w.SubmissionURL()] = i, i
	}
	switch n := len(l.Witnesses); {
	case l.WitnessQuorum < 0 || l.WitnessQuorum > n:
		if n == 0 {
			return fmt.Errorf("ledger.witness_quorum %d: no witnesses are configured", l.WitnessQuorum)
		}
		return fmt.Errorf("ledger.witness_quorum %d: want 1 to %d (the number of witnesses), or 0 for all", l.WitnessQuorum, n)
	}
	if l.WitnessInterval < 10*time.Millisecond || l.WitnessInterval > time.Hour {
		return fmt.Errorf("ledger.witness_interval %s: want 10ms to 1h", l.WitnessInterval)
	}
	return nil
}

func checkWitnessURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return fmt.Errorf("missing: the witness's submission URL, such as https://witness.example/")
	case err != nil:
		return fmt.Errorf("%q is not a URL", s)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%q: want an http or https URL", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q: no host", s)
	case u.User != nil:
		return fmt.Errorf("%q: credentials in a witness URL would be logged; witnesses take none", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%q: no query or fragment; writ appends add-checkpoint to the URL", s)
	}
	return nil
}
