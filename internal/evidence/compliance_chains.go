package evidence

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
)

// The findings of the readiness report that need each task's whole story:
// read from the ledger's events themselves, not from the task state, which
// leaves out an event that does not follow from the ones before it.

// chainTasksAtOnce bounds the tasks whose events are read in one go.
const chainTasksAtOnce = 256

// chains reads the events of every task with events in the window, up to
// the window's end, and records what lacked an approval and which
// credentials outlived their tasks.
func (w *window) chains(ctx context.Context) error {
	if !w.any {
		return nil
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range w.tasks {
			if !yield(id) {
				return
			}
		}
	})
	for len(ids) > 0 {
		n := min(len(ids), chainTasksAtOnce)
		idx, err := w.src.Index.TaskEvents(ctx, ids[:n])
		if err != nil {
			return err
		}
		idx = slices.DeleteFunc(idx, func(i uint64) bool { return i > w.last })
		ents, err := readEntries(ctx, w.src.Store, idx)
		if err != nil {
			return err
		}
		stories := map[string]*story{}
		for _, ent := range ents {
			s := stories[ent.Event.TaskID]
			if s == nil {
				s = &story{w: w, task: ent.Event.TaskID, grants: map[string]map[string]bool{}, required: map[string]int{},
					creds: map[string]*credStory{}}
				stories[ent.Event.TaskID] = s
			}
			s.apply(ent)
		}
		for _, id := range ids[:n] {
			if s := stories[id]; s != nil {
				s.finish()
			}
		}
		ids = ids[n:]
	}
	slices.SortFunc(w.rep.Approvals.Lacking, byIndex)
	slices.SortFunc(w.rep.Credentials.Outlived, byIndex)
	return nil
}

func byIndex(a, b Finding) int {
	switch {
	case a.Index < b.Index:
		return -1
	case a.Index > b.Index:
		return 1
	}
	return 0
}

// story is one task's events, as far as the findings need them.
type story struct {
	w    *window
	task string
	// requester, decision (the task decision's effect, at decided) and
	// the approvals it needs; taskApproval is the task's approval request.
	requester    string
	effect       string
	decided      uint64
	needs        int
	taskApproval string
	// grants maps each approval to the approvers who granted it (not the
	// requester); required what each asked for.
	grants   map[string]map[string]bool
	grantIdx map[string][]uint64
	required map[string]int
	// expires is when the task's activation said it ends; ended the index
	// and time of its end.
	expires  time.Time
	ended    *uint64
	endedAt  time.Time
	creds    map[string]*credStory
	credList []string
}

type credStory struct {
	issued    uint64
	expires   time.Time
	revoked   *uint64
	revokedAt time.Time
}

func (s *story) lacking(i uint64, reason string, events ...uint64) {
	s.w.rep.Approvals.Lacking = append(s.w.rep.Approvals.Lacking, Finding{TaskID: s.task, Index: i, Events: nonNilIdx(events), Reason: reason})
}

func (s *story) outlived(jti string, i uint64, reason string, events ...uint64) {
	s.w.rep.Credentials.Outlived = append(s.w.rep.Credentials.Outlived, Finding{TaskID: s.task, JTI: jti, Index: i, Events: nonNilIdx(events), Reason: reason})
}

func nonNilIdx(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}

// granted returns how many distinct approvers granted approval id, and
// their grants' indexes.
func (s *story) granted(id string) (int, []uint64) {
	if s.grantIdx == nil {
		return 0, nil
	}
	return len(s.grants[id]), s.grantIdx[id]
}

func (s *story) apply(ent ledger.Entry) {
	ev := ent.Event
	d, _ := event.Read(ev)
	in := s.w.inWindow(ent.Index)
	switch d := d.(type) {
	case event.TaskRequested:
		s.requester = ev.Principal
	case event.PolicyDecided:
		if d.Point == string(policy.PointTask) && s.effect == "" {
			s.effect, s.decided = d.Effect, ent.Index
			if d.Effect == string(policy.RequireApproval) {
				s.needs = max(d.Obligations.Approvals, 1)
			}
		}
	case event.ApprovalRequested:
		s.required[d.ApprovalID] = max(d.Required, 1)
		if d.Kind == event.KindTask {
			s.taskApproval = d.ApprovalID
		}
	case event.ApprovalDecided:
		if ev.Type == ledger.TypeApprovalGranted && d.Approver != "" && d.Approver != s.requester {
			if s.grants[d.ApprovalID] == nil {
				s.grants[d.ApprovalID] = map[string]bool{}
			}
			if s.grantIdx == nil {
				s.grantIdx = map[string][]uint64{}
			}
			s.grants[d.ApprovalID][d.Approver] = true
			s.grantIdx[d.ApprovalID] = append(s.grantIdx[d.ApprovalID], ent.Index)
		}
	case event.TaskActivated:
		s.expires = d.ExpiresAt
		if !in {
			break
		}
		switch s.effect {
		case string(policy.Allow):
		case string(policy.RequireApproval):
			n, grants := s.granted(s.taskApproval)
			if s.taskApproval == "" || n < s.needs {
				s.lacking(ent.Index, fmt.Sprintf("task activated with %d of the %d approvals its decision asked for", n, s.needs), append([]uint64{s.decided}, grants...)...)
			}
		case "":
			s.lacking(ent.Index, "task activated without a recorded task decision")
		default:
			s.lacking(ent.Index, fmt.Sprintf("task activated although its decision was %s", s.effect), s.decided)
		}
	case event.ActionDecided:
		if ev.Type != ledger.TypeActionAuthorized {
			break
		}
		if in {
			switch d.Effect {
			case string(policy.Allow):
			case string(policy.RequireApproval):
				n, grants := s.granted(d.StepUp)
				if d.StepUp == "" || n < s.required[d.StepUp] {
					s.lacking(ent.Index, fmt.Sprintf("call %s allowed with %d of the approvals its decision asked for", d.Tool, n), grants...)
				}
			default:
				s.lacking(ent.Index, fmt.Sprintf("call %s allowed although its decision was %q", d.Tool, d.Effect))
			}
		}
		if c := s.creds[ev.JTI]; c != nil && in {
			switch {
			case c.revoked != nil && ent.Index > *c.revoked:
				s.outlived(ev.JTI, ent.Index, "credential used after its revocation", c.issued, *c.revoked)
			case s.ended != nil && ent.Index > *s.ended:
				s.outlived(ev.JTI, ent.Index, "credential used after its task ended", c.issued, *s.ended)
			}
		}
	case event.CredentialIssued:
		c := &credStory{issued: ent.Index, expires: d.ExpiresAt}
		s.creds[ev.JTI] = c
		s.credList = append(s.credList, ev.JTI)
		if in && !s.expires.IsZero() && d.ExpiresAt.After(s.expires) {
			s.outlived(ev.JTI, ent.Index, fmt.Sprintf("credential expires at %s, after its task (%s)", event.TimeText(d.ExpiresAt), event.TimeText(s.expires)))
		}
	case event.CredentialRevoked:
		if c := s.creds[ev.JTI]; c != nil && c.revoked == nil {
			i := ent.Index
			c.revoked, c.revokedAt = &i, ev.Time
		}
	case event.TaskEnded:
		if s.ended == nil {
			i := ent.Index
			s.ended, s.endedAt = &i, ev.Time
		}
	}
}

// finish records the credentials of a task that ended in the window and
// were not revoked as it ended.
func (s *story) finish() {
	if s.ended == nil || !s.w.inWindow(*s.ended) {
		return
	}
	for _, jti := range s.credList {
		c := s.creds[jti]
		switch {
		case c.issued > *s.ended:
		case c.revoked == nil:
			s.outlived(jti, *s.ended, "credential not revoked when its task ended", c.issued)
		case c.revokedAt.After(s.endedAt):
			s.outlived(jti, *s.ended, fmt.Sprintf("credential revoked %s after its task ended", c.revokedAt.Sub(s.endedAt)), c.issued, *c.revoked)
		}
	}
}
