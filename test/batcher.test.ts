/**
 * The dynamic batcher over the real worker pool and real ONNX Runtime
 * sessions. What reaches the pool is recorded on its way, so the tests see
 * exactly which batches were formed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Batcher, type BatchingPolicy } from '../dist/batching/batcher.js';
import { nativeAddon } from '../dist/native/addon.js';
import type { Tensor } from '../dist/tensors/tensor.js';
import { WorkerPool } from '../dist/workers/pool.js';
import type { RunTask } from '../dist/workers/task.js';
import { buildModel, identityModel, node, slowModel, tensorInitializer, valueInfo } from '../scripts/onnx-builder.mjs';

const addon = nativeAddon();
let pool: WorkerPool;
let dir: string;

const IDENTITY = 'batcher-identity';
const SLOW = 'batcher-slow';
const GATHER = 'batcher-gather';

const sessionOptions = { intraOpThreads: 1, interOpThreads: 1, graphOptimization: 'all', executionProvider: 'cpu', deviceId: 0, cpuFallback: false } as const;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weir-batcher-'));
  const models: Record<string, Uint8Array> = {
    [IDENTITY]: identityModel('FP32', ['N', 'M']),
    [SLOW]: slowModel(64),
    // out = data[idx]: an index past the table breaks the operator, not the signature.
    [GATHER]: buildModel({
      graphName: 'gather',
      inputs: [valueInfo('idx', 'INT64', ['N'])],
      outputs: [valueInfo('out', 'FP32', ['N', 2])],
      initializers: [tensorInitializer('table', 'FP32', [4, 2], Float32Array.of(0, 1, 10, 11, 20, 21, 30, 31))],
      nodes: [node('Gather', ['table', 'idx'], ['out'], { axis: 0 })],
    }),
  };
  for (const [key, bytes] of Object.entries(models)) {
    await writeFile(join(dir, `${key}.onnx`), bytes);
    await addon.loadSession(key, join(dir, `${key}.onnx`), sessionOptions);
  }
  pool = new WorkerPool({ workers: 2 });
});

afterAll(async () => {
  await pool.close();
  for (const key of [IDENTITY, SLOW, GATHER]) addon.releaseSession(key);
  await rm(dir, { recursive: true, force: true });
});

/** A batcher over the real pool that records the batches it sends. */
function batcherFor(key: string, policy: Partial<BatchingPolicy>) {
  const sent: RunTask[] = [];
  const batcher = new Batcher(
    key,
    { maxBatchSize: 8, merge: true, rowShapesVary: true, preferredBatchSizes: [], maxQueueDelayMicroseconds: 0, maxQueueSize: 100, concurrency: 1, ...policy },
    (task, deadline, cancellation) => {
      sent.push({ ...task, inputs: task.inputs.map((t) => ({ ...t, shape: [...t.shape] })) });
      return pool.run(task, deadline, cancellation);
    },
  );
  return { batcher, sent };
}

const later = () => performance.now() + 60_000;
const rowsOf = (task: RunTask) => task.inputs[0]?.shape[0];

function fp32(rows: number, width: number, start: number): Tensor {
  return { name: 'x', datatype: 'FP32', shape: [rows, width], data: Float32Array.from({ length: rows * width }, (_, i) => start + i) };
}

describe('forming batches', () => {
  it('merges requests that arrive together, up to max_batch_size rows, and gives each its own rows back', async () => {
    const { batcher, sent } = batcherFor(IDENTITY, { maxBatchSize: 8 });
    const requests = [1, 3, 2, 2, 4].map((rows, i) => fp32(rows, 2, i * 100));
    const expected = requests.map((t) => Array.from(t.data as Float32Array));
    const results = await Promise.all(requests.map((x) => batcher.submit({ inputs: [x], deadline: later() })));
    results.forEach((result, i) => {
      expect(result.outputs[0]?.shape).toEqual([requests[i]?.shape[0], 2]);
      expect(Array.from(result.outputs[0]?.data as Float32Array)).toEqual(expected[i]);
    });
    // 1+3+2+2 = 8 rows fill the first batch; the 4-row request goes in the next.
    expect(sent.map(rowsOf)).toEqual([8, 4]);
  });

  it('flushes at the preferred size without waiting out the queue delay', async () => {
    const { batcher, sent } = batcherFor(IDENTITY, { maxBatchSize: 8, preferredBatchSizes: [4], maxQueueDelayMicroseconds: 5_000_000 });
    const started = performance.now();
    await Promise.all([0, 1, 2, 3].map((i) => batcher.submit({ inputs: [fp32(1, 2, i)], deadline: later() })));
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(sent.map(rowsOf)).toEqual([4]);
  });

  it('runs a lone request once the oldest has waited max_queue_delay, not before', async () => {
    const { batcher, sent } = batcherFor(IDENTITY, { maxBatchSize: 8, maxQueueDelayMicroseconds: 30_000 });
    const started = performance.now();
    await batcher.submit({ inputs: [fp32(1, 2, 0)], deadline: later() });
    expect(performance.now() - started).toBeGreaterThanOrEqual(29);
    expect(sent.map(rowsOf)).toEqual([1]);
  });

  it('never merges requests whose non-batch dimensions or requested outputs differ', async () => {
    const { batcher, sent } = batcherFor(IDENTITY, { maxBatchSize: 8 });
    await Promise.all([
      batcher.submit({ inputs: [fp32(1, 2, 0)], deadline: later() }),
      batcher.submit({ inputs: [fp32(1, 3, 0)], deadline: later() }),
      batcher.submit({ inputs: [fp32(1, 2, 5)], deadline: later() }),
      batcher.submit({ inputs: [fp32(1, 2, 9)], outputs: ['y'], deadline: later() }),
    ]);
    expect(sent.map((t) => [t.inputs[0]?.shape, t.outputs ?? null])).toEqual([
      [[2, 2], null],
      [[1, 3], null],
      [[1, 2], ['y']],
    ]);
  });

  it('with merging off (max_batch_size 0 or no dynamic batching), runs every request as a batch of its own', async () => {
    const { batcher, sent } = batcherFor(IDENTITY, { maxBatchSize: 0, merge: false });
    await Promise.all([0, 1, 2].map((i) => batcher.submit({ inputs: [fp32(1, 2, i)], deadline: later() })));
    expect(sent.map(rowsOf)).toEqual([1, 1, 1]);
  });

  it('accumulates requests while the version runs a batch, and sends them together next', async () => {
    const { batcher, sent } = batcherFor(SLOW, { maxBatchSize: 64, concurrency: 1 });
    const x = (rows: number) => ({ name: 'x', datatype: 'FP32' as const, shape: [rows, 256], data: new Float32Array(rows * 256) });
    const first = batcher.submit({ inputs: [x(32)], deadline: later() });
    await new Promise((resolve) => setImmediate(resolve)); // the first batch is on its way
    const rest = [1, 2, 3].map((rows) => batcher.submit({ inputs: [x(rows)], deadline: later() }));
    await Promise.all([first, ...rest]);
    expect(sent.map(rowsOf)).toEqual([32, 6]);
  });
});

describe('limits', () => {
  it('refuses at once, WEIR_QUEUE_FULL, when max_queue_size requests wait', async () => {
    const { batcher } = batcherFor(SLOW, { maxBatchSize: 1, maxQueueSize: 2, concurrency: 1 });
    const x = () => ({ name: 'x', datatype: 'FP32' as const, shape: [1, 256], data: new Float32Array(256) });
    const running = batcher.submit({ inputs: [x()], deadline: later() });
    await new Promise((resolve) => setImmediate(resolve));
    const waiting = [batcher.submit({ inputs: [x()], deadline: later() }), batcher.submit({ inputs: [x()], deadline: later() })];
    await expect(batcher.submit({ inputs: [x()], deadline: later() })).rejects.toMatchObject({
      code: 'WEIR_QUEUE_FULL',
      message: expect.stringContaining('2 requests waiting'),
    });
    await Promise.all([running, ...waiting]);
  });

  it('answers a request that waited past its deadline with WEIR_REQUEST_TIMEOUT and never runs it', async () => {
    const { batcher, sent } = batcherFor(SLOW, { maxBatchSize: 2000, concurrency: 1 });
    const x = (rows: number) => ({ name: 'x', datatype: 'FP32' as const, shape: [rows, 256], data: new Float32Array(rows * 256) });
    const slow = batcher.submit({ inputs: [x(1500)], deadline: later() }); // keeps the version busy
    await new Promise((resolve) => setImmediate(resolve));
    const started = performance.now();
    const late = batcher.submit({ inputs: [x(7)], deadline: performance.now() + 20 });
    await expect(late).rejects.toMatchObject({ code: 'WEIR_REQUEST_TIMEOUT', message: expect.stringContaining('was not run') });
    expect(performance.now() - started).toBeLessThan(1_000); // answered at its deadline, not when the slot freed (seconds later)
    await slow;
    expect(sent.map(rowsOf)).toEqual([1500]);
  });

  it('without merging, a request still waiting for a worker at its deadline is refused, not run', async () => {
    const { batcher } = batcherFor(SLOW, { maxBatchSize: 2000, merge: false });
    const x = (rows: number) => ({ name: 'x', datatype: 'FP32' as const, shape: [rows, 256], data: new Float32Array(rows * 256) });
    await Promise.all([1, 1].map((rows) => batcher.submit({ inputs: [x(rows)], deadline: later() }))); // both workers up
    const busy = [1500, 1500].map((rows) => batcher.submit({ inputs: [x(rows)], deadline: later() }));
    await new Promise((resolve) => setImmediate(resolve)); // the pool dispatches them, one per worker
    const late = batcher.submit({ inputs: [x(3)], deadline: performance.now() + 20 });
    await expect(late).rejects.toMatchObject({ code: 'WEIR_REQUEST_TIMEOUT', message: expect.stringContaining('was not run') });
    await Promise.all(busy);
  });

  it('drops a request whose client went away while it waited (WEIR_REQUEST_CANCELLED) and never runs it', async () => {
    const { batcher, sent } = batcherFor(SLOW, { maxBatchSize: 2000, concurrency: 1 });
    const x = (rows: number) => ({ name: 'x', datatype: 'FP32' as const, shape: [rows, 256], data: new Float32Array(rows * 256) });
    const slow = batcher.submit({ inputs: [x(1500)], deadline: later() }); // keeps the version busy
    await new Promise((resolve) => setImmediate(resolve));
    const gone = { cancelled: false };
    const cancelled = batcher.submit({ inputs: [x(5)], deadline: later(), cancellation: gone });
    const kept = batcher.submit({ inputs: [x(7)], deadline: later(), cancellation: { cancelled: false } });
    gone.cancelled = true;
    await expect(cancelled).rejects.toMatchObject({ code: 'WEIR_REQUEST_CANCELLED', message: expect.stringContaining('was not run') });
    expect((await kept).outputs[0]?.shape).toEqual([7, 256]);
    await slow;
    expect(sent.map(rowsOf)).toEqual([1500, 7]);
  });

  it('makes room in a full queue by dropping requests whose clients went away', async () => {
    const { batcher, sent } = batcherFor(SLOW, { maxBatchSize: 1, maxQueueSize: 1, concurrency: 1 });
    const x = () => ({ name: 'x', datatype: 'FP32' as const, shape: [1, 256], data: new Float32Array(256) });
    const running = batcher.submit({ inputs: [x()], deadline: later() });
    await new Promise((resolve) => setImmediate(resolve));
    const gone = { cancelled: false };
    const abandoned = batcher.submit({ inputs: [x()], deadline: later(), cancellation: gone });
    await expect(batcher.submit({ inputs: [x()], deadline: later() })).rejects.toMatchObject({ code: 'WEIR_QUEUE_FULL' });
    gone.cancelled = true;
    const admitted = batcher.submit({ inputs: [x()], deadline: later() });
    await expect(abandoned).rejects.toMatchObject({ code: 'WEIR_REQUEST_CANCELLED' });
    await Promise.all([running, admitted]);
    expect(sent.map(rowsOf)).toEqual([1, 1]);
  });

  it('enqueue: a full queue refuses before it returns, once; a queued request resolves once, later', async () => {
    const { batcher } = batcherFor(SLOW, { maxBatchSize: 1, maxQueueSize: 1, concurrency: 1 });
    const x = () => ({ name: 'x', datatype: 'FP32' as const, shape: [1, 256], data: new Float32Array(256) });
    const running = batcher.submit({ inputs: [x()], deadline: later() });
    await new Promise((resolve) => setImmediate(resolve));
    const calls: string[] = [];
    const reply = (name: string) => ({ resolve: () => calls.push(`${name} resolved`), reject: (error: Error) => calls.push(`${name} ${(error as Error & { code: string }).code}`) });
    batcher.enqueue({ inputs: [x()], deadline: later() }, reply('queued'));
    batcher.enqueue({ inputs: [x()], deadline: later() }, reply('over'));
    expect(calls).toEqual(['over WEIR_QUEUE_FULL']);
    await running;
    for (let i = 0; i < 250 && calls.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 20)); // and nothing more comes
    expect(calls).toEqual(['over WEIR_QUEUE_FULL', 'queued resolved']);
  });

  it('without merging, a request whose client went away while it waited for a worker is refused, not run', async () => {
    const { batcher } = batcherFor(SLOW, { maxBatchSize: 2000, merge: false });
    const x = (rows: number) => ({ name: 'x', datatype: 'FP32' as const, shape: [rows, 256], data: new Float32Array(rows * 256) });
    await Promise.all([1, 1].map((rows) => batcher.submit({ inputs: [x(rows)], deadline: later() }))); // both workers up
    const busy = [1500, 1500].map((rows) => batcher.submit({ inputs: [x(rows)], deadline: later() }));
    await new Promise((resolve) => setImmediate(resolve)); // the pool dispatches them, one per worker
    const gone = { cancelled: false };
    const waiting = batcher.submit({ inputs: [x(3)], deadline: later(), cancellation: gone });
    gone.cancelled = true;
    await expect(waiting).rejects.toMatchObject({ code: 'WEIR_REQUEST_CANCELLED', message: expect.stringContaining('waited for a worker') });
    await Promise.all(busy);
  });

  it('stop() refuses what waits and what comes later, with the reason given', async () => {
    const { batcher } = batcherFor(IDENTITY, { maxQueueDelayMicroseconds: 10_000_000 });
    const waiting = batcher.submit({ inputs: [fp32(1, 2, 0)], deadline: later() });
    const reason = Object.assign(new Error('version unloaded'), { code: 'WEIR_MODEL_UNAVAILABLE' });
    batcher.stop(reason as never);
    await expect(waiting).rejects.toBe(reason);
    await expect(batcher.submit({ inputs: [fp32(1, 2, 0)], deadline: later() })).rejects.toBe(reason);
  });
});

describe('one bad request in a batch', () => {
  it('re-runs the batch request by request, so that only the culprit gets the error', async () => {
    const { batcher, sent } = batcherFor(GATHER, { maxBatchSize: 8 });
    const idx = (...values: bigint[]) => ({ name: 'idx', datatype: 'INT64' as const, shape: [values.length], data: BigInt64Array.from(values) });
    const [good, bad, alsoGood] = await Promise.allSettled([
      batcher.submit({ inputs: [idx(1n, 2n)], deadline: later() }),
      batcher.submit({ inputs: [idx(99n)], deadline: later() }),
      batcher.submit({ inputs: [idx(3n)], deadline: later() }),
    ]);
    expect(good.status === 'fulfilled' && Array.from(good.value.outputs[0]?.data as Float32Array)).toEqual([10, 11, 20, 21]);
    expect(alsoGood.status === 'fulfilled' && Array.from(alsoGood.value.outputs[0]?.data as Float32Array)).toEqual([30, 31]);
    expect(bad.status).toBe('rejected');
    expect((bad as PromiseRejectedResult).reason.code).toMatch(/^ORT_/);
    expect((bad as PromiseRejectedResult).reason.message).toMatch(/out of bounds|indices/i);
    expect(sent.map(rowsOf)).toEqual([4, 2, 1, 1]);
  });
});
