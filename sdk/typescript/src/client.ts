// The client of writ's decision API: authorize a call, record its result,
// learn what became of a step-up, and guard a tool function with all three.

import { DPoPKey } from './dpop.js';
import {
  ApprovalDeniedError,
  ApprovalRequiredError,
  type CallName,
  DeniedError,
  TokenError,
  TokenExpiredError,
  WritError,
} from './errors.js';
import { ExchangedToken, FileToken, type IdentitySource, StaticToken, type TaskToken, type TokenSource } from './token.js';
import { type TraceSource, traceparentOf } from './trace.js';

/** How a Writ client finds writ and its task token. */
export interface WritOptions {
  /** writ's base URL; default WRIT_URL, else http://127.0.0.1:7780. */
  url?: string;
  /** A task token, or a source of them. */
  token?: string | TokenSource;
  /** A file holding the task token, read again when it changes (WRIT_TOKEN_FILE by default). */
  tokenFile?: string;
  /**
   * The agent's identity token (JWT-SVID or OIDC token) to exchange for a
   * task token: a string, `{file}` (read again at each exchange) or a
   * function. Needs `task`.
   */
  identity?: IdentitySource;
  /** The task to act under, for the exchange; default WRIT_TASK. */
  task?: string;
  /** Bind the exchanged token to a DPoP key: true for a fresh ES256 key, or a key of your own. */
  dpop?: boolean | DPoPKey;
  /** RFC 8707 resource to ask the token for (it is then accepted only there). */
  resource?: string;
  /** Longest wait for a step-up approval in guard(), in milliseconds; default 5 minutes, 0 to not wait. */
  stepUpWait?: number;
  /** The W3C traceparent to send with each call: a value or a function (read your tracer's active span). */
  traceparent?: TraceSource;
  /** The fetch to use; default the global one. */
  fetch?: typeof fetch;
  /** Environment to read WRIT_* from; default process.env. */
  env?: Record<string, string | undefined>;
}

/** One call an agent wants to make, as writ's policy sees it. */
export interface Call {
  tool: string;
  operation: string;
  resource: string;
  arguments?: Record<string, unknown>;
  dataClass?: string;
}

/** Options of one request. */
export interface CallOptions {
  /** The traceparent of this call, in place of the client's. */
  traceparent?: string;
  signal?: AbortSignal;
}

/** writ's answer to POST /v1/authorize. */
export interface Decision {
  allow: boolean;
  decisionId: string;
  /** Set when allowed: report the result under it. */
  actionId?: string;
  reasons: string[];
  approvalRequired: boolean;
  approvalId?: string;
  /** Whether writ keeps the output of the result. */
  recordOutput: boolean;
  redact: string[];
}

/** A result to report for an allowed call. */
export interface Result {
  status: 'ok' | 'error' | 'cancelled';
  output?: unknown;
}

/** writ's answer to POST /v1/actions/{id}/result. */
export interface Recorded {
  actionId: string;
  ledgerIndex: number;
}

/** What became of a step-up approval request (GET /v1/approvals/{id}/status). */
export interface StepUpStatus {
  approvalId: string;
  taskId: string;
  /** pending, granted, used, denied or expired. */
  status: 'pending' | 'granted' | 'used' | 'denied' | 'expired';
  expiresAt: Date;
  approvalsRequired: number;
  approvalsGiven: number;
  /** The denying approver's reason. */
  reason: string;
  tool: string;
  operation: string;
  resource: string;
}

/** What guard() asks writ about each call of the function it wraps. */
export interface GuardSpec<A extends unknown[]> {
  tool: string;
  operation: string;
  /** The resource, or how to make it from the function's arguments. */
  resource: string | ((...args: A) => string);
  /**
   * The arguments policy sees and the ledger records (redacted); default
   * the first argument when it is a plain object, else `{input: first}`.
   */
  arguments?: (...args: A) => Record<string, unknown> | undefined;
  dataClass?: string;
  /** Longest wait for a step-up, in milliseconds, in place of the client's; 0 to fail at once. */
  stepUpWait?: number;
  /** What to record as the output; default the function's result. */
  output?: (result: unknown) => unknown;
  /** The traceparent of each call, in place of the client's. */
  traceparent?: TraceSource;
}

const defaultURL = 'http://127.0.0.1:7780';

/** A client of writ's decision API, for one task. */
export class Writ {
  /** writ's base URL, without a trailing slash. */
  readonly url: string;
  readonly #tokens: TokenSource;
  readonly #fetch: typeof fetch;
  readonly #dpop: Promise<DPoPKey> | undefined;
  readonly #trace: TraceSource;
  readonly #stepUpWait: number;

  constructor(opts: WritOptions = {}) {
    const env = opts.env ?? process.env;
    this.url = (opts.url ?? env.WRIT_URL ?? defaultURL).replace(/\/+$/, '');
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#trace = opts.traceparent ?? env.TRACEPARENT;
    this.#stepUpWait = opts.stepUpWait ?? 5 * 60_000;
    if (opts.dpop instanceof DPoPKey) {
      this.#dpop = Promise.resolve(opts.dpop);
    } else if (opts.dpop) {
      this.#dpop = DPoPKey.generate();
    }
    this.#tokens = this.#tokenSource(opts, env);
  }

  #tokenSource(opts: WritOptions, env: Record<string, string | undefined>): TokenSource {
    if (typeof opts.token === 'object') {
      return opts.token;
    }
    if (typeof opts.token === 'string') {
      return new StaticToken(opts.token);
    }
    if (opts.tokenFile) {
      return new FileToken(opts.tokenFile);
    }
    if (opts.identity !== undefined) {
      const task = opts.task ?? env.WRIT_TASK;
      if (!task) {
        throw new WritError('exchanging the agent identity needs the task', { hint: 'pass task, or set WRIT_TASK' });
      }
      return this.#exchanged(opts.identity, task, opts.resource);
    }
    if (env.WRIT_TOKEN_FILE) {
      return new FileToken(env.WRIT_TOKEN_FILE);
    }
    if (env.WRIT_TOKEN) {
      return new StaticToken(env.WRIT_TOKEN, 'the task token in WRIT_TOKEN');
    }
    throw new WritError('no task token', {
      hint: 'run the agent under writ exec (it sets WRIT_TOKEN_FILE), or pass token, tokenFile, or identity and task',
    });
  }

  #exchanged(identity: IdentitySource, task: string, resource: string | undefined): TokenSource {
    const dpop = this.#dpop;
    const base = { url: this.url, task, identity, resource, fetch: this.#fetch };
    if (dpop === undefined) {
      return new ExchangedToken(base);
    }
    // The key is made once, before the first exchange.
    let src: ExchangedToken | undefined;
    const ready = dpop.then((key) => (src = new ExchangedToken({ ...base, dpop: key })));
    return {
      current: () => (src ? src.current() : ready.then((s) => s.current())),
      renew: (t) => ready.then((s) => s.renew(t)),
    };
  }

  /** The task token to use now (read again from its file, exchanged again, as its source does). */
  async token(): Promise<TaskToken> {
    return this.#tokens.current();
  }

  /**
   * Headers that authenticate one request to writ with the task token: for
   * a DPoP-bound token, with a fresh proof for this method and URL.
   */
  async authHeaders(method: string, url: string): Promise<Record<string, string>> {
    return this.#authHeaders(await this.#tokens.current(), method, url);
  }

  async #authHeaders(tok: TaskToken, method: string, url: string): Promise<Record<string, string>> {
    if (!tok.dpop) {
      return { Authorization: `Bearer ${tok.token}` };
    }
    if (this.#dpop === undefined) {
      throw new TokenError('the task token is DPoP-bound, but this client holds no DPoP key', {
        hint: 'use the client that exchanged it, or pass its key as dpop',
      });
    }
    const key = await this.#dpop;
    return { Authorization: `DPoP ${tok.token}`, DPoP: await key.proof(method, url, tok.token) };
  }

  /**
   * A fetch that sends the task token (and DPoP proof) with every request,
   * for writ's MCP gateway (/mcp/<server>) and HTTP proxy (/proxy/...).
   */
  readonly fetch: typeof fetch = async (input, init) => {
    const req = new Request(input, init);
    const headers = new Headers(req.headers);
    for (const [k, v] of Object.entries(await this.authHeaders(req.method, req.url))) {
      headers.set(k, v);
    }
    const tp = traceparentOf(this.#trace);
    if (tp && !headers.has('traceparent')) {
      headers.set('traceparent', tp);
    }
    return this.#fetch(new Request(req, { headers }));
  };

  /** POST /v1/authorize: may the task's agent make this call? A denial is a Decision, not an error. */
  async authorize(call: Call, opts: CallOptions = {}): Promise<Decision> {
    const body: Record<string, unknown> = { tool: call.tool, operation: call.operation, resource: call.resource };
    if (call.arguments !== undefined) {
      body.arguments = call.arguments;
    }
    if (call.dataClass) {
      body.data_class = call.dataClass;
    }
    const { status, json } = await this.#send('POST', '/v1/authorize', body, opts, [403]);
    if (status === 403 && typeof json.allow !== 'boolean') {
      throw apiError(status, json, 'authorize');
    }
    return {
      allow: json.allow === true,
      decisionId: String(json.decision_id ?? ''),
      actionId: json.action_id === undefined ? undefined : String(json.action_id),
      reasons: Array.isArray(json.reasons) ? json.reasons.map(String) : [],
      approvalRequired: json.approval_required === true,
      approvalId: json.approval_id === undefined ? undefined : String(json.approval_id),
      recordOutput: json.record_output !== false,
      redact: Array.isArray(json.redact) ? json.redact.map(String) : [],
    };
  }

  /** POST /v1/actions/{id}/result: what an allowed call did. */
  async recordResult(actionId: string, result: Result, opts: CallOptions = {}): Promise<Recorded> {
    const body: Record<string, unknown> = { status: result.status };
    if (result.output !== undefined) {
      body.output = result.output;
    }
    const { json } = await this.#send('POST', `/v1/actions/${encodeURIComponent(actionId)}/result`, body, opts, []);
    return { actionId: String(json.action_id), ledgerIndex: Number(json.ledger_index) };
  }

  /** GET /v1/approvals/{id}/status: what became of a step-up this task was asked for. */
  async stepUp(approvalId: string, opts: CallOptions = {}): Promise<StepUpStatus> {
    const { json } = await this.#send('GET', `/v1/approvals/${encodeURIComponent(approvalId)}/status`, undefined, opts, []);
    return {
      approvalId: String(json.approval_id),
      taskId: String(json.task_id),
      status: json.status as StepUpStatus['status'],
      expiresAt: new Date(String(json.expires_at)),
      approvalsRequired: Number(json.approvals_required),
      approvalsGiven: Number(json.approvals_given),
      reason: String(json.reason ?? ''),
      tool: String(json.tool),
      operation: String(json.operation),
      resource: String(json.resource),
    };
  }

  /**
   * Waits until an approver decides step-up approvalId, at most timeout
   * milliseconds, polling its status with backoff (from a quarter second to
   * five seconds). Returns the status it ended in: still pending when the
   * wait ran out.
   */
  async waitForApproval(approvalId: string, opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<StepUpStatus> {
    const deadline = Date.now() + (opts.timeout ?? this.#stepUpWait);
    let delay = 250;
    for (;;) {
      const st = await this.stepUp(approvalId, { signal: opts.signal });
      const left = deadline - Date.now();
      if (st.status !== 'pending' || left <= 0) {
        return st;
      }
      await sleep(Math.min(delay, left), opts.signal);
      delay = Math.min(delay * 1.5, 5000);
    }
  }

  /**
   * Wraps a tool function so that each call is authorized by writ first,
   * runs only when allowed, and has its result (or its error) recorded.
   * A denial throws DeniedError (decision ID and reasons); a step-up waits
   * for an approver, at most stepUpWait, and then retries the call once,
   * or throws ApprovalDeniedError or ApprovalRequiredError (approval ID,
   * where to approve). A result writ could not record is not returned.
   */
  guard<A extends unknown[], R>(spec: GuardSpec<A>, fn: (...args: A) => R | Promise<R>): (...args: A) => Promise<Awaited<R>> {
    const wait = spec.stepUpWait;
    return async (...args: A): Promise<Awaited<R>> => {
      const call: Call = {
        tool: spec.tool,
        operation: spec.operation,
        resource: typeof spec.resource === 'function' ? spec.resource(...args) : spec.resource,
        arguments: spec.arguments ? spec.arguments(...args) : defaultArguments(args),
        dataClass: spec.dataClass,
      };
      const opts: CallOptions = { traceparent: traceparentOf(spec.traceparent ?? this.#trace) };
      const d = await this.#decide(call, opts, wait ?? this.#stepUpWait);
      let result: Awaited<R>;
      try {
        result = await fn(...args);
      } catch (err) {
        await this.#recordOrThrow(d.actionId!, { status: 'error', output: { error: errorText(err) } }, opts, call, err);
        throw err;
      }
      await this.#recordOrThrow(d.actionId!, { status: 'ok', output: recordable(spec.output ? spec.output(result) : result) }, opts, call);
      return result;
    };
  }

  /** Authorizes call, waiting for a step-up when one is asked; the allowing decision or a typed error. */
  async #decide(call: Call, opts: CallOptions, wait: number): Promise<Decision> {
    const d = await this.authorize(call, opts);
    if (d.allow) {
      return d;
    }
    if (!d.approvalRequired || !d.approvalId) {
      throw new DeniedError(callName(call), d.decisionId, d.reasons);
    }
    if (wait <= 0) {
      throw new ApprovalRequiredError(callName(call), d.decisionId, d.reasons, d.approvalId, this.url);
    }
    const st = await this.waitForApproval(d.approvalId, { timeout: wait, signal: opts.signal });
    switch (st.status) {
      case 'pending':
        throw new ApprovalRequiredError(callName(call), d.decisionId, d.reasons, d.approvalId, this.url, wait);
      case 'denied':
      case 'expired':
        throw new ApprovalDeniedError(callName(call), d.decisionId, d.approvalId, st.status, st.reason);
    }
    // Granted (or used by a concurrent identical call): exactly this call,
    // retried, passes once.
    const again = await this.authorize(call, opts);
    if (again.allow) {
      return again;
    }
    if (again.approvalRequired && again.approvalId) {
      throw new ApprovalRequiredError(callName(call), again.decisionId, again.reasons, again.approvalId, this.url);
    }
    throw new DeniedError(callName(call), again.decisionId, again.reasons);
  }

  async #recordOrThrow(actionId: string, result: Result, opts: CallOptions, call: Call, toolError?: unknown): Promise<void> {
    try {
      await this.recordResult(actionId, result, opts);
    } catch (err) {
      const what = toolError === undefined ? 'ran, but' : `failed (${errorText(toolError)}), and`;
      throw new WritError(`${call.tool} ${what} writ could not record its result (action ${actionId}): ${errorText(err)}`, {
        cause: err,
        hint: toolError === undefined ? 'the result is withheld, since the evidence does not hold it' : 'the failure is not in the evidence',
      });
    }
  }

  /** Sends one request with the task token; 2xx (and the statuses in ok) answer, others throw. */
  async #send(method: string, path: string, body: unknown, opts: CallOptions, ok: number[]): Promise<{ status: number; json: Record<string, any> }> {
    const url = this.url + path;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let tok = await this.#tokens.current();
    for (let attempt = 0; ; attempt++) {
      const headers = await this.#authHeaders(tok, method, url);
      if (payload !== undefined) {
        headers['Content-Type'] = 'application/json';
      }
      const tp = opts.traceparent ?? traceparentOf(this.#trace);
      if (tp) {
        headers.traceparent = tp;
      }
      let resp: Response;
      try {
        const init: RequestInit = { method, headers, body: payload };
        if (opts.signal) {
          init.signal = opts.signal;
        }
        resp = await this.#fetch(url, init);
      } catch (err) {
        if (opts.signal?.aborted) {
          throw err;
        }
        throw new WritError(`cannot reach writ at ${this.url}`, { cause: err, hint: 'check WRIT_URL and that writ server is running' });
      }
      const text = await resp.text();
      let json: Record<string, any> = {};
      if (text !== '') {
        try {
          json = JSON.parse(text);
        } catch {
          throw new WritError(`writ answered ${method} ${path} with ${resp.status} and a body that is not JSON`, { status: resp.status });
        }
      }
      if (resp.ok || ok.includes(resp.status)) {
        return { status: resp.status, json };
      }
      if (resp.status === 401 && attempt === 0 && /expired/i.test(String(json.detail ?? ''))) {
        // Expired between our check and writ's (or clocks differ): a
        // source that can renew does, once; the others say how.
        try {
          tok = await this.#tokens.renew(tok);
        } catch (err) {
          if (err instanceof TokenExpiredError) {
            throw err;
          }
          throw tokenError(json, err);
        }
        continue;
      }
      if (resp.status === 401) {
        throw tokenError(json);
      }
      throw apiError(resp.status, json, `${method} ${path}`);
    }
  }
}

function tokenError(json: Record<string, any>, cause?: unknown): TokenError {
  const detail = String(json.detail ?? '');
  const code = String(json.error ?? 'invalid_token');
  let hint = 'see docs/credentials.md, What writ checks on every call';
  if (/expired/i.test(detail)) {
    return new TokenExpiredError(`writ refused the task token: ${detail}`, undefined, {
      status: 401,
      code,
      detail,
      cause,
      hint: 'renew it: run the agent under writ exec (it keeps WRIT_TOKEN_FILE renewed), or exchange the agent\'s identity again',
    });
  }
  if (/revoked|no longer valid|ended/i.test(detail)) {
    hint = 'the task has ended or its credentials were revoked: stop acting under it; a new task must be opened';
  } else if (code === 'invalid_dpop_proof') {
    hint = 'the DPoP proof was refused: check the clock, and that the URL writ is reached at is its credentials.public_url';
  } else if (code === 'unauthorized') {
    hint = 'send a task token: run the agent under writ exec, or exchange its identity with POST /oauth2/token';
  }
  return new TokenError(`writ refused the task token: ${code}: ${detail}`, { status: 401, code, detail, hint, cause });
}

function apiError(status: number, json: Record<string, any>, what: string): WritError {
  const code = String(json.error ?? `http_${status}`);
  const detail = String(json.detail ?? '');
  let hint = 'see docs/errors.md';
  if (status === 503) {
    hint = 'writ could not record durably, so nothing was allowed; retry later';
  } else if (status === 429) {
    hint = 'rate limited; retry after a while';
  } else if (status === 404 && what.startsWith('POST /v1/actions')) {
    hint = 'the action is unknown to writ: report results under the action_id authorize answered';
  }
  return new WritError(`writ refused ${what}: ${code}: ${detail}`, { status, code, detail, hint });
}

function callName(c: Call): CallName {
  return { tool: c.tool, operation: c.operation, resource: c.resource };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return false;
  }
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function defaultArguments(args: unknown[]): Record<string, unknown> | undefined {
  const first = args[0];
  if (first === undefined) {
    return undefined;
  }
  return isPlainObject(first) ? first : { input: first };
}

/** The output as JSON can carry it: what cannot be encoded is recorded as a note. */
function recordable(v: unknown): unknown {
  if (v === undefined) {
    return undefined;
  }
  try {
    JSON.stringify(v);
    return v;
  } catch (err) {
    return { unrecordable: `the output could not be encoded as JSON: ${errorText(err)}` };
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
