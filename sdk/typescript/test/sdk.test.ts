// The SDK against a real writ server: exchange (bearer and DPoP), the
// decision API, guard() with allowed, denied and step-up calls, token files
// renewed under it, and the errors that say what to do.

import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  ApprovalDeniedError,
  ApprovalRequiredError,
  DeniedError,
  newTraceparent,
  TokenError,
  TokenExpiredError,
  traceId,
  Writ,
} from '../src/index.js';
import { ofType, type Scope, startServer } from './harness.js';

const agent = 'spiffe://writ.dev/agent/sdk';
const scope: Scope = {
  tools: ['kb.search', 'kb.delete'],
  resources: ['kb://public/*'],
  operations: ['read'],
  data_class: 'internal',
  environments: ['dev'],
};

test('authorize and recordResult with an exchanged bearer token', async (t) => {
  const srv = await startServer(t);
  if (!srv) return;
  const task = await srv.openTask(agent, scope);
  const writ = new Writ({ url: srv.url, identity: { file: await srv.svidFile(agent) }, task, env: {} });

  const tok = await writ.token();
  assert.equal(tok.dpop, false);

  const allowed = await writ.authorize({ tool: 'kb.search', operation: 'read', resource: 'kb://public/q3', arguments: { q: 'invoices' } });
  assert.equal(allowed.allow, true);
  assert.match(allowed.actionId!, /^act_/);
  assert.match(allowed.decisionId, /^dec_/);
  const rec = await writ.recordResult(allowed.actionId!, { status: 'ok', output: { hits: 3 } });
  assert.equal(rec.actionId, allowed.actionId);
  assert.ok(rec.ledgerIndex > 0);

  const denied = await writ.authorize({ tool: 'mail.send', operation: 'send', resource: 'mailto:x@example.org' });
  assert.equal(denied.allow, false);
  assert.equal(denied.approvalRequired, false);
  assert.deepEqual(denied.reasons.includes('tool is not in the task scope'), true);

  const step = await writ.authorize({ tool: 'kb.search', operation: 'read', resource: 'kb://private/hr', arguments: { q: 'pay' } });
  assert.equal(step.approvalRequired, true);
  assert.match(step.approvalId!, /^apr_/);
  const st = await writ.stepUp(step.approvalId!);
  assert.equal(st.status, 'pending');
  assert.equal(st.resource, 'kb://private/hr');

  // A result for an unknown action says so.
  await assert.rejects(writ.recordResult('act_nope', { status: 'ok' }), (e: any) => e.status === 404 && e.code === 'not_found');
});

test('guard: allowed, denied, step-up approved, step-up denied, not waited for, and failing tools', async (t) => {
  const srv = await startServer(t);
  if (!srv) return;
  const task = await srv.openTask(agent, scope);
  const traceparent = newTraceparent();
  const writ = new Writ({ url: srv.url, identity: { file: await srv.svidFile(agent) }, task, traceparent, env: {} });
  let ran = 0;
  const search = writ.guard(
    { tool: 'kb.search', operation: 'read', resource: (a: { q: string; space: string }) => `kb://${a.space}/${a.q}` },
    async (a: { q: string; space: string }) => {
      ran++;
      return { hits: [`${a.q}-1`] };
    },
  );

  // Allowed: runs, and the result is recorded with the trace ID.
  assert.deepEqual(await search({ q: 'q3', space: 'public' }), { hits: ['q3-1'] });
  assert.equal(ran, 1);

  // Denied: a typed error with the decision and reasons; nothing ran.
  const mail = writ.guard({ tool: 'mail.send', operation: 'send', resource: 'mailto:x@example.org' }, async (_: { to: string }) => {
    ran++;
  });
  await assert.rejects(mail({ to: 'x' }), (e: unknown) => {
    assert.ok(e instanceof DeniedError);
    assert.match(e.decisionId, /^dec_/);
    assert.ok(e.reasons.includes('tool is not in the task scope'), String(e.reasons));
    assert.match(e.message, /writ denied mail\.send .*tool is not in the task scope \(decision dec_/);
    return true;
  });
  assert.equal(ran, 1);

  // Step-up, approved while guard waits: the same call then runs once.
  const [out, approvalID] = await Promise.all([search({ q: 'salaries', space: 'private' }), srv.decideStepUp(task, 'approve', 'just this once')]);
  assert.deepEqual(out, { hits: ['salaries-1'] });
  assert.equal(ran, 2);

  // Step-up denied while guard waits: the approver's reason.
  await Promise.all([
    assert.rejects(search({ q: 'ssn', space: 'private' }), (e: unknown) => {
      assert.ok(e instanceof ApprovalDeniedError);
      assert.match(e.approvalId, /^apr_/);
      assert.equal(e.approvalStatus, 'denied');
      assert.match(e.message, /denied by an approver: not this one/);
      return true;
    }),
    srv.decideStepUp(task, 'deny', 'not this one'),
  ]);
  assert.equal(ran, 2);

  // Not waited for: the error says which approval and where to approve it.
  const noWait = writ.guard({ tool: 'kb.search', operation: 'read', resource: 'kb://private/x', stepUpWait: 0 }, async (_: { q: string }) => ran++);
  await assert.rejects(noWait({ q: 'x' }), (e: unknown) => {
    assert.ok(e instanceof ApprovalRequiredError);
    assert.match(e.approvalId, /^apr_/);
    assert.ok(e.message.includes(`writ approve ${e.approvalId}`), e.message);
    assert.ok(e.message.includes(`${srv.url}/ui/inbox`), e.message);
    return true;
  });
  assert.equal(ran, 2);

  // A tool that throws: recorded as an error, and the error is the tool's.
  const broken = writ.guard({ tool: 'kb.search', operation: 'read', resource: 'kb://public/broken' }, async (_: { q: string }) => {
    throw new Error('index offline');
  });
  await assert.rejects(broken({ q: 'y' }), /index offline/);

  const events = await srv.trace(task);
  const completed = ofType(events, 'action.completed');
  assert.deepEqual(completed.map((e) => e.data!.status), ['ok', 'ok', 'error']);
  const authorized = ofType(events, 'action.authorized');
  assert.equal(authorized.length, 3);
  assert.equal(authorized[1].data!.step_up, approvalID);
  for (const e of [...authorized, ...ofType(events, 'action.denied')]) {
    assert.equal(e.trace_id, traceId(traceparent), `${e.type} carries the trace ID`);
  }
  assert.ok(ofType(events, 'approval.granted').length === 1 && ofType(events, 'approval.denied').length === 1);
});

test('a token file is read again when writ exec renews it; an expired one says to renew', async (t) => {
  const srv = await startServer(t);
  if (!srv) return;
  const task = await srv.openTask(agent, scope);
  const file = join(srv.dataDir, 'token');
  writeFileSync(file, `${await srv.taskToken(agent, task)}\n`);
  const writ = new Writ({ url: srv.url, env: { WRIT_TOKEN_FILE: file } });
  const call = { tool: 'kb.search', operation: 'read', resource: 'kb://public/a' };
  const first = (await writ.token()).token;
  assert.equal((await writ.authorize(call)).allow, true);

  // Renewed as writ exec does it: a new file renamed over the old one.
  writeFileSync(`${file}.new`, `${await srv.taskToken(agent, task)}\n`);
  renameSync(`${file}.new`, file);
  const second = (await writ.token()).token;
  assert.notEqual(second, first);
  assert.equal((await writ.authorize(call)).allow, true);
  const jtis = ofType(await srv.trace(task), 'action.authorized').map((e: any) => e.jti);
  assert.equal(new Set(jtis).size, 2, 'each call went with the token in the file at the time');

  // An expired token: the error says to renew it, and nothing is sent.
  const payload = Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) - 60, txn: task })).toString('base64url');
  writeFileSync(file, `eyJhbGciOiJFZERTQSJ9.${payload}.c2ln\n`);
  await assert.rejects(writ.authorize(call), (e: unknown) => {
    assert.ok(e instanceof TokenExpiredError);
    assert.match(e.message, /expired at .*renew it: writ exec rewrites this file/);
    return true;
  });

  // A missing file says where it comes from.
  const gone = new Writ({ url: srv.url, tokenFile: join(srv.dataDir, 'nope') });
  await assert.rejects(gone.authorize(call), (e: unknown) => e instanceof TokenError && /writ exec writes it/.test(e.message));
});

test('DPoP-bound tokens: exchanged with a WebCrypto ES256 key, a fresh proof on every call', async (t) => {
  const srv = await startServer(t);
  if (!srv) return;
  const task = await srv.openTask(agent, scope);
  const writ = new Writ({ url: srv.url, identity: () => srv.svid(agent), task, dpop: true, env: {} });
  const tok = await writ.token();
  assert.equal(tok.dpop, true);
  const guarded = writ.guard({ tool: 'kb.search', operation: 'read', resource: 'kb://public/dpop' }, async (a: { q: string }) => a.q.length);
  assert.equal(await guarded({ q: 'abc' }), 3);
  assert.equal(await guarded({ q: 'abcd' }), 4);

  // The same token as Bearer, without the proof, is refused.
  const stolen = new Writ({ url: srv.url, token: tok.token, env: {} });
  await assert.rejects(stolen.authorize({ tool: 'kb.search', operation: 'read', resource: 'kb://public/x' }), TokenError);

  const events = await srv.trace(task);
  assert.equal(ofType(events, 'credential.issued')[0].data!.binding, 'dpop');
  assert.deepEqual(ofType(events, 'action.completed').map((e) => e.data!.status), ['ok', 'ok']);
});

test('a token of an ended task: refused, with what to do', async (t) => {
  const srv = await startServer(t);
  if (!srv) return;
  const task = await srv.openTask(agent, scope);
  const writ = new Writ({ url: srv.url, token: await srv.taskToken(agent, task), env: {} });
  const { status } = await srv.api('POST', `/v1/tasks/${task}/complete`, await srv.human('alice', 'requester'));
  assert.equal(status, 200);
  await assert.rejects(writ.authorize({ tool: 'kb.search', operation: 'read', resource: 'kb://public/a' }), (e: unknown) => {
    assert.ok(e instanceof TokenError && !(e instanceof TokenExpiredError));
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_token');
    assert.match(e.message, /the task has ended or its credentials were revoked/);
    return true;
  });
});

test('without a token source the error says where tokens come from', () => {
  assert.throws(() => new Writ({ env: {} }), /run the agent under writ exec/);
});
