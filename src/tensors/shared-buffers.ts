/**
 * Reusable shared memory for tensors on their way to the workers. A worker
 * reads a SharedArrayBuffer where it is (no copy, no transfer), and a buffer
 * handed back after its request is answered serves the next one: under load
 * the front end then allocates no memory per request for tensor bytes, which
 * otherwise drives V8 into a full garbage collection every few dozen
 * megabytes of ArrayBuffers.
 *
 * Buffers come in power-of-two size classes. Free buffers are kept up to a
 * total, and only up to a size: one huge request must not pin its memory
 * for good. A buffer is lent once at a time: releasing one that is not lent
 * (twice, or never taken) does nothing.
 */
const SMALLEST_CLASS = 4096;

export interface SharedBufferPoolOptions {
  /** Free bytes kept for reuse, over all classes (default 64 MiB). */
  maxFreeBytes?: number;
  /** Larger buffers are lent but not kept once released (default 4 MiB). */
  maxKeptBuffer?: number;
}

export class SharedBufferPool {
  private readonly free = new Map<number, SharedArrayBuffer[]>();
  private readonly lent = new WeakSet<SharedArrayBuffer>();
  private freeBytes = 0;
  private readonly maxFreeBytes: number;
  private readonly maxKeptBuffer: number;

  constructor(options: SharedBufferPoolOptions = {}) {
    this.maxFreeBytes = options.maxFreeBytes ?? 64 * 1024 * 1024;
    this.maxKeptBuffer = options.maxKeptBuffer ?? 4 * 1024 * 1024;
  }

  /** `bytes` bytes of shared memory (contents undefined) until `release`. */
  take(bytes: number): Uint8Array {
    // Buffers too large to keep are never reused: no rounding up for them.
    const size = bytes > this.maxKeptBuffer ? bytes : classOf(bytes);
    let buffer = this.free.get(size)?.pop();
    if (buffer) this.freeBytes -= size;
    else buffer = new SharedArrayBuffer(size);
    this.lent.add(buffer);
    return new Uint8Array(buffer, 0, bytes);
  }

  /** Gives back what `take` lent, for reuse; anything else is ignored. */
  release(view: Uint8Array): void {
    const buffer = view.buffer;
    if (!(buffer instanceof SharedArrayBuffer) || !this.lent.has(buffer)) return;
    this.lent.delete(buffer);
    if (buffer.byteLength > this.maxKeptBuffer || this.freeBytes + buffer.byteLength > this.maxFreeBytes) return;
    let list = this.free.get(buffer.byteLength);
    if (!list) this.free.set(buffer.byteLength, (list = []));
    list.push(buffer);
    this.freeBytes += buffer.byteLength;
  }

  /** Bytes kept free for reuse. */
  get retainedBytes(): number {
    return this.freeBytes;
  }
}

function classOf(bytes: number): number {
  return Math.max(SMALLEST_CLASS, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
}
