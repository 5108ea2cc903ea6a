package writ_test

import data.writ

# Derived facts of an in-scope request; tests override what they exercise.
ok := {
	"tool_in_scope": true,
	"resource_in_scope": true,
	"operation_in_scope": true,
	"environment_in_scope": true,
	"data_class_level": 1,
	"ceiling_level": 2,
	"data_class_known": true,
	"delegated": false,
	"narrows_parent": true,
	"ttl_seconds": 0,
	"ttl_valid": true,
}

req(point, env, derived) := {
	"point": point,
	"agent": {"id": "spiffe://example.org/agent/a"},
	"request": {"environment": env},
	"derived": object.union(ok, derived),
}

# matched gives the IDs of the rules that applied, by kind; writ folds the
# entries themselves (tests.json checks the folded decisions).
matched(d) := {
	"deny": {e.id | some e in d.deny},
	"approval": {e.id | some e in d.approval},
	"permit": {e.id | some e in d.permit},
}

# obligation gives the value of obligation key in the entry with the ID id.
obligation(d, id, key) := v if {
	some kind in ["deny", "approval", "permit"]
	some e in d[kind]
	e.id == id
	v := e.obligations[key]
}

test_action_in_scope_allowed if {
	d := writ.decision with input as req("action", "dev", {})
	matched(d) == {"deny": set(), "approval": set(), "permit": {"action-allow"}}
	obligation(d, "action-allow", "record_output") == true
}

test_action_tool_out_of_scope_denied if {
	d := writ.decision with input as req("action", "dev", {"tool_in_scope": false})
	matched(d).deny == {"action-tool-out-of-scope"}
	some e in d.deny
	e.reason == "tool is not in the task scope"
}

test_action_resource_out_of_scope_steps_up if {
	d := writ.decision with input as req("action", "dev", {"resource_in_scope": false})
	matched(d) == {"deny": set(), "approval": {"action-step-up"}, "permit": {"action-allow"}}
	obligation(d, "action-step-up", "approvals") == 1
}

test_action_above_ceiling_denied if {
	d := writ.decision with input as req("action", "dev", {"data_class_level": 3})
	matched(d).deny == {"action-data-class-above-ceiling"}
}

test_task_ttl_caps if {
	over := writ.decision with input as req("task", "prod", {"ttl_seconds": 3601, "ceiling_level": 1})
	matched(over).deny == {"task-ttl-cap-prod"}
	at := writ.decision with input as req("task", "prod", {"ttl_seconds": 3600, "ceiling_level": 1})
	matched(at) == {"deny": set(), "approval": set(), "permit": {"task-ttl-prod"}}
	staging := writ.decision with input as req("task", "staging", {"ttl_seconds": 7200})
	obligation(staging, "task-ttl-staging", "max_ttl") == 7200
	unlisted := writ.decision with input as req("task", "qa", {"ttl_seconds": 0, "ceiling_level": 1})
	matched(unlisted).permit == {"task-ttl-prod"}
	obligation(unlisted, "task-ttl-prod", "max_ttl") == 3600
}

test_task_prod_restricted_needs_two if {
	d := writ.decision with input as req("task", "prod", {"ceiling_level": 3})
	matched(d).approval == {"task-prod-restricted"}
	obligation(d, "task-prod-restricted", "approvals") == 2
}

test_delegation_must_narrow if {
	d := writ.decision with input as req("task", "dev", {"delegated": true, "narrows_parent": false})
	matched(d).deny == {"task-delegation-widens"}
}

test_exchange_cap if {
	d := writ.decision with input as req("exchange", "staging", {})
	matched(d).permit == {"exchange-ttl-staging"}
	obligation(d, "exchange-ttl-staging", "max_ttl") == 900
}

test_suspended_agent_denied if {
	d := writ.decision with input as req("list", "dev", {})
		with data.agents as {"spiffe://example.org/agent/a": {"suspended": true}}
	matched(d).deny == {"agent-suspended"}
}

test_unknown_point_not_permitted if {
	d := writ.decision with input as req("other", "dev", {})
	matched(d) == {"deny": set(), "approval": set(), "permit": set()}
}

# call is an in-scope action with operation op, the task having reached
# data class level, the agent having made calls in the last minute.
call(op, level, calls) := object.union(req("action", "dev", {}), {
	"action": {"operation": op},
	"history": {
		"task": {"max_data_class_level": level},
		"agent": {"last_minute": {"calls": calls}},
	},
})

test_send_after_confidential_steps_up if {
	d := writ.decision with input as call("send", 2, 0)
	matched(d) == {"deny": set(), "approval": {"action-outbound-after-confidential"}, "permit": {"action-allow"}}
	obligation(d, "action-outbound-after-confidential", "approvals") == 1
	restricted := writ.decision with input as call("upload", 3, 0)
	matched(restricted).approval == {"action-outbound-after-confidential"}
}

test_send_after_public_or_read_after_confidential_allowed if {
	public := writ.decision with input as call("send", 0, 0)
	matched(public).approval == set()
	read := writ.decision with input as call("read", 3, 0)
	matched(read).approval == set()
}

test_rate_throttles_past_the_configured_calls if {
	at := writ.decision with input as call("read", 0, 10) with data.agent_calls_per_minute as 10
	matched(at).deny == {"agent-rate"}
	under := writ.decision with input as call("read", 0, 9) with data.agent_calls_per_minute as 10
	matched(under).deny == set()
	off := writ.decision with input as call("read", 0, 100000)
	matched(off).deny == set()
}

test_rate_per_agent if {
	d := writ.decision with input as call("read", 0, 3)
		with data.agents as {"spiffe://example.org/agent/a": {"calls_per_minute": 3}}
		with data.agent_calls_per_minute as 10
	matched(d).deny == {"agent-rate-override"}
}
