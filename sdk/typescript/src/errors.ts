// Errors the SDK throws. Each says what happened and what to do about it;
// callers that need the data (a decision ID, reasons, an approval ID) read
// it from the typed fields rather than from the message.

/** Any error answered by writ, or met on the way to it. */
export class WritError extends Error {
  /** HTTP status, when writ answered (0 when it could not be reached). */
  readonly status: number;
  /** writ's stable error code (docs/errors.md), such as `invalid_token`. */
  readonly code: string;
  /** writ's own sentence, when it gave one. */
  readonly detail: string;
  /** What to do about it. */
  readonly hint: string;

  constructor(message: string, opts: { status?: number; code?: string; detail?: string; hint?: string; cause?: unknown } = {}) {
    super(opts.hint ? `${message}; ${opts.hint}` : message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'WritError';
    this.status = opts.status ?? 0;
    this.code = opts.code ?? '';
    this.detail = opts.detail ?? '';
    this.hint = opts.hint ?? '';
  }
}

/** The task token was refused (401): malformed, revoked, for another resource, its task ended. */
export class TokenError extends WritError {
  constructor(message: string, opts: ConstructorParameters<typeof WritError>[1] = {}) {
    super(message, opts);
    this.name = 'TokenError';
  }
}

/** The task token has expired: renew it. */
export class TokenExpiredError extends TokenError {
  /** When the token expired. */
  readonly expiredAt: Date | undefined;

  constructor(message: string, expiredAt: Date | undefined, opts: ConstructorParameters<typeof WritError>[1] = {}) {
    super(message, opts);
    this.name = 'TokenExpiredError';
    this.expiredAt = expiredAt;
  }
}

/** What a call was, as the errors about it name it. */
export interface CallName {
  tool: string;
  operation: string;
  resource: string;
}

/** Policy denied the call (403). Nothing ran. */
export class DeniedError extends WritError {
  readonly decisionId: string;
  readonly reasons: string[];
  readonly call: CallName;

  constructor(call: CallName, decisionId: string, reasons: string[], message?: string) {
    const why = reasons.length > 0 ? reasons.join('; ') : 'no reason given';
    super(message ?? `writ denied ${call.tool} (${call.operation} ${call.resource}): ${why} (decision ${decisionId})`, {
      status: 403,
      code: 'denied',
    });
    this.name = 'DeniedError';
    this.decisionId = decisionId;
    this.reasons = reasons;
    this.call = call;
  }
}

/** Where an approver decides a step-up. */
export function approveWhere(baseURL: string, approvalId: string): string {
  return `an approver runs 'writ approve ${approvalId}' or decides it in the console at ${baseURL}/ui/inbox`;
}

/**
 * The call needs a step-up approval that has not been given (yet): not
 * waited for, or not within the wait. Nothing ran. Retrying exactly the same
 * call once it is approved lets it through, once.
 */
export class ApprovalRequiredError extends DeniedError {
  readonly approvalId: string;
  /** Where an approver decides it: the CLI command and the console page. */
  readonly approveAt: string;

  constructor(call: CallName, decisionId: string, reasons: string[], approvalId: string, baseURL: string, waited?: number) {
    const why = reasons.length > 0 ? reasons.join('; ') : 'policy requires an approval';
    const state = waited === undefined ? 'needs' : `was not approved within ${Math.round(waited / 1000)}s; it still needs`;
    super(call, decisionId, reasons,
      `writ: ${call.tool} (${call.operation} ${call.resource}) ${state} step-up approval ${approvalId}: ${why} ` +
        `(decision ${decisionId}); ${approveWhere(baseURL, approvalId)}, then retry the same call`);
    this.name = 'ApprovalRequiredError';
    this.approvalId = approvalId;
    this.approveAt = approveWhere(baseURL, approvalId);
  }
}

/** An approver denied the step-up (or it expired undecided). Nothing ran. */
export class ApprovalDeniedError extends DeniedError {
  readonly approvalId: string;
  /** `denied` or `expired`. */
  readonly approvalStatus: string;

  constructor(call: CallName, decisionId: string, approvalId: string, status: string, reason: string) {
    const why = status === 'denied' ? `denied by an approver${reason ? `: ${reason}` : ''}` : 'expired before an approver decided it';
    super(call, decisionId, reason ? [reason] : [],
      `writ: step-up approval ${approvalId} for ${call.tool} (${call.operation} ${call.resource}) was ${why} (decision ${decisionId})`);
    this.name = 'ApprovalDeniedError';
    this.approvalId = approvalId;
    this.approvalStatus = status;
  }
}
