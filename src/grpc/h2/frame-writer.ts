/**
 * The output side of an HTTP/2 connection: every frame written in one turn
 * of the event loop leaves in one socket write, not one write per frame; and
 * a client that leaves its answers unread is not read from until they
 * drain, so that what waits on it stays bounded.
 */
import type { Socket } from 'node:net';

/** Frames written in one turn up to this size are joined into one buffer; past it they are written as they are. */
const JOIN_WRITES_BYTES = 64 * 1024;
/**
 * Past this much written but not yet sent (a client that does not read),
 * the connection stops reading until the socket drains: everything it
 * writes (answers, resets, PING acks) is caused by what it reads.
 */
const MAX_UNSENT_BYTES = 8 * 1024 * 1024;

export class FrameWriter {
  // Frames written this turn, flushed together.
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;

  constructor(private readonly socket: Socket) {}

  /** Queues bytes (a frame, or part of one) for this turn's socket write. */
  write(bytes: Uint8Array): void {
    this.queued.push(bytes);
    this.queuedBytes += bytes.byteLength;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // After the microtasks of this turn: the answers to one batch leave in one write.
    process.nextTick(() => this.flush());
  }

  /** Writes what is queued now, rather than at the end of the turn: before the socket is ended. */
  flush(): void {
    this.flushScheduled = false;
    if (this.queued.length === 0 || this.socket.destroyed) {
      this.queued = [];
      this.queuedBytes = 0;
      return;
    }
    const queued = this.queued;
    const bytes = this.queuedBytes;
    this.queued = [];
    this.queuedBytes = 0;
    if (queued.length === 1) this.socket.write(queued[0] as Uint8Array);
    else if (bytes <= JOIN_WRITES_BYTES) this.socket.write(Buffer.concat(queued, bytes));
    else {
      this.socket.cork();
      for (const part of queued) this.socket.write(part);
      this.socket.uncork();
    }
    if (this.socket.writableLength > MAX_UNSENT_BYTES && !this.socket.isPaused()) {
      this.socket.pause();
      this.socket.once('drain', () => this.socket.resume());
    }
  }
}
