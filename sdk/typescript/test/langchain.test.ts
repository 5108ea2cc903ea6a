// LangChain.js: its agent (createAgent, a LangGraph loop) driven by
// LangChain's fake tool-calling chat model, once through tools guarded by
// writ and once through @langchain/mcp-adapters pointed at writ's MCP
// gateway, which fronts an MCP server built on the official SDK.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { tool } from '@langchain/core/tools';
import { MultiServerMCPClient } from '@langchain/mcp-adapters';
import { createAgent, FakeToolCallingModel } from 'langchain';
import { z } from 'zod';

import { Writ } from '../src/index.js';
import { mcpAuthProvider, mcpURL } from '../src/mcp.js';
import { eventually, ofType, pkgRoot, startServer } from './harness.js';
import { checkTrace, script, setup, tools } from './scenario.js';

type Message = { getType?: () => string; _getType?: () => string; content: unknown; status?: string };
const toolMessages = (messages: Message[]) => messages.filter((m) => (m.getType?.() ?? m._getType?.()) === 'tool').map((m) => String(m.content));

test('LangChain: createAgent calls guarded tools: allowed, denied, step-up approved', async (t) => {
  const srv = await startServer(t);
  if (!srv) return;
  const { task, writ } = await setup(srv);
  const { search, sendMail, ran } = tools(writ);
  const model = new FakeToolCallingModel({
    toolCalls: [...script.map((c, i) => [{ name: c.tool, args: c.input, id: `call_${i}` }]), []],
  });
  const agent = createAgent({
    model,
    tools: [
      tool(search, { name: 'search', description: 'Search the knowledge base', schema: z.object({ space: z.string(), q: z.string() }) }),
      tool(sendMail, { name: 'send_mail', description: 'Send a mail', schema: z.object({ to: z.string(), body: z.string() }) }),
    ],
  });

  const [state, approvalId] = await Promise.all([
    agent.invoke({ messages: [{ role: 'user', content: 'How did Q3 go? Mail the CFO, and check salaries.' }] }),
    srv.decideStepUp(task, 'approve', 'salaries, once'),
  ]);

  assert.deepEqual(ran, ['search public/q3', 'search private/salaries']);
  const seen = toolMessages(state.messages as Message[]);
  assert.equal(seen.length, 3);
  assert.match(seen[0], /q3: 3 documents/);
  assert.match(seen[1], /writ denied mail\.send \(send mailto:cfo@example\.org\): .*tool is not in the task scope.*\(decision dec_/);
  assert.match(seen[2], /salaries: 3 documents/);
  await checkTrace(srv, task, approvalId);
});

/** The fake model, with a pause before one turn: the model waits for the human before it retries. */
class PausingModel extends FakeToolCallingModel {
  pauses = new Map<number, Promise<unknown>>();
  turn = 0;

  // The agent binds its tools to the model; the script does not need
  // them, and the pauses must stay with this instance.
  override bindTools(): any {
    return this;
  }

  override async _generate(...args: Parameters<FakeToolCallingModel['_generate']>) {
    await this.pauses.get(this.turn);
    this.turn++;
    return super._generate(...args);
  }
}

test('LangChain MCP adapters at writ\'s gateway: allowed, denied, step-up approved and retried', async (t) => {
  const upstream = join(pkgRoot, 'test', 'fixtures', 'kb-server.mjs');
  const config = `mcp:\n  servers:\n    kb:\n      command: ["${process.execPath}", "${upstream}"]\n      tools:\n        export: {data_class: confidential}\n`;
  const srv = await startServer(t, { config });
  if (!srv) return;
  const agentID = 'spiffe://writ.dev/agent/mcp';
  const task = await srv.openTask(agentID, {
    tools: ['kb.search', 'kb.salaries', 'kb.export'],
    resources: ['mcp://kb/tools/search', 'mcp://kb/tools/export'],
    operations: ['call'],
    data_class: 'internal',
    environments: ['dev'],
  });
  const writ = new Writ({ url: srv.url, identity: { file: await srv.svidFile(agentID) }, task, env: {} });
  const client = new MultiServerMCPClient({
    mcpServers: { kb: { transport: 'http', url: mcpURL(writ, 'kb'), authProvider: mcpAuthProvider(writ) } },
    throwOnLoadError: true,
  });
  t.after(() => client.close());
  const mcpTools = await client.getTools();
  assert.equal(mcpTools.length, 3, 'every tool in the task scope is listed');
  const name = (n: string) => mcpTools.find((x) => x.name.endsWith(n))!.name;

  const model = new PausingModel({
    toolCalls: [
      [{ name: name('search'), args: { q: 'q3' }, id: 'c1' }],
      [{ name: name('export'), args: { format: 'csv' }, id: 'c2' }],
      [{ name: name('salaries'), args: { team: 'finance' }, id: 'c3' }],
      [{ name: name('salaries'), args: { team: 'finance' }, id: 'c4' }],
      [],
    ],
  });
  // Before its fourth turn (the retry) the model waits until a human has
  // approved the step-up its third call was answered with.
  let approved!: (id: string) => void;
  const approval = new Promise<string>((r) => (approved = r));
  model.pauses.set(3, approval);
  const agent = createAgent({ model, tools: mcpTools });
  const decided = srv.decideStepUp(task, 'approve', 'finance, once').then((id) => {
    approved(id);
    return id;
  });
  const [state, approvalId] = await Promise.all([agent.invoke({ messages: [{ role: 'user', content: 'Q3, export, salaries' }] }), decided]);

  const seen = toolMessages(state.messages as Message[]);
  if (process.env.WRIT_TEST_VERBOSE) console.log(seen);
  assert.equal(seen.length, 4, JSON.stringify(seen));
  assert.match(seen[0], /q3: 3 documents/);
  assert.match(seen[1], /writ denied kb\.export: .*data class is above the task's ceiling.*dec_/);
  assert.match(seen[2], new RegExp(`approval.*${approvalId}|${approvalId}`));
  assert.match(seen[3], /finance: 12 salaries/);

  const events = await eventually('both results recorded', async () => {
    const evs = await srv.trace(task);
    return ofType(evs, 'action.completed').length === 2 ? evs : undefined;
  });
  const authorized = ofType(events, 'action.authorized');
  assert.deepEqual(authorized.map((e) => e.data!.tool), ['kb.search', 'kb.salaries']);
  assert.equal(authorized[1].data!.step_up, approvalId);
  assert.ok(ofType(events, 'action.denied').some((e) => e.data!.tool === 'kb.export'));
  assert.deepEqual(ofType(events, 'action.completed').map((e) => e.data!.status), ['ok', 'ok']);
});
