// What agent frameworks show the model when a guarded tool is refused.
// guard() needs no adapter to sit inside a framework's tool (it keeps the
// function's signature); what differs is how a framework turns a thrown
// error into the tool result the model reads. Some pass the message on
// (the Vercel AI SDK, LangChain); the OpenAI Agents SDK hides it behind a
// generic text unless given an error function, which is below.

import { WritError } from './errors.js';

/**
 * The text the model should read for an error of a guarded tool: writ's
 * message for a refusal (the reasons and decision ID of a denial; the
 * approval ID and where to approve for a step-up), undefined for any
 * other error, which stays the framework's business.
 */
export function writToolError(err: unknown): string | undefined {
  return err instanceof WritError ? err.message : undefined;
}

/**
 * An `errorFunction` for the OpenAI Agents SDK's `tool()`: a writ refusal
 * reaches the model as writ's message, so that it can tell the user why
 * (or ask for the approval); other errors keep the SDK's generic text.
 */
export function agentsErrorFunction(_context: unknown, err: unknown): string {
  return writToolError(err) ?? 'An error occurred while running the tool. Please try again.';
}
