// connectMcp: the official MCP TypeScript SDK's client at writ's gateway,
// every request with the task token and, for a DPoP-bound token, a proof.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { Writ } from '../src/index.js';
import { connectMcp } from '../src/mcp.js';
import { ofType, pkgRoot, startServer } from './harness.js';

test('connectMcp: a DPoP-bound MCP client through the gateway', async (t) => {
  const upstream = join(pkgRoot, 'test', 'fixtures', 'kb-server.mjs');
  const srv = await startServer(t, { config: `mcp:\n  servers:\n    kb:\n      command: ["${process.execPath}", "${upstream}"]\n` });
  if (!srv) return;
  const agentID = 'spiffe://writ.dev/agent/mcp-dpop';
  const task = await srv.openTask(agentID, {
    tools: ['kb.search'],
    resources: ['mcp://kb/tools/*'],
    operations: ['call'],
    data_class: 'internal',
    environments: ['dev'],
  });
  const writ = new Writ({ url: srv.url, identity: () => srv.svid(agentID), task, dpop: true, env: {} });
  const client = await connectMcp(writ, 'kb');
  t.after(() => client.close());

  const listed = await client.listTools();
  assert.deepEqual(listed.tools.map((x) => x.name), ['search'], 'tools outside the scope are hidden');
  const ok = await client.callTool({ name: 'search', arguments: { q: 'q3' } });
  assert.deepEqual(ok.content, [{ type: 'text', text: 'q3: 3 documents' }]);
  const denied = await client.callTool({ name: 'export', arguments: { format: 'csv' } });
  assert.equal(denied.isError, true);
  assert.match(String((denied._meta as any)['writ/decision_id']), /^dec_/);

  const events = await srv.trace(task);
  assert.equal(ofType(events, 'credential.issued')[0].data!.binding, 'dpop');
  assert.deepEqual(ofType(events, 'action.authorized').map((e) => e.data!.tool), ['kb.search']);
  assert.ok(ofType(events, 'action.denied').some((e) => e.data!.tool === 'kb.export'));
});
