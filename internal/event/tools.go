package event

// ToolsHidden is tools.hidden: what one tool listing withheld from the
// agent, under the task of the listing's credential.
type ToolsHidden struct {
	// Gateway is the enforcement point ("mcp", …) and Server the upstream
	// whose tools were listed.
	Gateway string `json:"gateway,omitempty"`
	Server  string `json:"server,omitempty"`
	// Listed is how many tools the upstream listed.
	Listed int          `json:"listed"`
	Hidden []HiddenTool `json:"hidden"`
}

// HiddenTool is one tool a listing withheld.
type HiddenTool struct {
	Tool     string `json:"tool"`
	Resource string `json:"resource,omitempty"`
	// DecisionID is the list point's decision; empty when the tool was
	// hidden without one (its resource has no normal form).
	DecisionID string   `json:"decision_id"`
	Reasons    []string `json:"reasons,omitempty"`
	PolicyIDs  []string `json:"policy_ids"`
}

// Tools returns the names of the tools the listing withheld, in order.
func (d ToolsHidden) Tools() []string {
	names := make([]string, len(d.Hidden))
	for i, h := range d.Hidden {
		names[i] = h.Tool
	}
	return names
}
