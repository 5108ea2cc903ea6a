package task

import (
	"context"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
)

// RecordExchange records a credential issued after an allowing exchange
// decision: policy.decided (point exchange, with its input document) and
// credential.issued in one transaction, under the same checks as
// RecordCredential. Only once it returns nil may the token be handed out.
func (s *Service) RecordExchange(ctx context.Context, c Credential, dec policy.Decision, in *policy.Input) error {
	t, err := s.Get(c.TaskID)
	if err != nil {
		return err
	}
	decided, err := decidedEvent(ledger.Event{TaskID: t.ID, Principal: t.Requester, Agent: c.Agent, JTI: c.JTI}, dec, in)
	if err != nil {
		return err
	}
	return s.recordCredential(ctx, c, dec.ID, dec.PolicyVersion, []ledger.Event{decided})
}

// RecordDecision records a decision taken outside the task service about
// task taskID, such as an exchange refused by policy: policy.decided with
// its input document, under the task. agent is the agent the decision was
// about.
func (s *Service) RecordDecision(ctx context.Context, taskID, agent string, dec policy.Decision, in *policy.Input) error {
	if err := s.mu.RLock(ctx); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	t, err := s.Get(taskID)
	if err != nil {
		return err
	}
	decided, err := decidedEvent(ledger.Event{Time: s.now(), TaskID: t.ID, Principal: t.Requester, Agent: agent}, dec, in)
	if err != nil {
		return err
	}
	_, err = s.commit(ctx, []ledger.Event{decided}, stateOnly)
	return err
}

// Rejection is a refused use of a credential or identity that the layers
// above the task service detect (a token that does not verify, an agent
// asking for another agent's task). It never holds a token.
type Rejection struct {
	// TaskID is the task the caller named or its token carried, when known
	// and trusted; refusals of unknown tasks are recorded without one.
	TaskID string
	// Agent is the verified agent identity, when there is one.
	Agent string
	// JTI is the verified token's jti, when its signature verified.
	JTI string
	// Reason is a short code (invalid_token, credential_revoked,
	// agent_mismatch, …) and Detail a sentence without secrets.
	Reason string
	Detail string
}

// Rejections decides which refusals are recorded one by one: Reject
// accounts for a refusal and calls write when this one is to be recorded,
// returning write's error.
type Rejections interface {
	Reject(ctx context.Context, reason string, write func(context.Context) error) error
}

// RecordRejection records r as auth.rejected (under its task when the task
// exists), as Config.Rejections allows. The refusal stands whatever this
// returns; the error only says the record is not durable.
func (s *Service) RecordRejection(ctx context.Context, r Rejection) error {
	return s.rejection(ctx, r.Reason, func(ctx context.Context) error {
		if err := s.mu.RLock(ctx); err != nil {
			return err
		}
		defer s.mu.RUnlock()
		ev := ledger.Event{Type: ledger.TypeAuthRejected, Time: s.now(), Agent: r.Agent, JTI: r.JTI,
			Data: mustJSON(event.AuthRejected{Reason: r.Reason, Detail: r.Detail})}
		if r.TaskID != "" {
			s.smu.Lock()
			if t := s.st.tasks[r.TaskID]; t != nil {
				ev.TaskID, ev.Principal = t.ID, t.Requester
			}
			s.smu.Unlock()
		}
		_, err := s.commit(ctx, []ledger.Event{ev}, stateOnly)
		return err
	})
}

// rejection passes a refusal through Config.Rejections, or records it.
func (s *Service) rejection(ctx context.Context, reason string, write func(context.Context) error) error {
	if s.cfg.Rejections == nil {
		return write(ctx)
	}
	return s.cfg.Rejections.Reject(ctx, reason, write)
}

// RevokedCredentials returns every recorded credential that was revoked
// and whose expiry is after since, for rebuilding the credential layer's
// revocation set at start.
func (s *Service) RevokedCredentials(since time.Time) []Credential {
	s.smu.Lock()
	defer s.smu.Unlock()
	var out []Credential
	for _, c := range s.st.creds {
		if c.Revoked && c.ExpiresAt.After(since) {
			out = append(out, *c)
		}
	}
	return out
}

// EndedTasks returns the IDs of tasks that ended (completed, expired,
// revoked or denied) at or after since, for rebuilding the credential
// layer's revocation set at start.
func (s *Service) EndedTasks(since time.Time) []string {
	s.smu.Lock()
	defer s.smu.Unlock()
	var out []string
	for _, id := range s.st.order {
		t := s.st.tasks[id]
		if t.State.Ended() && !t.EndedAt.Before(since) {
			out = append(out, id)
		}
	}
	return out
}
