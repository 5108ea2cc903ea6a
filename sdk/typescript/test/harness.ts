// A real writ server for the tests: the binary built from this repository
// (or WRIT_BIN), `writ server --dev` on a port the kernel picks, in a data
// directory of its own, with the dev issuer minting humans and agents.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';

const run = promisify(execFile);

/** The repository root (sdk/typescript/dist-test/test → four up). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
/** sdk/typescript. */
export const pkgRoot = resolve(repoRoot, 'sdk', 'typescript');

/**
 * Skips the test when a tool it needs is missing, and fails it instead
 * when CI is set: CI must run every test.
 */
export function requireTool(t: TestContext, ok: boolean, what: string): boolean {
  if (ok) {
    return true;
  }
  if (process.env.CI) {
    throw new Error(`${what} is missing, and CI is set: this test must run`);
  }
  t.skip(`${what} is missing`);
  return false;
}

let built: Promise<string | undefined> | undefined;

/** The writ binary: WRIT_BIN, or built once per process with the Go toolchain (undefined without it). */
export function writBinary(): Promise<string | undefined> {
  built ??= (async () => {
    if (process.env.WRIT_BIN) {
      return process.env.WRIT_BIN;
    }
    try {
      await run('go', ['version']);
    } catch {
      return undefined;
    }
    const out = join(mkdtempSync(join(tmpdir(), 'writ-bin-')), 'writ');
    await run('go', ['build', '-o', out, './cmd/writ'], { cwd: repoRoot, maxBuffer: 1 << 24 });
    return out;
  })();
  return built;
}

/** Polls f until it returns something other than undefined, for at most timeout ms. */
export async function eventually<T>(what: string, f: () => Promise<T | undefined>, timeout = 30_000): Promise<T> {
  const deadline = Date.now() + timeout;
  let delay = 20;
  for (;;) {
    const v = await f();
    if (v !== undefined) {
      return v;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeout} ms`);
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 250);
  }
}

export interface Scope {
  tools: string[];
  resources: string[];
  operations: string[];
  data_class: string;
  environments: string[];
}

/** A leaf of the ledger, as the trace API lists it. */
export interface LedgerEvent {
  type: string;
  task_id?: string;
  decision_id?: string;
  trace_id?: string;
  data?: Record<string, any>;
}

/** A running dev server. */
export class WritServer {
  readonly url: string;
  readonly dataDir: string;
  readonly bin: string;
  readonly #proc: ChildProcess;
  readonly #tokens = new Map<string, string>();

  private constructor(bin: string, url: string, dataDir: string, proc: ChildProcess) {
    this.bin = bin;
    this.url = url;
    this.dataDir = dataDir;
    this.#proc = proc;
  }

  /** Starts `writ server --dev` with the YAML config given, if any. */
  static async start(bin: string, opts: { environment?: string; config?: string } = {}): Promise<WritServer> {
    const dataDir = mkdtempSync(join(tmpdir(), 'writ-data-'));
    const args = ['server', '--dev', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--environment', opts.environment ?? 'dev', '--log-format', 'json'];
    if (opts.config) {
      const file = join(dataDir, '..', `${dataDir.split('/').pop()}.yaml`);
      writeFileSync(file, opts.config);
      args.push('--config', file);
    }
    const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const url = await new Promise<string>((resolveURL, reject) => {
      proc.stderr!.setEncoding('utf8');
      proc.stderr!.on('data', (chunk: string) => {
        log += chunk;
        for (const line of log.split('\n')) {
          try {
            const rec = JSON.parse(line);
            if (rec.msg === 'writ server listening') {
              resolveURL(rec.url);
            }
          } catch {
            // Not a whole JSON line yet.
          }
        }
      });
      proc.on('exit', (code) => reject(new Error(`writ server exited with ${code} before listening:\n${log}`)));
    });
    // Keep draining the log so the server never blocks on a full pipe.
    proc.stderr!.removeAllListeners('data');
    proc.stderr!.resume();
    return new WritServer(bin, url, dataDir, proc);
  }

  async stop(): Promise<void> {
    if (this.#proc.exitCode === null) {
      const exited = new Promise((r) => this.#proc.once('exit', r));
      this.#proc.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Runs the writ CLI against this server's data directory. */
  async cli(...args: string[]): Promise<string> {
    const { stdout } = await run(this.bin, args, { env: { ...process.env, WRIT_URL: this.url } });
    return stdout.trim();
  }

  /** A dev human token for name with role (cached). */
  async human(name: string, role: string): Promise<string> {
    const key = `${name}/${role}`;
    let tok = this.#tokens.get(key);
    if (!tok) {
      tok = await this.cli('dev', 'token', '--human', name, '--role', role, '--data-dir', this.dataDir);
      this.#tokens.set(key, tok);
    }
    return tok;
  }

  /** A dev JWT-SVID for agent. */
  svid(agent: string): Promise<string> {
    return this.cli('dev', 'svid', '--agent', agent, '--data-dir', this.dataDir);
  }

  async api(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: any }> {
    const resp = await fetch(this.url + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await resp.text();
    return { status: resp.status, json: text ? JSON.parse(text) : undefined };
  }

  /** Opens a task as alice for agent; it must be active at once (no task approval). */
  async openTask(agent: string, scope: Scope, intent = 'a test of the SDK'): Promise<string> {
    const { status, json } = await this.api('POST', '/v1/tasks', await this.human('alice', 'requester'), { agent, intent, scope, ttl: '15m' });
    if (status !== 201 || json.state !== 'active') {
      throw new Error(`opening a task: ${status} ${JSON.stringify(json)}`);
    }
    return json.task_id;
  }

  /** The task token of taskID for agent, exchanged with its dev SVID. */
  async taskToken(agent: string, taskID: string): Promise<string> {
    return this.cli('token', taskID, '--svid', await this.svidFile(agent));
  }

  async svidFile(agent: string): Promise<string> {
    const file = join(this.dataDir, `svid-${encodeURIComponent(agent)}.jwt`);
    writeFileSync(file, await this.svid(agent));
    return file;
  }

  /** Waits for a pending step-up of taskID (as bob the approver) and decides it. */
  async decideStepUp(taskID: string, decision: 'approve' | 'deny', reason: string): Promise<string> {
    const bob = await this.human('bob', 'approver');
    const id = await eventually(`a step-up of ${taskID} to decide`, async () => {
      const { json } = await this.api('GET', '/v1/approvals', bob);
      return json.approvals.find((a: any) => a.task_id === taskID && a.kind === 'step_up')?.approval_id as string | undefined;
    });
    const { status, json } = await this.api('POST', `/v1/approvals/${id}`, bob, { decision, reason });
    if (status !== 200) {
      throw new Error(`${decision} ${id}: ${status} ${JSON.stringify(json)}`);
    }
    return id;
  }

  /** The task's events in ledger order, through the trace API (as an auditor); every one verified. */
  async trace(taskID: string): Promise<LedgerEvent[]> {
    const { status, json } = await this.api('GET', `/v1/tasks/${taskID}/trace`, await this.human('audrey', 'auditor'));
    if (status !== 200) {
      throw new Error(`trace: ${status} ${JSON.stringify(json)}`);
    }
    return json.events.map((e: any) => (typeof e.event === 'string' ? JSON.parse(e.event) : e.event) as LedgerEvent);
  }
}

/** Starts a server for the test, stopped when it ends; undefined when skipped. */
export async function startServer(t: TestContext, opts: { environment?: string; config?: string } = {}): Promise<WritServer | undefined> {
  const bin = await writBinary();
  if (!requireTool(t, bin !== undefined, 'the Go toolchain (to build writ), or WRIT_BIN')) {
    return undefined;
  }
  const srv = await WritServer.start(bin!, opts);
  t.after(() => srv.stop());
  return srv;
}

/** The events of a trace of one type. */
export function ofType(events: LedgerEvent[], type: string): LedgerEvent[] {
  return events.filter((e) => e.type === type);
}
