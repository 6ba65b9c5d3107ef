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

/** Told of the whole body; a `borrowed` one is valid only during the call. */
export interface BodyListener {
  onBody(body: Uint8Array, borrowed: boolean): void;
}

export class BodyReader {
  private readonly reading = new Set<BodyRead>();
  private sweeper: NodeJS.Timeout | null = null;
  private readonly sharedBodies = new SharedBufferPool();

  constructor(readonly limits: BodyLimits) {}

  /** Gives back a body read with `shared`, once nothing refers to it any more. */
  release(body: Uint8Array): void {
    this.sharedBodies.release(body);
  }

  /** Tells `listener` the whole body, or answers the error itself and never tells it. */
  read(ex: Exchange, contentLength: string, listener: BodyListener, options: ReadOptions = {}): void {
    const { maxBodyBytes } = this.limits;
    const declared = /^\d+$/.test(contentLength) ? Number(contentLength) : -1;
    if (declared > maxBodyBytes) {
      sendError(ex, new WeirError('WEIR_BODY_TOO_LARGE', `the body's ${declared} bytes exceed the limit of ${maxBodyBytes}`), true);
      return;
    }
    const read = new BodyRead(this, ex, declared, listener, options);
    this.watch(read);
    ex.onAbort = read;
    ex.res.onData((chunk, isLast) => {
      try {
        read.receive(chunk, isLast);
      } catch (error) {
        // A throw here would escape into uWS and take the process down.
        read.fail(new WeirError('WEIR_INTERNAL', `reading the body failed: ${(error as Error).message}`));
      }
    });
  }

  /** Pooled shared memory for a body (given back with `release`). */
  takeShared(bytes: number): Uint8Array {
    return this.sharedBodies.take(bytes);
  }

  /** A read is over: the sweep stops timing it. */
  forget(read: BodyRead): void {
    this.reading.delete(read);
  }

  private watch(read: BodyRead): void {
    this.reading.add(read);
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
    for (const read of this.reading) {
      if (Number.isNaN(read.seenAt)) read.seenAt = now;
      if (now - read.seenAt < bodyTimeoutMs) continue;
      read.fail(new WeirError('WEIR_BODY_TIMEOUT', `the body did not arrive within ${bodyTimeoutMs} ms (${read.received} bytes received)`));
    }
  }
}

/** One body being read, one object for all it needs (a closure per step was garbage on every request). */
class BodyRead {
  /** When a sweep first saw the body arriving; NaN before that. */
  seenAt = Number.NaN;
  received = 0;
  /** With a declared length the chunks land in place; otherwise they are kept and joined at the end. */
  private into: Uint8Array | null = null;
  private chunks: Uint8Array[] | null = null;
  private readonly coding: ContentCoding;
  private readonly pad: number;
  private readonly borrow: boolean;
  private readonly shared: boolean;

  constructor(
    private readonly reader: BodyReader,
    private readonly ex: Exchange,
    private readonly declared: number,
    private readonly listener: BodyListener,
    options: ReadOptions,
  ) {
    this.coding = options.coding ?? 'identity';
    // What the listener gets of a compressed body is zlib's buffer, not the one read here.
    const identity = this.coding === 'identity';
    this.pad = identity ? (8 - (Math.abs(options.alignAt ?? 0) % 8)) % 8 : 0;
    this.borrow = identity && options.borrow === true;
    this.shared = identity && options.shared === true;
  }

  /**
   * Forgets the body: the request failed or went away before it was read.
   * Chunks may still arrive after a failure, and by then another request may
   * hold a pooled buffer: it goes back here, once.
   */
  drop(): void {
    this.reader.forget(this);
    if (this.into) this.reader.release(this.into);
    this.into = null;
  }

  /** The client went away (Exchange.onAbort). */
  aborted(): void {
    this.drop();
  }

  /** The connection is dropped after these errors: the rest of the body is not wanted. */
  fail(error: WeirError): void {
    this.drop();
    this.ex.onAbort = null;
    sendError(this.ex, error, true);
  }

  receive(chunk: ArrayBuffer, isLast: boolean): void {
    const { ex, declared, pad } = this;
    if (ex.done) {
      this.drop();
      return;
    }
    const bytes = new Uint8Array(chunk);
    const size = this.received + bytes.byteLength;
    const { maxBodyBytes } = this.reader.limits;
    if (size > (declared >= 0 ? declared : maxBodyBytes)) {
      this.fail(new WeirError('WEIR_BODY_TOO_LARGE', `the body exceeds ${declared >= 0 ? `its declared ${declared} bytes` : `the limit of ${maxBodyBytes} bytes`}`));
      return;
    }
    if (this.borrow && isLast && this.received === 0) {
      this.finish(bytes, true);
      return;
    }
    if (declared >= 0) {
      if (this.shared) {
        this.into ??= this.reader.takeShared(pad + declared);
        copyBytes(this.into, pad + this.received, chunk);
      } else {
        this.into ??= new Uint8Array(pad + declared);
        this.into.set(bytes, pad + this.received);
      }
    } else {
      (this.chunks ??= []).push(bytes.slice());
    }
    this.received = size;
    if (!isLast) return;
    this.finish(this.into ? this.into.subarray(pad, pad + size) : join(this.chunks ?? [], pad, size), false);
  }

  private finish(body: Uint8Array, borrowed: boolean): void {
    // The body is the listener's now: nothing here may give it back, even if onBody throws.
    const { ex, listener, coding } = this;
    this.reader.forget(this);
    ex.onAbort = null;
    this.into = null;
    if (coding === 'identity') {
      listener.onBody(body, borrowed);
      return;
    }
    decompressBody(body, coding, this.reader.limits.maxBodyBytes).then(
      (plain) => {
        if (!ex.done) listener.onBody(plain, false); // the client may have left while it inflated
      },
      (error: unknown) => sendError(ex, error),
    );
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
