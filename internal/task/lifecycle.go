package task

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/refusal"
)

// Complete ends an active task as done: task.completed, and credential.revoked
// for each live credential of the task, then the same (task.revoked, reason
// parent_ended) for every descendant, all in one transaction. Only the
// task's requester or an admin may complete it.
func (s *Service) Complete(ctx context.Context, who identity.Principal, taskID string) (Task, error) {
	return s.end(ctx, who, taskID, ledger.TypeTaskCompleted, ReasonTaskCompleted)
}

// Revoke ends an active or pending task as revoked, with its credentials and
// descendants, as Complete does. reason is recorded (at most 1 KiB).
func (s *Service) Revoke(ctx context.Context, who identity.Principal, taskID, reason string) (Task, error) {
	if len(reason) > MaxReasonBytes || !utf8.ValidString(reason) {
		return Task{}, invalid("reason must be valid UTF-8 of at most %d bytes", MaxReasonBytes)
	}
	if err := checkText("reason", reason); err != nil {
		return Task{}, err
	}
	if reason == "" {
		reason = ReasonTaskRevoked
	}
	return s.end(ctx, who, taskID, ledger.TypeTaskRevoked, reason)
}

func (s *Service) end(ctx context.Context, who identity.Principal, taskID, typ, reason string) (Task, error) {
	if err := s.mu.Lock(ctx); err != nil {
		return Task{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	s.smu.Lock()
	t := s.st.tasks[taskID]
	var refused *refusal.Error
	switch {
	case t == nil || !s.st.sees(who, t, now):
		refused = notFound("no task %s", taskID)
	case who.ID != t.Requester && !who.HasRole(identity.RoleAdmin):
		refused = newErr(ErrForbidden, "not_requester", "only the requester of task %s or an admin may end it", taskID)
	case typ == ledger.TypeTaskCompleted && t.State != StateActive:
		refused = newErr(ErrConflict, "task_not_active", "task %s is %s", taskID, t.State)
	case t.State != StateActive && t.State != StatePendingApproval:
		refused = newErr(ErrConflict, "task_ended", "task %s is %s", taskID, t.State)
	case t.State == StateActive && !now.Before(t.ExpiresAt):
		refused = newErr(ErrConflict, "task_expired", "task %s expired at %s", taskID, t.ExpiresAt.Format(time.RFC3339))
	}
	var events []ledger.Event
	if refused == nil {
		events = s.endEvents(t, typ, reason, who.ID, now)
	}
	s.smu.Unlock()
	if refused != nil {
		if refused.Code == "task_expired" {
			s.Kick()
		}
		return Task{}, refused
	}
	if _, err := s.commit(ctx, events, projectRows); err != nil {
		return Task{}, err
	}
	return s.Get(taskID)
}

// endEvents builds the events ending t and its live descendants, depth
// first, each followed by the revocation of its live credentials. The caller
// holds smu.
func (s *Service) endEvents(t *Task, typ, reason, by string, now time.Time) []ledger.Event {
	var events []ledger.Event
	var walk func(t *Task, typ, reason string)
	walk = func(t *Task, typ, reason string) {
		if t.State != StateActive && t.State != StatePendingApproval {
			return
		}
		env := ledger.Event{Time: now, TaskID: t.ID, Principal: t.Requester, Agent: t.Agent}
		ev := env
		ev.Type = typ
		ev.Data = mustJSON(event.TaskEnded{Reason: reason, By: by})
		events = append(events, ev)
		credReason := map[string]string{ledger.TypeTaskCompleted: ReasonTaskCompleted,
			ledger.TypeTaskExpired: ReasonTaskExpired, ledger.TypeTaskRevoked: ReasonTaskRevoked}[typ]
		for _, jti := range t.Credentials {
			if c := s.st.creds[jti]; c != nil && !c.Revoked {
				rev := env
				rev.Type, rev.JTI = ledger.TypeCredentialRevoked, jti
				rev.Data = mustJSON(event.CredentialRevoked{Reason: credReason})
				events = append(events, rev)
			}
		}
		for _, id := range t.Children {
			if c := s.st.tasks[id]; c != nil {
				walk(c, ledger.TypeTaskRevoked, ReasonParentEnded)
			}
		}
	}
	walk(t, typ, reason)
	return events
}

// Sweep ends every task whose time is up: active tasks past their expiry,
// and pending tasks whose approval request expired, each with task.expired
// and its credentials' and descendants' revocations. It returns how many
// tasks it expired.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	// Most sweeps find nothing to end. They look under the state's lock
	// only: the exclusive gate waits for every authorization in flight
	// (each holds it across its commit) and holds up the next ones.
	s.smu.Lock()
	if n := s.st.forgetActions(s.now()); n > 0 {
		s.log.DebugContext(ctx, "forgot the actions of ended tasks", "actions", n)
	}
	none := len(s.dueLocked(s.now())) == 0
	s.smu.Unlock()
	if none {
		return 0, nil
	}
	if err := s.mu.Lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	now := s.now()
	s.smu.Lock()
	due := s.dueLocked(now)
	var events []ledger.Event
	ended := map[string]bool{}
	for _, t := range due {
		if ended[t.ID] {
			continue
		}
		reason := ReasonTaskExpired
		if t.State == StatePendingApproval {
			reason = ReasonApprovalTTL
		}
		evs := s.endEvents(t, ledger.TypeTaskExpired, reason, ByWrit, now)
		for _, ev := range evs {
			if ev.Type != ledger.TypeCredentialRevoked {
				ended[ev.TaskID] = true
			}
		}
		events = append(events, evs...)
	}
	s.smu.Unlock()
	if len(events) == 0 {
		return 0, nil
	}
	if _, err := s.commit(ctx, events, projectRows); err != nil {
		return 0, err
	}
	return len(due), nil
}

// dueLocked returns the tasks whose time is up at now: active ones past
// their expiry, pending ones whose approval request expired. The caller
// holds smu.
func (s *Service) dueLocked(now time.Time) []*Task {
	var due []*Task
	for _, id := range s.st.order {
		t := s.st.tasks[id]
		switch t.State {
		case StateActive:
			if !now.Before(t.ExpiresAt) {
				due = append(due, t)
			}
		case StatePendingApproval:
			if a := s.st.approvals[t.ApprovalID]; a != nil && now.After(a.ExpiresAt) {
				due = append(due, t)
			}
		}
	}
	return due
}

// Kick asks the sweeper to run now, as a use of an expired task does.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Service) sweeper() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		case <-s.kick:
		}
		s.sweep()
	}
}

// sweep runs Sweep outside any request; a failure is retried at the next
// tick. Sweep itself looks for a due task before it takes the gate, so an
// idle replica's tick costs no lock.
func (s *Service) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Sweep(ctx); err != nil {
		s.log.ErrorContext(ctx, "expiring tasks failed; retrying", "err", err)
	}
}

// RecordCredential records a credential the credential layer issued for an
// active task to its agent (credential.issued), after the layer's own
// checks and before the token is handed out. decisionID and policyVersion
// are those of the exchange decision.
func (s *Service) RecordCredential(ctx context.Context, c Credential, decisionID, policyVersion string) error {
	return s.recordCredential(ctx, c, decisionID, policyVersion, nil)
}

// recordCredential commits before (events recorded in the same
// transaction, such as the exchange decision) followed by credential.issued.
func (s *Service) recordCredential(ctx context.Context, c Credential, decisionID, policyVersion string, before []ledger.Event) error {
	if c.JTI == "" || c.TaskID == "" || c.ExpiresAt.IsZero() {
		return invalid("a credential needs jti, task and expiry")
	}
	if err := s.mu.Lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	now := s.now()
	s.smu.Lock()
	t := s.st.tasks[c.TaskID]
	var refused *refusal.Error
	switch {
	case t == nil:
		refused = notFound("no task %s", c.TaskID)
	case t.State != StateActive || !now.Before(t.ExpiresAt):
		refused = newErr(ErrConflict, "task_not_active", "task %s is not active", c.TaskID)
	case c.Agent != t.Agent:
		refused = newErr(ErrForbidden, "agent_mismatch", "task %s belongs to another agent", c.TaskID)
	case s.st.endedAncestor(t, now) != nil:
		refused = newErr(ErrConflict, ReasonAncestorEnded, "a parent of task %s is no longer active", c.TaskID)
	case s.st.creds[c.JTI] != nil:
		refused = newErr(ErrConflict, "jti_reused", "credential jti already recorded")
	}
	var requester string
	if t != nil {
		requester = t.Requester
	}
	s.smu.Unlock()
	if refused != nil {
		return refused
	}
	exp := c.ExpiresAt.UTC()
	if exp.After(t.ExpiresAt) {
		exp = t.ExpiresAt
	}
	ev := ledger.Event{Type: ledger.TypeCredentialIssued, Time: now, TaskID: c.TaskID, Principal: requester,
		Agent: c.Agent, JTI: c.JTI, DecisionID: decisionID, PolicyVersion: policyVersion,
		Data: mustJSON(event.CredentialIssued{Subject: requester, ExpiresAt: exp, Binding: c.Binding})}
	for i := range before {
		before[i].Time = now
	}
	_, err := s.commit(ctx, append(before, ev), projectRows)
	return err
}

// CredentialLive reports whether jti is a recorded, unrevoked credential of
// a task that is active and unexpired.
func (s *Service) CredentialLive(jti string) bool {
	live, known := s.credentialLive(jti)
	if !known && s.cfg.Shared != nil && s.catchUpNow() {
		// Issued by another replica a moment ago.
		live, _ = s.credentialLive(jti)
	}
	return live
}

func (s *Service) credentialLive(jti string) (live, known bool) {
	s.smu.Lock()
	defer s.smu.Unlock()
	c := s.st.creds[jti]
	if c == nil {
		return false, false
	}
	if c.Revoked {
		return false, true
	}
	t := s.st.tasks[c.TaskID]
	return t != nil && t.State == StateActive && s.now().Before(t.ExpiresAt), true
}
