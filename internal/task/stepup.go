package task

import (
	"github.com/writhq/writ/api"
)

// StepUp statuses as the agent sees them (api.StepUp): the approval's own
// status, or used once a retry consumed a granted one, or expired once an
// undecided or unused one is past its expiry.
const (
	StepUpUsed    = "used"
	StepUpExpired = "expired"
)

// StepUp tells the agent holding cred what became of step-up approvalID,
// which one of its calls was answered with: so that it can wait for an
// approver without retrying the call (each retry is recorded as a denial)
// and stop when it was denied. It reads the state only and records
// nothing. An approval that is not a step-up of cred's task is ErrNotFound,
// exactly like one that does not exist.
func (s *Service) StepUp(cred VerifiedCredential, approvalID string) (api.StepUp, error) {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	a := s.st.approvals[approvalID]
	if a == nil || a.Kind != KindStepUp || a.TaskID != cred.TaskID {
		return api.StepUp{}, notFound("no step-up approval %s for this task", approvalID)
	}
	out := api.StepUp{ApprovalID: a.ID, TaskID: a.TaskID, Status: a.Status, ExpiresAt: a.ExpiresAt,
		ApprovalsRequired: a.Required, ApprovalsGiven: a.Granted(), Tool: a.Tool, Operation: a.Operation, Resource: a.Resource}
	switch {
	case a.Status == ApprovalDenied:
		for _, d := range a.Decisions {
			if d.Decision == "deny" {
				out.Reason = d.Reason
			}
		}
	case a.Status == ApprovalGranted && a.UsedBy != "":
		out.Status = StepUpUsed
	case s.now().After(a.ExpiresAt):
		out.Status = StepUpExpired
	}
	return out, nil
}
