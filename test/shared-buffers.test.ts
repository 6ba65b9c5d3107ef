import { describe, expect, it } from 'vitest';

import { SharedBufferPool } from '../dist/tensors/shared-buffers.js';

describe('SharedBufferPool', () => {
  it('lends shared memory of the size asked for, from power-of-two classes of at least 4 KiB', () => {
    const pool = new SharedBufferPool();
    const small = pool.take(100);
    expect(small.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(small.byteLength).toBe(100);
    expect(small.buffer.byteLength).toBe(4096);
    expect(pool.take(5000).buffer.byteLength).toBe(8192);
    expect(pool.take(8192).buffer.byteLength).toBe(8192);
  });

  it('reuses a released buffer for the next request of its class, and never lends one twice', () => {
    const pool = new SharedBufferPool();
    const first = pool.take(3000);
    pool.release(first);
    expect(pool.retainedBytes).toBe(4096);
    const second = pool.take(4000);
    expect(second.buffer).toBe(first.buffer);
    expect(pool.retainedBytes).toBe(0);

    // Released twice: kept once, so two later takes get two different buffers.
    pool.release(second);
    pool.release(second);
    expect(pool.retainedBytes).toBe(4096);
    expect(pool.take(10).buffer).not.toBe(pool.take(10).buffer);
  });

  it('ignores what it did not lend, and keeps no more free bytes than its bound', () => {
    const pool = new SharedBufferPool({ maxFreeBytes: 8192 });
    pool.release(new Uint8Array(new SharedArrayBuffer(4096)));
    pool.release(new Uint8Array(4096));
    expect(pool.retainedBytes).toBe(0);
    const lent = [pool.take(4096), pool.take(4096), pool.take(4096)];
    for (const view of lent) pool.release(view);
    expect(pool.retainedBytes).toBe(8192);
  });

  it('does not keep a buffer larger than maxKeptBuffer', () => {
    const pool = new SharedBufferPool({ maxKeptBuffer: 8192 });
    pool.release(pool.take(8192));
    const large = pool.take(8193);
    expect(large.buffer.byteLength).toBe(8193); // not rounded up: it will not be reused
    pool.release(large);
    expect(pool.retainedBytes).toBe(8192);
  });
});
