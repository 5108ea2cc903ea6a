package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/resource"
)

// InputVersion is the version of the input document. It changes only when a
// field is renamed or its meaning changes; fields are added freely.
const InputVersion = 1

// Input is the document a policy sees. The caller fills the fields relevant
// to the point; Evaluate fills Version, Point and Derived, overwriting what the
// caller put there: derived facts are never taken from the caller.
type Input struct {
	Version    int         `json:"version"`
	Point      Point       `json:"point"`
	Principal  Principal   `json:"principal"`
	Agent      Agent       `json:"agent"`
	Task       Task        `json:"task"`
	Action     *Action     `json:"action,omitempty"`
	Credential *Credential `json:"credential,omitempty"`
	Request    Request     `json:"request"`
	// History is the task's recorded history (history.go), which writ
	// fills at the action and list points; both engines see an empty one
	// when it is nil.
	History *History `json:"history,omitempty"`
	Derived Derived  `json:"derived"`
}

// Principal is the human on whose behalf the agent acts.
type Principal struct {
	ID    string   `json:"id"`
	Roles []string `json:"roles,omitempty"`
}

// Agent is the workload identity making the request.
type Agent struct {
	// ID is the SPIFFE ID or OIDC subject.
	ID string `json:"id"`
	// Issuer is the OIDC issuer or SPIFFE trust domain.
	Issuer string `json:"issuer,omitempty"`
}

// Scope is what a task may touch. Tools, operations and environments are
// glob patterns where '*' matches any run of characters; resources are URI
// patterns, normalized and matched as package resource says.
type Scope struct {
	Tools        []string `json:"tools"`
	Resources    []string `json:"resources"`
	Operations   []string `json:"operations"`
	DataClass    string   `json:"data_class"`
	Environments []string `json:"environments"`
	// Limits are the scope's call limits, which writ enforces itself
	// (api.Limits); nil when the scope has none.
	Limits *Limits `json:"limits,omitempty"`
}

// Limits are a scope's call limits, the task API's type.
type Limits = api.Limits

// Task is the task being opened (task point) or the one the request runs under.
type Task struct {
	ID     string `json:"id"`
	Intent string `json:"intent,omitempty"`
	Scope  Scope  `json:"scope"`
	// TTL is the lifetime asked for, as a Go duration ("15m").
	TTL   string `json:"ttl,omitempty"`
	State string `json:"state,omitempty"`
	// ParentChain lists the ancestors of a delegated task, the immediate
	// parent first and the root last. Empty for a task opened by a human.
	ParentChain []ParentTask `json:"parent_chain,omitempty"`
}

// ParentTask is one ancestor of a delegated task.
type ParentTask struct {
	ID    string `json:"id"`
	Agent string `json:"agent,omitempty"`
	Scope Scope  `json:"scope"`
}

// Action is one tool call (action point) or the tool being listed (list point).
type Action struct {
	Tool      string         `json:"tool"`
	Operation string         `json:"operation,omitempty"`
	Resource  string         `json:"resource,omitempty"`
	Arguments map[string]any `json:"arguments,omitempty"`
	DataClass string         `json:"data_class,omitempty"`
}

// Credential describes the credential asked for (exchange point) or used.
type Credential struct {
	JTI       string    `json:"jti,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// TTL is the lifetime asked for, as a Go duration; empty means the cap.
	TTL string `json:"ttl,omitempty"`
	// ActChain lists the actor chain, outermost first.
	ActChain []string `json:"act_chain,omitempty"`
	// Binding is "dpop", "mtls" or "none".
	Binding string `json:"binding,omitempty"`
}

// Request is the context of the call.
type Request struct {
	Time time.Time `json:"time,omitzero"`
	// Environment is the runtime environment writ serves (dev, staging, prod…).
	Environment string `json:"environment"`
	// Gateway is the enforcement point the request reached writ by: one
	// of Gateways.
	Gateway string `json:"gateway,omitempty"`
	// Source is the caller's network address.
	Source  string `json:"source,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
}

// Enforcement points, the values of request.gateway: where a request
// reached writ. Policies match on them; docs/policy.md lists them.
const (
	// GatewayTask is the task API opening a task (POST /v1/tasks), at
	// point task.
	GatewayTask = "task"
	// GatewayToken is the token endpoint (POST /oauth2/token), at point
	// exchange.
	GatewayToken = "token"
	// GatewayAPI is the decision API (POST /v1/authorize), at point action.
	GatewayAPI = "api"
	// GatewayMCP is the MCP gateway (/mcp/<server>), at points action and
	// list.
	GatewayMCP = "mcp"
	// GatewayProxy is the HTTP proxy (/proxy/<upstream>/…), at point
	// action.
	GatewayProxy = "proxy"
)

// Gateways lists every enforcement point.
var Gateways = []string{GatewayTask, GatewayToken, GatewayAPI, GatewayMCP, GatewayProxy}

// Data classes in ascending order of sensitivity.
var dataClasses = map[string]int{"public": 0, "internal": 1, "confidential": 2, "restricted": 3}

// DataClassLevel returns the rank of a data class (public 0 … restricted 3),
// or -1 for an unknown one.
func DataClassLevel(class string) int {
	if l, ok := dataClasses[class]; ok {
		return l
	}
	return -1
}

// Derived are facts computed in Go from the raw input, so that both engines
// decide on the same matches and neither needs pattern matching on data.
type Derived struct {
	// ToolInScope: action.tool matches one of task.scope.tools. This and the
	// next two are false when there is no action document.
	ToolInScope bool `json:"tool_in_scope"`
	// ResourceInScope: action.resource matches one of task.scope.resources,
	// both normalized (package resource); false for a resource that has
	// no normal form, and a pattern that has none matches nothing.
	ResourceInScope bool `json:"resource_in_scope"`
	// OperationInScope: action.operation matches one of task.scope.operations.
	OperationInScope bool `json:"operation_in_scope"`
	// EnvironmentInScope: request.environment matches one of task.scope.environments.
	EnvironmentInScope bool `json:"environment_in_scope"`
	// DataClassLevel is the level of action.data_class at the action point
	// (the ceiling's level when the action declares none), and of
	// task.scope.data_class elsewhere; -1 when unknown.
	DataClassLevel int `json:"data_class_level"`
	// CeilingLevel is the level of task.scope.data_class; -1 when unknown.
	CeilingLevel int `json:"ceiling_level"`
	// DataClassKnown: both levels above are known classes.
	DataClassKnown bool `json:"data_class_known"`
	// Delegated: the task has a parent chain.
	Delegated bool `json:"delegated"`
	// NarrowsParent: every scope in the chain lies within the next one up
	// (true when not delegated).
	NarrowsParent bool `json:"narrows_parent"`
	// TTLSeconds is the lifetime asked for: task.ttl at the task point,
	// credential.ttl at the exchange point; 0 when none was asked.
	TTLSeconds int64 `json:"ttl_seconds"`
	// TTLValid: the TTL asked for parses as a positive duration (or is empty).
	TTLValid bool `json:"ttl_valid"`
}

// derive computes the derived facts of in for its point.
func derive(in *Input) Derived {
	s := &in.Task.Scope
	var d Derived
	var a Action
	if in.Action != nil {
		// Without an action document nothing about it is in scope, even
		// under a "*" scope.
		a = *in.Action
		d.ToolInScope = matchAny(s.Tools, a.Tool)
		d.ResourceInScope = resource.MatchAny(s.Resources, a.Resource)
		d.OperationInScope = matchAny(s.Operations, a.Operation)
	}
	d.EnvironmentInScope = matchAny(s.Environments, in.Request.Environment)

	d.CeilingLevel = DataClassLevel(s.DataClass)
	d.DataClassLevel = d.CeilingLevel
	if in.Point == PointAction && a.DataClass != "" {
		d.DataClassLevel = DataClassLevel(a.DataClass)
	}
	d.DataClassKnown = d.CeilingLevel >= 0 && d.DataClassLevel >= 0

	d.Delegated = len(in.Task.ParentChain) > 0
	d.NarrowsParent = narrowsChain(in.Task.Scope, in.Task.ParentChain)

	ttl := in.Task.TTL
	if in.Point == PointExchange {
		ttl = ""
		if in.Credential != nil {
			ttl = in.Credential.TTL
		}
	}
	d.TTLSeconds, d.TTLValid = ttlSeconds(ttl)
	return d
}

func ttlSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, true
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur <= 0 {
		return 0, false
	}
	// Round up: a TTL of 1h0m0.5s asks for more than one hour.
	return int64((dur + time.Second - 1) / time.Second), true
}

// narrowsChain reports whether child lies within chain[0], chain[0] within
// chain[1], and so on up to the root.
func narrowsChain(child Scope, chain []ParentTask) bool {
	cur := child
	for _, p := range chain {
		if !scopeWithin(cur, p.Scope) {
			return false
		}
		cur = p.Scope
	}
	return true
}

// scopeWithin reports whether every request inner admits, outer admits too,
// and its limits are no looser. It is conservative: a pattern of inner is covered only when a pattern of
// outer matches its text, '*' included.
func scopeWithin(inner, outer Scope) bool {
	li, lo := DataClassLevel(inner.DataClass), DataClassLevel(outer.DataClass)
	if li < 0 || lo < 0 || li > lo {
		return false
	}
	return patternsWithin(inner.Tools, outer.Tools) &&
		resource.Within(inner.Resources, outer.Resources) &&
		patternsWithin(inner.Operations, outer.Operations) &&
		patternsWithin(inner.Environments, outer.Environments) &&
		LimitsWithin(inner.Limits, outer.Limits)
}

func patternsWithin(inner, outer []string) bool {
	for _, p := range inner {
		if !matchAny(outer, p) {
			return false
		}
	}
	return true
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if Match(p, s) {
			return true
		}
	}
	return false
}

// Match reports whether s matches pattern, where '*' matches any run of
// characters (including '/', '.' and none) and every other byte matches
// itself; see resource.Glob. Resources match by resource.Match instead,
// after normalization.
func Match(pattern, s string) bool { return resource.Glob(pattern, s) }

// MaxInputBytes bounds an input document read from a file or request.
const MaxInputBytes = 8 << 20

// ParseInput reads an input document strictly: unknown fields are an error
// (a misspelt field would otherwise be silently absent), numbers in tool
// arguments keep their exact text, and trailing data is refused.
func ParseInput(data []byte) (*Input, error) {
	if len(data) > MaxInputBytes {
		return nil, fmt.Errorf("input document larger than %d bytes", MaxInputBytes)
	}
	var in Input
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("input document: %w", err)
	}
	if dec.More() {
		return nil, errors.New("input document: trailing data after the JSON object")
	}
	return &in, nil
}
