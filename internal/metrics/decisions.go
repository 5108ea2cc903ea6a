package metrics

// Outcome is the answer writ gave at an enforcement point.
type Outcome uint8

// Outcomes, as writ_decisions_total{outcome} names them.
const (
	// Allow: the call may proceed (its record is durable).
	Allow Outcome = iota
	// Deny: writ refused it, by policy or because the request could not
	// be accepted (a credential refused mid-way, bad input).
	Deny
	// RequireApproval: refused until an approver grants a step-up.
	RequireApproval
	// Error: writ could not decide or record it, and so denied it (fail
	// closed).
	Error
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"allow", "deny", "require_approval", "error"}

func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// Decision counts one answer at an enforcement point. Points named in
// Config.Points cost no allocation.
func (m *Metrics) Decision(point string, o Outcome) {
	if m == nil || o >= numOutcomes {
		return
	}
	for i, p := range m.points {
		if p == point {
			m.decided[i][o].Inc()
			return
		}
	}
	m.decisions.WithLabelValues(point, o.String()).Inc()
}
