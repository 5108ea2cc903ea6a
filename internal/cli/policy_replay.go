package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

// errFound stops a ledger scan once the event is found.
var errFound = errors.New("found")

func policyReplayCommand() *command {
	c := &command{name: "replay", args: "<decision_id> [--data-dir DIR] [-o table|json]",
		summary: "decide a recorded decision again against the exact policy version that made it"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		out := fs.String("o", "table", "output `format`: table or json")
		pos, cfg, d, err := cf.parseRead(ctx, c, io, args, 1, 1, out)
		if err != nil {
			return err
		}
		defer d.Close()

		rec, err := findDecision(ctx, d.Store, pos[0])
		if err != nil {
			return err
		}
		sources, err := policy.NewDirStore(filepath.Join(cfg.DataDir, "policies"))
		if err != nil {
			return err
		}
		got, err := policy.Replay(ctx, sources, rec.version, rec.point, rec.input, cfg.Policy.Timeout)
		if err != nil {
			return withHint(fmt.Errorf("replaying decision %s: %w", rec.id, err), "the sources of every version writ loaded are kept under <data-dir>/policies")
		}
		agree := string(got.Effect) == rec.effect && slices.Equal(got.Reasons, rec.reasons)
		if *out == "json" {
			err = printJSONEscaped(io, map[string]any{
				"decision_id": rec.id, "ledger_index": rec.index, "point": rec.point, "policy_version": rec.version,
				"recorded": map[string]any{"effect": rec.effect, "reasons": rec.reasons},
				"replayed": map[string]any{"effect": got.Effect, "reasons": got.Reasons, "policy_ids": got.PolicyIDs},
				"agree":    agree,
				"history":  rec.history,
			})
			if err != nil {
				return err
			}
		} else {
			fmt.Fprintf(io.Stdout, "decision   %s (ledger index %d, point %s)\n", rec.id, rec.index, rec.point)
			fmt.Fprintf(io.Stdout, "policy     %s\n", rec.version)
			fmt.Fprintf(io.Stdout, "recorded   %s %q\n", rec.effect, rec.reasons)
			fmt.Fprintf(io.Stdout, "replayed   %s %q\n", got.Effect, got.Reasons)
			if h := rec.input.History; h != nil {
				fmt.Fprintf(io.Stdout, "history    %s: the task %d allowed, %d denied, %d in flight, highest data class %s; the agent %d calls in the last minute\n",
					rec.history, h.Task.Allowed, h.Task.Denied, h.Task.InFlight, firstNonEmpty(h.Task.MaxDataClass, "none"), h.Agent.LastMinute.Calls)
			}
			if agree {
				fmt.Fprintln(io.Stdout, "result     the same policy gives the same decision")
			}
		}
		if !agree {
			return withHint(fmt.Errorf("replay of %s differs from the recorded decision", rec.id),
				"redacted arguments are replayed as \"[redacted]\"; otherwise the record or the stored policy sources changed")
		}
		return nil
	}
	return c
}

type recordedDecision struct {
	id      string
	index   uint64
	taskID  string
	point   policy.Point
	version string
	effect  string
	reasons []string
	input   *policy.Input
	// history says where an action's history came from: "recorded" in
	// its input, or "replayed" from the ledger up to it (a decision
	// recorded before inputs held one).
	history string
}

// findDecision finds the event that records decision id with its policy
// input, and checks the input body against the event's commitment.
func findDecision(ctx context.Context, s ledger.Store, id string) (*recordedDecision, error) {
	var rec *recordedDecision
	var commitment string
	// The task state up to the decision, for an action recorded before
	// its input held the history.
	st := task.NewState()
	err := s.ScanLeaves(ctx, 0, func(i uint64, leaf []byte) error {
		e, err := ledger.ParseLeaf(i, leaf)
		if err != nil {
			return nil
		}
		if e.Event.DecisionID != id || e.Commitments["input"] == "" {
			if task.Relevant(e.Event.Type) {
				st.Replay(e)
			}
			return nil
		}
		data, err := event.Read(e.Event)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		rec = &recordedDecision{id: id, index: i, version: e.Event.PolicyVersion, taskID: e.Event.TaskID}
		switch d := data.(type) {
		case event.PolicyDecided:
			rec.point, rec.effect, rec.reasons = policy.Point(d.Point), d.Effect, d.Reasons
		case event.ActionDecided:
			rec.point, rec.effect, rec.reasons = policy.PointAction, d.Effect, d.Reasons
		case event.ShadowDisagreed:
			// The active side of a disagreement, as it was recorded.
			rec.point, rec.effect, rec.reasons = policy.Point(d.Point), d.Active.Effect, d.Active.Reasons
		default:
			return fmt.Errorf("event %d: a %s records no decision", i, e.Event.Type)
		}
		commitment = e.Commitments["input"]
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		return nil, err
	}
	if rec == nil {
		return nil, withHint(fmt.Errorf("no decision %s with a recorded input in the ledger", id), "decision IDs look like dec_…; 'writ trace <task>' lists them")
	}
	body, err := s.ReadBody(ctx, ledger.BodyRef{Index: rec.index, Name: "input"})
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("the input of decision %s (event %d) was erased; it cannot be replayed", id, rec.index)
	}
	if err != nil {
		return nil, err
	}
	if ledger.Commit(body.Salt, body.Data) != commitment {
		return nil, withHint(fmt.Errorf("the stored input of decision %s does not match its commitment in event %d", id, rec.index), "run 'writ ledger verify'")
	}
	if rec.input, err = policy.ParseInput(body.Data); err != nil {
		return nil, fmt.Errorf("decision %s: recorded input: %w", id, err)
	}
	if in := rec.input; rec.point == policy.PointAction && in.Action != nil {
		rec.history = "recorded"
		if in.History == nil {
			if h, ok := st.HistoryOf(rec.taskID, in.Action.Tool, in.Action.Operation, in.Action.Resource, in.Request.Time); ok {
				in.History, rec.history = h, "replayed"
			}
		}
	}
	return rec, nil
}
