package console_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/testkit"
	"github.com/writhq/writ/internal/witness/witnesstest"
)

// TestLedgerPageShowsWitnesses: the ledger page shows the newest witnessed
// checkpoint with its cosignatures and their times, and each witness's
// state, a refusal included (a witness that does not know the log).
func TestLedgerPageShowsWitnesses(t *testing.T) {
	witnesstest.Require(t)
	origin := "writ.test/console"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "ledger.key")
	os.WriteFile(keyFile, []byte(skey+"\n"), 0o600)
	knows := witnesstest.Start(t, "w1.witness.test", origin, vkey)
	_, otherKey, _ := note.GenerateKey(rand.Reader, "writ.test/other")
	stranger := witnesstest.Start(t, "w2.witness.test", "writ.test/other", otherKey)
	ts := startServer(t, func(c *config.Config) {
		c.Ledger.Origin, c.Ledger.KeyFile, c.Ledger.WitnessInterval, c.Ledger.WitnessQuorum = origin, keyFile, 100*time.Millisecond, 1
		c.Ledger.Witnesses = []config.WitnessConfig{{URL: knows.URL, Key: knows.Key}, {URL: stranger.URL, Key: stranger.Key}}
	})
	ts.openPending(t, ts.api(t, "alice", identity.RoleRequester), "Summarize Q3 invoices")
	b := newBrowserless(t, ts.url)
	b.signIn("dana", identity.RoleAuditor)
	var body string
	testkit.Eventually(t, 30*time.Second, func() error {
		p := b.get("/ui/ledger")
		body = p.body
		switch {
		case !strings.Contains(body, "Newest witnessed checkpoint: size"):
			return fmt.Errorf("no witnessed checkpoint yet")
		case !strings.Contains(body, "REFUSED (bad_signature)"):
			return fmt.Errorf("no refusal shown yet")
		case !strings.Contains(body, "Recorded as ledger event"):
			return fmt.Errorf("the refusal is not recorded yet")
		}
		return nil
	})
	for _, want := range []string{`<span class="mono">w1.witness.test</span> at 20`, "w2.witness.test", "Quorum: 1 cosignatures", knows.URL, "\u2014 w1.witness.test "} {
		if !strings.Contains(body, want) {
			t.Errorf("ledger page lacks %q:\n%s", want, body)
		}
	}
}
