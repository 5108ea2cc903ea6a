package policy

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// evalShadow evaluates the candidate bundle on the same input and, when it
// disagrees with the active decision, queues a policy.shadow_disagreed event.
// The candidate's answer is reported, never enforced.
func (p *Policy) evalShadow(ctx context.Context, s *loaded, in *Input, d *Decision) *ShadowResult {
	r := p.evalOne(ctx, s, in)
	sr := &ShadowResult{PolicyVersion: s.version, Engine: s.name, Result: r, Agrees: sameResult(d.Result, r)}
	if sr.Agrees {
		return sr
	}
	data, _ := json.Marshal(event.ShadowDisagreed{Point: string(d.Point),
		Active: shadowSide(d.PolicyVersion, d.Engine, d.Result), Candidate: shadowSide(s.version, s.name, r)})
	body, _ := json.Marshal(in)
	e := ledger.Event{
		Type:          ledger.TypePolicyShadow,
		Time:          time.Now().UTC(),
		TaskID:        in.Task.ID,
		Principal:     in.Principal.ID,
		Agent:         in.Agent.ID,
		DecisionID:    d.ID,
		PolicyVersion: d.PolicyVersion,
		TraceID:       in.Request.TraceID,
		Data:          data,
		Bodies:        map[string][]byte{"input": body},
	}
	select {
	case p.shadowQ <- e:
	default:
		p.log.WarnContext(ctx, "shadow disagreement dropped: queue full", logDecisionID, d.ID)
	}
	return sr
}

// shadowSide is one bundle's answer as a disagreement records it.
func shadowSide(version, engine string, r Result) event.ShadowSide {
	return event.ShadowSide{Version: version, Engine: engine, Outcome: event.Outcome{Effect: string(r.Effect),
		Reasons: r.Reasons, Obligations: r.Obligations, PolicyIDs: r.PolicyIDs}}
}

// shadowWorker appends queued disagreements off the decision path, and
// drains the queue on Close.
func (p *Policy) shadowWorker() {
	defer p.wg.Done()
	for {
		select {
		case e := <-p.shadowQ:
			p.appendShadow(e)
		case <-p.closed:
			for {
				select {
				case e := <-p.shadowQ:
					p.appendShadow(e)
				default:
					return
				}
			}
		}
	}
}

func (p *Policy) appendShadow(e ledger.Event) {
	if p.cfg.Recorder == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.cfg.Recorder.Append(ctx, e); err != nil {
		p.log.Error("recording shadow disagreement", logDecisionID, e.DecisionID, logErr, err.Error())
	}
}

// sameResult reports whether two results agree on effect, reasons, policy IDs
// and obligations (both are normalized).
func sameResult(a, b Result) bool {
	if a.Effect != b.Effect || !slices.Equal(a.Reasons, b.Reasons) || !slices.Equal(a.PolicyIDs, b.PolicyIDs) {
		return false
	}
	oa, ob := a.Obligations, b.Obligations
	if oa.MaxTTL != ob.MaxTTL || oa.Approvals != ob.Approvals || !slices.Equal(oa.Redact, ob.Redact) || oa.RequireBinding != ob.RequireBinding {
		return false
	}
	if (oa.RecordOutput == nil) != (ob.RecordOutput == nil) {
		return false
	}
	return oa.RecordOutput == nil || *oa.RecordOutput == *ob.RecordOutput
}
