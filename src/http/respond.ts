/**
 * Writing responses on uWebSockets.js: once per request, never after the
 * client went away, corked into one write, and with backpressure for bodies
 * larger than the socket takes at once.
 */
import { STATUS_CODES } from 'node:http';

import { ERRORS, toWeirError } from '../errors.js';
import type { HttpResponse } from './uws.js';

/** What a handler knows about its response beyond uWS's object. */
export interface Exchange {
  res: HttpResponse;
  /** Set when the client disconnected or a response was already sent. */
  done: boolean;
  /** Set when the client disconnected: the core then drops the request if it still waits (a Cancellation). */
  cancelled: boolean;
  /** Called if the client disconnects before the response. */
  onAbort: (() => void) | null;
}

const statusLines = new Map<number, string>();
function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (!line) statusLines.set(status, (line = `${status} ${STATUS_CODES[status] ?? ''}`.trim()));
  return line;
}

/** Starts watching for the client going away; must be called before any await. */
export function exchange(res: HttpResponse): Exchange {
  const ex: Exchange = { res, done: false, cancelled: false, onAbort: null };
  res.onAborted(() => {
    ex.done = true;
    ex.cancelled = true;
    ex.onAbort?.();
  });
  return ex;
}

export type Headers = Readonly<Record<string, string>>;

/**
 * Headers written on many responses, encoded once: uWS reads bytes where it
 * is given them, but converts a string to UTF-8 (an allocation) on every call.
 */
export class EncodedHeaders {
  readonly pairs: ReadonlyArray<readonly [Buffer, Buffer]>;

  constructor(headers: Headers) {
    this.pairs = Object.entries(headers).map(([name, value]) => [Buffer.from(name), Buffer.from(value)] as const);
  }
}

export const JSON_HEADERS = new EncodedHeaders({ 'Content-Type': 'application/json' });
/** For a refusal the client may retry (a full queue, a server stopping). */
const RETRY_JSON_HEADERS = new EncodedHeaders({ 'Content-Type': 'application/json', 'Retry-After': '1' });

/**
 * Sends a response once. A body in parts (a JSON header and binary tensors,
 * say) is written part after part from where each lies, with no joined
 * copy. `closeConnection`: drop the connection after this response (a
 * client that misbehaved).
 */
export function send(
  ex: Exchange,
  status: number,
  body: string | Uint8Array | readonly Uint8Array[],
  headers: Headers | EncodedHeaders = {},
  closeConnection = false,
): void {
  if (ex.done) return;
  ex.done = true;
  const { res } = ex;
  res.cork(() => {
    if (status !== 200) res.writeStatus(statusLine(status)); // uWS writes 200 OK by default
    if (headers instanceof EncodedHeaders) for (const [name, value] of headers.pairs) res.writeHeader(name, value);
    else for (const name in headers) res.writeHeader(name, headers[name] as string);
    if (typeof body === 'string') {
      res.end(body, closeConnection);
      return;
    }
    const parts = ArrayBuffer.isView(body) ? [body] : body;
    const total = parts.reduce((sum, part) => sum + part.byteLength, 0);
    if (total === 0) {
      res.end(undefined, closeConnection);
      return;
    }
    // Large bodies go out as the socket drains: each call resumes where the socket stopped taking bytes.
    let index = 0;
    let partStart = res.getWriteOffset();
    const writeMore = (): boolean => {
      for (; index < parts.length; index++) {
        const part = parts[index] as Uint8Array;
        const [ok, done] = res.tryEnd(part.subarray(res.getWriteOffset() - partStart), total);
        if (done) return true;
        if (!ok) return false;
        partStart += part.byteLength;
      }
      return true;
    };
    if (!writeMore()) res.onWritable(writeMore);
  });
}

export function sendJson(ex: Exchange, status: number, value: unknown): void {
  send(ex, status, JSON.stringify(value), JSON_HEADERS);
}

/** `{"error": message}` with the status the error table gives its code. */
export function sendError(ex: Exchange, error: unknown, closeConnection = false): void {
  const { code, message } = toWeirError(error);
  const retry = code === 'WEIR_QUEUE_FULL' || code === 'WEIR_SERVER_STOPPING';
  send(ex, ERRORS[code].http, JSON.stringify({ error: message }), retry ? RETRY_JSON_HEADERS : JSON_HEADERS, closeConnection);
}
