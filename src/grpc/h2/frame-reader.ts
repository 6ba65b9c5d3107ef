/**
 * The input side of an HTTP/2 connection: checks that the bytes begin with
 * the client preface, then cuts them into frames and hands each one, as
 * (type, flags, stream id, payload), to the connection, which alone knows
 * what a frame means. The frames of one read are views of it, not copies;
 * only a frame split across reads is gathered into a buffer of its own.
 */
import { CLIENT_PREFACE, FRAME_HEADER_BYTES } from './frames.js';

/** Where a FrameReader sends what it reads. */
export interface FrameHandler {
  /** A whole frame; its payload is a view of the input. Returns whether to go on reading (false once the connection has closed). */
  frame(type: number, flags: number, streamId: number, payload: Buffer): boolean;
  /** The input does not begin with the client preface. */
  notHttp2(): void;
  /** A frame header announced a payload past the reader's limit: nothing more of this input is read. */
  frameTooLarge(length: number): void;
}

export class FrameReader {
  private prefaceDone = false;
  // Input short of a whole frame (or of the preface), copied into one buffer of
  // the size needed: a frame dripped a byte per read holds one buffer, not
  // one per read (nor the reads' memory).
  private partial: Buffer | null = null;
  private buffered = 0;
  private needed = CLIENT_PREFACE.length;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly handler: FrameHandler,
  ) {}

  /** Whether the whole client preface has arrived. */
  get prefaceRead(): boolean {
    return this.prefaceDone;
  }

  /** Reads one chunk of the socket's input: every frame it completes goes to the handler, in order. */
  read(chunk: Buffer): void {
    if (!this.prefaceDone && !this.continuesPreface(chunk)) return this.handler.notHttp2();
    let input = chunk;
    if (this.buffered > 0 || chunk.length < this.needed) {
      this.keep(chunk);
      if (this.buffered < this.needed) return;
      input = (this.partial as Buffer).subarray(0, this.buffered);
      this.partial = null;
      this.buffered = 0;
    }
    let at = 0;
    if (!this.prefaceDone) {
      this.prefaceDone = true;
      at = CLIENT_PREFACE.length;
    }
    for (;;) {
      if (input.length - at < FRAME_HEADER_BYTES) {
        this.needed = FRAME_HEADER_BYTES;
        break;
      }
      const length = (input[at]! << 16) | (input[at + 1]! << 8) | input[at + 2]!;
      if (length > this.maxFrameBytes) return this.handler.frameTooLarge(length);
      if (input.length - at < FRAME_HEADER_BYTES + length) {
        this.needed = FRAME_HEADER_BYTES + length;
        break;
      }
      const type = input[at + 3]!;
      const flags = input[at + 4]!;
      const streamId = input.readUInt32BE(at + 5) & 0x7fffffff;
      const payload = input.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length);
      at += FRAME_HEADER_BYTES + length;
      if (!this.handler.frame(type, flags, streamId, payload)) return;
    }
    if (at < input.length) this.keep(input.subarray(at));
  }

  /** Appends input short of `needed` to the partial buffer, which grows to at least `needed`. */
  private keep(bytes: Buffer): void {
    const size = this.buffered + bytes.length;
    if (!this.partial || this.partial.length < size) {
      const grown = Buffer.allocUnsafe(Math.max(this.needed, size));
      this.partial?.copy(grown, 0, 0, this.buffered);
      this.partial = grown;
    }
    bytes.copy(this.partial, this.buffered);
    this.buffered = size;
  }

  /**
   * Whether `chunk` goes on with the preface where the bytes before it left
   * off. Checked as bytes arrive, not once 24 are there: a short HTTP/1.1
   * request ("GET / HTTP/1.1" and a blank line) would wait for them forever.
   */
  private continuesPreface(chunk: Buffer): boolean {
    const expected = CLIENT_PREFACE.subarray(this.buffered, this.buffered + chunk.length);
    return chunk.subarray(0, expected.length).equals(expected);
  }
}
