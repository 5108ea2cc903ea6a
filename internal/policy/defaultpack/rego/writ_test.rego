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

test_action_in_scope_allowed if {
	d := writ.decision with input as req("action", "dev", {})
	d.effect == "allow"
	d.obligations.record_output == true
}

test_action_tool_out_of_scope_denied if {
	d := writ.decision with input as req("action", "dev", {"tool_in_scope": false})
	d.effect == "deny"
	"tool is not in the task scope" in d.reasons
}

test_action_resource_out_of_scope_steps_up if {
	d := writ.decision with input as req("action", "dev", {"resource_in_scope": false})
	d.effect == "require_approval"
	d.obligations.approvals == 1
}

test_action_above_ceiling_denied if {
	d := writ.decision with input as req("action", "dev", {"data_class_level": 3})
	d.effect == "deny"
	d.policy_ids == ["action-data-class-above-ceiling"]
}

test_task_ttl_caps if {
	over := writ.decision with input as req("task", "prod", {"ttl_seconds": 3601, "ceiling_level": 1})
	over.effect == "deny"
	at := writ.decision with input as req("task", "prod", {"ttl_seconds": 3600, "ceiling_level": 1})
	at.effect == "allow"
	staging := writ.decision with input as req("task", "staging", {"ttl_seconds": 7200})
	staging.obligations.max_ttl == 7200
	unlisted := writ.decision with input as req("task", "qa", {"ttl_seconds": 0, "ceiling_level": 1})
	unlisted.obligations.max_ttl == 3600
}

test_task_prod_restricted_needs_two if {
	d := writ.decision with input as req("task", "prod", {"ceiling_level": 3})
	d.effect == "require_approval"
	d.obligations.approvals == 2
}

test_delegation_must_narrow if {
	d := writ.decision with input as req("task", "dev", {"delegated": true, "narrows_parent": false})
	d.effect == "deny"
}

test_exchange_cap if {
	d := writ.decision with input as req("exchange", "staging", {})
	d.obligations.max_ttl == 900
}

test_suspended_agent_denied if {
	d := writ.decision with input as req("list", "dev", {})
		with data.agents as {"spiffe://example.org/agent/a": {"suspended": true}}
	d.effect == "deny"
	d.reasons == ["agent is suspended"]
}

test_unknown_point_not_permitted if {
	d := writ.decision with input as req("other", "dev", {})
	d.reasons == ["no policy permits this request"]
}
