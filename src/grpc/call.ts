/**
 * One gRPC call on an HTTP/2 stream (the gRPC over HTTP/2 protocol): the
 * length-prefixed messages read from its DATA, the answer's headers,
 * messages and trailers, and the status, which is sent as trailers, or
 * alone ("trailers-only") when nothing was answered before it.
 */
import { GrpcStatus } from '../errors.js';
import { inflateBounded, isPastLimit } from '../inflate.js';
import type { H2Stream, StreamListener } from './h2/connection.js';
import { encodeHeaderBlock } from './h2/hpack.js';

/** Each message is prefixed with a compressed flag and a 4-byte length. */
const PREFIX_BYTES = 5;
/** Messages up to this size are copied behind their prefix (one DATA frame); larger ones follow it. */
const JOIN_MESSAGE_BYTES = 64 * 1024;
/** grpc-message is cut to this many characters, encoded: it must fit in a header list every client accepts. */
const MAX_STATUS_MESSAGE_CHARS = 2048;

/** Compressions a request's messages may use (its grpc-encoding). Answers go uncompressed, which every client reads. */
export const REQUEST_ENCODINGS = ['identity', 'gzip', 'deflate'] as const;
export type RequestEncoding = (typeof REQUEST_ENCODINGS)[number];

const RESPONSE_HEADERS = encodeHeaderBlock([
  [':status', '200'],
  ['content-type', 'application/grpc'],
  ['grpc-accept-encoding', REQUEST_ENCODINGS.join(',')],
]);
const OK_TRAILERS = encodeHeaderBlock([['grpc-status', '0']]);

/** A piece of a message that spans frames starts with room for this much, then doubles as it comes. */
const FIRST_PIECE_BYTES = 64 * 1024;
/** A message that arrives whole in one read is kept as a view of it, unless the read is larger than twice it and this. */
const VIEW_SLACK_BYTES = 64 * 1024;

/**
 * The request bytes one connection's calls may hold at once: messages being
 * assembled, decompressed ones, and unary requests waiting for the client
 * to end its side. Without it, 1000 streams each holding a message short
 * of its end (or a small gzip message that inflates to the message limit)
 * would hold 1000 times the message limit.
 */
export class RequestBudget {
  held = 0;
  /** The connection's decompressions, run one after another: each may fill the room left. */
  private decompressions: Promise<unknown> = Promise.resolve();

  constructor(readonly limit: number) {}

  /** Runs `task` once the connection's earlier decompressions have finished. */
  inTurn<T>(task: () => Promise<T>): Promise<T> {
    const turn = this.decompressions.then(task);
    this.decompressions = turn.catch(() => {});
    return turn;
  }
}

/** A call's status: code 0 (OK) or an error with its message. */
export interface CallStatus {
  code: number;
  details: string;
}

/** What the owner of a call hears: each message, the client's end of its side, and a cancellation. */
export interface CallEvents {
  message(bytes: Buffer): void;
  end(): void;
  cancelled(): void;
}

/**
 * grpc-message's encoding: percent-encoded UTF-8 outside printable ASCII
 * (and '%' itself), cut whole characters at a time to MAX_STATUS_MESSAGE_CHARS
 * once encoded: a client's header list limit applies to what is sent (8 KiB
 * in some), and a cut inside a character fails its percent-decoding.
 */
export function encodeStatusMessage(message: string): string {
  let encoded = '';
  for (const character of message) {
    let piece = '';
    const code = character.codePointAt(0) as number;
    if (code >= 0x20 && code <= 0x7e && code !== 0x25) piece = character;
    else for (const byte of Buffer.from(character, 'utf8')) piece += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    if (encoded.length + piece.length > MAX_STATUS_MESSAGE_CHARS) break;
    encoded += piece;
  }
  return encoded;
}

function statusFields({ code, details }: CallStatus): Array<[string, string]> {
  const fields: Array<[string, string]> = [['grpc-status', String(code)]];
  if (details) fields.push(['grpc-message', encodeStatusMessage(details)]);
  return fields;
}

/** A status alone, as the whole answer: HTTP 200, the gRPC content type and the status. */
export function trailersOnly(status: CallStatus): Buffer {
  return encodeHeaderBlock([[':status', '200'], ['content-type', 'application/grpc'], ...statusFields(status)]);
}

export class Call implements StreamListener {
  /** Set once the status is sent (or the stream lost): nothing more is written. */
  finished = false;
  cancelled = false;
  private headersSent = false;
  // Message assembly: a prefix split across frames (rare: most are read where
  // they arrive), the message's size once known (-1: reading a prefix), and,
  // for a message that spans frames, its own buffer.
  private prefix: Buffer | null = null;
  private prefixRead = 0;
  private expected = -1;
  private message: Buffer | null = null;
  private filled = 0;
  /** The bytes this call counts in its connection's budget. */
  private heldBytes = 0;
  /** Whether the message being read is compressed (its prefix's flag). */
  private compressed = false;
  private events: CallEvents | null = null;
  /**
   * What waits behind a message being decompressed (off the event loop):
   * the messages after it and the client's end, handed on in order. Null
   * when nothing waits, and messages are handed on as they arrive.
   */
  private queue: Promise<unknown> | null = null;
  private queued = 0;

  constructor(
    readonly stream: H2Stream,
    /** When the client's deadline passes, in performance.now() milliseconds; Infinity without one. */
    readonly deadline: number,
    private readonly maxMessageBytes: number,
    private readonly budget: RequestBudget,
    /** A unary call keeps its request (counted) until the client ends its side; a stream hands each one on. */
    private readonly unary: boolean,
    private readonly encoding: RequestEncoding = 'identity',
  ) {}

  /** Starts delivering events (messages that arrived before are not kept: the owner listens from the start). */
  listen(events: CallEvents): void {
    this.events = events;
  }

  /** Milliseconds left before the deadline; undefined without one. */
  remainingMs(): number | undefined {
    return Number.isFinite(this.deadline) ? Math.max(0, this.deadline - performance.now()) : undefined;
  }

  /** Sends one message (the response headers first, if not yet sent). */
  send(message: Uint8Array): void {
    if (this.finished) return;
    if (message.byteLength > this.maxMessageBytes) {
      this.finish({
        code: GrpcStatus.RESOURCE_EXHAUSTED,
        details: `the response message of ${message.byteLength} bytes is past the server's limit of ${this.maxMessageBytes} bytes (--grpc-max-message-mb)`,
      });
      return;
    }
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.respond(RESPONSE_HEADERS);
    }
    const length = message.byteLength;
    if (length <= JOIN_MESSAGE_BYTES) {
      const framed = Buffer.allocUnsafe(PREFIX_BYTES + length);
      framed[0] = 0;
      framed.writeUInt32BE(length, 1);
      framed.set(message, PREFIX_BYTES);
      this.stream.write(framed);
      return;
    }
    const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
    prefix[0] = 0;
    prefix.writeUInt32BE(length, 1);
    this.stream.write(prefix);
    this.stream.write(message);
  }

  /** Ends the call with its status. */
  finish(status: CallStatus): void {
    if (this.finished) return;
    this.finished = true;
    this.message = null;
    this.release();
    if (!this.headersSent) this.stream.respond(trailersOnly(status), true);
    else this.stream.end(status.code === GrpcStatus.OK ? OK_TRAILERS : encodeHeaderBlock(statusFields(status)));
  }

  /** Ends the call with `status` and tells its owner it is cancelled (a deadline that passed). */
  cancel(status: CallStatus): void {
    if (this.finished) return;
    this.finish(status);
    this.cancelled = true;
    this.events?.cancelled();
  }

  // StreamListener: the HTTP/2 stream's events, turned into messages.

  data(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.finished) {
      if (this.expected < 0) {
        if (this.prefixRead === 0 && chunk.length - at >= PREFIX_BYTES) {
          if (!this.readPrefix(chunk, at)) return;
          at += PREFIX_BYTES;
        } else {
          // A prefix split across frames is gathered first.
          this.prefix ??= Buffer.allocUnsafe(PREFIX_BYTES);
          const take = Math.min(PREFIX_BYTES - this.prefixRead, chunk.length - at);
          chunk.copy(this.prefix, this.prefixRead, at, at + take);
          this.prefixRead += take;
          at += take;
          if (this.prefixRead < PREFIX_BYTES) return;
          this.prefixRead = 0;
          if (!this.readPrefix(this.prefix, 0)) return;
        }
        if (this.expected === 0) {
          // An empty message (ServerLive's request) may be the last thing in the frame.
          this.expected = -1;
          this.deliver(Buffer.alloc(0));
          continue;
        }
        if (chunk.length - at >= this.expected) {
          // Whole in this frame: a view, unless it would keep a far larger read alive.
          const view = chunk.subarray(at, at + this.expected);
          at += this.expected;
          this.expected = -1;
          this.deliver(view.buffer.byteLength > 2 * view.length + VIEW_SLACK_BYTES ? Buffer.from(view) : view);
          continue;
        }
        if (!this.hold(Math.min(this.expected, FIRST_PIECE_BYTES))) return;
        this.message = Buffer.allocUnsafe(Math.min(this.expected, FIRST_PIECE_BYTES));
        this.filled = 0;
      }
      at = this.fill(chunk, at);
    }
  }

  end(): void {
    if (this.finished) return;
    if (this.expected >= 0 || this.prefixRead > 0) {
      this.finish({ code: GrpcStatus.INTERNAL, details: 'the request ended inside a message' });
      return;
    }
    const ended = () => {
      if (this.finished) return; // a message queued before it failed
      // The unary request goes on to be answered: it no longer waits here.
      this.release();
      this.events?.end();
    };
    if (this.queue) this.inOrder(ended);
    else ended();
  }

  reset(): void {
    this.cancelled = true;
    this.message = null;
    this.release();
    if (this.finished) return;
    this.finished = true;
    this.events?.cancelled();
  }

  /** The prefix at `bytes[at]`: its compressed flag and length, checked; false when the call failed on them. */
  private readPrefix(bytes: Buffer, at: number): boolean {
    const flag = bytes[at] as number;
    if (flag > 1 || (flag === 1 && this.encoding === 'identity')) {
      const details = flag > 1 ? `a message prefix with compressed flag ${flag}; expected 0 or 1` : "a compressed message, but the call's grpc-encoding is identity";
      this.finish({ code: GrpcStatus.INTERNAL, details });
      return false;
    }
    this.compressed = flag === 1;
    this.expected = bytes.readUInt32BE(at + 1);
    if (this.expected <= this.maxMessageBytes) return true;
    this.finish({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      details: `a request message of ${this.expected} bytes is past the server's limit of ${this.maxMessageBytes} bytes (--grpc-max-message-mb)`,
    });
    return false;
  }

  /** Copies what `chunk` holds of the message spanning frames into its buffer (grown by doubling); returns where it stopped. */
  private fill(chunk: Buffer, at: number): number {
    let message = this.message as Buffer;
    const take = Math.min(this.expected - this.filled, chunk.length - at);
    if (this.filled + take > message.length) {
      const size = Math.min(this.expected, Math.max(2 * message.length, this.filled + take));
      if (!this.hold(size - message.length)) return chunk.length;
      const grown = Buffer.allocUnsafe(size);
      message.copy(grown, 0, 0, this.filled);
      message = this.message = grown;
    }
    chunk.copy(message, this.filled, at, at + take);
    this.filled += take;
    if (this.filled === this.expected) {
      this.message = null;
      this.expected = -1;
      this.deliver(message);
    }
    return at + take;
  }

  /**
   * Hands a whole message on. One that came compressed is decompressed on
   * libuv's thread pool (never past the message limit or the budget), and
   * what follows it waits, so that the call's messages keep their order.
   */
  private deliver(bytes: Buffer): void {
    if (!this.compressed && this.queue === null) {
      this.release(); // what was held to assemble it
      this.handOn(bytes);
      return;
    }
    // The bytes held to assemble this message are its own now: the next message's are counted apart.
    const held = this.heldBytes;
    this.heldBytes = 0;
    const message = this.compressed ? this.budget.inTurn(() => this.decompress(bytes)) : Promise.resolve(bytes);
    message.catch(() => {}); // its failure is handled in its turn below
    this.inOrder(() =>
      message.then(
        (plain) => {
          this.budget.held -= held;
          if (!this.finished) this.handOn(plain);
        },
        (status: CallStatus) => {
          this.budget.held -= held;
          this.finish(status);
        },
      ),
    );
  }

  /**
   * Runs `step` after everything that waits already (each step looks for
   * itself whether the call finished meanwhile). What a step throws fails
   * the call, as it would have thrown into the connection's read.
   */
  private inOrder(step: () => unknown): void {
    this.queued += 1;
    this.queue = (this.queue ?? Promise.resolve())
      .then(step)
      .catch((error: unknown) => this.finish({ code: GrpcStatus.INTERNAL, details: `handling a request message failed: ${(error as Error)?.message ?? String(error)}` }))
      .finally(() => {
        this.queued -= 1;
        if (this.queued === 0) this.queue = null;
      });
  }

  /** Gives a whole message to the call's owner; a unary request stays counted until the client ends its side. */
  private handOn(message: Buffer): void {
    if (this.unary && !this.hold(message.length)) return;
    this.events?.message(message);
  }

  /** The message inflated (src/inflate.ts), or the status that refuses it. */
  private decompress(bytes: Buffer): Promise<Buffer> {
    const room = this.budget.limit - this.budget.held;
    const encoding = this.encoding as Exclude<RequestEncoding, 'identity'>;
    return inflateBounded(bytes, encoding, Math.min(this.maxMessageBytes, room)).catch((error: Error): never => {
      if (!isPastLimit(error)) throw { code: GrpcStatus.INTERNAL, details: `a ${encoding} message that cannot be decompressed: ${error.message}` } satisfies CallStatus;
      const details = room < this.maxMessageBytes ? this.budgetExceeded() : `a request message decompresses past the server's limit of ${this.maxMessageBytes} bytes (--grpc-max-message-mb)`;
      throw { code: GrpcStatus.RESOURCE_EXHAUSTED, details } satisfies CallStatus;
    });
  }

  /** Counts `bytes` more in the connection's budget; past it, fails the call and returns false. */
  private hold(bytes: number): boolean {
    if (this.budget.held + bytes > this.budget.limit) {
      this.finish({ code: GrpcStatus.RESOURCE_EXHAUSTED, details: this.budgetExceeded() });
      return false;
    }
    this.budget.held += bytes;
    this.heldBytes += bytes;
    return true;
  }

  private release(): void {
    this.budget.held -= this.heldBytes;
    this.heldBytes = 0;
  }

  private budgetExceeded(): string {
    return `this connection's unfinished requests would hold more than ${this.budget.limit} bytes; send fewer large requests at once, or raise --grpc-max-message-mb`;
  }
}
