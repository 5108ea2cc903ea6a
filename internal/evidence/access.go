package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/resource"
)

// AccessOptions configure the standing-access report.
type AccessOptions struct {
	// From and To bound the window; To defaults to now and From to 30 days
	// before To.
	From, To time.Time
	// Agent limits the report to one agent.
	Agent string
	// LongTTL flags tasks granted longer than this. Default 1h.
	LongTTL time.Duration
	// ManyFamilies flags a credential used for tools of at least this many
	// families (the part of a tool name before its first dot). Default 3.
	ManyFamilies int
}

// AccessReport is granted versus exercised access per agent over a
// window, with what stands out: long-lived tasks, broad scopes and
// credentials that drove many unrelated tools or several environments.
type AccessReport struct {
	From        time.Time        `json:"from"`
	To          time.Time        `json:"to"`
	Agents      []AgentAccess    `json:"agents"`
	LongTTL     []TaskFlag       `json:"long_ttl_tasks"`
	BroadScopes []TaskFlag       `json:"broad_scopes"`
	Credentials []CredentialFlag `json:"spread_credentials"`
	// Limited are the tasks whose scope carries limits, with the calls
	// allowed under each in the window.
	Limited []TaskLimits      `json:"limited_tasks"`
	Options AccessOptionsView `json:"options"`
}

// TaskLimits is a task with scope limits and the calls allowed under it
// (its own, not its child tasks') in the report's window.
type TaskLimits struct {
	TaskID  string     `json:"task_id"`
	Agent   string     `json:"agent"`
	Limits  api.Limits `json:"limits"`
	Allowed int        `json:"calls_allowed"`
}

// AccessOptionsView is the thresholds a report was made with.
type AccessOptionsView struct {
	LongTTL      string `json:"long_ttl"`
	ManyFamilies int    `json:"many_families"`
}

// AgentAccess is one agent's granted and exercised access.
type AgentAccess struct {
	Agent string `json:"agent"`
	Tasks int    `json:"tasks"`
	// Granted are the patterns of the scopes of the agent's tasks active in
	// the window; Exercised the tools and resources of its allowed calls.
	GrantedTools       []string `json:"granted_tools"`
	GrantedResources   []string `json:"granted_resources"`
	ExercisedTools     []string `json:"exercised_tools"`
	ExercisedResources []string `json:"exercised_resources"`
	// Unused are granted patterns that no allowed call matched.
	UnusedTools     []string `json:"unused_tools"`
	UnusedResources []string `json:"unused_resources"`
	Allowed         int      `json:"calls_allowed"`
	Denied          int      `json:"calls_denied"`
	// Limited counts the agent's tasks whose scope carries limits; the
	// others are bounded only by their ttl and patterns.
	Limited int `json:"tasks_limited"`
}

// TaskFlag is a task that stands out.
type TaskFlag struct {
	TaskID    string    `json:"task_id"`
	Agent     string    `json:"agent"`
	Principal string    `json:"principal"`
	TTL       string    `json:"ttl"`
	Scope     api.Scope `json:"scope"`
	Reason    string    `json:"reason"`
}

// CredentialFlag is a credential used across many unrelated tools or
// environments.
type CredentialFlag struct {
	JTI          string   `json:"jti"`
	TaskID       string   `json:"task_id"`
	Agent        string   `json:"agent"`
	Families     []string `json:"tool_families"`
	Tools        []string `json:"tools"`
	Environments []string `json:"environments"`
	Reason       string   `json:"reason"`
}

// Access builds the standing-access report from the query index.
func Access(ctx context.Context, ix *query.Index, opts AccessOptions) (*AccessReport, error) {
	if opts.To.IsZero() {
		opts.To = time.Now()
	}
	if opts.From.IsZero() {
		opts.From = opts.To.Add(-30 * 24 * time.Hour)
	}
	if opts.From.After(opts.To) {
		return nil, errors.New("the window's start is after its end")
	}
	if opts.LongTTL == 0 {
		opts.LongTTL = time.Hour
	}
	if opts.ManyFamilies == 0 {
		opts.ManyFamilies = 3
	}
	tasks, err := ix.TasksActiveIn(ctx, opts.From, opts.To)
	if err != nil {
		return nil, err
	}
	uses, err := ix.Uses(ctx, opts.From, opts.To)
	if err != nil {
		return nil, err
	}
	rep := &AccessReport{From: opts.From.UTC(), To: opts.To.UTC(), Agents: []AgentAccess{}, LongTTL: []TaskFlag{},
		BroadScopes: []TaskFlag{}, Credentials: []CredentialFlag{}, Limited: []TaskLimits{},
		Options: AccessOptionsView{LongTTL: opts.LongTTL.String(), ManyFamilies: opts.ManyFamilies}}
	agents := map[string]*AgentAccess{}
	agentOf := func(a string) *AgentAccess {
		if agents[a] == nil {
			agents[a] = &AgentAccess{Agent: a}
		}
		return agents[a]
	}
	envOf := map[string][]string{}
	limited := map[string]int{} // task → index in rep.Limited
	for _, t := range tasks {
		if opts.Agent != "" && t.Agent != opts.Agent {
			continue
		}
		var sc api.Scope
		if err := json.Unmarshal(t.Scope, &sc); err != nil {
			return nil, fmt.Errorf("task %s: scope: %w", t.TaskID, err)
		}
		envOf[t.TaskID] = sc.Environments
		a := agentOf(t.Agent)
		a.Tasks++
		a.GrantedTools = append(a.GrantedTools, sc.Tools...)
		a.GrantedResources = append(a.GrantedResources, sc.Resources...)
		// What was granted: the requested TTL as policy capped it.
		ttl := t.ExpiresAt.Sub(t.ActivatedAt).Round(time.Second)
		flag := TaskFlag{TaskID: t.TaskID, Agent: t.Agent, Principal: t.Principal, TTL: ttl.String(), Scope: sc}
		if ttl > opts.LongTTL {
			f := flag
			f.Reason = fmt.Sprintf("granted for %s, longer than %s", ttl, opts.LongTTL)
			rep.LongTTL = append(rep.LongTTL, f)
		}
		if why := broad(sc); why != "" {
			f := flag
			f.Reason = why
			rep.BroadScopes = append(rep.BroadScopes, f)
		}
		if sc.Limits != nil {
			a.Limited++
			limited[t.TaskID] = len(rep.Limited)
			rep.Limited = append(rep.Limited, TaskLimits{TaskID: t.TaskID, Agent: t.Agent, Limits: *sc.Limits})
		}
	}
	type credUse struct {
		task, agent string
		tools, fams map[string]bool
	}
	creds := map[string]*credUse{}
	var credOrder []string
	for _, u := range uses {
		if opts.Agent != "" && u.Agent != opts.Agent {
			continue
		}
		a := agentOf(u.Agent)
		if u.Decision != "allow" {
			a.Denied += u.Calls
			continue
		}
		a.Allowed += u.Calls
		if i, ok := limited[u.TaskID]; ok {
			rep.Limited[i].Allowed += u.Calls
		}
		a.ExercisedTools = append(a.ExercisedTools, u.Tool)
		if u.Resource != "" {
			a.ExercisedResources = append(a.ExercisedResources, u.Resource)
		}
		if u.JTI == "" {
			continue
		}
		c := creds[u.JTI]
		if c == nil {
			c = &credUse{task: u.TaskID, agent: u.Agent, tools: map[string]bool{}, fams: map[string]bool{}}
			creds[u.JTI] = c
			credOrder = append(credOrder, u.JTI)
		}
		c.tools[u.Tool] = true
		fam, _, _ := strings.Cut(u.Tool, ".")
		c.fams[fam] = true
	}
	for _, jti := range credOrder {
		c := creds[jti]
		envs := envOf[c.task]
		var why []string
		if len(c.fams) >= opts.ManyFamilies {
			why = append(why, fmt.Sprintf("used for tools of %d unrelated families", len(c.fams)))
		}
		if len(envs) > 1 || slices.ContainsFunc(envs, func(e string) bool { return strings.Contains(e, "*") }) {
			why = append(why, fmt.Sprintf("its task spans environments %s", strings.Join(envs, ", ")))
		}
		if len(why) > 0 {
			rep.Credentials = append(rep.Credentials, CredentialFlag{JTI: jti, TaskID: c.task, Agent: c.agent,
				Families: keys(c.fams), Tools: keys(c.tools), Environments: envs, Reason: strings.Join(why, "; ")})
		}
	}
	for _, a := range agents {
		a.GrantedTools, a.GrantedResources = uniq(a.GrantedTools), uniq(a.GrantedResources)
		a.ExercisedTools, a.ExercisedResources = uniq(a.ExercisedTools), uniq(a.ExercisedResources)
		a.UnusedTools, a.UnusedResources = unused(a.GrantedTools, a.ExercisedTools, policy.Match), unused(a.GrantedResources, a.ExercisedResources, matchResource)
		rep.Agents = append(rep.Agents, *a)
	}
	sort.Slice(rep.Agents, func(i, j int) bool { return rep.Agents[i].Agent < rep.Agents[j].Agent })
	return rep, nil
}

// broad says why a scope is broad, or "" when it is not: a bare wildcard
// tool or resource, a resource that is a whole scheme ("erp://*"), or any
// environment.
func broad(sc api.Scope) string {
	var why []string
	for _, p := range sc.Tools {
		if p == "*" || strings.HasPrefix(p, "*") {
			why = append(why, fmt.Sprintf("tool pattern %q", p))
		}
	}
	for _, p := range sc.Resources {
		if p == "*" || strings.HasPrefix(p, "*") || strings.HasSuffix(p, "://*") {
			why = append(why, fmt.Sprintf("resource pattern %q", p))
		}
	}
	if slices.Contains(sc.Environments, "*") {
		why = append(why, "every environment")
	}
	if slices.Contains(sc.Operations, "*") {
		why = append(why, "every operation")
	}
	return strings.Join(why, "; ")
}

// unused returns the patterns no exercised value matches.
func unused(patterns, exercised []string, match func(pattern, v string) bool) []string {
	out := []string{}
	for _, p := range patterns {
		if !slices.ContainsFunc(exercised, func(v string) bool { return match(p, v) }) {
			out = append(out, p)
		}
	}
	return out
}

// matchResource matches a recorded resource as enforcement did.
func matchResource(pattern, v string) bool { return resource.MatchAny([]string{pattern}, v) }

func uniq(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
