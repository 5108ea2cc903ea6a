// What guard() costs beyond its two HTTP calls (authorize, then the
// result), against a local stub of writ's decision API: the same two
// requests made with bare fetch are the baseline. Also measured without a
// network, with a fetch that answers at once, which isolates the SDK's own
// work. Run: npm run bench (after npm ci).

import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Writ } from '../dist/index.js';

const payload = Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 3600, txn: 'bench' })).toString('base64url');
const token = `eyJhbGciOiJFZERTQSJ9.${payload}.c2ln`;
const allow = JSON.stringify({ allow: true, action_id: 'act_bench', decision_id: 'dec_bench', record_output: true });
const recorded = JSON.stringify({ action_id: 'act_bench', ledger_index: 7 });

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = req.url === '/v1/authorize' ? allow : recorded;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}`;

const call = { q: 'invoices', space: 'public' };
const tool = async (a) => ({ hits: [a.q] });

// The baseline: the two requests guard() makes, made by hand.
async function bare(f) {
  const h = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  const r1 = await f(`${url}/v1/authorize`, {
    method: 'POST', headers: h,
    body: JSON.stringify({ tool: 'kb.search', operation: 'read', resource: `kb://${call.space}/${call.q}`, arguments: call }),
  });
  const d = JSON.parse(await r1.text());
  const out = await tool(call);
  const r2 = await f(`${url}/v1/actions/${d.action_id}/result`, { method: 'POST', headers: h, body: JSON.stringify({ status: 'ok', output: out }) });
  await r2.text();
  return out;
}

function guarded(writ) {
  const g = writ.guard({ tool: 'kb.search', operation: 'read', resource: (a) => `kb://${a.space}/${a.q}` }, tool);
  return () => g(call);
}

async function time(n, f) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await f();
  return Number(process.hrtime.bigint() - t0) / n / 1000; // µs per call
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function compare(name, base, subject, n, rounds) {
  await time(n, base);
  await time(n, subject);
  const b = [], s = [];
  for (let r = 0; r < rounds; r++) {
    b.push(await time(n, base));
    s.push(await time(n, subject));
  }
  const mb = median(b), ms = median(s);
  console.log(`${name}: bare ${mb.toFixed(1)} µs, guard ${ms.toFixed(1)} µs, overhead ${(ms - mb).toFixed(1)} µs per call`);
  return ms - mb;
}

// In-process: a fetch that answers at once.
const instant = async (u) => new Response(String(u).endsWith('/v1/authorize') ? allow : recorded, { status: 200 });
const dir = mkdtempSync(join(tmpdir(), 'writ-bench-'));
writeFileSync(join(dir, 'token'), token);
const n = Number(process.env.N ?? 2000);
const rounds = Number(process.env.ROUNDS ?? 7);

const results = {
  'no network, token given': await compare('no network, token given', () => bare(instant), guarded(new Writ({ url, token, fetch: instant, env: {} })), n, rounds),
  'no network, WRIT_TOKEN_FILE': await compare('no network, WRIT_TOKEN_FILE (a stat per call)', () => bare(instant),
    guarded(new Writ({ url, env: { WRIT_TOKEN_FILE: join(dir, 'token') }, fetch: instant })), n, rounds),
  'loopback stub, token given': await compare('loopback stub server, token given', () => bare(fetch), guarded(new Writ({ url, token, env: {} })), n, rounds),
};
// DPoP signs two ES256 proofs per call: the protocol's cost, not the SDK's,
// so it is shown apart from the budget.
const dpopTok = `eyJhbGciOiJFZERTQSJ9.${Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 3600, cnf: { jkt: 'x' } })).toString('base64url')}.c2ln`;
await compare('no network, DPoP-bound (two ES256 proofs; outside the budget)', () => bare(instant),
  guarded(new Writ({ url, token: dpopTok, dpop: true, fetch: instant, env: {} })), n, rounds);
server.close();
const worst = Math.max(...Object.values(results));
console.log(`worst overhead ${worst.toFixed(1)} µs per guarded call (budget 100 µs): ${worst < 100 ? 'ok' : 'OVER BUDGET'}`);
process.exitCode = worst < 100 ? 0 : 1;
