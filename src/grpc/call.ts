/**
 * One gRPC call on an HTTP/2 stream (the gRPC over HTTP/2 protocol): the
 * length-prefixed messages read from its DATA, the answer's headers,
 * messages and trailers, and the status, which is sent as trailers, or
 * alone ("trailers-only") when nothing was answered before it.
 */
import { gunzipSync, inflateSync } from 'node:zlib';

import { GrpcStatus } from '../errors.js';
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
  // Message assembly: chunks of the message being read, and its expected size (-1: reading a prefix).
  private chunks: Buffer[] = [];
  private buffered = 0;
  private expected = -1;
  /** Whether the message being read is compressed (its prefix's flag). */
  private compressed = false;
  private events: CallEvents | null = null;

  constructor(
    readonly stream: H2Stream,
    /** When the client's deadline passes, in performance.now() milliseconds; Infinity without one. */
    readonly deadline: number,
    private readonly maxMessageBytes: number,
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
    if (this.finished) return;
    let at = 0;
    while (at < chunk.length && !this.finished) {
      if (this.expected < 0) {
        // Reading a prefix; it may itself be split across frames.
        const take = Math.min(PREFIX_BYTES - this.buffered, chunk.length - at);
        this.chunks.push(chunk.subarray(at, at + take));
        this.buffered += take;
        at += take;
        if (this.buffered < PREFIX_BYTES) return;
        const prefix = this.take();
        const flag = prefix[0] as number;
        if (flag > 1 || (flag === 1 && this.encoding === 'identity')) {
          const details = flag > 1 ? `a message prefix with compressed flag ${flag}; expected 0 or 1` : "a compressed message, but the call's grpc-encoding is identity";
          this.finish({ code: GrpcStatus.INTERNAL, details });
          return;
        }
        this.compressed = flag === 1;
        this.expected = prefix.readUInt32BE(1);
        if (this.expected > this.maxMessageBytes) {
          this.finish({
            code: GrpcStatus.RESOURCE_EXHAUSTED,
            details: `a request message of ${this.expected} bytes is past the server's limit of ${this.maxMessageBytes} bytes (--grpc-max-message-mb)`,
          });
          return;
        }
        if (this.expected === 0) {
          // An empty message (ServerLive's request) may be the last thing in the frame.
          this.expected = -1;
          this.deliver(Buffer.alloc(0));
          continue;
        }
      }
      const take = Math.min(this.expected - this.buffered, chunk.length - at);
      this.chunks.push(chunk.subarray(at, at + take));
      this.buffered += take;
      at += take;
      if (this.buffered === this.expected) {
        this.expected = -1;
        this.deliver(this.take());
      }
    }
  }

  end(): void {
    if (this.finished) return;
    if (this.expected >= 0 || this.buffered > 0) {
      this.finish({ code: GrpcStatus.INTERNAL, details: 'the request ended inside a message' });
      return;
    }
    this.events?.end();
  }

  reset(): void {
    this.cancelled = true;
    if (this.finished) return;
    this.finished = true;
    this.events?.cancelled();
  }

  /** Hands a whole message on, decompressed first if it came compressed (never past the message limit). */
  private deliver(bytes: Buffer): void {
    if (!this.compressed) {
      this.events?.message(bytes);
      return;
    }
    let message: Buffer;
    try {
      const options = { maxOutputLength: this.maxMessageBytes };
      message = this.encoding === 'gzip' ? gunzipSync(bytes, options) : inflateSync(bytes, options);
    } catch (error) {
      const tooLarge = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      this.finish(
        tooLarge
          ? { code: GrpcStatus.RESOURCE_EXHAUSTED, details: `a request message decompresses past the server's limit of ${this.maxMessageBytes} bytes (--grpc-max-message-mb)` }
          : { code: GrpcStatus.INTERNAL, details: `a ${this.encoding} message that cannot be decompressed: ${(error as Error).message}` },
      );
      return;
    }
    this.events?.message(message);
  }

  /** What was buffered, as one buffer (a view when it arrived in one piece). */
  private take(): Buffer {
    const whole = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    return whole;
  }
}
