/**
 * The inference worker pool (src/workers/pool.ts): batches run in real worker
 * threads on sessions the main thread loaded into the process-wide registry,
 * give the same numbers as the addon on the main thread, move or share their
 * input bytes, keep their error codes, and survive workers terminated
 * mid-run.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { nativeAddon } from '../dist/native/addon.js';
import type { NativeAddon, RunResult } from '../dist/native/addon.js';
import type { Tensor } from '../dist/tensors/tensor.js';
import { DECODE_V2_JSON, ENCODE_V2_RESPONSE } from '../dist/http/v2-jobs.js';
import { defineJob } from '../dist/workers/jobs.js';
import { Mailbox } from '../dist/workers/mailbox.js';
import { WorkerPool } from '../dist/workers/pool.js';
import { PACKED_TENSOR_LIMIT, type WireMessage, decodeReplies, encodeTasksInto, readFlatMessage } from '../dist/workers/wire.js';
import { buildModel, node, randomFloats, slowModel, valueInfo } from '../scripts/onnx-builder.mjs';
import { EXAMPLE_REPOSITORY, makeRepository, removeRepository } from './helpers/repository.js';

interface CodedError {
  code: string;
  message: string;
}

async function rejected(promise: Promise<unknown>): Promise<CodedError> {
  try {
    await promise;
  } catch (error) {
    return error as CodedError;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

const TABULAR = 'tabular:1#test';
const MULTI_IO = 'multi_io:1#test';
const SLOW = 'slow:1#test';
const ADD = 'add:1#test';
/** y = x four times over: answers four times the size of the request. */
const QUAD = 'quad:1#test';
const KEYS = [TABULAR, MULTI_IO, SLOW, ADD, QUAD];

/** Rows large enough that the pool moves the tensor rather than copying it (256 KB). */
const LARGE_ROWS = 2048;

const features = (data: Float32Array, rows = data.length / 32): Tensor => ({
  name: 'features', datatype: 'FP32', shape: [rows, 32], data,
});

let addon: NativeAddon;
let pool: WorkerPool;
let root: string;

/** The main thread's answer for `inputs` (copied, so the caller's arrays are left alone). */
function reference(key: string, inputs: Tensor[], outputs?: string[]): RunResult {
  return addon.run(key, inputs.map((t) => ({ ...t, data: t.data.slice() })), outputs);
}

beforeAll(async () => {
  addon = nativeAddon();
  root = await makeRepository({
    slow: { versions: { 1: slowModel() } },
    add: {
      versions: {
        1: buildModel({
          inputs: [valueInfo('a', 'FP32', ['N', 2]), valueInfo('b', 'FP32', ['N', 2])],
          outputs: [valueInfo('c', 'FP32', ['N', 2])],
          nodes: [node('Add', ['a', 'b'], ['c'])],
        }),
      },
    },
    quad: {
      versions: {
        1: buildModel({
          inputs: [valueInfo('x', 'FP32', ['N', 'K'])],
          outputs: [valueInfo('y', 'FP32', ['N', 'M'])],
          nodes: [node('Concat', ['x', 'x', 'x', 'x'], ['y'], { axis: 1 })],
        }),
      },
    },
  });
  const options = { intraOpThreads: 1, interOpThreads: 1, graphOptimization: 'all', executionProvider: 'cpu', deviceId: 0, cpuFallback: false } as const;
  await Promise.all([
    addon.loadSession(TABULAR, join(EXAMPLE_REPOSITORY, 'tabular', '1', 'model.onnx'), options),
    addon.loadSession(MULTI_IO, join(EXAMPLE_REPOSITORY, 'multi_io', '1', 'model.onnx'), options),
    addon.loadSession(SLOW, join(root, 'slow', '1', 'model.onnx'), options),
    addon.loadSession(ADD, join(root, 'add', '1', 'model.onnx'), options),
    addon.loadSession(QUAD, join(root, 'quad', '1', 'model.onnx'), options),
  ]);
  pool = new WorkerPool({ workers: 2 });
});

afterAll(async () => {
  await pool?.close();
  for (const key of KEYS) addon.releaseSession(key);
  expect(addon.liveSessionCount()).toBe(0);
  await removeRepository(root);
});

describe('running batches', () => {
  it('runs a batch in a worker with the same numbers as addon.run on the main thread', async () => {
    const x = randomFloats(1, 16 * 32);
    const expected = reference(TABULAR, [features(x)]);
    const result = await pool.run({ sessionKey: TABULAR, inputs: [features(x)] });
    expect(result.outputs).toHaveLength(1);
    expect(result.outputs[0]!.data).toBeInstanceOf(Float32Array);
    expect(result.outputs).toEqual(expected.outputs);
    expect(result.runNs).toBeGreaterThan(0);
  });

  it('runs several inputs and INT64 outputs, and returns only the requested outputs', async () => {
    const inputs = (): Tensor[] => [
      { name: 'ids', datatype: 'INT64', shape: [3, 4], data: BigInt64Array.from([1n, 2n, -3n, 4n, 0n, 9n, 9n, 1n, 5n, 5n, 5n, 5n]) },
      { name: 'values', datatype: 'FP32', shape: [3, 4], data: randomFloats(2, 12) },
    ];
    const all = await pool.run({ sessionKey: MULTI_IO, inputs: inputs() });
    expect(all.outputs).toEqual(reference(MULTI_IO, inputs()).outputs);
    expect(all.outputs[1]!.data).toBeInstanceOf(BigInt64Array);

    const some = await pool.run({ sessionKey: MULTI_IO, inputs: inputs(), outputs: ['argmax'] });
    expect(some.outputs.map((t) => t.name)).toEqual(['argmax']);
    expect(some.outputs).toEqual(reference(MULTI_IO, inputs(), ['argmax']).outputs);
  });

  it('moves a large input’s buffer to the worker: the caller’s ArrayBuffer is detached', async () => {
    const x = randomFloats(3, LARGE_ROWS * 32);
    const { buffer } = x;
    const expected = reference(TABULAR, [features(x)]);
    const result = await pool.run({ sessionKey: TABULAR, inputs: [features(x)] });
    expect(buffer.byteLength).toBe(0);
    expect(x.byteLength).toBe(0);
    expect(result.outputs).toEqual(expected.outputs);
  });

  it('copies out a view over part of a larger buffer instead of detaching that buffer', async () => {
    const whole = randomFloats(4, (LARGE_ROWS + 4) * 32);
    const snapshot = whole.slice();
    const view = whole.subarray(2 * 32, (LARGE_ROWS + 2) * 32);
    const expected = reference(TABULAR, [features(view)]);
    const result = await pool.run({ sessionKey: TABULAR, inputs: [features(view)] });
    expect(whole.buffer.byteLength).toBe(snapshot.byteLength);
    expect(whole).toEqual(snapshot);
    expect(result.outputs).toEqual(expected.outputs);
  });

  it('shares an input that lives in a SharedArrayBuffer, small or large, without detaching it', async () => {
    for (const rows of [2, LARGE_ROWS]) {
      const shared = new Float32Array(new SharedArrayBuffer(rows * 32 * 4));
      shared.set(randomFloats(5 + rows, rows * 32));
      const expected = reference(TABULAR, [features(shared)]);
      const result = await pool.run({ sessionKey: TABULAR, inputs: [features(shared)] });
      expect(shared.byteLength).toBe(rows * 32 * 4);
      expect(result.outputs).toEqual(expected.outputs);
    }
  });

  it('runs a batch whose two inputs are the same large array', async () => {
    // c = a + b with a and b one Float32Array: a legitimate batch, and its buffer must be moved only once.
    const rows = LARGE_ROWS * 16;
    const x = randomFloats(6, rows * 2);
    const doubled = Float32Array.from(x, (v) => v * 2);
    const tensor = (name: string): Tensor => ({ name, datatype: 'FP32', shape: [rows, 2], data: x });
    const result = await pool.run({ sessionKey: ADD, inputs: [tensor('a'), tensor('b')] }).catch((e: CodedError) => e);
    expect(result).not.toHaveProperty('code');
    expect((result as RunResult).outputs[0]!.data).toEqual(doubled);
  });

  it('joins a batch given in parts, shared or not, as addon.run does the joined tensor', async () => {
    const rows = [3, 1, LARGE_ROWS, 2];
    const parts = rows.map((n, i) => {
      const values = randomFloats(40 + i, n * 32);
      if (i % 2 === 0) return values;
      const shared = new Float32Array(new SharedArrayBuffer(values.byteLength));
      shared.set(values);
      return shared;
    });
    const joined = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((offset, part) => (joined.set(part, offset), offset + part.length), 0);
    const total = rows.reduce((a, b) => a + b, 0);
    const expected = reference(TABULAR, [features(joined)]);
    const result = await pool.run({ sessionKey: TABULAR, inputs: [{ name: 'features', datatype: 'FP32', shape: [total, 32], data: parts }] });
    expect(result.outputs).toEqual(expected.outputs);
    expect(parts.every((part) => part.byteLength > 0)).toBe(true); // no request's buffer was taken
  });

  it('runs 200 concurrent batches on one shared session correctly, spread over both workers', async () => {
    expect(pool.threads.length).toBe(2);
    const before = pool.busyMs;
    const batches = Array.from({ length: 200 }, (_, i) => {
      const rows = 1 + (i % 7);
      const x = randomFloats(1000 + i, rows * 32, 2);
      return { x, expected: reference(TABULAR, [features(x)]).outputs };
    });
    const results = await Promise.all(batches.map(({ x }) => pool.run({ sessionKey: TABULAR, inputs: [features(x)] })));
    results.forEach((result, i) => expect(result.outputs, `batch ${i}`).toEqual(batches[i]!.expected));
    // Each worker counted time spent working: both ran batches.
    pool.busyMs.forEach((busy, i) => expect(busy).toBeGreaterThan(before[i] as number));
  });

  it('gives the same answers for groups too large for the mailbox, and for replies too large for it (both cross as messages)', async () => {
    const WIDE = 15 * 1024; // 60 KiB per batch: packed, but nine of them pass the mailbox's 256 KiB
    const wide = (seed: number): Tensor => ({ name: 'x', datatype: 'FP32', shape: [1, WIDE], data: randomFloats(seed, WIDE) });
    const requests = Array.from({ length: 9 }, (_, i) => [wide(500 + i)]);
    const results = await Promise.all(requests.map((inputs) => pool.run({ sessionKey: QUAD, inputs })));
    results.forEach((result, i) => expect(result.outputs).toEqual(reference(QUAD, requests[i] as Tensor[]).outputs));
    // Two 60 KiB requests fit; their 480 KiB of answers do not.
    const pair = [[wide(600)], [wide(601)]];
    const answers = await Promise.all(pair.map((inputs) => pool.run({ sessionKey: QUAD, inputs })));
    answers.forEach((result, i) => expect(result.outputs).toEqual(reference(QUAD, pair[i] as Tensor[]).outputs));
  });

  it('the addon runs a group laid flat in shared memory and answers in that layout, or as a message when the answer does not fit', () => {
    const mailbox = new Mailbox();
    const x = randomFloats(7, 4 * 32);
    expect(encodeTasksInto([{ sessionKey: TABULAR, inputs: [features(x)] }], mailbox.request)).toBe(true);
    const expected = reference(TABULAR, [features(x)]).outputs;
    expect(addon.runFlatBatchGroup(mailbox.request, mailbox.reply, PACKED_TENSOR_LIMIT)).toBe(true);
    expect(decodeReplies(readFlatMessage(mailbox.reply))).toEqual([{ ok: true, outputs: expected, runNs: expect.any(Number) }]);
    const answer = addon.runFlatBatchGroup(mailbox.request, mailbox.reply.subarray(0, 64), PACKED_TENSOR_LIMIT);
    expect(answer).not.toBe(true);
    expect(decodeReplies(answer as WireMessage)).toEqual([{ ok: true, outputs: expected, runNs: expect.any(Number) }]);
  });

  it('the addon refuses a flat group whose sections run past its buffer, or that is not 8-byte aligned', () => {
    const mailbox = new Mailbox();
    encodeTasksInto([{ sessionKey: TABULAR, inputs: [features(randomFloats(8, 32))] }], mailbox.request);
    const truncated = mailbox.request.subarray(0, 40);
    expect(() => addon.runFlatBatchGroup(truncated, mailbox.reply, PACKED_TENSOR_LIMIT)).toThrow(/malformed batch group/);
    const lying = new Uint8Array(mailbox.request.byteLength);
    lying.set(mailbox.request);
    new Uint32Array(lying.buffer, 0, 4)[1] = 2 ** 31; // a header of 2^31 numbers
    expect(() => addon.runFlatBatchGroup(lying, mailbox.reply, PACKED_TENSOR_LIMIT)).toThrow(/malformed batch group/);
    expect(() => addon.runFlatBatchGroup(mailbox.request.subarray(4), mailbox.reply, PACKED_TENSOR_LIMIT)).toThrow(/aligned/);
  });
});

describe('errors', () => {
  it('keep the code and message the addon gives in the worker', async () => {
    const unknown = await rejected(pool.run({ sessionKey: 'tabular:9#nope', inputs: [features(new Float32Array(32))] }));
    expect(unknown.code).toBe('WEIR_SESSION_NOT_LOADED');
    expect(unknown.message).toContain("'tabular:9#nope'");

    const short = await rejected(pool.run({ sessionKey: TABULAR, inputs: [{ ...features(new Float32Array(31)), shape: [1, 32] }] }));
    expect(short.code).toBe('WEIR_BAD_TENSOR');
    expect(short.message).toContain('inputs[0].data');

    const wrongType = await rejected(pool.run({
      sessionKey: TABULAR, inputs: [{ name: 'features', datatype: 'FP64', shape: [1, 32], data: new Float64Array(32) }],
    }));
    expect(wrongType.code).toBe('WEIR_BAD_TENSOR');
    expect(wrongType.message).toContain('inputs[0].datatype');

    const output = await rejected(pool.run({ sessionKey: TABULAR, inputs: [features(new Float32Array(32))], outputs: ['logits'] }));
    expect(output.code).toBe('WEIR_BAD_TENSOR');
    expect(output.message).toContain('outputs[0]');
  });

  it('answer each batch as addon.run would, and a malformed batch fails alone, not the batches sent with it', async () => {
    // All submitted in one turn, so the pool groups them into shared tasks.
    const cases: Array<[string, () => Tensor]> = [
      ['an unknown datatype', () => ({ ...features(new Float32Array(32)), datatype: 'FLOAT32' as never })],
      ['good', () => features(randomFloats(7, 32))],
      ['FP32 bytes in a Uint8Array', () => ({ ...features(new Float32Array(0), 1), data: new Uint8Array(randomFloats(8, 32).buffer) })],
      ['good', () => features(randomFloats(9, 64))],
      ['data one element short', () => ({ ...features(new Float32Array(31)), shape: [1, 32] })],
      ['good', () => features(randomFloats(10, 96))],
    ];
    const messages: string[] = [];
    const outcome = (what: string, run: () => RunResult | Promise<RunResult>, log?: string[]): Promise<unknown> =>
      Promise.resolve().then(run).then(
        (r) => ({ what, outputs: r.outputs }),
        (e: CodedError) => {
          log?.push(`${what}: ${e.code} ${e.message}`);
          return { what, code: e.code, field: /^inputs\[0\]\.\w+/.exec(e.message)?.[0] };
        },
      );
    const expected = await Promise.all(cases.map(([what, tensor]) => outcome(what, () => addon.run(TABULAR, [tensor()]))));
    const actual = await Promise.all(
      cases.map(([what, tensor]) => outcome(what, () => pool.run({ sessionKey: TABULAR, inputs: [tensor()] }), messages)),
    );
    expect(actual, `the pool answered:\n${messages.join('\n')}\n`).toEqual(expected);
  });

  it('a batch the pool cannot encode rejects; it neither crashes the process nor wedges the pool', async () => {
    // A tensor without a shape fails in the pool itself, before any worker sees it. Run in a child
    // process with a one-worker pool: a throw that escapes the pool would take the process down.
    const script = join(root, 'pool-bad-batch.mjs');
    const dist = new URL('../dist/', import.meta.url).href;
    await writeFile(script, `
      const { nativeAddon } = await import('${dist}native/addon.js');
      const { WorkerPool } = await import('${dist}workers/pool.js');
      const report = {};
      process.on('uncaughtException', (error) => { report.uncaught = error.message; });
      const addon = nativeAddon();
      await addon.loadSession('t', process.argv[2], {});
      const pool = new WorkerPool({ workers: 1 });
      const timer = setTimeout(() => { report.hung = true; console.log(JSON.stringify(report)); process.exit(0); }, 2000);
      const bad = pool.run({ sessionKey: 't', inputs: [{ name: 'features', datatype: 'FP32', data: new Float32Array(32) }] });
      report.bad = await bad.then(() => 'resolved', (e) => ({ code: e.code, message: e.message }));
      const good = await pool.run({ sessionKey: 't', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32], data: new Float32Array(32) }] });
      report.good = good.outputs[0].shape;
      clearTimeout(timer);
      await pool.close();
      console.log(JSON.stringify(report));
    `);
    const { stdout } = await promisify(execFile)(
      process.execPath, [script, join(EXAMPLE_REPOSITORY, 'tabular', '1', 'model.onnx')], { timeout: 20_000 },
    );
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      uncaught?: string; hung?: boolean; bad?: CodedError; good?: number[];
    };
    expect(report.uncaught).toBeUndefined();
    expect(report.hung).toBeUndefined();
    expect(['WEIR_BAD_TENSOR', 'WEIR_BAD_ARGUMENT']).toContain(report.bad?.code);
    expect(report.bad?.message).toContain('shape');
    expect(report.good).toEqual([1, 2]);
  });
});

describe('replies on a core shared with the worker', () => {
  // On one core the woken worker runs before the pool's wake returns: the pool reads the reply then, without the doorbell.
  it.skipIf(!existsSync('/usr/bin/taskset'))('are read as the wake returns, and are the right answers', async () => {
    const script = join(root, 'pool-one-core.mjs');
    const dist = new URL('../dist/', import.meta.url).href;
    await writeFile(script, `
      const { nativeAddon } = await import('${dist}native/addon.js');
      const { WorkerPool } = await import('${dist}workers/pool.js');
      const addon = nativeAddon();
      await addon.loadSession('t', process.argv[2], {});
      const pool = new WorkerPool({ workers: 1 });
      const tensor = (data) => ({ name: 'features', datatype: 'FP32', shape: [1, 32], data });
      const report = { answers: 0, wrong: 0 };
      for (let round = 0; round < 50; round++) {
        const xs = Array.from({ length: 4 }, (_, i) => Float32Array.from({ length: 32 }, (_, j) => Math.sin(round * 7 + i * 3 + j)));
        const results = await Promise.all(xs.map((x) => pool.run({ sessionKey: 't', inputs: [tensor(x)] })));
        results.forEach((result, i) => {
          const expected = addon.run('t', [tensor(xs[i])]).outputs[0].data;
          report.answers += 1;
          const bytes = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
          if (!bytes(result.outputs[0].data).equals(bytes(expected))) report.wrong += 1;
        });
      }
      report.readOnWake = pool.repliesReadOnWake;
      await pool.close();
      console.log(JSON.stringify(report));
    `);
    const { stdout } = await promisify(execFile)(
      '/usr/bin/taskset', ['-c', '0', process.execPath, script, join(EXAMPLE_REPOSITORY, 'tabular', '1', 'model.onnx')], { timeout: 30_000 },
    );
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { answers: number; wrong: number; readOnWake: number };
    expect(report).toMatchObject({ answers: 200, wrong: 0 });
    expect(report.readOnWake).toBeGreaterThan(0);
  });
});

const slowBatch = (rows: number): Tensor => ({
  name: 'x', datatype: 'FP32', shape: [rows, 256], data: randomFloats(rows, rows * 256),
});
const sessionsNow = (): unknown => addon.sessions().filter((s) => KEYS.includes(s.key)).sort((a, b) => a.key.localeCompare(b.key));
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection saying what did not answer: a wedged pool fails the test, not its timeout. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Tabular batches through `on`, checked against the main thread; `count` in one turn reach `count` workers. */
async function tabularWorks(on: WorkerPool, count: number, what: string, ms = 10_000): Promise<void> {
  const xs = Array.from({ length: count }, (_, i) => randomFloats(70 + i, 4 * 32));
  const expected = xs.map((x) => reference(TABULAR, [features(x)]).outputs);
  const results = await within(ms, what, Promise.all(xs.map((x) => on.run({ sessionKey: TABULAR, inputs: [features(x)] }))));
  results.forEach((result, i) => expect(result.outputs).toEqual(expected[i]));
}

describe('a worker terminated mid-run', () => {
  it.each([1, 2])('rejects its batch with WEIR_WORKER_EXITED, and the pool recovers (termination %i)', async (round) => {
    // Both workers up and serving (two batches in one turn go to the two workers).
    await tabularWorks(pool, 2, `before termination ${round}`);
    const live = addon.liveSessionCount();
    const registered = sessionsNow();
    const settled = pool.run({ sessionKey: SLOW, inputs: [slowBatch(2000)] }) // about a second on one core
      .then(() => 'resolved', (e: CodedError) => e);
    // No event marks the batch as started inside the worker: give it a moment to get there.
    await pause(100);
    await Promise.all([...pool.threads].map((thread) => thread.terminate()));

    const error = (await within(10_000, 'the terminated batch', settled)) as CodedError;
    expect(error.code).toBe('WEIR_WORKER_EXITED');
    expect(error.message).toMatch(/worker/);
    // This process is alive (we are still running), and the registry neither lost nor leaked a session.
    expect(process.exitCode ?? 0).toBe(0);
    expect(addon.liveSessionCount()).toBe(live);
    expect(sessionsNow()).toEqual(registered);

    await tabularWorks(pool, 2, `after termination ${round}`);
    expect(pool.threads.length).toBe(2);
  });

  it('terminating one of two busy workers fails only the batch it was running', async () => {
    await tabularWorks(pool, 2, 'before termination');
    const runs = [1000, 1001].map((rows) => pool.run({ sessionKey: SLOW, inputs: [slowBatch(rows)] }));
    const settled = Promise.allSettled(runs);
    await pause(100);
    expect(pool.threads.length).toBe(2);
    await pool.threads[0]!.terminate();

    const outcomes = await within(10_000, 'the two slow batches', settled);
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    const done = outcomes.filter((o): o is PromiseFulfilledResult<RunResult> => o.status === 'fulfilled');
    expect(failed.map((o) => (o.reason as CodedError).code)).toEqual(['WEIR_WORKER_EXITED']);
    expect(done).toHaveLength(1);
    expect(done[0]!.value.outputs[0]!.shape[1]).toBe(256);
    expect([1000, 1001]).toContain(done[0]!.value.outputs[0]!.shape[0]);

    await tabularWorks(pool, 2, 'after termination');
  });

  it('a worker terminated while it is still starting is replaced too', async () => {
    // Its own pool: if this wedges, the other tests keep theirs.
    const own = new WorkerPool({ workers: 2 });
    try {
      await tabularWorks(own, 2, 'the new pool');
      const before = new Set(own.threads);
      await own.threads[0]!.terminate();
      // Its replacement is starting now (loading the addon): terminate it before it serves anything.
      const starting = own.threads.find((thread) => !before.has(thread));
      expect(starting, 'a replacement thread').toBeDefined();
      await starting!.terminate();

      // A worker starts in well under a second; five leave room for a loaded machine.
      await tabularWorks(own, 2, 'the pool after its starting worker was terminated', 5_000);
      // Two deaths in a row while starting: the second replacement comes after a short back-off.
      await vi.waitFor(() => expect(own.threads.length).toBe(2), { timeout: 5_000 });
    } finally {
      await within(5_000, 'closing the pool', own.close()).catch(() => {});
    }
  });
});

describe('jobs besides inference (workers/jobs.ts, the V2 jobs of http/v2-jobs.ts)', () => {
  it('decodes a V2 JSON body in a worker: the body moves there, the tensors move back', async () => {
    const values = Array.from(randomFloats(11, 64));
    const body = new TextEncoder().encode(JSON.stringify({ id: 'j1', inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 32], data: values }] }));
    const decoded = await pool.runJob(DECODE_V2_JSON, { body, model: 'tabular' }, [body.buffer as ArrayBuffer]);
    expect(body.byteLength).toBe(0); // moved, not copied
    expect(decoded.request).toMatchObject({ model: 'tabular', id: 'j1', inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 32] }] });
    expect(decoded.request.inputs[0]!.data).toEqual(Float32Array.from(values));
    expect(decoded.binaryOutputs).toEqual(new Set());
  });

  it('a job that fails rejects with the code and message it would have on the main thread', async () => {
    const body = new TextEncoder().encode('{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": ["one"]}]}');
    const error = await rejected(pool.runJob(DECODE_V2_JSON, { body, model: 'm' }));
    expect(error).toMatchObject({ code: 'WEIR_BAD_ARGUMENT' });
    expect(error.message).toContain('inputs[0].data[0]: expected a number for FP32, got "one"');
  });

  it('a job the module does not export rejects, naming it', async () => {
    const error = await rejected(pool.runJob(defineJob(DECODE_V2_JSON.module, 'noSuchJob', (n: number) => ({ output: n, transfer: [] })), 1));
    expect(error.message).toContain('exports no job named noSuchJob');
  });

  it('encodes a response in a worker: its JSON as bytes, its binary outputs moved back', async () => {
    const outputs = [
      { name: 'y', datatype: 'FP32' as const, shape: [2], data: Float32Array.of(0.5, -1) },
      { name: 'z', datatype: 'INT32' as const, shape: [1], data: Int32Array.of(7) },
    ];
    const encoded = await pool.runJob(ENCODE_V2_RESPONSE, { response: { model_name: 'm', model_version: '2', computeNs: 1, outputs }, binaryOutputs: new Set(['z']) });
    expect(JSON.parse(Buffer.from(encoded.json).toString('utf8'))).toEqual({
      model_name: 'm',
      model_version: '2',
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [2], data: [0.5, -1] },
        { name: 'z', datatype: 'INT32', shape: [1], parameters: { binary_data_size: 4 } },
      ],
    });
    expect(encoded.binary).toEqual([Int32Array.of(7)]);
  });

  it('a job whose worker dies rejects with WEIR_WORKER_EXITED, and a closing pool refuses the jobs waiting', async () => {
    const own = new WorkerPool({ workers: 1 });
    try {
      await own.run({ sessionKey: TABULAR, inputs: [features(randomFloats(1, 32))] });
      // Occupy the worker, queue a job behind it, then kill the worker: the batch fails, the job runs on the replacement.
      const slow = own.run({ sessionKey: SLOW, inputs: [slowBatch(2000)] }).catch((e: CodedError) => e);
      await pause(50);
      const body = new TextEncoder().encode('{"inputs": []}');
      const job = own.runJob(DECODE_V2_JSON, { body, model: 'm' });
      await own.threads[0]!.terminate();
      expect(await within(10_000, 'the slow batch', slow)).toMatchObject({ code: 'WEIR_WORKER_EXITED' });
      expect((await within(10_000, 'the job', job)).request.inputs).toEqual([]);

      const waiting = [1, 2].map(() => own.runJob(DECODE_V2_JSON, { body: new TextEncoder().encode('{"inputs": []}'), model: 'm' }).catch((e: CodedError) => e));
      await own.close();
      const outcomes = await Promise.all(waiting);
      for (const outcome of outcomes) if ('code' in outcome) expect(outcome.code).toBe('WEIR_SERVER_STOPPING');
    } finally {
      await own.close().catch(() => {});
    }
  });

  it('refuses jobs past 16 waiting (WEIR_QUEUE_FULL), and serves waiting jobs and batches in turn', async () => {
    const own = new WorkerPool({ workers: 1 });
    try {
      await own.run({ sessionKey: TABULAR, inputs: [features(randomFloats(1, 32))] });
      const busy = own.run({ sessionKey: SLOW, inputs: [slowBatch(1000)] });
      await pause(50);
      const order: string[] = [];
      const body = () => new TextEncoder().encode('{"inputs": []}');
      const jobs = Array.from({ length: 16 }, (_, i) => own.runJob(DECODE_V2_JSON, { body: body(), model: 'm' }).then(() => order.push(`job${i}`)));
      const refused = await rejected(own.runJob(DECODE_V2_JSON, { body: body(), model: 'm' }));
      expect(refused.code).toBe('WEIR_QUEUE_FULL');
      const batches = [0, 1].map((i) => own.run({ sessionKey: TABULAR, inputs: [features(randomFloats(2 + i, 32))] }).then(() => order.push(`batch${i}`)));
      await within(20_000, 'the slow batch, the jobs and the batches', Promise.all([busy, ...jobs, ...batches]));
      // The batches waiting (sent as one group) did not wait behind all 16 jobs.
      expect(order.indexOf('batch0')).toBeLessThan(3);
    } finally {
      await own.close().catch(() => {});
    }
  });
});
