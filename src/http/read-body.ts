/**
 * Reading request bodies from uWebSockets.js: chunks are copied as they
 * arrive (uWS reuses their memory), straight into one buffer when the length
 * is declared; the size is bounded, and a body that arrives too slowly is
 * refused and its connection closed.
 *
 * `alignAt` places the body so that its byte at that offset (where Triton's
 * binary tensors begin, after the JSON header) is 8-byte aligned in memory:
 * the tensors can then be viewed in place instead of copied out.
 *
 * `borrow` is for a caller that copies what it keeps while it runs (a JSON
 * body parsed at once): a body that arrives in one chunk, as small ones do,
 * is then handed over in uWS's own memory, without a copy. `shared` reads a
 * body of declared length into pooled shared memory, for tensors that the
 * workers then read where they are; the caller gives it back with
 * `release` once its request is answered. A body sent compressed (`coding`)
 * is read whole, then handed over inflated (content-coding.ts), and none of
 * these three apply to it.
 *
 * Slow bodies are found by one sweep per reader rather than a timer per
 * request: a request costs two set operations instead of a timer. A body is
 * timed from the first sweep that sees it, so one read within a sweep's
 * interval (as nearly all are) never reads the clock; a slow one is refused
 * at most two intervals (of an eighth of the limit, up to a second) past it.
 */
import { WeirError } from '../errors.js';
import { nativeAddon } from '../native/addon.js';
import { SharedBufferPool } from '../tensors/shared-buffers.js';
import { type ContentCoding, decompressBody } from './content-coding.js';
import { type Exchange, sendError } from './respond.js';

/** memcpy: V8 copies into shared memory byte by byte unless source and target are aligned alike. */
const copyBytes = (target: Uint8Array, offset: number, source: ArrayBuffer) => nativeAddon().copyBytes(target, offset, source);

export interface BodyLimits {
  maxBodyBytes: number;
  bodyTimeoutMs: number;
}

export interface ReadOptions {
  alignAt?: number;
  borrow?: boolean;
  shared?: boolean;
  /** The body's Content-Encoding: anything but identity is inflated before `onBody` sees it. */
  coding?: ContentCoding;
}

/** Called with the whole body; a `borrowed` one is valid only during the call. */
export type OnBody = (body: Uint8Array, borrowed: boolean) => void;

interface Reading {
  ex: Exchange;
  /** When a sweep first saw the body arriving; NaN before that. */
  seenAt: number;
  received: number;
  /** Forgets the body: the request failed or went away before it was read. */
  dropped: () => void;
}

export class BodyReader {
  private readonly reading = new Set<Reading>();
  private sweeper: NodeJS.Timeout | null = null;
  private readonly sharedBodies = new SharedBufferPool();

  constructor(private readonly limits: BodyLimits) {}

  /** Gives back a body read with `shared`, once nothing refers to it any more. */
  release(body: Uint8Array): void {
    this.sharedBodies.release(body);
  }

  /** Calls `onBody` with the whole body, or answers the error itself and never calls it. */
  read(ex: Exchange, contentLength: string, onBody: OnBody, options: ReadOptions = {}): void {
    const { maxBodyBytes } = this.limits;
    const coding = options.coding ?? 'identity';
    // What the caller gets of a compressed body is zlib's buffer, not the one read here.
    const { alignAt = 0, borrow = false, shared = false } = coding === 'identity' ? options : {};
    const declared = /^\d+$/.test(contentLength) ? Number(contentLength) : -1;
    if (declared > maxBodyBytes) {
      sendError(ex, new WeirError('WEIR_BODY_TOO_LARGE', `the body's ${declared} bytes exceed the limit of ${maxBodyBytes}`), true);
      return;
    }
    const pad = (8 - (Math.abs(alignAt) % 8)) % 8;
    // With a declared length the chunks land in place; otherwise they are kept and joined at the end.
    let into: Uint8Array | null = null;
    let chunks: Uint8Array[] | null = null;
    // A body that never reaches the caller goes back to the pool here, once:
    // chunks may still arrive after a failure, and by then another request may hold the buffer.
    const dropped = () => {
      this.reading.delete(state);
      if (into) this.release(into);
      into = null;
    };
    const state: Reading = { ex, seenAt: Number.NaN, received: 0, dropped };
    this.watch(state);
    const finish = (body: Uint8Array, borrowed: boolean) => {
      // The body is the caller's now: nothing here may give it back, even if onBody throws.
      this.reading.delete(state);
      ex.onAbort = null;
      into = null;
      if (coding === 'identity') {
        onBody(body, borrowed);
        return;
      }
      decompressBody(body, coding, maxBodyBytes).then(
        (plain) => {
          if (!ex.done) onBody(plain, false); // the client may have left while it inflated
        },
        (error: unknown) => sendError(ex, error),
      );
    };
    const receive = (chunk: ArrayBuffer, isLast: boolean) => {
      if (ex.done) {
        dropped();
        return;
      }
      const bytes = new Uint8Array(chunk);
      const size = state.received + bytes.byteLength;
      if (size > (declared >= 0 ? declared : maxBodyBytes)) {
        this.fail(state, new WeirError('WEIR_BODY_TOO_LARGE', `the body exceeds ${declared >= 0 ? `its declared ${declared} bytes` : `the limit of ${maxBodyBytes} bytes`}`));
        return;
      }
      if (borrow && isLast && state.received === 0) {
        finish(bytes, true);
        return;
      }
      if (declared >= 0) {
        if (shared) {
          into ??= this.sharedBodies.take(pad + declared);
          copyBytes(into, pad + state.received, chunk);
        } else {
          into ??= new Uint8Array(pad + declared);
          into.set(bytes, pad + state.received);
        }
      } else {
        (chunks ??= []).push(bytes.slice());
      }
      state.received = size;
      if (!isLast) return;
      finish(into ? into.subarray(pad, pad + size) : join(chunks ?? [], pad, size), false);
    };
    ex.onAbort = dropped;
    ex.res.onData((chunk, isLast) => {
      try {
        receive(chunk, isLast);
      } catch (error) {
        // A throw here would escape into uWS and take the process down.
        this.fail(state, new WeirError('WEIR_INTERNAL', `reading the body failed: ${(error as Error).message}`));
      }
    });
  }

  private watch(state: Reading): void {
    this.reading.add(state);
    if (this.sweeper) return;
    const every = Math.min(1000, Math.max(10, this.limits.bodyTimeoutMs / 8));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  /** Runs while bodies are arriving; stops itself when none are. */
  private sweep(): void {
    if (this.reading.size === 0) {
      if (this.sweeper) clearInterval(this.sweeper);
      this.sweeper = null;
      return;
    }
    const { bodyTimeoutMs } = this.limits;
    const now = performance.now();
    for (const state of this.reading) {
      if (Number.isNaN(state.seenAt)) state.seenAt = now;
      if (now - state.seenAt < bodyTimeoutMs) continue;
      this.fail(state, new WeirError('WEIR_BODY_TIMEOUT', `the body did not arrive within ${bodyTimeoutMs} ms (${state.received} bytes received)`));
    }
  }

  /** The connection is dropped after these errors: the rest of the body is not wanted. */
  private fail(state: Reading, error: WeirError): void {
    state.dropped();
    state.ex.onAbort = null;
    sendError(state.ex, error, true);
  }
}

function join(chunks: readonly Uint8Array[], pad: number, size: number): Uint8Array {
  const joined = new Uint8Array(pad + size);
  let offset = pad;
  for (const part of chunks) {
    joined.set(part, offset);
    offset += part.byteLength;
  }
  return joined.subarray(pad);
}
