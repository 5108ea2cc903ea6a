# writ default policy pack (Rego).
#
# Each rule adds an entry to one of three sets; `decision` folds them:
#   deny      {id, reason}               any entry denies
#   approval  {id, reason, obligations}  turns an allow into require_approval
#   permit    {id, obligations}          at least one is needed to allow
# The Go side computes input.derived (scope matches, data class levels,
# delegation narrowing, ttl_seconds); see docs/policy.md. The Cedar pack in
# ../cedar decides exactly the same way.
package writ

env := input.request.environment

d := input.derived

# TTL caps in seconds. Environments not listed get the prod cap.
task_ttl_caps := {"dev": 28800, "staging": 7200, "prod": 3600}

credential_ttl_caps := {"dev": 3600, "staging": 900, "prod": 300}

listed_envs := {"dev", "staging"}

# Fields of tool arguments never stored in clear.
redact_fields := ["arguments.password", "arguments.secret", "arguments.token"]

# ---- every point ----------------------------------------------------------

deny contains {"id": "agent-suspended", "reason": "agent is suspended"} if {
	data.agents[input.agent.id].suspended == true
}

# ---- task: opening a task ---------------------------------------------------

deny contains {"id": "task-environment-out-of-scope", "reason": "environment is not in the task scope"} if {
	input.point == "task"
	not d.environment_in_scope
}

deny contains {"id": "task-data-class-unknown", "reason": "unknown data class"} if {
	input.point == "task"
	not d.data_class_known
}

deny contains {"id": "task-delegation-widens", "reason": "delegated scope is not within the parent's scope"} if {
	input.point == "task"
	d.delegated
	not d.narrows_parent
}

deny contains {"id": "task-ttl-invalid", "reason": "task ttl is not a positive duration"} if {
	input.point == "task"
	not d.ttl_valid
}

deny contains {"id": "task-ttl-cap-dev", "reason": "task ttl exceeds the 8h cap for dev"} if {
	input.point == "task"
	env == "dev"
	d.ttl_seconds > task_ttl_caps.dev
}

deny contains {"id": "task-ttl-cap-staging", "reason": "task ttl exceeds the 2h cap for staging"} if {
	input.point == "task"
	env == "staging"
	d.ttl_seconds > task_ttl_caps.staging
}

deny contains {"id": "task-ttl-cap-prod", "reason": "task ttl exceeds the 1h cap for prod and unlisted environments"} if {
	input.point == "task"
	not env in listed_envs
	d.ttl_seconds > task_ttl_caps.prod
}

approval contains {
	"id": "task-prod-confidential",
	"reason": "production task with confidential data requires approval",
	"obligations": {"approvals": 1},
} if {
	input.point == "task"
	env == "prod"
	d.ceiling_level == 2
}

approval contains {
	"id": "task-prod-restricted",
	"reason": "production task with restricted data requires two approvals",
	"obligations": {"approvals": 2},
} if {
	input.point == "task"
	env == "prod"
	d.ceiling_level >= 3
}

permit contains {"id": "task-ttl-dev", "obligations": {"max_ttl": task_ttl_caps.dev}} if {
	input.point == "task"
	env == "dev"
}

permit contains {"id": "task-ttl-staging", "obligations": {"max_ttl": task_ttl_caps.staging}} if {
	input.point == "task"
	env == "staging"
}

permit contains {"id": "task-ttl-prod", "obligations": {"max_ttl": task_ttl_caps.prod}} if {
	input.point == "task"
	not env in listed_envs
}

# ---- exchange: issuing a task credential ----------------------------------

deny contains {"id": "exchange-environment-out-of-scope", "reason": "environment is not in the task scope"} if {
	input.point == "exchange"
	not d.environment_in_scope
}

deny contains {"id": "exchange-ttl-invalid", "reason": "credential ttl is not a positive duration"} if {
	input.point == "exchange"
	not d.ttl_valid
}

permit contains {"id": "exchange-ttl-dev", "obligations": {"max_ttl": credential_ttl_caps.dev}} if {
	input.point == "exchange"
	env == "dev"
}

permit contains {"id": "exchange-ttl-staging", "obligations": {"max_ttl": credential_ttl_caps.staging}} if {
	input.point == "exchange"
	env == "staging"
}

permit contains {"id": "exchange-ttl-prod", "obligations": {"max_ttl": credential_ttl_caps.prod}} if {
	input.point == "exchange"
	not env in listed_envs
}

# ---- action: one tool call ----------------------------------------------------

deny contains {"id": "action-tool-out-of-scope", "reason": "tool is not in the task scope"} if {
	input.point == "action"
	not d.tool_in_scope
}

deny contains {"id": "action-operation-out-of-scope", "reason": "operation is not in the task scope"} if {
	input.point == "action"
	not d.operation_in_scope
}

deny contains {"id": "action-environment-out-of-scope", "reason": "environment is not in the task scope"} if {
	input.point == "action"
	not d.environment_in_scope
}

deny contains {"id": "action-data-class-unknown", "reason": "unknown data class"} if {
	input.point == "action"
	not d.data_class_known
}

deny contains {"id": "action-data-class-above-ceiling", "reason": "data class is above the task's ceiling"} if {
	input.point == "action"
	d.data_class_known
	d.data_class_level > d.ceiling_level
}

approval contains {
	"id": "action-step-up",
	"reason": "resource is outside the task scope: step-up approval required",
	"obligations": {"approvals": 1},
} if {
	input.point == "action"
	d.tool_in_scope
	not d.resource_in_scope
}

permit contains {"id": "action-allow", "obligations": {"redact": redact_fields, "record_output": true}} if {
	input.point == "action"
}

# ---- list: is a tool visible ----------------------------------------------------

deny contains {"id": "list-tool-out-of-scope", "reason": "tool is not in the task scope"} if {
	input.point == "list"
	not d.tool_in_scope
}

permit contains {"id": "list-visible", "obligations": {}} if {
	input.point == "list"
}

# ---- the decision -------------------------------------------------------------

decision := {
	"effect": "deny",
	"reasons": [x.reason | some x in deny],
	"policy_ids": [x.id | some x in deny],
	"obligations": {},
} if {
	count(deny) > 0
} else := {
	"effect": "deny",
	"reasons": ["no policy permits this request"],
	"policy_ids": [],
	"obligations": {},
} if {
	count(permit) == 0
} else := {
	"effect": "require_approval",
	"reasons": [x.reason | some x in approval],
	"policy_ids": [x.id | some x in (approval | permit)],
	"obligations": merge(approval | permit),
} if {
	count(approval) > 0
} else := {
	"effect": "allow",
	"reasons": [],
	"policy_ids": [x.id | some x in permit],
	"obligations": merge(permit),
}

# merge folds obligations: the smallest max_ttl, the most approvals, the
# union of redactions, record_output true if any entry asks to record.
merge(entries) := object.union_n([
	ttl_part([t | some e in entries; t := e.obligations.max_ttl]),
	approvals_part([n | some e in entries; n := e.obligations.approvals]),
	redact_part({f | some e in entries; some f in e.obligations.redact}),
	record_part([b | some e in entries; b := e.obligations.record_output]),
])

ttl_part(ts) := {"max_ttl": min(ts)} if count(ts) > 0

else := {}

approvals_part(ns) := {"approvals": max(ns)} if count(ns) > 0

else := {}

redact_part(fs) := {"redact": sort(fs)} if count(fs) > 0

else := {}

record_part(bs) := {"record_output": true in bs} if count(bs) > 0

else := {}
