# writ default policy pack (Rego).
#
# Each rule adds an entry to one of three sets, and `decision` hands the
# sets to writ, which folds them exactly as it folds the Cedar pack's
# policies (docs/policy.md, "Writing Rego policies"):
#   deny      {id, reason}               any entry denies
#   approval  {id, reason, obligations}  turns an allow into require_approval
#   permit    {id, obligations}          at least one is needed to allow
# The Go side computes input.derived (scope matches, data class levels,
# delegation narrowing, ttl_seconds). Rules test input.point first, read
# input directly (not through helper rules), write a fact that must not hold
# as `== false` rather than `not`, and have constant heads: OPA's rule index
# then skips every rule whose conditions cannot match, and nothing is built
# but the entries that do.
# The Cedar pack in ../cedar decides exactly the same way.
package writ

decision := {"deny": deny, "approval": approval, "permit": permit}

# TTL caps, in seconds: dev 8h, staging 2h, prod and environments not
# listed 1h for tasks; dev 1h, staging 15m, prod and others 5m for
# credentials. Redacted fields: arguments.password, .secret and .token.
listed_envs := {"dev", "staging"}

# data.json configures the pack: agents[id].suspended and
# agents[id].calls_per_minute per agent; outbound_operations, the
# operations that send data out of the task; agent_calls_per_minute, the
# rate past which an agent is throttled across its tasks (0: none).

# ---- every point ----------------------------------------------------------

deny contains {"id": "agent-suspended", "reason": "agent is suspended"} if {
	data.agents[input.agent.id].suspended == true
}

# ---- task: opening a task ---------------------------------------------------

deny contains {"id": "task-environment-out-of-scope", "reason": "environment is not in the task scope"} if {
	input.point == "task"
	input.derived.environment_in_scope == false
}

deny contains {"id": "task-data-class-unknown", "reason": "unknown data class"} if {
	input.point == "task"
	input.derived.data_class_known == false
}

deny contains {"id": "task-delegation-widens", "reason": "delegated scope is not within the parent's scope"} if {
	input.point == "task"
	input.derived.delegated
	input.derived.narrows_parent == false
}

deny contains {"id": "task-ttl-invalid", "reason": "task ttl is not a positive duration"} if {
	input.point == "task"
	input.derived.ttl_valid == false
}

deny contains {"id": "task-ttl-cap-dev", "reason": "task ttl exceeds the 8h cap for dev"} if {
	input.point == "task"
	input.request.environment == "dev"
	input.derived.ttl_seconds > 28800
}

deny contains {"id": "task-ttl-cap-staging", "reason": "task ttl exceeds the 2h cap for staging"} if {
	input.point == "task"
	input.request.environment == "staging"
	input.derived.ttl_seconds > 7200
}

deny contains {"id": "task-ttl-cap-prod", "reason": "task ttl exceeds the 1h cap for prod and unlisted environments"} if {
	input.point == "task"
	input.derived.ttl_seconds > 3600
	not input.request.environment in listed_envs
}

approval contains {
	"id": "task-prod-confidential",
	"reason": "production task with confidential data requires approval",
	"obligations": {"approvals": 1},
} if {
	input.point == "task"
	input.request.environment == "prod"
	input.derived.ceiling_level == 2
}

approval contains {
	"id": "task-prod-restricted",
	"reason": "production task with restricted data requires two approvals",
	"obligations": {"approvals": 2},
} if {
	input.point == "task"
	input.request.environment == "prod"
	input.derived.ceiling_level >= 3
}

permit contains {"id": "task-ttl-dev", "obligations": {"max_ttl": 28800}} if {
	input.point == "task"
	input.request.environment == "dev"
}

permit contains {"id": "task-ttl-staging", "obligations": {"max_ttl": 7200}} if {
	input.point == "task"
	input.request.environment == "staging"
}

permit contains {"id": "task-ttl-prod", "obligations": {"max_ttl": 3600}} if {
	input.point == "task"
	not input.request.environment in listed_envs
}

# ---- exchange: issuing a task credential ----------------------------------

deny contains {"id": "exchange-environment-out-of-scope", "reason": "environment is not in the task scope"} if {
	input.point == "exchange"
	input.derived.environment_in_scope == false
}

deny contains {"id": "exchange-ttl-invalid", "reason": "credential ttl is not a positive duration"} if {
	input.point == "exchange"
	input.derived.ttl_valid == false
}

permit contains {"id": "exchange-ttl-dev", "obligations": {"max_ttl": 3600}} if {
	input.point == "exchange"
	input.request.environment == "dev"
}

permit contains {"id": "exchange-ttl-staging", "obligations": {"max_ttl": 900}} if {
	input.point == "exchange"
	input.request.environment == "staging"
}

permit contains {"id": "exchange-ttl-prod", "obligations": {"max_ttl": 300}} if {
	input.point == "exchange"
	not input.request.environment in listed_envs
}

# ---- action: one tool call ----------------------------------------------------

deny contains {"id": "action-tool-out-of-scope", "reason": "tool is not in the task scope"} if {
	input.point == "action"
	input.derived.tool_in_scope == false
}

deny contains {"id": "action-operation-out-of-scope", "reason": "operation is not in the task scope"} if {
	input.point == "action"
	input.derived.operation_in_scope == false
}

deny contains {"id": "action-environment-out-of-scope", "reason": "environment is not in the task scope"} if {
	input.point == "action"
	input.derived.environment_in_scope == false
}

deny contains {"id": "action-data-class-unknown", "reason": "unknown data class"} if {
	input.point == "action"
	input.derived.data_class_known == false
}

deny contains {"id": "action-data-class-above-ceiling", "reason": "data class is above the task's ceiling"} if {
	input.point == "action"
	input.derived.data_class_known
	input.derived.data_class_level > input.derived.ceiling_level
}

approval contains {
	"id": "action-step-up",
	"reason": "resource is outside the task scope: step-up approval required",
	"obligations": {"approvals": 1},
} if {
	input.point == "action"
	input.derived.tool_in_scope
	input.derived.resource_in_scope == false
}

# ---- action: over the task's history (input.history, recorded by writ) -----

# Once the task has been allowed confidential or restricted data (level 2
# or 3; two rules, as the rule index selects on equality), an operation
# that sends data out asks for a step-up, even in scope.
approval contains {
	"id": "action-outbound-after-confidential",
	"reason": "the task has been allowed confidential data: sending data out requires step-up approval",
	"obligations": {"approvals": 1},
} if {
	input.point == "action"
	input.history.task.max_data_class_level == 2
	input.action.operation in data.outbound_operations
}

approval contains {
	"id": "action-outbound-after-confidential",
	"reason": "the task has been allowed confidential data: sending data out requires step-up approval",
	"obligations": {"approvals": 1},
} if {
	input.point == "action"
	input.history.task.max_data_class_level == 3
	input.action.operation in data.outbound_operations
}

deny contains {
	"id": "agent-rate",
	"reason": "the agent is past its calls per minute across its tasks: throttled",
} if {
	input.point == "action"
	data.agent_calls_per_minute > 0
	input.history.agent.last_minute.calls >= data.agent_calls_per_minute
	not data.agents[input.agent.id].calls_per_minute
}

deny contains {
	"id": "agent-rate-override",
	"reason": "the agent is past its calls per minute across its tasks: throttled",
} if {
	input.point == "action"
	input.history.agent.last_minute.calls >= data.agents[input.agent.id].calls_per_minute
}

permit contains {
	"id": "action-allow",
	"obligations": {
		"redact": ["arguments.password", "arguments.secret", "arguments.token"],
		"record_output": true,
	},
} if {
	input.point == "action"
}

# ---- list: is a tool visible ----------------------------------------------------

deny contains {"id": "list-tool-out-of-scope", "reason": "tool is not in the task scope"} if {
	input.point == "list"
	input.derived.tool_in_scope == false
}

permit contains {"id": "list-visible"} if {
	input.point == "list"
}
