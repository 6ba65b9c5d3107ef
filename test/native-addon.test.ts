/**
 * The native addon, called directly: ONNX Runtime loading, model metadata,
 * the process-wide session registry, load and run errors, and the addon inside
 * a worker thread sharing the main thread's sessions. Real ONNX Runtime, real
 * model files in a temp folder, a real worker_threads Worker.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { nativeAddon, ortLibraryPath } from '../dist/native/addon.js';
import type { NativeAddon, RunResult, RuntimeInfo } from '../dist/native/addon.js';
import type { Tensor } from '../dist/tensors/tensor.js';
import { multiIoModel, tabularModel, tabularWeights } from '../scripts/build-models.mjs';
import { buildModel, identityModel, node, randomFloats, slowModel, valueInfo } from '../scripts/onnx-builder.mjs';
import { type CodedError, thrown } from './helpers/errors.js';
import { EXAMPLE_REPOSITORY, makeRepository, removeRepository } from './helpers/repository.js';

/** The error `fn` throws or its promise rejects with (the addon may throw before it has a promise). */
async function rejected(fn: () => Promise<unknown>): Promise<CodedError> {
  try {
    await fn();
  } catch (error) {
    return error as CodedError;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

const f32 = (name: string, shape: number[], values: ArrayLike<number>): Tensor => ({
  name,
  datatype: 'FP32',
  shape,
  data: Float32Array.from(values),
});

/** softmax(relu(x·w1 + b1)·w2 + b2) for `tabular` version 1, in float64. */
function tabularReference(x: Float32Array, rows: number): number[] {
  const { w1, b1, w2, b2 } = tabularWeights(1);
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const h = new Array<number>(16).fill(0);
    for (let j = 0; j < 16; j++) {
      let s = b1[j]!;
      for (let i = 0; i < 32; i++) s += x[r * 32 + i]! * w1[i * 16 + j]!;
      h[j] = Math.max(0, s);
    }
    const logits = [0, 1].map((k) => h.reduce((s, hj, j) => s + hj * w2[j * 2 + k]!, b2[k]!));
    const m = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - m));
    const z = e[0]! + e[1]!;
    out.push(e[0]! / z, e[1]! / z);
  }
  return out;
}

const tabularPath = join(EXAMPLE_REPOSITORY, 'tabular', '1', 'model.onnx');
const tabular2Path = join(EXAMPLE_REPOSITORY, 'tabular', '2', 'model.onnx');
const multiIoPath = join(EXAMPLE_REPOSITORY, 'multi_io', '1', 'model.onnx');
const noBatchPath = join(EXAMPLE_REPOSITORY, 'no_batch', '1', 'model.onnx');

/** ONNX plus the ai.onnx.ml domain (a variable: the builder's JSDoc-less default types only '' ). */
const ML_OPSETS = { '': 17, 'ai.onnx.ml': 3 };

const LONG_NAMES = ['ü'.repeat(100), 'x'.repeat(127), 'y'.repeat(128)]; // around the addon's 128-byte inline buffer

let addon: NativeAddon;
/** What nativeAddon() opened; initRuntime with the same path answers it again. */
let runtime: RuntimeInfo;
let root: string;
const modelPath = (name: string): string => join(root, name, '1', 'model.onnx');

beforeAll(async () => {
  addon = nativeAddon();
  runtime = addon.initRuntime(ortLibraryPath());
  root = await makeRepository({
    // A sequence output: not a tensor, so no V2 datatype.
    sequence: {
      versions: {
        1: buildModel({
          inputs: [valueInfo('x', 'FP32', ['N', 2])],
          outputs: [{ name: 's', type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } }],
          nodes: [node('SequenceConstruct', ['x', 'x'], ['s'])],
        }),
      },
    },
    // sklearn's ZipMap: a sequence of maps.
    zipmap: {
      versions: {
        1: buildModel({
          inputs: [valueInfo('x', 'FP32', ['N', 2])],
          outputs: [{
            name: 'm',
            type: { sequenceType: { elemType: { mapType: { keyType: 7, valueType: { tensorType: { elemType: 1 } } } } } },
          }],
          nodes: [node('ZipMap', ['x'], ['m'], { classlabels_int64s: [0, 1] }, 'ai.onnx.ml')],
          opsets: ML_OPSETS,
        }),
      },
    },
    identity_fp32: { versions: { 1: identityModel('FP32', ['N', 2]) } },
    identity_fp64: { versions: { 1: identityModel('FP64', ['N', 2]) } },
    long_names: {
      versions: {
        1: buildModel({
          inputs: LONG_NAMES.map((n) => valueInfo(n, 'FP32', ['N', 1])),
          outputs: [valueInfo('sum', 'FP32', ['N', 1])],
          nodes: [node('Sum', LONG_NAMES, ['sum'])],
        }),
      },
    },
    tabular: { versions: { 1: tabularModel(1) } },
    multi_io: { versions: { 1: multiIoModel() } },
    slow: { versions: { 1: slowModel() } },
    corrupt: { versions: { 1: Buffer.from('\x08\xff\xff\xff this is not an ONNX protobuf \xff\xff') } },
  });
});

afterAll(async () => {
  for (const { key, references } of addon.sessions()) {
    for (let i = 0; i < references; i++) addon.releaseSession(key);
  }
  expect(addon.liveSessionCount()).toBe(0);
  await removeRepository(root);
});

describe('ONNX Runtime', () => {
  it('is loaded from the library onnxruntime-node ships, and reports its version', () => {
    const info = runtime;
    expect(info.libraryPath).toBe(ortLibraryPath());
    expect(existsSync(info.libraryPath)).toBe(true);
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.apiVersion).toBeGreaterThan(0);
  });

  it('initRuntime again with the same path returns the same runtime', () => {
    expect(addon.initRuntime(ortLibraryPath())).toEqual(runtime);
    expect(addon.initRuntime(ortLibraryPath())).toEqual(runtime);
  });

  it('initRuntime with another path fails with WEIR_RUNTIME_CONFLICT and leaves the runtime usable', async () => {
    const other = join(root, 'libonnxruntime.so.1');
    const error = thrown(() => addon.initRuntime(other));
    expect(error.code).toBe('WEIR_RUNTIME_CONFLICT');
    expect(error.message).toContain(ortLibraryPath());
    expect(error.message).toContain(other);

    await addon.loadSession('runtime:after-conflict', tabularPath, {} as never);
    expect(addon.run('runtime:after-conflict', [f32('features', [1, 32], new Float32Array(32))]).outputs).toHaveLength(1);
    expect(addon.releaseSession('runtime:after-conflict')).toBe(0);
  });

  it('initRuntime with a non-string path is a WEIR_BAD_ARGUMENT naming libraryPath', () => {
    const error = thrown(() => (addon.initRuntime as (p: unknown) => unknown)(42));
    expect(error.code).toBe('WEIR_BAD_ARGUMENT');
    expect(error.message).toContain('libraryPath');
  });
});

describe('session metadata', () => {
  it('describes names, datatypes, shapes with -1 for dynamic dimensions, and dimension names', async () => {
    const info = await addon.loadSession('meta:tabular', tabularPath, {} as never);
    expect(info).toEqual({
      key: 'meta:tabular',
      provider: 'cpu',
      fallbackReason: null,
      inputs: [{ name: 'features', type: 'tensor(float)', datatype: 'FP32', shape: [-1, 32], dimNames: ['N', ''] }],
      outputs: [{ name: 'probabilities', type: 'tensor(float)', datatype: 'FP32', shape: [-1, 2], dimNames: ['N', ''] }],
    });
    const multi = await addon.loadSession('meta:multi_io', multiIoPath, {} as never);
    expect(multi.inputs).toEqual([
      { name: 'ids', type: 'tensor(int64)', datatype: 'INT64', shape: [-1, 4], dimNames: ['N', ''] },
      { name: 'values', type: 'tensor(float)', datatype: 'FP32', shape: [-1, 4], dimNames: ['N', ''] },
    ]);
    expect(multi.outputs).toEqual([
      { name: 'weighted', type: 'tensor(float)', datatype: 'FP32', shape: [-1, 4], dimNames: ['N', ''] },
      { name: 'argmax', type: 'tensor(int64)', datatype: 'INT64', shape: [-1, 1], dimNames: ['N', ''] },
    ]);
    addon.releaseSession('meta:tabular');
    addon.releaseSession('meta:multi_io');
  });

  it('gives a rank-0 (scalar) value the empty shape', async () => {
    const info = await addon.loadSession('meta:no_batch', noBatchPath, {} as never);
    expect(info.inputs).toEqual([
      { name: 'matrix', type: 'tensor(float)', datatype: 'FP32', shape: [3, 4], dimNames: ['', ''] },
      { name: 'scale', type: 'tensor(float)', datatype: 'FP32', shape: [], dimNames: [] },
    ]);
    expect(info.outputs[1]).toEqual({ name: 'total', type: 'tensor(float)', datatype: 'FP32', shape: [], dimNames: [] });

    const result = addon.run('meta:no_batch', [
      f32('matrix', [3, 4], Array.from({ length: 12 }, (_, i) => i)),
      f32('scale', [], [0.5]),
    ]);
    const total = result.outputs.find((t) => t.name === 'total')!;
    expect(total.shape).toEqual([]);
    expect(Array.from(total.data as Float32Array)).toEqual([33]); // 0.5 * (0 + 1 + ... + 11)
    addon.releaseSession('meta:no_batch');
  });

  it('describes non-tensor values with their ONNX type and a null datatype', async () => {
    const seq = await addon.loadSession('meta:sequence', modelPath('sequence'), {} as never);
    expect(seq.outputs).toEqual([{ name: 's', type: 'seq(tensor(float))', datatype: null, shape: [], dimNames: [] }]);
    const zip = await addon.loadSession('meta:zipmap', modelPath('zipmap'), {} as never);
    expect(zip.outputs).toEqual([
      { name: 'm', type: 'seq(map(int64,tensor(float)))', datatype: null, shape: [], dimNames: [] },
    ]);
  });

  it('refuses to return a non-tensor output with WEIR_UNSUPPORTED_TYPE naming it', () => {
    const error = thrown(() => addon.run('meta:sequence', [f32('x', [1, 2], [1, 2])]));
    expect(error.code).toBe('WEIR_UNSUPPORTED_TYPE');
    expect(error.message).toContain("'s'");
    expect(error.message).toContain('seq(tensor(float))');
    addon.releaseSession('meta:sequence');
    addon.releaseSession('meta:zipmap');
  });
});

describe('session registry', () => {
  it('shares one session per key, counts references, and destroys it at zero', async () => {
    const live = addon.liveSessionCount();
    const first = await addon.loadSession('registry:shared', tabularPath, {} as never);
    const second = await addon.loadSession('registry:shared', tabularPath, {} as never);
    expect(second).toEqual(first);
    expect(addon.sessions().filter((s) => s.key === 'registry:shared')).toEqual([
      { key: 'registry:shared', modelPath: tabularPath, references: 2 },
    ]);
    expect(addon.liveSessionCount()).toBe(live + 1);

    expect(addon.releaseSession('registry:shared')).toBe(1);
    expect(addon.liveSessionCount()).toBe(live + 1);
    expect(addon.run('registry:shared', [f32('features', [1, 32], new Float32Array(32))]).outputs).toHaveLength(1);

    expect(addon.releaseSession('registry:shared')).toBe(0);
    expect(addon.liveSessionCount()).toBe(live);
    expect(addon.sessions().some((s) => s.key === 'registry:shared')).toBe(false);
    expect(thrown(() => addon.run('registry:shared', [])).code).toBe('WEIR_SESSION_NOT_LOADED');
  });

  it('keeps one session when the same key is loaded concurrently', async () => {
    const live = addon.liveSessionCount();
    await Promise.all([1, 2, 3].map(() => addon.loadSession('registry:race', tabularPath, {} as never)));
    expect(addon.sessions().find((s) => s.key === 'registry:race')?.references).toBe(3);
    expect(addon.liveSessionCount()).toBe(live + 1); // the losers of the race are destroyed
    expect([1, 2, 3].map(() => addon.releaseSession('registry:race'))).toEqual([2, 1, 0]);
    expect(addon.liveSessionCount()).toBe(live);
  });

  it('refuses the same key from another file with WEIR_SESSION_CONFLICT', async () => {
    await addon.loadSession('registry:conflict', tabularPath, {} as never);
    const live = addon.liveSessionCount();
    const error = await rejected(() => addon.loadSession('registry:conflict', tabular2Path, {} as never));
    expect(error.code).toBe('WEIR_SESSION_CONFLICT');
    expect(error.message).toContain("'registry:conflict'");
    expect(error.message).toContain(tabularPath);
    expect(error.message).toContain(tabular2Path);
    expect(addon.liveSessionCount()).toBe(live);
    expect(addon.sessions().find((s) => s.key === 'registry:conflict')).toEqual({
      key: 'registry:conflict', modelPath: tabularPath, references: 1,
    });
    expect(addon.releaseSession('registry:conflict')).toBe(0);
  });

  it('answers WEIR_SESSION_NOT_LOADED, naming the key, for release and run of an unknown key', () => {
    const release = thrown(() => addon.releaseSession('registry:never-loaded'));
    expect(release.code).toBe('WEIR_SESSION_NOT_LOADED');
    expect(release.message).toContain("'registry:never-loaded'");
    const run = thrown(() => addon.run('registry:never-loaded', [f32('features', [1, 32], new Float32Array(32))]));
    expect(run.code).toBe('WEIR_SESSION_NOT_LOADED');
    expect(run.message).toContain("'registry:never-loaded'");
  });

  it('answers WEIR_BAD_ARGUMENT, naming the argument, for a key that is not a string', async () => {
    const run = thrown(() => (addon.run as (...a: unknown[]) => unknown)(7, []));
    expect(run.code).toBe('WEIR_BAD_ARGUMENT');
    expect(run.message).toContain('key');
    const release = thrown(() => (addon.releaseSession as (k: unknown) => unknown)(undefined));
    expect(release.code).toBe('WEIR_BAD_ARGUMENT');
    expect(release.message).toContain('key');
    const load = await rejected(() => (addon.loadSession as (...a: unknown[]) => Promise<unknown>)('k', null, {}));
    expect(load.code).toBe('WEIR_BAD_ARGUMENT');
    expect(load.message).toContain('modelPath');
  });
});

describe('loadSession errors', () => {
  it('a missing file is ORT_NO_SUCHFILE with ORT’s message naming the file', async () => {
    const live = addon.liveSessionCount();
    const missing = join(root, 'absent', '1', 'model.onnx');
    const error = await rejected(() => addon.loadSession('load:missing', missing, {} as never));
    expect(error.code).toBe('ORT_NO_SUCHFILE');
    expect(error.message).toContain(missing);
    expect(addon.liveSessionCount()).toBe(live);
    expect(addon.sessions().some((s) => s.key === 'load:missing')).toBe(false);
  });

  it('corrupt bytes are an ORT_ error with ORT’s message', async () => {
    const error = await rejected(() => addon.loadSession('load:corrupt', modelPath('corrupt'), {} as never));
    expect(error.code).toMatch(/^ORT_/);
    expect(error.code).toBe('ORT_INVALID_PROTOBUF');
    expect(error.message).toContain(modelPath('corrupt'));
    expect(error.message).toMatch(/protobuf/i);
    expect(addon.sessions().some((s) => s.key === 'load:corrupt')).toBe(false);
  });

  // onnxruntime-node's Linux library has no CUDA provider; one set up via
  // WEIR_ORT_LIBRARY might.
  const cudaPossible = process.env.WEIR_ORT_LIBRARY !== undefined
    || existsSync(join(dirname(ortLibraryPath()), 'libonnxruntime_providers_cuda.so'));

  it.skipIf(cudaPossible)('executionProvider cuda without CUDA is WEIR_EP_UNAVAILABLE mentioning CUDA', async () => {
    const live = addon.liveSessionCount();
    const error = await rejected(() =>
      addon.loadSession('load:cuda', tabularPath, { executionProvider: 'cuda', deviceId: 0 } as never));
    expect(error.code).toBe('WEIR_EP_UNAVAILABLE');
    expect(error.message).toContain('CUDA');
    expect(addon.liveSessionCount()).toBe(live);
    expect(addon.sessions().some((s) => s.key === 'load:cuda')).toBe(false);
  });

  it.skipIf(cudaPossible)('with cpuFallback it loads on the CPU and says why', async () => {
    const info = await addon.loadSession('load:cuda-fallback', tabularPath, {
      executionProvider: 'cuda', deviceId: 0, cpuFallback: true,
    } as never);
    expect(info.provider).toBe('cpu');
    expect(info.fallbackReason).toEqual(expect.stringContaining('CUDA'));
    const x = randomFloats(5, 32);
    const [probabilities] = addon.run('load:cuda-fallback', [f32('features', [1, 32], x)]).outputs;
    expect(Array.from(probabilities!.data as Float32Array)).toEqual(
      tabularReference(x, 1).map((v) => expect.closeTo(v, 5)),
    );
    addon.releaseSession('load:cuda-fallback');
  });

  it('an unknown execution provider is WEIR_EP_UNAVAILABLE naming it', async () => {
    const error = await rejected(() =>
      addon.loadSession('load:tpu', tabularPath, { executionProvider: 'tpu' } as never));
    expect(error.code).toBe('WEIR_EP_UNAVAILABLE');
    expect(error.message).toContain("'tpu'");
  });

  it('an unknown graphOptimization is WEIR_BAD_ARGUMENT naming the option', async () => {
    const error = await rejected(() =>
      addon.loadSession('load:opt', tabularPath, { graphOptimization: 'maximal' } as never));
    expect(error.code).toBe('WEIR_BAD_ARGUMENT');
    expect(error.message).toContain('graphOptimization');
    expect(error.message).toContain("'maximal'");
  });
});

describe('run', () => {
  beforeAll(async () => {
    await addon.loadSession('run:tabular', modelPath('tabular'), { intraOpThreads: 1, interOpThreads: 1 } as never);
    await addon.loadSession('run:multi_io', modelPath('multi_io'), {} as never);
    await addon.loadSession('run:no_batch', noBatchPath, {} as never);
    await addon.loadSession('run:fp32', modelPath('identity_fp32'), {} as never);
    await addon.loadSession('run:fp64', modelPath('identity_fp64'), {} as never);
  });

  it('computes the model, returning Float32Arrays of the right shape and timings', () => {
    const x = randomFloats(11, 3 * 32);
    const result = addon.run('run:tabular', [f32('features', [3, 32], x)]);
    expect(result.outputs).toHaveLength(1);
    const [out] = result.outputs;
    expect(out!.name).toBe('probabilities');
    expect(out!.datatype).toBe('FP32');
    expect(out!.shape).toEqual([3, 2]);
    expect(out!.data).toBeInstanceOf(Float32Array);
    expect(Array.from(out!.data as Float32Array)).toEqual(tabularReference(x, 3).map((v) => expect.closeTo(v, 5)));
    expect(result.runNs).toBeGreaterThan(0);
    expect(Number.isInteger(result.runNs)).toBe(true);
    // runCpuNs (the thread's CPU time in Run) is optional: not every version of the addon reports it.
    const { runCpuNs } = result as { runCpuNs?: number };
    if (runCpuNs !== undefined) expect(runCpuNs).toBeGreaterThan(0);
  });

  it('returns INT64 outputs as BigInt64Array and FP32 as Float32Array', () => {
    const ids = BigInt64Array.from([1n, 2n, 3n, -4n, 0n, 5n, 5n, 1n]);
    const values = Float32Array.from([0.5, 0.25, 2, 1, 3, -1, 3, 0]);
    const result = addon.run('run:multi_io', [
      { name: 'ids', datatype: 'INT64', shape: [2, 4], data: ids },
      { name: 'values', datatype: 'FP32', shape: [2, 4], data: values },
    ]);
    const [weighted, argmax] = result.outputs;
    expect(weighted).toMatchObject({ name: 'weighted', datatype: 'FP32', shape: [2, 4] });
    expect(weighted!.data).toBeInstanceOf(Float32Array);
    expect(Array.from(weighted!.data as Float32Array)).toEqual([0.5, 0.5, 6, -4, 0, -5, 15, 0]);
    expect(argmax).toMatchObject({ name: 'argmax', datatype: 'INT64', shape: [2, 1] });
    expect(argmax!.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(argmax!.data as BigInt64Array)).toEqual([2n, 0n]); // first of equal maxima
  });

  it('returns only the requested outputs, in the requested order', () => {
    const inputs = (): Tensor[] => [
      { name: 'ids', datatype: 'INT64', shape: [1, 4], data: BigInt64Array.from([1n, 1n, 1n, 1n]) },
      f32('values', [1, 4], [1, 9, 2, 3]),
    ];
    const one = addon.run('run:multi_io', inputs(), ['argmax']);
    expect(one.outputs.map((t) => t.name)).toEqual(['argmax']);
    expect(Array.from(one.outputs[0]!.data as BigInt64Array)).toEqual([1n]);
    const both = addon.run('run:multi_io', inputs(), ['argmax', 'weighted']);
    expect(both.outputs.map((t) => t.name)).toEqual(['argmax', 'weighted']);
  });

  it('refuses an unknown output name with WEIR_BAD_TENSOR naming outputs[i]', () => {
    const error = thrown(() =>
      addon.run('run:tabular', [f32('features', [1, 32], new Float32Array(32))], ['probabilities', 'logits']));
    expect(error.code).toBe('WEIR_BAD_TENSOR');
    expect(error.message).toContain('outputs[1]');
    expect(error.message).toContain("'logits'");
  });

  it('runs a zero-row batch', () => {
    const [out] = addon.run('run:tabular', [f32('features', [0, 32], [])]).outputs;
    expect(out!.shape).toEqual([0, 2]);
    expect(out!.data).toBeInstanceOf(Float32Array);
    expect(out!.data.length).toBe(0);
  });

  it('reads a view from its offset, and a DataView', () => {
    const whole = Float32Array.from([9, 9, 1, 2, 9]);
    const [fromView] = addon.run('run:fp32', [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: whole.subarray(2, 4) }]).outputs;
    expect(Array.from(fromView!.data as Float32Array)).toEqual([1, 2]);
    const dataView = new DataView(whole.buffer, 8, 8);
    const [fromDataView] = addon.run('run:fp32', [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: dataView as never }]).outputs;
    expect(Array.from(fromDataView!.data as Float32Array)).toEqual([1, 2]);
    expect(Array.from(whole)).toEqual([9, 9, 1, 2, 9]); // inputs are read, never written
  });

  it('reads a tensor whose bytes live in a SharedArrayBuffer', () => {
    // The worker pool shares (does not copy) SharedArrayBuffer inputs, so the addon must read them.
    const shared = new Float32Array(new SharedArrayBuffer(2 * 32 * 4));
    shared.set(randomFloats(12, 64));
    const expected = addon.run('run:tabular', [f32('features', [2, 32], shared)]).outputs[0]!.data;
    let result: RunResult | undefined;
    let error: CodedError | undefined;
    try {
      result = addon.run('run:tabular', [{ name: 'features', datatype: 'FP32', shape: [2, 32], data: shared }]);
    } catch (e) {
      error = e as CodedError;
    }
    expect(error).toBeUndefined();
    expect(result!.outputs[0]!.data).toEqual(expected);
  });

  it('handles input names longer than 127 bytes, ASCII or not', async () => {
    await addon.loadSession('run:long_names', modelPath('long_names'), {} as never);
    const inputs = LONG_NAMES.map((name, i) => f32(name, [1, 1], [2 ** i]));
    const [sum] = addon.run('run:long_names', inputs).outputs;
    expect(Array.from(sum!.data as Float32Array)).toEqual([7]);
    const wrong = `${LONG_NAMES[0]}!`;
    const error = thrown(() => addon.run('run:long_names', [f32(wrong, [1, 1], [1])]));
    expect(error.code).toBe('WEIR_BAD_TENSOR');
    expect(error.message).toContain('inputs[0].name');
    expect(error.message).toContain(`'${wrong}'`);
    addon.releaseSession('run:long_names');
  });

  const good = (): Tensor => f32('features', [2, 32], new Float32Array(64));
  const badTensors: Array<[string, string, () => unknown[]]> = [
    ['data of the wrong length', 'inputs[0].data', () => [{ ...good(), data: new Float32Array(63) }]],
    ['data that is a plain array', 'inputs[0].data', () => [{ ...good(), data: Array.from({ length: 64 }, () => 0) }]],
    ['data missing', 'inputs[0].data', () => [{ ...good(), data: undefined }]],
    ['a datatype the input does not have', 'inputs[0].datatype', () => [{ ...good(), datatype: 'FP64', data: new Float64Array(64) }]],
    ['an unknown datatype', 'inputs[0].datatype', () => [{ ...good(), datatype: 'FLOAT' }]],
    ['a datatype that is not a string', 'inputs[0].datatype', () => [{ ...good(), datatype: 1 }]],
    ['a name the model does not have', 'inputs[0].name', () => [{ ...good(), name: 'feature' }]],
    ['a name that is not a string', 'inputs[0].name', () => [{ ...good(), name: null }]],
    ['a negative dimension', 'inputs[0].shape[1]', () => [{ ...good(), shape: [2, -32] }]],
    ['a fractional dimension', 'inputs[0].shape[0]', () => [{ ...good(), shape: [2.5, 32] }]],
    ['a NaN dimension', 'inputs[0].shape[0]', () => [{ ...good(), shape: [NaN, 32] }]],
    ['a dimension that is a string', 'inputs[0].shape[1]', () => [{ ...good(), shape: [2, '32'] }]],
    ['a dimension past int32', 'inputs[0].shape[0]', () => [{ ...good(), shape: [2 ** 31, 32] }]],
    ['a shape that is not an array', 'inputs[0].shape', () => [{ ...good(), shape: '2,32' }]],
    ['an element count too large to hold', 'inputs[0].shape or inputs[0].data', () => [{ ...good(), shape: [2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1] }]],
    ['an input that is not an object', 'inputs[0]', () => [null]],
  ];

  it.each(badTensors)('refuses %s with WEIR_BAD_TENSOR naming %s', (_what, field, inputs) => {
    const error = thrown(() => addon.run('run:tabular', inputs() as Tensor[]));
    expect(error.code).toBe('WEIR_BAD_TENSOR');
    // 'a or b': either field may be named (a shape too large to hold is also data that does not fit it).
    const fields = field.split(' or ');
    expect(fields.some((f) => error.message.includes(f)), `${error.message} names ${field}`).toBe(true);
  });

  it('names the position of the bad input among several', () => {
    const error = thrown(() => addon.run('run:multi_io', [
      { name: 'ids', datatype: 'INT64', shape: [1, 4], data: new BigInt64Array(4) },
      { name: 'values', datatype: 'FP32', shape: [1, 4], data: new Float32Array(3) },
    ]));
    expect(error.code).toBe('WEIR_BAD_TENSOR');
    expect(error.message).toContain('inputs[1].data');
  });

  it('refuses inputs that are not an array with WEIR_BAD_TENSOR naming inputs', () => {
    const error = thrown(() => addon.run('run:tabular', {} as never));
    expect(error.code).toBe('WEIR_BAD_TENSOR');
    expect(error.message).toMatch(/^inputs /);
  });

  it('refuses an 8-byte-element shape whose byte size wraps around 2^64 as WEIR_BAD_TENSOR', () => {
    // 2^30 · 2^30 · 2 elements · 8 bytes = 2^64 bytes, which is 0 in 64-bit arithmetic:
    // the addon's size check must not accept it as matching an empty buffer.
    const error = thrown(() => addon.run('run:fp64', [
      { name: 'x', datatype: 'FP64', shape: [2 ** 30, 2 ** 30, 2], data: new Float64Array(0) },
    ]));
    expect(error.code).toBe('WEIR_BAD_TENSOR');
    expect(error.message).toMatch(/^inputs\[0\]\.(shape|data)\b/);
  });

  it('passes ONNX Runtime’s own refusals on with an ORT_ code and its message', () => {
    // no_batch's matrix is fixed at [3, 4]: ORT rejects [2, 4] itself.
    const fixed = thrown(() => addon.run('run:no_batch', [f32('matrix', [2, 4], new Float32Array(8)), f32('scale', [], [1])]));
    expect(fixed.code).toBe('ORT_INVALID_ARGUMENT');
    expect(fixed.message).toContain('matrix');
    // A rank the model does not have.
    const rank = thrown(() => addon.run('run:tabular', [f32('features', [32], new Float32Array(32))]));
    expect(rank.code).toMatch(/^ORT_/);
    expect(rank.message).toContain('features');
  });
});

describe('copyBytes', () => {
  it('copies any source alignment into shared memory exactly', () => {
    const target = new Uint8Array(new SharedArrayBuffer(64));
    const source = Uint8Array.from({ length: 40 }, (_, i) => i + 1);
    for (const offset of [0, 1, 3, 8]) {
      target.fill(0);
      addon.copyBytes(target, offset, source.slice(offset % 5).buffer);
      expect(Array.from(target.subarray(offset, offset + 40 - (offset % 5)))).toEqual(Array.from(source.subarray(offset % 5)));
      expect(target[offset + 40]).toBe(0);
    }
  });

  it('refuses a copy that would not fit, naming the call', () => {
    const error = thrown(() => addon.copyBytes(new Uint8Array(8), 4, new ArrayBuffer(5)));
    expect(error.code).toBe('WEIR_BAD_ARGUMENT');
    expect(error.message).toContain('copyBytes');
    expect(thrown(() => addon.copyBytes(new Float32Array(4) as never, 0, new ArrayBuffer(4))).code).toBe('WEIR_BAD_ARGUMENT');
  });
});

describe('inside a worker thread', () => {
  // Imports the compiled addon through its file URL, as the pool's worker does.
  const WORKER_SCRIPT = `
import { parentPort, workerData } from 'node:worker_threads';
const { nativeAddon } = await import(workerData.addonUrl);
const addon = nativeAddon();
parentPort.on('message', (message) => {
  if (message.type === 'info') {
    parentPort.postMessage({ type: 'info', runtime: addon.initRuntime(workerData.libraryPath), sessions: addon.sessions(), live: addon.liveSessionCount() });
  } else if (message.type === 'wait') {
    const word = new Int32Array(message.buffer);
    parentPort.postMessage({ type: 'waiting' });
    const started = performance.now();
    addon.waitOnWord(word, message.expected, message.timeoutMs);
    parentPort.postMessage({ type: 'woke', ms: performance.now() - started });
  } else if (message.type === 'ring') {
    const rang = [];
    for (let i = 0; i < message.times; i++) rang.push(addon.ringDoorbell(message.id));
    parentPort.postMessage({ type: 'rang', rang });
  } else if (message.type === 'run') {
    parentPort.postMessage({ type: 'started' });
    try {
      parentPort.postMessage({ type: 'result', ok: true, result: addon.run(message.key, message.inputs) });
    } catch (error) {
      parentPort.postMessage({ type: 'result', ok: false, code: error.code, message: error.message });
    }
  }
});
parentPort.postMessage({ type: 'ready' });
`;

  interface WorkerMessage {
    type: string;
    [field: string]: unknown;
  }

  let worker: Worker;
  let inbox: WorkerMessage[] = [];
  let waiters: Array<{ type: string; resolve: (m: WorkerMessage) => void; reject: (e: Error) => void }> = [];

  /** The next message of `type` from the worker (rejects if it dies first). */
  function next(type: string): Promise<WorkerMessage> {
    const index = inbox.findIndex((m) => m.type === type);
    if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0]!);
    return new Promise((resolve, reject) => waiters.push({ type, resolve, reject }));
  }

  beforeAll(async () => {
    const script = join(root, 'addon-worker.mjs');
    await writeFile(script, WORKER_SCRIPT);
    worker = new Worker(script, {
      workerData: { addonUrl: new URL('../dist/native/addon.js', import.meta.url).href, libraryPath: ortLibraryPath() },
    });
    worker.on('message', (message: WorkerMessage) => {
      const waiter = waiters.find((w) => w.type === message.type);
      if (waiter) {
        waiters = waiters.filter((w) => w !== waiter);
        waiter.resolve(message);
      } else {
        inbox.push(message);
      }
    });
    const fail = (error: unknown): void => {
      for (const w of waiters) w.reject(error instanceof Error ? error : new Error(`worker exited: ${String(error)}`));
      waiters = [];
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    await next('ready');
  });

  afterAll(async () => {
    inbox = [];
    await worker.terminate();
  });

  it('loads the addon on the same runtime and sees the sessions the main thread loaded', async () => {
    await addon.loadSession('worker:tabular', tabularPath, {} as never);
    worker.postMessage({ type: 'info' });
    const info = await next('info');
    expect(info.runtime).toEqual(runtime);
    expect(info.sessions).toContainEqual({ key: 'worker:tabular', modelPath: tabularPath, references: 1 });
    expect(info.live).toBe(addon.liveSessionCount());
  });

  it('runs the session the main thread loaded, with the same results', async () => {
    const x = randomFloats(21, 8 * 32);
    const onMain = addon.run('worker:tabular', [f32('features', [8, 32], x)]);
    worker.postMessage({ type: 'run', key: 'worker:tabular', inputs: [f32('features', [8, 32], x)] });
    const reply = await next('result');
    expect(reply.ok).toBe(true);
    const inWorker = reply.result as RunResult;
    expect(inWorker.outputs).toEqual(onMain.outputs);
    expect(inWorker.outputs[0]!.data).toBeInstanceOf(Float32Array);
  });

  it('rings a doorbell the main thread opened: its callback runs here, once per ring', async () => {
    let calls = 0;
    const id = addon.openDoorbell(() => (calls += 1));
    try {
      worker.postMessage({ type: 'ring', id, times: 5 });
      expect((await next('rang')).rang).toEqual([true, true, true, true, true]);
      for (let turn = 0; turn < 50 && calls < 5; turn++) await new Promise((resolve) => setTimeout(resolve, 2));
      expect(calls).toBe(5);
    } finally {
      addon.closeDoorbell(id);
    }
  });

  it('a thread blocked on a word (waitOnWord) wakes when woken, long before its timeout', async () => {
    const buffer = new SharedArrayBuffer(4);
    worker.postMessage({ type: 'wait', buffer, expected: 0, timeoutMs: 10_000 });
    await next('waiting');
    await new Promise((resolve) => setTimeout(resolve, 50)); // into the wait
    addon.wakeWord(new Int32Array(buffer));
    expect((await next('woke')).ms).toBeLessThan(5_000);
  });

  it('a wait on a word that no longer holds the expected value returns at once; one nobody wakes ends at its timeout', async () => {
    const buffer = new SharedArrayBuffer(4);
    worker.postMessage({ type: 'wait', buffer, expected: 1, timeoutMs: 10_000 });
    expect((await next('woke')).ms).toBeLessThan(1_000);
    worker.postMessage({ type: 'wait', buffer, expected: 0, timeoutMs: 60 });
    const { ms } = await next('woke');
    expect(ms).toBeGreaterThanOrEqual(50);
    expect(ms).toBeLessThan(5_000);
  });

  it('a closed doorbell rings no more', async () => {
    let calls = 0;
    const id = addon.openDoorbell(() => (calls += 1));
    addon.closeDoorbell(id);
    addon.closeDoorbell(id); // again: nothing
    worker.postMessage({ type: 'ring', id, times: 2 });
    expect((await next('rang')).rang).toEqual([false, false]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toBe(0);
  });

  it('keeps the worker\'s error codes', async () => {
    worker.postMessage({ type: 'run', key: 'worker:unknown', inputs: [] });
    const reply = await next('result');
    expect(reply).toMatchObject({ ok: false, code: 'WEIR_SESSION_NOT_LOADED' });
    expect(reply.message).toContain("'worker:unknown'");
  });

  it('a session released while a worker runs it lives until that run returns', async () => {
    await addon.loadSession('worker:slow', modelPath('slow'), {} as never);
    const live = addon.liveSessionCount();
    const rows = 1000; // about half a second on one core
    worker.postMessage({ type: 'run', key: 'worker:slow', inputs: [f32('x', [rows, 256], randomFloats(3, rows * 256))] });
    await next('started');
    // No event marks "inside ONNX Runtime's Run": give the worker a moment to get there.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(addon.releaseSession('worker:slow')).toBe(0);
    expect(addon.sessions().some((s) => s.key === 'worker:slow')).toBe(false);
    expect(addon.liveSessionCount()).toBe(live); // still held by the run

    const reply = await next('result');
    expect(reply.ok).toBe(true);
    expect((reply.result as RunResult).outputs[0]!.shape).toEqual([rows, 256]);
    expect(addon.liveSessionCount()).toBe(live - 1);
  });
});

describe('doorbells', () => {
  it('an open doorbell does not keep the process alive', () => {
    const script = `import { nativeAddon } from ${JSON.stringify(new URL('../dist/native/addon.js', import.meta.url).href)};
nativeAddon().openDoorbell(() => {});`;
    const started = performance.now();
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('waitOnWord and wakeWord refuse what is not an Int32Array, or a negative or unbounded timeout', () => {
    expect(thrown(() => addon.wakeWord(new Float64Array(1) as never)).code).toBe('WEIR_BAD_ARGUMENT');
    expect(thrown(() => addon.waitOnWord(new Int32Array(0), 0, 1)).message).toContain('non-empty Int32Array');
    expect(thrown(() => addon.waitOnWord(new Int32Array(1), 0, -1)).code).toBe('WEIR_BAD_ARGUMENT');
    expect(thrown(() => addon.waitOnWord(new Int32Array(1), 0, Number.POSITIVE_INFINITY)).code).toBe('WEIR_BAD_ARGUMENT');
  });

  it('refuses an id that is not a number', () => {
    const error = thrown(() => addon.ringDoorbell('1' as never));
    expect(error.code).toBe('WEIR_BAD_ARGUMENT');
    expect(error.message).toContain("doorbell's id must be a number");
    expect(addon.ringDoorbell(0)).toBe(false); // never opened
  });
});
