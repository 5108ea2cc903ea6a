// W3C Trace Context: writ records the trace-id of a request's traceparent
// with its decision, so that the agent's own traces and writ's evidence
// join up.

import { randomBytes } from 'node:crypto';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/** Whether s is a version-00 traceparent with non-zero IDs. */
export function validTraceparent(s: string | undefined): s is string {
  const m = s === undefined ? null : TRACEPARENT.exec(s);
  return m !== null && !/^0+$/.test(m[1]) && !/^0+$/.test(m[2]);
}

/** A traceparent that starts a new trace (sampled). */
export function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}

/** The trace-id of a traceparent. */
export function traceId(traceparent: string): string {
  return traceparent.slice(3, 35);
}

/**
 * Where the traceparent of a call comes from: a fixed value, a function
 * (read the active span of your tracer here), or nothing. An invalid value
 * is not sent.
 */
export type TraceSource = string | (() => string | undefined) | undefined;

export function traceparentOf(src: TraceSource): string | undefined {
  const v = typeof src === 'function' ? src() : src;
  return validTraceparent(v) ? v : undefined;
}
