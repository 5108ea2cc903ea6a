package ocsf_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/ocsf"
)

var update = flag.Bool("update", false, "rewrite testdata/all.golden.jsonl from the mapping")

const origin = "writ.example/ledger"

// entries reads testdata/entries.jsonl: one event of every type writ
// writes, and an imported one.
func entries(t testing.TB) []ledger.Entry {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "entries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ledger.Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			Index uint64       `json:"index"`
			Event ledger.Event `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, ledger.Entry{Index: l.Index, Event: l.Event})
	}
	return out
}

// TestBundleRecordsUnchanged: the records of a bundle's events are byte
// for byte those of testdata/bundle.golden.jsonl, which the mapping wrote
// before it moved here from internal/evidence. A bundle's ocsf.jsonl is
// checked by 'writ verify' against what the events produce, so a change
// here would fail every bundle exported before it.
func TestBundleRecordsUnchanged(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "bundle.golden.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	m := ocsf.NewMapper(origin, 0)
	var got bytes.Buffer
	for _, e := range entries(t) {
		if !ocsf.InBundle(e.Event.Type) {
			continue
		}
		got.Write(m.Map(e).Marshal())
		got.WriteByte('\n')
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("bundle records changed (-before +now):\n%s", diff)
	}
}

// TestEveryType: every event maps to a record of its class, with the
// metadata that joins it to its leaf; the whole mapping is kept in
// testdata/all.golden.jsonl (go test -update rewrites it), for review.
func TestEveryType(t *testing.T) {
	wantClass := map[string]int{
		"action.authorized": 6003, "action.denied": 6003, "action.completed": 6003, "tools.hidden": 6003,
		"auth.rejected": 6003, "policy.decided": 6003, "policy.shadow_disagreed": 6003, "witness.refused": 6003,
		"task.requested": 3004, "task.activated": 3004, "task.denied": 3004, "task.delegated": 3004,
		"task.completed": 3004, "task.expired": 3004, "task.revoked": 3004, "approval.requested": 3004,
		"approval.granted": 3004, "approval.denied": 3004, "ledger.body_erased": 3004,
		"task.held": 3004, "task.released": 3004,
		"credential.issued": 3002, "credential.revoked": 3002,
		"policy.loaded": 6002, "policy.rejected": 6002, "ledger.started": 6002,
		"import.siem.alert": 0,
	}
	m := ocsf.NewMapper(origin, 16)
	seen := map[string]bool{}
	var all bytes.Buffer
	for _, e := range entries(t) {
		r := m.Map(e)
		seen[e.Event.Type] = true
		want, ok := wantClass[e.Event.Type]
		if !ok {
			t.Errorf("%s: no class expected; add it to the table (and docs/sinks.md)", e.Event.Type)
		}
		if r.ClassUID != want || r.TypeUID != r.ClassUID*100+r.ActivityID || r.CategoryUID != r.ClassUID/1000 {
			t.Errorf("%s: class %d, type %d, category %d; want class %d", e.Event.Type, r.ClassUID, r.TypeUID, r.CategoryUID, want)
		}
		if r.Metadata.UID != ocsf.UID(origin, e.Index) || r.Metadata.Version != ocsf.Version || r.Metadata.LogName != origin {
			t.Errorf("%s: metadata %+v", e.Event.Type, r.Metadata)
		}
		if r.Unmapped["writ_type"] != e.Event.Type || r.Unmapped["ledger_index"] != e.Index {
			t.Errorf("%s: unmapped %v", e.Event.Type, r.Unmapped)
		}
		if r.Time != e.Event.Time.UnixMilli() || r.Status == "" || r.Severity == "" || r.ActivityName == "" {
			t.Errorf("%s: incomplete record %s", e.Event.Type, r.Marshal())
		}
		all.Write(r.Marshal())
		all.WriteByte('\n')
	}
	for typ := range wantClass {
		if !seen[typ] {
			t.Errorf("testdata/entries.jsonl has no %s event", typ)
		}
	}
	for _, typ := range ledger.Types() {
		if !seen[typ] {
			t.Errorf("testdata/entries.jsonl has no %s event: every type writ writes needs its record", typ)
		}
	}
	golden := filepath.Join("testdata", "all.golden.jsonl")
	if *update {
		if err := os.WriteFile(golden, all.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), all.String()); diff != "" {
		t.Errorf("records changed (-golden +now; go test -update if intended):\n%s", diff)
	}
}

// TestResultNamesItsCall: a result's record names the call authorized
// before it while the mapper remembers it, and only the action ID once it
// has forgotten it.
func TestResultNamesItsCall(t *testing.T) {
	ent := func(i uint64, typ, data string) ledger.Entry {
		return ledger.Entry{Index: i, Event: ledger.Event{Type: typ, TaskID: "tsk_1", Data: json.RawMessage(data)}}
	}
	m := ocsf.NewMapper(origin, 2)
	for i, id := range []string{"act_1", "act_2", "act_3"} {
		m.Map(ent(uint64(i), ledger.TypeActionAuthorized, `{"action_id":"`+id+`","tool":"up.echo","operation":"read","effect":"allow"}`))
	}
	for _, c := range []struct {
		id, tool string
	}{{"act_3", "up.echo"}, {"act_2", "up.echo"}, {"act_1", ""}} {
		r := m.Map(ent(9, ledger.TypeActionCompleted, `{"action_id":"`+c.id+`","status":"ok"}`))
		if r.API.Operation != c.tool || r.API.Request["uid"] != c.id {
			t.Errorf("%s: operation %q request %v; want %q", c.id, r.API.Operation, r.API.Request, c.tool)
		}
	}
}
