package witness_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fwitness "github.com/transparency-dev/formats/witness"
	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/testkit"
	"github.com/writhq/writ/internal/witness"
	"github.com/writhq/writ/internal/witness/witnesstest"
)

// testLog is a ledger on a SQLite store of its own, signed by a key the
// test can give a second log (to fork it).
type testLog struct {
	origin, vkey string
	kp           *ledger.KeyPair
	store        *sqlite.Store
	ledger       *ledger.Ledger
}

func newKey(t *testing.T, origin string) (string, *ledger.KeyPair) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ledger.NewKeyPair(skey)
	if err != nil {
		t.Fatal(err)
	}
	return vkey, kp
}

func openLog(t *testing.T, vkey string, kp *ledger.KeyPair) *testLog {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.New(ctx, ledger.Config{Store: st, Signer: kp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close(context.Background())
		st.Close()
	})
	return &testLog{origin: kp.Name(), vkey: vkey, kp: kp, store: st, ledger: l}
}

func (tl *testLog) append(t *testing.T, n int, tag string) {
	t.Helper()
	for i := range n {
		if _, err := tl.ledger.Append(context.Background(), ledger.Event{Type: "import.test", Data: json.RawMessage(fmt.Sprintf(`{"tag":%q,"n":%d}`, tag, i))}); err != nil {
			t.Fatal(err)
		}
	}
}

func (tl *testLog) latest(t *testing.T) ledger.StoredCheckpoint {
	t.Helper()
	var cp ledger.StoredCheckpoint
	// The ledger signs a checkpoint within its interval of the last append.
	testkit.Eventually(t, 10*time.Second, func() error {
		var err error
		cp, err = tl.store.LatestCheckpoint(context.Background())
		if err != nil {
			return err
		}
		if n, _ := tl.store.Size(context.Background()); n != cp.Size {
			return fmt.Errorf("checkpoint of %d, %d events", cp.Size, n)
		}
		return nil
	})
	return cp
}

// counting is a transport that counts the requests it carries.
type counting struct{ n atomic.Int64 }

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func startLoop(t *testing.T, tl *testLog, ws []*witnesstest.Witness, quorum int, rt http.RoundTripper) *witness.Loop {
	t.Helper()
	cfg := witness.Config{Quorum: quorum, Interval: 50 * time.Millisecond, Log: tl.store, Store: tl.store,
		Verifier: tl.kp.Verifier(), Recorder: tl.ledger}
	if rt != nil {
		cfg.HTTP = &http.Client{Transport: rt}
	}
	for _, w := range ws {
		k, err := witness.ParseKey(w.Key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Witnesses = append(cfg.Witnesses, witness.Witness{URL: w.URL, Key: k})
	}
	l, err := witness.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	t.Cleanup(func() { l.Close(context.Background()) })
	return l
}

// waitWitnessed waits until the log's latest checkpoint is cosigned by
// quorum of the witnesses and returns it as served.
func waitWitnessed(t *testing.T, tl *testLog, l *witness.Loop) witness.Witnessed {
	t.Helper()
	want := tl.latest(t)
	var got witness.Witnessed
	testkit.Eventually(t, 20*time.Second, func() error {
		var err error
		got, err = witness.NewestWitnessed(context.Background(), tl.store, l.Keys(), l.Quorum())
		if err != nil {
			return err
		}
		if got.Checkpoint.Size != want.Size {
			return fmt.Errorf("witnessed size %d, latest %d", got.Checkpoint.Size, want.Size)
		}
		return nil
	})
	return got
}

// TestLoopTwoWitnesses: two real witnesses, quorum 2. The checkpoints get
// cosigned by both, and the note writ serves passes a standard client's
// check of the log's signature and of a witness policy requiring both.
// A loop started again on the same store resumes from the sizes the
// witnesses last cosigned.
func TestLoopTwoWitnesses(t *testing.T) {
	vkey, kp := newKey(t, "loop.example/log")
	w1 := witnesstest.Start(t, "w1.example/witness", kp.Name(), vkey)
	w2 := witnesstest.Start(t, "w2.example/witness", kp.Name(), vkey)
	tl := openLog(t, vkey, kp)
	tl.append(t, 20, "a")
	l := startLoop(t, tl, []*witnesstest.Witness{w1, w2}, 2, nil)
	got := waitWitnessed(t, tl, l)
	served := got.Note()
	if len(got.Cosignatures) != 2 {
		t.Fatalf("cosignatures %+v", got.Cosignatures)
	}
	policy, err := fwitness.ParsePolicy([]byte(fmt.Sprintf("witness w1 %s %s\nwitness w2 %s %s\ngroup g all w1 w2\nquorum g\n", w1.Key, w1.URL, w2.Key, w2.URL)))
	if err != nil {
		t.Fatal(err)
	}
	lv, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := flog.ParseCheckpoint(served, kp.Name(), lv)
	if err != nil {
		t.Fatalf("the served note does not verify as the log's checkpoint: %v\n%s", err, served)
	}
	if !policy.Satisfied(served) {
		t.Fatalf("the served note does not satisfy the witness policy:\n%s", served)
	}
	if cp.Size != got.Checkpoint.Size || w1.Size(kp.Name()) != cp.Size || w2.Size(kp.Name()) != cp.Size {
		t.Errorf("sizes: checkpoint %d, w1 %d, w2 %d", cp.Size, w1.Size(kp.Name()), w2.Size(kp.Name()))
	}
	// One witness is not the quorum.
	one, _ := fwitness.ParsePolicy([]byte(fmt.Sprintf("witness w1 %s %s\nwitness w2 %s %s\ngroup g all w1 w2\nquorum g\n", w1.Key, w1.URL, w2.Key, w2.URL)))
	if one.Satisfied(witness.Append(got.Checkpoint.Note, got.Cosignatures[:1])) {
		t.Error("one cosignature satisfied a policy of two")
	}
	for _, c := range got.Cosignatures {
		if c.Time.IsZero() || time.Since(c.Time) > time.Hour || c.Size != cp.Size {
			t.Errorf("cosignature %+v", c)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Started again, the loop goes on from the stored sizes.
	tl.append(t, 5, "b")
	l2 := startLoop(t, tl, []*witnesstest.Witness{w1, w2}, 2, nil)
	waitWitnessed(t, tl, l2)
	states, err := tl.store.WitnessStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if st.Refusal != nil || st.Failures != 0 || st.Size != tl.latest(t).Size {
			t.Errorf("state %+v", st)
		}
	}
}

// TestLoopRefusals: a witness that cosigned one log refuses a second log
// under the same origin and key (as a store rolled back or rewritten
// would be): smaller than what it cosigned (a rollback), or as large and
// different (a fork). Each refusal is a witness.refused event in the
// second log, and the witness is held: nothing more is sent to it.
func TestLoopRefusals(t *testing.T) {
	vkey, kp := newKey(t, "refuse.example/log")
	w := witnesstest.Start(t, "w.example/witness", kp.Name(), vkey)
	honest := openLog(t, vkey, kp)
	honest.append(t, 30, "honest")
	l := startLoop(t, honest, []*witnesstest.Witness{w}, 1, nil)
	waitWitnessed(t, honest, l)
	l.Close(context.Background())
	cosigned := w.Size(kp.Name())

	for _, tc := range []struct {
		name   string
		events int
		reason string
	}{
		{"rollback", 10, witness.ReasonRollback},
		{"fork", 40, witness.ReasonFork},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := openLog(t, vkey, kp)
			other.append(t, tc.events, "other")
			size := other.latest(t).Size
			sent := &counting{}
			l := startLoop(t, other, []*witnesstest.Witness{w}, 1, sent)
			var ev witness.RefusalEvent
			testkit.Eventually(t, 20*time.Second, func() error {
				var found []witness.RefusalEvent
				err := other.store.ScanLeaves(context.Background(), 0, func(i uint64, leaf []byte) error {
					e, err := ledger.ParseLeaf(i, leaf)
					if err != nil || e.Event.Type != ledger.TypeWitnessRefused {
						return err
					}
					var r witness.RefusalEvent
					if err := json.Unmarshal(e.Event.Data, &r); err != nil {
						return err
					}
					found = append(found, r)
					return nil
				})
				if err != nil {
					return err
				}
				if len(found) != 1 {
					return fmt.Errorf("%d refusal events", len(found))
				}
				ev = found[0]
				return nil
			})
			if ev.Reason != tc.reason || ev.Key != w.Key || ev.CheckpointSize != size || ev.WitnessSize == nil || *ev.WitnessSize != cosigned {
				t.Errorf("refusal event %+v (witness size %v), want %s of size %d against %d", ev, ev.WitnessSize, tc.reason, size, cosigned)
			}
			// The state, saved before the event, gets the event's index after.
			var states []witness.State
			testkit.Eventually(t, 10*time.Second, func() error {
				var err error
				states, err = other.store.WitnessStates(context.Background())
				if err != nil || len(states) != 1 || states[0].Refusal == nil || states[0].Refusal.Index == nil {
					return fmt.Errorf("states %+v, %v", states, err)
				}
				return nil
			})
			if states[0].Refusal.Reason != tc.reason {
				t.Fatalf("refusal %+v", states[0].Refusal)
			}
			// Held: the log grows, the loop looks at its new checkpoint and
			// sends nothing more to the witness.
			before := sent.n.Load()
			other.append(t, 5, "more")
			grown := other.latest(t).Size
			testkit.Eventually(t, 10*time.Second, func() error {
				if s := l.Seen(); s != grown {
					return fmt.Errorf("the loop last looked at size %d, not %d", s, grown)
				}
				return nil
			})
			if n := sent.n.Load() - before; n != 0 || len(l.InFlight()) != 0 {
				t.Errorf("%d requests sent to a held witness", n)
			}
			if w.Size(kp.Name()) != cosigned {
				t.Errorf("the witness's size moved to %d", w.Size(kp.Name()))
			}
			if _, err := witness.NewestWitnessed(context.Background(), other.store, l.Keys(), 1); !errors.Is(err, ledger.ErrNotFound) {
				t.Errorf("the refused log has a witnessed checkpoint: %v", err)
			}
			if !strings.Contains(states[0].Refusal.Detail, fmt.Sprint(cosigned)) {
				t.Errorf("refusal detail %q does not name the witness's size", states[0].Refusal.Detail)
			}
		})
	}
}
