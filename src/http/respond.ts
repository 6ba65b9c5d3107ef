/**
 * Writing responses on uWebSockets.js: once per request, never after the
 * client went away, corked into one write, and with backpressure for bodies
 * larger than the socket takes at once. Successful answers of
 * COMPRESS_FROM_BYTES or more are compressed for clients that accept it.
 */
import { STATUS_CODES } from 'node:http';

import { ERRORS, toWeirError } from '../errors.js';
import { type ContentCoding, answerCoding, compressBody } from './content-coding.js';
import type { HttpRequest, HttpResponse } from './uws.js';

/** What a handler knows about its response beyond uWS's object. */
export interface Exchange {
  res: HttpResponse;
  /** Set when the client disconnected or a response was already sent. */
  done: boolean;
  /** Set when the client disconnected: the core then drops the request if it still waits (a Cancellation). */
  cancelled: boolean;
  /** Told if the client disconnects before the response. */
  onAbort: { aborted(): void } | null;
  /** How the client accepts its answer to be compressed (its Accept-Encoding). */
  coding: ContentCoding;
  /** Set once the answer is wholly handed to the socket, or the client went away. */
  settled: boolean;
  readonly owner: Exchanges;
}

/** Smaller answers go uncompressed: zlib's round trip would cost more than the bytes it saves. */
export const COMPRESS_FROM_BYTES = 1024;

const ACCEPT_ENCODING = Buffer.from('accept-encoding');

const statusLines = new Map<number, string>();
function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (!line) statusLines.set(status, (line = `${status} ${STATUS_CODES[status] ?? ''}`.trim()));
  return line;
}

/**
 * The exchanges of one server, counted from the request until the last byte
 * of its answer is handed to the socket (or the client goes away), so that
 * a server that stops can wait for answers still being encoded, compressed
 * or drained to a slow reader.
 */
export class Exchanges {
  private open = 0;
  private waiters: Array<() => void> = [];

  /** Starts watching for the client going away; must be called before any await (uWS's `req` lives only until then). */
  start(res: HttpResponse, req: HttpRequest): Exchange {
    const ex: Exchange = { res, done: false, cancelled: false, onAbort: null, coding: answerCoding(req.getHeader(ACCEPT_ENCODING)), settled: false, owner: this };
    this.open += 1;
    res.onAborted(() => {
      ex.done = true;
      ex.cancelled = true;
      ex.onAbort?.aborted();
      settle(ex);
    });
    return ex;
  }

  /** Resolves once every exchange started so far is settled. */
  settled(): Promise<void> {
    return this.open === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  /** One exchange settled (settle() calls it once per exchange). */
  ended(): void {
    this.open -= 1;
    if (this.open === 0) for (const resolve of this.waiters.splice(0)) resolve();
  }
}

function settle(ex: Exchange): void {
  if (ex.settled) return;
  ex.settled = true;
  ex.owner.ended();
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
const CODING_HEADERS: Record<Exclude<ContentCoding, 'identity'>, EncodedHeaders> = {
  gzip: new EncodedHeaders({ 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' }),
  deflate: new EncodedHeaders({ 'Content-Encoding': 'deflate', Vary: 'Accept-Encoding' }),
};
/** For a refusal the client may retry (a full queue, a server stopping). */
const RETRY_JSON_HEADERS = new EncodedHeaders({ 'Content-Type': 'application/json', 'Retry-After': '1' });

/**
 * Sends a response once. A body in parts (a JSON header and binary tensors,
 * say) is written part after part from where each lies, with no joined
 * copy (compressed, as zlib's chunks). `closeConnection`: drop the
 * connection after this response (a client that misbehaved).
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
  const { coding } = ex;
  if (coding === 'identity' || status !== 200 || byteLengthOf(body) < COMPRESS_FROM_BYTES) {
    write(ex, status, body, headers, null, closeConnection);
    return;
  }
  const parts = typeof body === 'string' ? [Buffer.from(body, 'utf8')] : ArrayBuffer.isView(body) ? [body] : body;
  compressBody(parts, coding).then(
    (compressed) => write(ex, status, compressed, headers, CODING_HEADERS[coding], closeConnection),
    // zlib failing on our own answer: it still goes out, as it is.
    () => write(ex, status, body, headers, null, closeConnection),
  );
}

const byteLengthOf = (body: string | Uint8Array | readonly Uint8Array[]): number =>
  typeof body === 'string'
    ? body.length // a lower bound (UTF-16 units): enough to tell a small answer
    : ArrayBuffer.isView(body)
      ? body.byteLength
      : body.reduce((sum, part) => sum + part.byteLength, 0);

/** Writes the answer unless the client has gone (uWS must not be touched then); the exchange settles once it is all out. */
function write(
  ex: Exchange,
  status: number,
  body: string | Uint8Array | readonly Uint8Array[],
  headers: Headers | EncodedHeaders,
  codingHeaders: EncodedHeaders | null,
  closeConnection: boolean,
): void {
  if (ex.cancelled) return;
  const { res } = ex;
  res.cork(() => {
    if (status !== 200) res.writeStatus(statusLine(status)); // uWS writes 200 OK by default
    if (headers instanceof EncodedHeaders) for (const [name, value] of headers.pairs) res.writeHeader(name, value);
    else for (const name in headers) res.writeHeader(name, headers[name] as string);
    if (codingHeaders) for (const [name, value] of codingHeaders.pairs) res.writeHeader(name, value);
    if (typeof body === 'string') {
      res.end(body, closeConnection);
      settle(ex);
      return;
    }
    const parts = ArrayBuffer.isView(body) ? [body] : body;
    const total = parts.reduce((sum, part) => sum + part.byteLength, 0);
    if (total === 0) {
      res.end(undefined, closeConnection);
      settle(ex);
      return;
    }
    // Large bodies go out as the socket drains: each call resumes where the socket stopped taking bytes.
    let index = 0;
    let partStart = res.getWriteOffset();
    const writeMore = (): boolean => {
      for (; index < parts.length; index++) {
        const part = parts[index] as Uint8Array;
        const [ok, done] = res.tryEnd(part.subarray(res.getWriteOffset() - partStart), total);
        if (done) break;
        if (!ok) return false;
        partStart += part.byteLength;
      }
      settle(ex);
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
