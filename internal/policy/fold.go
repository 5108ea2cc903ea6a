package policy

// ruleMatch is one rule (Rego) or policy (Cedar) that applied to a request:
// its ID, the reason it gives when it denies or asks for approval, and the
// obligations it attaches when it permits or asks for approval.
type ruleMatch struct {
	id     string
	reason string
	oblig  Obligations
}

// noPermitReason is the reason of a deny that no rule asked for.
const noPermitReason = "no policy permits this request"

// defaultReason is the reason of a denying or approval-requiring rule that
// gives none, so that a decision never denies without saying which rule did.
func defaultReason(id string) string { return "forbidden by policy " + id }

// foldMatches combines the rules that applied into a Result. Both engines
// report their matches and leave the combining to it, so that the same
// matches always make the same decision:
//
//   - any deny denies, with the reasons and IDs of every deny;
//   - otherwise, no permit denies with noPermitReason and no policy IDs;
//   - otherwise, any approval makes the decision require_approval, with the
//     approvals' reasons, the IDs of the approvals and the permits, and at
//     least one approver;
//   - otherwise the decision is allow, with the permits' IDs.
//
// Obligations are folded (Obligations.merge) over the permits and approvals
// of an allow or a require_approval; a deny has none.
func foldMatches(deny, approval, permit []ruleMatch) Result {
	var r Result
	switch {
	case len(deny) > 0:
		r.Effect = Deny
		r.Reasons = make([]string, len(deny))
		r.PolicyIDs = make([]string, len(deny))
		for i := range deny {
			r.Reasons[i] = deny[i].reason
			r.PolicyIDs[i] = deny[i].id
		}
	case len(permit) == 0:
		r.Effect = Deny
		r.Reasons = []string{noPermitReason}
	default:
		r.Effect = Allow
		r.PolicyIDs = make([]string, 0, len(permit)+len(approval))
		for i := range permit {
			r.PolicyIDs = append(r.PolicyIDs, permit[i].id)
			mergeObligations(&r.Obligations, permit[i].oblig)
		}
		if len(approval) > 0 {
			r.Effect = RequireApproval
			r.Reasons = make([]string, len(approval))
			for i := range approval {
				r.Reasons[i] = approval[i].reason
				r.PolicyIDs = append(r.PolicyIDs, approval[i].id)
				mergeObligations(&r.Obligations, approval[i].oblig)
			}
			r.Obligations.Approvals = max(r.Obligations.Approvals, 1)
		}
	}
	r.normalize()
	return r
}
