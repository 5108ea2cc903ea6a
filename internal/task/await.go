package task

import (
	"context"
	"time"
)

// Outcomes of AwaitApproval.
const (
	AwaitGranted = ApprovalGranted
	AwaitDenied  = ApprovalDenied
	AwaitExpired = "expired"
)

// awaitPoll is how often AwaitApproval looks at the approval again. A
// decision is a ledger event that any replica may append, so the state
// is read again (caught up with replicas) rather than waited on.
const awaitPoll = 100 * time.Millisecond

// AwaitApproval waits until step-up approvalID, asked for a call under
// cred's task, is granted or denied, or expires, and says which; an
// enforcement point that asked an approver where the agent runs holds the
// call meanwhile. It returns ErrNotFound for an approval that is not a
// step-up of cred's task, a credential refusal once the task or the
// credential may no longer act, and ctx's error when ctx ends first. It
// records nothing: the call, retried, is decided and recorded as any.
func (s *Service) AwaitApproval(ctx context.Context, cred VerifiedCredential, approvalID string) (string, error) {
	tick := time.NewTicker(awaitPoll)
	defer tick.Stop()
	for {
		s.followForRead()
		now := s.now()
		s.smu.Lock()
		a := s.st.approvals[approvalID]
		var status string
		var expires time.Time
		if a != nil && a.TaskID == cred.TaskID && a.Kind == KindStepUp {
			status, expires = a.Status, a.ExpiresAt
		}
		_, refused := s.usable(cred, now)
		s.smu.Unlock()
		switch {
		case status == "":
			return "", notFound("no step-up approval %s of task %s", approvalID, cred.TaskID)
		case refused != nil:
			return "", refused
		case status == ApprovalGranted:
			return AwaitGranted, nil
		case status == ApprovalDenied:
			return AwaitDenied, nil
		case now.After(expires):
			return AwaitExpired, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-tick.C:
		}
	}
}
