package task

import (
	"context"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
)

// ListedTool is one entry of a tool listing, named as policy sees it.
type ListedTool struct {
	Tool      string
	Operation string
	Resource  string
	DataClass string
}

// Visible decides, at point list, which of tools cred's task may see (a
// tool whose resource has no normal form is hidden undecided). When
// any is hidden it commits one tools.hidden event naming each hidden tool,
// its decision and reasons, before answering. The task and credential must
// be usable as for Authorize (ErrForbidden otherwise, recorded). Any ledger
// failure is an error: the caller shows nothing.
func (s *Service) Visible(ctx context.Context, cred VerifiedCredential, server string, tools []ListedTool, rc Request) ([]bool, error) {
	if err := s.mu.RLock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if err := s.freshen(ctx); err != nil {
		return nil, err
	}
	now := s.now()
	s.smu.Lock()
	t, refused := s.usable(cred, now)
	var task Task
	var hist []*policy.History
	if refused == nil {
		task = *t
		hist = make([]*policy.History, len(tools))
		for i, lt := range tools {
			res, _ := normalizeResource(lt.Resource) // one without a normal form is hidden undecided
			hist[i] = s.st.historyOf(t, lt.Tool, lt.Operation, res, now)
		}
	}
	s.smu.Unlock()
	if refused != nil {
		s.reject(ctx, cred, refused, now)
		return nil, refused
	}
	visible := make([]bool, len(tools))
	data := event.ToolsHidden{Gateway: rc.Gateway, Server: server, Listed: len(tools), Hidden: []event.HiddenTool{}}
	version := ""
	for i, lt := range tools {
		res, err := normalizeResource(lt.Resource)
		if err != nil {
			// A tool whose resource has no normal form could not be
			// called: it is hidden, without a decision.
			data.Hidden = append(data.Hidden, event.HiddenTool{Tool: lt.Tool, Resource: lt.Resource,
				Reasons: []string{detailOf(err)}, PolicyIDs: []string{}})
			continue
		}
		lt.Resource = res
		in := &policy.Input{
			Principal:  policy.Principal{ID: task.Requester},
			Agent:      policy.Agent{ID: task.Agent},
			Task:       policy.Task{ID: task.ID, Scope: task.Scope.policy(), State: string(task.State)},
			Action:     &policy.Action{Tool: lt.Tool, Operation: lt.Operation, Resource: lt.Resource, DataClass: lt.DataClass},
			Credential: &policy.Credential{JTI: cred.JTI, ExpiresAt: cred.Expiry, ActChain: cred.ActChain, Binding: cred.Binding},
			Request:    policy.Request{Time: now, Environment: s.cfg.Environment, Gateway: rc.Gateway, Source: rc.Source, TraceID: rc.TraceID},
			History:    hist[i],
		}
		dec := s.cfg.Policy.Evaluate(ctx, policy.PointList, in)
		if dec.Effect == policy.Allow {
			visible[i] = true
			continue
		}
		version = dec.PolicyVersion
		data.Hidden = append(data.Hidden, event.HiddenTool{Tool: lt.Tool, Resource: lt.Resource, DecisionID: dec.ID,
			Reasons: dec.Reasons, PolicyIDs: nonNil(dec.PolicyIDs)})
	}
	if len(data.Hidden) == 0 {
		return visible, nil
	}
	ev := ledger.Event{Type: ledger.TypeToolsHidden, Time: now, TaskID: task.ID, Principal: task.Requester,
		Agent: task.Agent, PolicyVersion: version, JTI: cred.JTI, TraceID: rc.TraceID, Data: mustJSON(data)}
	if _, err := s.commit(ctx, []ledger.Event{ev}, stateOnly); err != nil {
		return nil, err
	}
	return visible, nil
}
