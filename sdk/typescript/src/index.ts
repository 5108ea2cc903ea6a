// writ for TypeScript agents: task tokens (from writ exec, a file, or an
// exchange of the agent's JWT-SVID, optionally DPoP-bound), the decision
// API (authorize, recordResult, step-up status) and guard(), which turns a
// tool function into authorize → run → record. MCP helpers are in
// '@writhq/writ/mcp'.

export {
  Writ,
  type Call,
  type CallOptions,
  type Decision,
  type GuardSpec,
  type Recorded,
  type Result,
  type StepUpStatus,
  type WritOptions,
} from './client.js';
export { DPoPKey, type PublicJWK } from './dpop.js';
export {
  ApprovalDeniedError,
  ApprovalRequiredError,
  type CallName,
  DeniedError,
  TokenError,
  TokenExpiredError,
  WritError,
} from './errors.js';
export {
  ExchangedToken,
  type ExchangeOptions,
  exchangeToken,
  FileToken,
  type IdentitySource,
  StaticToken,
  type TaskToken,
  taskToken,
  type TokenResponse,
  type TokenSource,
} from './token.js';
export { newTraceparent, type TraceSource, traceId, validTraceparent } from './trace.js';
export { agentsErrorFunction, writToolError } from './frameworks.js';
