// The one scenario every framework test plays through its own agent loop:
// an allowed search, a denied mail, and a search that needs a step-up,
// approved by a human while the agent waits; then the task's trace.

import assert from 'node:assert/strict';

import { Writ } from '../src/index.js';
import { ofType, type Scope, type WritServer } from './harness.js';

export const agent = 'spiffe://writ.dev/agent/framework';

export const scope: Scope = {
  tools: ['kb.search'],
  resources: ['kb://public/*'],
  operations: ['read'],
  data_class: 'internal',
  environments: ['dev'],
};

/** The model's scripted tool calls, in order. */
export const script = [
  { tool: 'search', input: { space: 'public', q: 'q3' } },
  { tool: 'send_mail', input: { to: 'cfo@example.org', body: 'the numbers' } },
  { tool: 'search', input: { space: 'private', q: 'salaries' } },
] as const;

/** A task for the scenario and a client acting under it (its token exchanged by the SDK). */
export async function setup(srv: WritServer): Promise<{ task: string; writ: Writ }> {
  const task = await srv.openTask(agent, scope, 'answer questions from the knowledge base');
  const writ = new Writ({ url: srv.url, identity: { file: await srv.svidFile(agent) }, task, env: {} });
  return { task, writ };
}

/** The two tools, guarded; ran counts what actually ran. */
export function tools(writ: Writ) {
  const ran: string[] = [];
  const search = writ.guard(
    { tool: 'kb.search', operation: 'read', resource: (a: { space: string; q: string }) => `kb://${a.space}/${a.q}` },
    async (a: { space: string; q: string }) => {
      ran.push(`search ${a.space}/${a.q}`);
      return { hits: [`${a.q}: 3 documents`] };
    },
  );
  const sendMail = writ.guard(
    { tool: 'mail.send', operation: 'send', resource: (a: { to: string; body: string }) => `mailto:${a.to}` },
    async (a: { to: string; body: string }) => {
      ran.push(`mail ${a.to}`);
      return { sent: true };
    },
  );
  return { search, sendMail, ran };
}

/** What the trace must show after the scenario: every decision, the approval, both results. */
export async function checkTrace(srv: WritServer, task: string, approvalId: string): Promise<void> {
  const events = await srv.trace(task);
  const authorized = ofType(events, 'action.authorized');
  assert.deepEqual(authorized.map((e) => [e.data!.tool, e.data!.resource]), [
    ['kb.search', 'kb://public/q3'],
    ['kb.search', 'kb://private/salaries'],
  ]);
  assert.equal(authorized[1].data!.step_up, approvalId, 'the second search consumed the step-up');
  const denied = ofType(events, 'action.denied');
  assert.ok(denied.some((e) => e.data!.tool === 'mail.send' && !e.data!.approval_id), 'the mail is denied');
  assert.ok(denied.some((e) => e.data!.approval_id === approvalId), 'the private search asked for the step-up');
  assert.deepEqual(ofType(events, 'approval.granted').map((e) => e.data!.approval_id), [approvalId]);
  assert.deepEqual(ofType(events, 'action.completed').map((e) => [e.data!.action_id, e.data!.status]),
    authorized.map((e) => [e.data!.action_id, 'ok']));
}
