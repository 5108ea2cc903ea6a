// Where the task token comes from: given as it is, read from a file that
// `writ exec` keeps renewed (WRIT_TOKEN_FILE), or exchanged by the SDK
// itself for the agent's JWT-SVID (RFC 8693).

import { readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

import type { DPoPKey } from './dpop.js';
import { TokenError, TokenExpiredError, WritError } from './errors.js';

/** A task token as the SDK holds it. */
export interface TaskToken {
  /** The compact JWT. */
  token: string;
  /** Whether it is DPoP-bound (sent as `Authorization: DPoP` with a proof). */
  dpop: boolean;
  /** Its exp claim, when it could be read. */
  expiresAt?: Date;
}

/** Something that hands out the current task token. */
export interface TokenSource {
  /** The token to use now; throws TokenExpiredError when it has expired and cannot be renewed. */
  current(): TaskToken | Promise<TaskToken>;
  /**
   * Called when writ refused the token as expired: a source that can get a
   * new one does so; others throw what to do.
   */
  renew(refused: TaskToken): Promise<TaskToken>;
}

interface Claims {
  exp?: number;
  cnf?: { jkt?: string };
}

/** The claims of a JWT, read without verifying it (writ verifies it). */
export function jwtClaims(token: string): Claims {
  const parts = token.split('.');
  if (parts.length !== 3) {
    throw new TokenError('the task token is not a compact JWT', {
      hint: 'pass the access_token of POST /oauth2/token (writ token <task> --svid FILE), or run under writ exec',
    });
  }
  try {
    const c = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return typeof c === 'object' && c !== null ? c : {};
  } catch {
    throw new TokenError('the task token is not a JWT: its payload is not base64url JSON');
  }
}

/** A TaskToken of a raw token: its expiry and binding read from its claims. */
export function taskToken(token: string): TaskToken {
  token = token.trim();
  const c = jwtClaims(token);
  return {
    token,
    dpop: typeof c.cnf?.jkt === 'string',
    expiresAt: typeof c.exp === 'number' ? new Date(c.exp * 1000) : undefined,
  };
}

function expired(t: TaskToken, now = Date.now()): boolean {
  return t.expiresAt !== undefined && t.expiresAt.getTime() <= now;
}

/** A token given as it is (an option, or WRIT_TOKEN): it cannot be renewed. */
export class StaticToken implements TokenSource {
  readonly #tok: TaskToken;
  readonly #from: string;

  constructor(token: string, from = 'the token passed to writ') {
    this.#tok = taskToken(token);
    this.#from = from;
  }

  current(): TaskToken {
    if (expired(this.#tok)) {
      throw this.#expired();
    }
    return this.#tok;
  }

  async renew(): Promise<TaskToken> {
    throw this.#expired();
  }

  #expired(): TokenExpiredError {
    const at = this.#tok.expiresAt;
    return new TokenExpiredError(`${this.#from} expired${at ? ` at ${at.toISOString()}` : ''}`, at, {
      code: 'invalid_token',
      hint: 'renew it: exchange the agent\'s JWT-SVID again (writ token <task-id> --svid FILE), or run the agent under writ exec, which keeps WRIT_TOKEN_FILE renewed',
    });
  }
}

/**
 * A token in a file, read again whenever the file changes: `writ exec`
 * replaces WRIT_TOKEN_FILE with a renewed token before the old one expires.
 * A stat per call is all it costs while the file stays the same.
 */
export class FileToken implements TokenSource {
  readonly path: string;
  #stamp = '';
  #tok: TaskToken | undefined;

  constructor(path: string) {
    this.path = path;
  }

  current(): TaskToken {
    let st;
    try {
      st = statSync(this.path, { bigint: true });
    } catch (err) {
      throw new TokenError(`cannot read the task token file ${this.path}`, {
        cause: err,
        hint: 'writ exec writes it while the command it runs is alive; run the agent under writ exec, or pass the token another way',
      });
    }
    const stamp = `${st.ino}:${st.mtimeNs}:${st.size}`;
    if (stamp !== this.#stamp || this.#tok === undefined) {
      this.#tok = taskToken(readFileSync(this.path, 'utf8'));
      this.#stamp = stamp;
    }
    if (expired(this.#tok)) {
      throw this.#expired(this.#tok);
    }
    return this.#tok;
  }

  async renew(refused: TaskToken): Promise<TaskToken> {
    const tok = this.current();
    if (tok.token !== refused.token) {
      return tok;
    }
    throw this.#expired(tok);
  }

  #expired(t: TaskToken): TokenExpiredError {
    const at = t.expiresAt;
    return new TokenExpiredError(`the task token in ${this.path} expired${at ? ` at ${at.toISOString()}` : ''}`, at, {
      code: 'invalid_token',
      hint: 'renew it: writ exec rewrites this file before the token expires, so check that writ exec is still running and can reach writ (its log says why a refresh failed); or exchange again with writ token <task-id> --svid FILE',
    });
  }
}

/** Where an agent's identity token (JWT-SVID or OIDC token) comes from. */
export type IdentitySource = string | { file: string } | (() => string | Promise<string>);

async function identityToken(src: IdentitySource): Promise<string> {
  if (typeof src === 'function') {
    return (await src()).trim();
  }
  if (typeof src === 'string') {
    return src.trim();
  }
  try {
    return (await readFile(src.file, 'utf8')).trim();
  } catch (err) {
    throw new WritError(`cannot read the agent's identity token ${src.file}`, {
      cause: err,
      hint: 'point svid at the JWT-SVID file the SPIFFE helper keeps (for a dev server: writ dev svid --agent ID > FILE)',
    });
  }
}

/** What the token endpoint answers (RFC 8693 §2.2.1). */
export interface TokenResponse {
  access_token: string;
  issued_token_type: string;
  token_type: string;
  expires_in: number;
  scope: string;
}

export interface ExchangeOptions {
  /** writ's base URL. */
  url: string;
  /** The task to act under. */
  task: string;
  /** The agent's identity token: a string, `{file}` (read again at each exchange), or a function. */
  identity: IdentitySource;
  /** Bind the token to this key (DPoP). */
  dpop?: DPoPKey;
  /** RFC 8707 resource the token is for (one enforcement point only). */
  resource?: string;
  fetch: typeof fetch;
}

/** POST /oauth2/token: the agent's identity exchanged for a task token. */
export async function exchangeToken(o: ExchangeOptions): Promise<{ response: TokenResponse; token: TaskToken }> {
  const url = `${o.url}/oauth2/token`;
  const form = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: await identityToken(o.identity),
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    scope: `task:${o.task}`,
  });
  if (o.resource) {
    form.set('resource', o.resource);
  }
  const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
  if (o.dpop) {
    headers.DPoP = await o.dpop.proof('POST', url);
  }
  let resp: Response;
  try {
    resp = await o.fetch(url, { method: 'POST', headers, body: form.toString() });
  } catch (err) {
    throw new WritError(`cannot reach writ at ${o.url}`, { cause: err, hint: 'check WRIT_URL and that writ server is running' });
  }
  const text = await resp.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text);
  } catch {
    // Left empty: the status says what went wrong.
  }
  if (!resp.ok) {
    const code = String(body.error ?? `http_${resp.status}`);
    const detail = String(body.error_description ?? body.detail ?? text.slice(0, 200));
    const hint =
      code === 'invalid_grant'
        ? `the task must be active and name this agent; check it with writ task get ${o.task}`
        : code === 'invalid_dpop_proof'
          ? 'the DPoP proof was refused: check the clock, and that the URL writ is reached at is its public_url'
          : 'see docs/credentials.md, Errors';
    throw new WritError(`writ refused the token exchange for task ${o.task}: ${code}: ${detail}`, {
      status: resp.status,
      code,
      detail,
      hint,
    });
  }
  const response = body as unknown as TokenResponse;
  const token = taskToken(response.access_token);
  token.dpop = response.token_type === 'DPoP';
  if (token.expiresAt === undefined && response.expires_in > 0) {
    token.expiresAt = new Date(Date.now() + response.expires_in * 1000);
  }
  return { response, token };
}

/**
 * A token the SDK exchanges itself, and exchanges again when two thirds of
 * its life have passed or writ refuses it as expired. Concurrent callers
 * share one exchange.
 */
export class ExchangedToken implements TokenSource {
  readonly #o: ExchangeOptions;
  #tok: TaskToken | undefined;
  #renewAt = 0;
  #pending: Promise<TaskToken> | undefined;

  constructor(o: ExchangeOptions) {
    this.#o = o;
  }

  current(): TaskToken | Promise<TaskToken> {
    if (this.#tok !== undefined && Date.now() < this.#renewAt) {
      return this.#tok;
    }
    return this.#exchange();
  }

  renew(refused: TaskToken): Promise<TaskToken> {
    if (this.#tok !== undefined && this.#tok.token !== refused.token) {
      return Promise.resolve(this.#tok);
    }
    return this.#exchange();
  }

  #exchange(): Promise<TaskToken> {
    this.#pending ??= exchangeToken(this.#o)
      .then(({ response, token }) => {
        const life = Math.max(response.expires_in, 1) * 1000;
        this.#tok = token;
        this.#renewAt = Date.now() + (life * 2) / 3;
        return token;
      })
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }
}
