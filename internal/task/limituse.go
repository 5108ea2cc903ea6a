package task

import (
	"fmt"
	"slices"
	"strings"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
)

// LimitUse is a task's scope limits and the calls a trace shows counted
// against them: the authorized calls of the task and of its descendants.
type LimitUse struct {
	TaskID string
	Limits api.Limits
	Calls  int64
	// PerTool counts the calls of each per_tool pattern.
	PerTool map[string]int64
}

// LimitUses reads, from the events of a trace (a task and its
// descendants, in index order), each task with limits and the calls
// counted against them, in the order the tasks were requested. It is for
// showing: writ enforces limits from its state, not from a trace.
func LimitUses(entries []ledger.Entry) []LimitUse {
	var uses []*LimitUse
	parent := map[string]string{}
	byTask := map[string]*LimitUse{}
	for _, e := range entries {
		data, err := event.Read(e.Event)
		if err != nil {
			continue
		}
		switch d := data.(type) {
		case event.TaskRequested:
			parent[e.Event.TaskID] = d.Parent
			if d.Scope.Limits != nil {
				u := &LimitUse{TaskID: e.Event.TaskID, Limits: *d.Scope.Limits, PerTool: map[string]int64{}}
				uses = append(uses, u)
				byTask[u.TaskID] = u
			}
		case event.ActionDecided:
			if e.Event.Type != ledger.TypeActionAuthorized {
				continue
			}
			seen := map[string]bool{}
			for id := e.Event.TaskID; id != "" && !seen[id]; id = parent[id] {
				seen[id] = true
				if u := byTask[id]; u != nil {
					u.Calls++
					for k := range u.Limits.PerTool {
						if policy.Match(k, d.Tool) {
							u.PerTool[k]++
						}
					}
				}
			}
		}
	}
	out := make([]LimitUse, len(uses))
	for i, u := range uses {
		out[i] = *u
	}
	return out
}

// String shows the use: "calls 7 of 10, per_tool mail.send 2 of 5,
// per_minute 60".
func (u LimitUse) String() string {
	var parts []string
	if u.Limits.Calls != nil {
		parts = append(parts, fmt.Sprintf("calls %d of %d", u.Calls, *u.Limits.Calls))
	}
	tools := make([]string, 0, len(u.Limits.PerTool))
	for k := range u.Limits.PerTool {
		tools = append(tools, k)
	}
	slices.Sort(tools)
	for _, k := range tools {
		parts = append(parts, fmt.Sprintf("per_tool %s %d of %d", k, u.PerTool[k], u.Limits.PerTool[k]))
	}
	if u.Limits.PerMinute != nil {
		parts = append(parts, fmt.Sprintf("per_minute %d", *u.Limits.PerMinute))
	}
	return strings.Join(parts, ", ")
}
