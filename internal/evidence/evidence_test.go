package evidence_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/ledger"
)

func TestExportVerifies(t *testing.T) {
	e := newEnv(t, "prod")
	id := e.story(3)
	b := e.export(id, evidence.Options{})
	r := verify(t, b, evidence.VerifyOptions{Key: e.vkey})
	if !r.OK() || !r.Pinned {
		t.Fatalf("a fresh bundle does not verify: %+v", r)
	}
	tr, err := e.svc.Trace(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != len(tr.Events) || r.Verified != r.Events {
		t.Errorf("verified %d/%d events, the trace has %d", r.Verified, r.Events, len(tr.Events))
	}
	if r.Payloads == 0 || r.Policies != 1 {
		t.Errorf("payloads %d, policies %d", r.Payloads, r.Policies)
	}
	tl := r.Timeline()
	if tl.TaskID != id || len(tl.Events) != r.Events || tl.CheckpointSize != r.CheckpointSize {
		t.Errorf("timeline of %s: %d events, checkpoint %d", tl.TaskID, len(tl.Events), tl.CheckpointSize)
	}
	for _, te := range tl.Events {
		if !te.Verified {
			t.Errorf("timeline event %d not verified", te.Index)
		}
	}
	// Without a pinned key it verifies with a warning.
	r = verify(t, b, evidence.VerifyOptions{})
	if !r.OK() || r.Pinned || len(r.Warnings) == 0 {
		t.Errorf("unpinned: %+v", r)
	}
}

// TestTamper changes a bundle in every way we could think of; each must
// fail verification with a message that says what is wrong.
func TestTamper(t *testing.T) {
	e := newEnv(t, "prod")
	id := e.story(2)
	orig := e.export(id, evidence.Options{})

	otherKey, _, err := note.GenerateKey(rand.Reader, "writ.test/evidence")
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, _ := note.NewSigner(otherKey)
	otherKP, _ := ledger.NewKeyPair(otherKey)
	_ = otherKP

	tests := []struct {
		name   string
		edit   func(t *testing.T, f map[string][]byte)
		reseal bool   // recompute the manifest's hashes after the edit
		key    string // pinned key; default the ledger's
		want   string
	}{
		{"edit an event, manifest untouched", func(t *testing.T, f map[string][]byte) {
			f[evidence.EventsPath] = bytes.Replace(f[evidence.EventsPath], []byte("invoices.read"), []byte("invoices.wipe"), 1)
		}, false, "", "events.jsonl: SHA-256 does not match the manifest"},
		{"edit an event", func(t *testing.T, f map[string][]byte) {
			f[evidence.EventsPath] = bytes.Replace(f[evidence.EventsPath], []byte("invoices.read"), []byte("invoices.wipe"), 1)
		}, true, "", "inclusion proof does not verify against the checkpoint"},
		{"edit an event's time", func(t *testing.T, f map[string][]byte) {
			i, _ := lineOf(t, f, "approval.granted")
			l := eventLines(f)
			l[i] = strings.Replace(l[i], `"time":"2`, `"time":"1`, 1)
			setEventLines(f, l)
		}, true, "", "inclusion proof does not verify"},
		{"non-canonical event", func(t *testing.T, f map[string][]byte) {
			l := eventLines(f)
			l[0] = strings.Replace(l[0], `"agent":"s`, `"agent":"\u0073`, 1)
			setEventLines(f, l)
		}, true, "", "events.jsonl line 1: leaf"},
		{"drop an event", func(t *testing.T, f map[string][]byte) {
			i, _ := lineOf(t, f, "action.completed")
			l := eventLines(f)
			setEventLines(f, append(l[:i], l[i+1:]...))
		}, true, "", "has no event in events.jsonl (an event was dropped?)"},
		{"drop an event and its proof, fix the count", func(t *testing.T, f map[string][]byte) {
			i, idx := lineOf(t, f, "approval.granted")
			cutEvent(t, f, i, idx)
		}, true, "", "activated before its approvals were granted"},
		{"drop the activation", func(t *testing.T, f map[string][]byte) {
			i, idx := lineOf(t, f, "task.activated")
			cutEvent(t, f, i, idx)
		}, true, "", "credential issued for task"},
		{"reorder events", func(t *testing.T, f map[string][]byte) {
			l := eventLines(f)
			l[1], l[2] = l[2], l[1]
			setEventLines(f, l)
		}, true, "", "events must be in ledger order"},
		{"duplicate an event", func(t *testing.T, f map[string][]byte) {
			l := eventLines(f)
			setEventLines(f, append(l, l[3]))
			setManifest(t, f, func(m *evidence.Manifest) { m.Events++ })
		}, true, "", "appears twice"},
		{"swap a payload", func(t *testing.T, f map[string][]byte) {
			_, idx := lineOf(t, f, "task.requested")
			f["payloads/"+jsonInt(int(idx))+"/intent"] = []byte("Delete every invoice")
		}, true, "", "does not match its commitment"},
		{"swap two payloads of the same name", func(t *testing.T, f map[string][]byte) {
			var outs []string
			for p := range f {
				if strings.HasSuffix(p, "/output") {
					outs = append(outs, p)
				}
			}
			f[outs[0]], f[outs[1]] = append([]byte(nil), f[outs[1]]...), append([]byte(`{"total":4}`), nil...)
		}, true, "", "does not match its commitment"},
		{"drop a payload", func(t *testing.T, f map[string][]byte) {
			_, idx := lineOf(t, f, "task.requested")
			delete(f, "payloads/"+jsonInt(int(idx))+"/intent")
		}, true, "", "is neither disclosed"},
		{"claim a payload was erased", func(t *testing.T, f map[string][]byte) {
			_, idx := lineOf(t, f, "task.requested")
			delete(f, "payloads/"+jsonInt(int(idx))+"/intent")
			delete(f, "payloads/"+jsonInt(int(idx))+"/intent.salt")
			setManifest(t, f, func(m *evidence.Manifest) {
				m.Erased = append(m.Erased, evidence.Erased{Index: idx, Name: "intent", ErasureIndex: idx + 1})
			})
		}, true, "", "no such erasure is in the bundle"},
		{"swap the policy sources", func(t *testing.T, f map[string][]byte) {
			for p := range f {
				if strings.HasPrefix(p, "policies/") && strings.Contains(p, "/files/") {
					f[p] = append(f[p], []byte("\n// permit everything\n")...)
					return
				}
			}
			t.Fatal("no policy file")
		}, true, "", "they are not the policy that decided"},
		{"drop the policy sources", func(t *testing.T, f map[string][]byte) {
			for p := range f {
				if strings.HasPrefix(p, "policies/") {
					delete(f, p)
				}
			}
			setManifest(t, f, func(m *evidence.Manifest) { m.Policies = map[string]string{} })
		}, true, "", "whose sources are not in the bundle"},
		{"replace the key", func(t *testing.T, f map[string][]byte) {
			v, _ := note.NewVerifier(mustVerifierKey(t, otherKey))
			f[evidence.KeyPath] = []byte(mustVerifierKey(t, otherKey) + "\n")
			_ = v
		}, true, "-", "the signature does not verify with the verifier key"},
		{"re-sign everything with another key", func(t *testing.T, f map[string][]byte) {
			resign(t, f, otherSigner)
			f[evidence.KeyPath] = []byte(mustVerifierKey(t, otherKey) + "\n")
		}, true, "", "verifier.key is not the pinned verifier key"},
		{"edit the checkpoint", func(t *testing.T, f map[string][]byte) {
			f[evidence.CheckpointPath] = bytes.Replace(f[evidence.CheckpointPath], []byte("\n"), []byte("\n\n"), 1)
		}, true, "", "the signature does not verify"},
		{"edit the manifest's hash", func(t *testing.T, f map[string][]byte) {
			f[evidence.ManifestPath] = bytes.Replace(f[evidence.ManifestPath], []byte(`"sha256": "`), []byte(`"sha256": "0`), 1)
		}, false, "", "SHA-256 does not match the manifest"},
		{"edit the manifest's task", func(t *testing.T, f map[string][]byte) {
			setManifest(t, f, func(m *evidence.Manifest) { m.TaskID, m.Tasks = "tsk_other", []string{"tsk_other"} })
		}, true, "", "which is not one of the bundle's tasks"},
		{"edit the manifest's checkpoint size", func(t *testing.T, f map[string][]byte) {
			setManifest(t, f, func(m *evidence.Manifest) { m.CheckpointSize++ })
		}, true, "", "checkpoint_size is"},
		{"break a proof", func(t *testing.T, f map[string][]byte) {
			for p, b := range f {
				if strings.HasPrefix(p, "proofs/") {
					lines := strings.Split(string(b), "\n")
					lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
					f[p] = []byte(strings.Join(lines, "\n"))
					return
				}
			}
		}, true, "", "inclusion proof does not verify"},
		{"drop a proof", func(t *testing.T, f map[string][]byte) {
			for p := range f {
				if strings.HasPrefix(p, "proofs/") {
					delete(f, p)
					return
				}
			}
		}, true, "", "has no proofs/"},
		{"proof of another index", func(t *testing.T, f map[string][]byte) {
			_, a := lineOf(t, f, "task.requested")
			_, b := lineOf(t, f, "task.activated")
			pa, pb := "proofs/"+jsonInt(int(a))+".tlog-proof", "proofs/"+jsonInt(int(b))+".tlog-proof"
			f[pa], f[pb] = f[pb], f[pa]
		}, true, "", "proves index"},
		{"add a file", func(t *testing.T, f map[string][]byte) {
			f["notes.txt"] = []byte("trust me")
		}, false, "", "notes.txt is in the bundle but not listed in the manifest"},
		{"drop a listed file", func(t *testing.T, f map[string][]byte) {
			delete(f, evidence.OCSFPath)
		}, false, "", "ocsf.jsonl is listed but not in the bundle"},
		{"edit the report", func(t *testing.T, f map[string][]byte) {
			f[evidence.ReportPath] = bytes.Replace(f[evidence.ReportPath], []byte("deny"), []byte("allow"), -1)
		}, true, "", "report.html does not match the bundle's events"},
		{"edit the OCSF records", func(t *testing.T, f map[string][]byte) {
			f[evidence.OCSFPath] = bytes.Replace(f[evidence.OCSFPath], []byte(`"decision":"deny"`), []byte(`"decision":"allow"`), -1)
		}, true, "", "ocsf.jsonl does not match the bundle's events"},
		{"edit the controls", func(t *testing.T, f map[string][]byte) {
			f[evidence.ControlsPath] = bytes.Replace(f[evidence.ControlsPath], []byte("not established by writ"), []byte("evidenced"), -1)
		}, true, "", "controls.csv does not match the bundle's events"},
		{"a path that climbs out", func(t *testing.T, f map[string][]byte) {
			f["../../etc/cron.d/x"] = []byte("* * * * * root true")
		}, true, "", "is not a plain relative path"},
		{"a policy file of no version", func(t *testing.T, f map[string][]byte) {
			f["policies/"+strings.Repeat("ab", 32)+"/ENGINE"] = []byte("rego")
		}, true, "", "belongs to no policy version in the manifest"},
		{"a stray payload", func(t *testing.T, f map[string][]byte) {
			f["payloads/999999/output"] = []byte("{}")
		}, true, "", "is not a body any event in the bundle commits to"},
		{"drop the manifest", func(t *testing.T, f map[string][]byte) {
			delete(f, evidence.ManifestPath)
		}, false, "", "the bundle has no manifest.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := unzip(t, orig)
			tt.edit(t, f)
			b := rezip(t, f, tt.reseal)
			key := e.vkey
			if tt.key == "-" {
				key = ""
			}
			r := verify(t, b, evidence.VerifyOptions{Key: key})
			if r.OK() {
				t.Fatalf("tampered bundle verifies: %+v", r)
			}
			var msgs []string
			for _, f := range r.Failures {
				msgs = append(msgs, f.String())
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tt.want) {
				t.Errorf("failures do not say %q:\n%s", tt.want, strings.Join(msgs, "\n"))
			}
		})
	}
}

// cutEvent removes line i of events.jsonl, the event at index, with its
// proof, and counts one event less in the manifest, leaving the derived
// files as they were.
func cutEvent(t *testing.T, f map[string][]byte, i int, index uint64) {
	t.Helper()
	l := eventLines(f)
	setEventLines(f, append(l[:i], l[i+1:]...))
	delete(f, "proofs/"+jsonInt(int(index))+".tlog-proof")
	setManifest(t, f, func(m *evidence.Manifest) { m.Events-- })
}

func setManifest(t *testing.T, f map[string][]byte, edit func(*evidence.Manifest)) {
	t.Helper()
	var m evidence.Manifest
	if err := json.Unmarshal(f[evidence.ManifestPath], &m); err != nil {
		t.Fatal(err)
	}
	edit(&m)
	f[evidence.ManifestPath], _ = json.Marshal(m)
}

func mustVerifierKey(t *testing.T, skey string) string {
	t.Helper()
	kp, err := ledger.NewKeyPair(skey)
	if err != nil {
		t.Fatal(err)
	}
	// The verifier key is name+hash+base64(0x01||pub); derive it as the
	// ledger does when it creates a key file.
	_ = kp
	parts := strings.SplitN(skey, "+", 5)
	return verifierFromSigner(t, parts)
}

// resign replaces the checkpoint, in its file and in every proof, with the
// same body signed by s.
func resign(t *testing.T, f map[string][]byte, s note.Signer) {
	t.Helper()
	old := f[evidence.CheckpointPath]
	body, _, ok := bytes.Cut(old, []byte("\n\n"))
	if !ok {
		t.Fatal("checkpoint has no signature block")
	}
	signed, err := note.Sign(&note.Note{Text: string(body) + "\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	f[evidence.CheckpointPath] = signed
	for p, b := range f {
		if strings.HasPrefix(p, "proofs/") {
			f[p] = bytes.Replace(b, old, signed, 1)
		}
	}
}

// TestOCSF reads ocsf.jsonl back: API Activity records whose authorizations
// carry each call's decision and policy version.
func TestOCSF(t *testing.T) {
	e := newEnv(t, "prod")
	id := e.story(2)
	f := unzip(t, e.export(id, evidence.Options{}))
	var allow, deny, results int
	for _, line := range strings.Split(strings.TrimSpace(string(f[evidence.OCSFPath])), "\n") {
		var r struct {
			ClassUID int `json:"class_uid"`
			TypeUID  int `json:"type_uid"`
			Actor    struct {
				Authorizations []struct {
					Decision string `json:"decision"`
					Policy   struct {
						Version string `json:"version"`
					} `json:"policy"`
				} `json:"authorizations"`
			} `json:"actor"`
			API struct {
				Operation string `json:"operation"`
			} `json:"api"`
			Metadata struct {
				Version string `json:"version"`
			} `json:"metadata"`
			Unmapped struct {
				Type string `json:"writ_type"`
			} `json:"unmapped"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if r.ClassUID != 6003 || r.TypeUID/100 != 6003 || r.Metadata.Version != evidence.OCSFVersion || r.API.Operation == "" {
			t.Errorf("not an API Activity record: %s", line)
		}
		a := r.Actor.Authorizations
		if len(a) != 1 || !strings.HasPrefix(a[0].Policy.Version, "sha256:") {
			t.Errorf("authorizations: %s", line)
			continue
		}
		switch r.Unmapped.Type {
		case "action.authorized":
			allow++
		case "action.denied":
			deny++
			if a[0].Decision != "deny" {
				t.Errorf("denied call with decision %q", a[0].Decision)
			}
		case "action.completed":
			results++
		}
	}
	if allow != 2 || deny != 1 || results != 2 {
		t.Errorf("records: %d allowed, %d denied, %d results", allow, deny, results)
	}
}

func TestVerifyUnreadable(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":     nil,
		"not a zip": []byte("hello"),
	} {
		if _, err := evidence.Verify(bytes.NewReader(b), int64(len(b)), evidence.VerifyOptions{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
