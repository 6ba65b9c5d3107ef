/**
 * InferenceCore over the bundled example repository (models/): health,
 * metadata, addressing, request validation and responses, plus a second
 * core (BYTES and two-input models) and a third one that is stopped.
 * Real ONNX Runtime sessions, real worker threads.
 */
import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InferenceCore, type InferRequest, type Tensor, decodeBytesTensor, encodeBytesTensor } from '../dist/index.js';
import { buildModel, identityModel, node, valueInfo } from '../scripts/onnx-builder.mjs';
import { EXAMPLE_REPOSITORY, makeRepository, removeRepository } from './helpers/repository.js';
import { expectError } from './helpers/errors.js';

const PACKAGE = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const fp32 = (name: string, shape: number[], fill = 0.5): Tensor => {
  const count = shape.reduce((a, b) => a * b, 1);
  return { name, datatype: 'FP32', shape, data: new Float32Array(count).fill(fill) };
};

const int64 = (name: string, shape: number[], values?: number[]): Tensor => {
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new BigInt64Array(count);
  for (let i = 0; i < count; i++) data[i] = BigInt(values?.[i] ?? i);
  return { name, datatype: 'INT64', shape, data };
};

const tabular = (rows: number, extra: Partial<InferRequest> = {}): InferRequest => ({
  model: 'tabular',
  inputs: [fp32('features', [rows, 32])],
  ...extra,
});

const multiIo = (rows: number): InferRequest => ({
  model: 'multi_io',
  inputs: [int64('ids', [rows, 4]), fp32('values', [rows, 4])],
});

let core: InferenceCore;

beforeAll(async () => {
  core = await InferenceCore.start({ modelRepository: EXAMPLE_REPOSITORY, workers: 2 });
});

afterAll(async () => {
  await core?.stop();
});

describe('server', () => {
  it('is live and ready', () => {
    expect(core.live()).toBe(true);
    expect(core.ready()).toBe(true);
  });

  it('reports its name, its package version and the ONNX Runtime version', () => {
    const metadata = core.serverMetadata();
    expect(metadata.name).toBe('weir');
    expect(metadata.version).toBe(PACKAGE.version);
    expect(metadata.extensions).toEqual([]);
    expect(metadata.onnxruntime).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('loaded every example model version READY', () => {
    expect(core.status()).toEqual([
      { model: 'cnn', version: 1, state: 'READY', reason: null },
      { model: 'multi_io', version: 1, state: 'READY', reason: null },
      { model: 'no_batch', version: 1, state: 'READY', reason: null },
      { model: 'tabular', version: 1, state: 'READY', reason: null },
      { model: 'tabular', version: 2, state: 'READY', reason: null },
      { model: 'trees', version: 1, state: 'READY', reason: null },
    ]);
  });
});

describe('model metadata', () => {
  const PLATFORM = 'onnxruntime_onnx';

  it.each([
    [
      'tabular',
      ['2', '1'],
      [{ name: 'features', datatype: 'FP32', shape: [-1, 32] }],
      [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 2] }],
    ],
    [
      'multi_io',
      ['1'],
      [
        { name: 'ids', datatype: 'INT64', shape: [-1, 4] },
        { name: 'values', datatype: 'FP32', shape: [-1, 4] },
      ],
      [
        { name: 'weighted', datatype: 'FP32', shape: [-1, 4] },
        { name: 'argmax', datatype: 'INT64', shape: [-1, 1] },
      ],
    ],
    [
      'no_batch',
      ['1'],
      [
        { name: 'matrix', datatype: 'FP32', shape: [3, 4] },
        { name: 'scale', datatype: 'FP32', shape: [] },
      ],
      [
        { name: 'scaled', datatype: 'FP32', shape: [3, 4] },
        { name: 'total', datatype: 'FP32', shape: [] },
      ],
    ],
    [
      'cnn',
      ['1'],
      [{ name: 'image', datatype: 'FP32', shape: [-1, 3, 32, 32] }],
      [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 10] }],
    ],
    [
      'trees',
      ['1'],
      [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }],
      [
        { name: 'label', datatype: 'INT64', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
      ],
    ],
  ])('%s', (name, versions, inputs, outputs) => {
    expect(core.modelMetadata(name)).toEqual({ name, versions, platform: PLATFORM, inputs, outputs });
    expect(core.modelReady(name)).toBe(true);
    for (const version of versions) {
      expect(core.modelReady(name, version)).toBe(true);
      expect(core.modelMetadata(name, version)).toEqual({ name, versions, platform: PLATFORM, inputs, outputs });
    }
  });

  it('modelConfig of tabular: its config.json in Triton field names, plus what it resolved to', () => {
    expect(core.modelConfig('tabular')).toEqual({
      name: 'tabular',
      platform: PLATFORM,
      backend: 'onnxruntime',
      max_batch_size: 128,
      input: [{ name: 'features', data_type: 'TYPE_FP32', dims: [32] }],
      output: [{ name: 'probabilities', data_type: 'TYPE_FP32', dims: [2] }],
      dynamic_batching: { preferred_batch_size: [32, 64], max_queue_delay_microseconds: 500, max_queue_size: 4096 },
      version_policy: { all: {} },
      runtime: {
        intra_op_threads: core.threads.intraOpThreads,
        inter_op_threads: 1,
        graph_optimization: 'all',
        execution_provider: 'cpu',
        device_id: 0,
        cpu_fallback: false,
        active_execution_provider: 'cpu',
      },
    });
    expect(core.modelConfig('tabular', '1')).toMatchObject({ name: 'tabular', max_batch_size: 128 });
  });

  it('modelConfig of multi_io: auto-completed, batching with the default queue', () => {
    expect(core.modelConfig('multi_io')).toMatchObject({
      name: 'multi_io',
      max_batch_size: 64,
      input: [
        { name: 'ids', data_type: 'TYPE_INT64', dims: [4] },
        { name: 'values', data_type: 'TYPE_FP32', dims: [4] },
      ],
      output: [
        { name: 'weighted', data_type: 'TYPE_FP32', dims: [4] },
        { name: 'argmax', data_type: 'TYPE_INT64', dims: [1] },
      ],
      dynamic_batching: { preferred_batch_size: [], max_queue_delay_microseconds: 100, max_queue_size: 1024 },
      version_policy: { latest: { num_versions: 1 } },
    });
  });

  it('modelConfig of no_batch: max_batch_size 0, full dims, no dynamic_batching', () => {
    const config = core.modelConfig('no_batch');
    expect(config).toMatchObject({
      max_batch_size: 0,
      input: [
        { name: 'matrix', data_type: 'TYPE_FP32', dims: [3, 4] },
        { name: 'scale', data_type: 'TYPE_FP32', dims: [] },
      ],
      output: [
        { name: 'scaled', data_type: 'TYPE_FP32', dims: [3, 4] },
        { name: 'total', data_type: 'TYPE_FP32', dims: [] },
      ],
    });
    expect(config).not.toHaveProperty('dynamic_batching');
  });

  it('modelConfig of cnn and trees', () => {
    expect(core.modelConfig('cnn')).toMatchObject({
      max_batch_size: 128,
      input: [{ name: 'image', data_type: 'TYPE_FP32', dims: [3, 32, 32] }],
      dynamic_batching: { preferred_batch_size: [8, 32], max_queue_delay_microseconds: 1000, max_queue_size: 1024 },
    });
    expect(core.modelConfig('trees')).toMatchObject({
      max_batch_size: 64,
      output: [
        { name: 'label', data_type: 'TYPE_INT64', dims: [] },
        { name: 'probabilities', data_type: 'TYPE_FP32', dims: [2] },
      ],
    });
  });
});

describe('addressing', () => {
  it('an unknown model', async () => {
    for (const call of [
      () => core.infer({ model: 'nope', inputs: [] }),
      () => core.modelMetadata('nope'),
      () => core.modelConfig('nope'),
      () => core.modelReady('nope'),
    ]) {
      await expectError(call, 'WEIR_MODEL_NOT_FOUND', "'nope'");
    }
  });

  it('an unknown version names the versions there are', async () => {
    for (const call of [
      () => core.infer(tabular(1, { version: '3' })),
      () => core.modelMetadata('tabular', '3'),
      () => core.modelConfig('tabular', 3),
      () => core.modelReady('tabular', '3'),
    ]) {
      await expectError(call, 'WEIR_VERSION_NOT_FOUND', "model 'tabular' has no version 3", 'its versions: 1, 2');
    }
  });

  it.each(['abc', '0', '-1', '1.5', '01', ' 1'])('version %j is a bad argument', async (version) => {
    await expectError(() => core.infer(tabular(1, { version })), 'WEIR_BAD_ARGUMENT', `version '${version}'`, 'not a positive integer');
    await expectError(() => core.modelMetadata('tabular', version), 'WEIR_BAD_ARGUMENT', `version '${version}'`);
  });

  it('a version given as a number', async () => {
    const response = await core.infer(tabular(1, { version: 1 }));
    expect(response.model_version).toBe('1');
  });
});

describe('request validation', () => {
  it('an unknown input', async () => {
    await expectError(
      () => core.infer({ model: 'tabular', inputs: [fp32('feature', [1, 32])] }),
      'WEIR_INPUT_UNKNOWN',
      'inputs[0].name',
      "no input 'feature'",
      'expected one of: features',
    );
  });

  it('a missing input', async () => {
    await expectError(
      () => core.infer({ model: 'multi_io', inputs: [int64('ids', [1, 4])] }),
      'WEIR_INPUT_MISSING',
      'inputs',
      "needs input 'values'",
      'FP32 [-1,4]',
    );
    await expectError(() => core.infer({ model: 'tabular', inputs: [] }), 'WEIR_INPUT_MISSING', "needs input 'features'");
  });

  it('a duplicated input', async () => {
    await expectError(
      () => core.infer({ model: 'tabular', inputs: [fp32('features', [1, 32]), fp32('features', [1, 32])] }),
      'WEIR_INPUT_DUPLICATE',
      'inputs[1].name',
      "'features' appears more than once",
    );
  });

  it('a wrong datatype', async () => {
    await expectError(
      () => core.infer({ model: 'tabular', inputs: [{ name: 'features', datatype: 'FP64', shape: [1, 32], data: new Float64Array(32) }] }),
      'WEIR_DATATYPE_MISMATCH',
      'inputs[0].datatype',
      "input 'features' expects FP32, got FP64",
    );
    await expectError(
      () => core.infer({ model: 'multi_io', inputs: [int64('ids', [1, 4]), { name: 'values', datatype: 'INT64', shape: [1, 4], data: new BigInt64Array(4) }] }),
      'WEIR_DATATYPE_MISMATCH',
      'inputs[1].datatype',
      "input 'values' expects FP32, got INT64",
    );
  });

  it('a datatype that is not a V2 datatype', async () => {
    const input = { name: 'features', datatype: 'FLOAT', shape: [1, 32], data: new Float32Array(32) } as unknown as Tensor;
    await expectError(() => core.infer({ model: 'tabular', inputs: [input] }), 'WEIR_DATATYPE_MISMATCH', 'inputs[0].datatype', "expects FP32, got 'FLOAT'");
  });

  it('BYTES sent to an FP32 input', async () => {
    const input: Tensor = { name: 'features', datatype: 'BYTES', shape: [1, 32], data: encodeBytesTensor(new Array(32).fill('x')) };
    await expectError(() => core.infer({ model: 'tabular', inputs: [input] }), 'WEIR_DATATYPE_MISMATCH', 'inputs[0].datatype', 'expects FP32, got BYTES');
  });

  it('a wrong rank', async () => {
    await expectError(
      () => core.infer({ model: 'tabular', inputs: [fp32('features', [32])] }),
      'WEIR_SHAPE_MISMATCH',
      'inputs[0].shape',
      'expects 2 dimensions [-1,32], got [32]',
    );
    await expectError(
      () => core.infer({ model: 'no_batch', inputs: [fp32('matrix', [3, 4]), fp32('scale', [1])] }),
      'WEIR_SHAPE_MISMATCH',
      'inputs[1].shape',
      "input 'scale' expects 0 dimensions [], got [1]",
    );
  });

  it('a wrong fixed dimension', async () => {
    await expectError(
      () => core.infer({ model: 'tabular', inputs: [fp32('features', [1, 31])] }),
      'WEIR_SHAPE_MISMATCH',
      'inputs[0].shape[1]',
      "input 'features' expects [-1,32], got [1,31]",
    );
    await expectError(
      () => core.infer({ model: 'no_batch', inputs: [fp32('matrix', [3, 5]), fp32('scale', [])] }),
      'WEIR_SHAPE_MISMATCH',
      'inputs[0].shape[1]',
      "input 'matrix' expects [3,4], got [3,5]",
    );
    await expectError(
      () => core.infer({ model: 'cnn', inputs: [fp32('image', [1, 3, 32, 16])] }),
      'WEIR_SHAPE_MISMATCH',
      'inputs[0].shape[3]',
      'expects [-1,3,32,32]',
    );
  });

  it('a shape that is not an array of non-negative integers', async () => {
    for (const shape of [[1.5, 32], [-1, 32], 'x']) {
      const input = { name: 'features', datatype: 'FP32', shape, data: new Float32Array(32) } as unknown as Tensor;
      await expectError(() => core.infer({ model: 'tabular', inputs: [input] }), 'WEIR_SHAPE_MISMATCH', 'inputs[0].shape', 'non-negative integers');
    }
  });

  it('a batch over max_batch_size', async () => {
    await expectError(() => core.infer(tabular(129)), 'WEIR_BATCH_TOO_LARGE', 'inputs[0].shape[0]', 'batch of 129 exceeds max_batch_size 128');
    // multi_io has no config: its auto-completed max_batch_size is 64.
    await expectError(() => core.infer(multiIo(65)), 'WEIR_BATCH_TOO_LARGE', 'inputs[0].shape[0]', 'batch of 65 exceeds max_batch_size 64');
  });

  it('inputs with different batch sizes', async () => {
    await expectError(
      () => core.infer({ model: 'multi_io', inputs: [int64('ids', [2, 4]), fp32('values', [3, 4])] }),
      'WEIR_SHAPE_MISMATCH',
      'inputs[1].shape[0]',
      "batch size 3 differs from the other inputs' 2",
    );
  });

  it('data that does not hold as many elements as the shape says', async () => {
    await expectError(
      () => core.infer({ model: 'tabular', inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 32], data: new Float32Array(63) }] }),
      'WEIR_DATA_SIZE_MISMATCH',
      'inputs[0].data',
      'shape [2,32] needs 64 FP32 elements, got 63',
    );
    await expectError(
      () => core.infer({ model: 'no_batch', inputs: [fp32('matrix', [3, 4]), { name: 'scale', datatype: 'FP32', shape: [], data: new Float32Array(0) }] }),
      'WEIR_DATA_SIZE_MISMATCH',
      'inputs[1].data',
      'shape [] needs 1 FP32 elements, got 0',
    );
  });

  it('data in the wrong TypedArray class', async () => {
    await expectError(
      () => core.infer({ model: 'tabular', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32], data: new Float64Array(32) } as Tensor] }),
      'WEIR_BAD_ARGUMENT',
      'inputs[0].data',
      'FP32 data must be a Float32Array, got Float64Array',
    );
    await expectError(
      () => core.infer({ model: 'multi_io', inputs: [{ name: 'ids', datatype: 'INT64', shape: [1, 4], data: new Int32Array(4) }, fp32('values', [1, 4])] }),
      'WEIR_BAD_ARGUMENT',
      'inputs[0].data',
      'INT64 data must be a BigInt64Array, got Int32Array',
    );
    const plain = { name: 'features', datatype: 'FP32', shape: [1, 32], data: new Array(32).fill(0) } as unknown as Tensor;
    await expectError(() => core.infer({ model: 'tabular', inputs: [plain] }), 'WEIR_BAD_ARGUMENT', 'inputs[0].data', 'must be a Float32Array, got Array');
  });

  it('inputs that are not an array', async () => {
    const request = { model: 'tabular', inputs: fp32('features', [1, 32]) } as unknown as InferRequest;
    await expectError(() => core.infer(request), 'WEIR_BAD_ARGUMENT', 'inputs must be an array');
  });

  it('outputs that are not an array of names', async () => {
    const request = { ...tabular(1), outputs: 'probabilities' } as unknown as InferRequest;
    const error = await expectError(() => core.infer(request), 'WEIR_BAD_ARGUMENT', 'outputs');
    expect(error.message).not.toContain('forEach');
  });

  it('an input that is not a tensor object', async () => {
    const request = { model: 'tabular', inputs: [null] } as unknown as InferRequest;
    const error = await expectError(() => core.infer(request), 'WEIR_BAD_ARGUMENT', 'inputs[0]');
    expect(error.message).not.toContain('Cannot read properties');
  });

  it('an unknown requested output', async () => {
    await expectError(
      () => core.infer(tabular(1, { outputs: ['probs'] })),
      'WEIR_OUTPUT_UNKNOWN',
      'outputs[0]',
      "no output 'probs'",
      'expected one of: probabilities',
    );
    await expectError(
      () => core.infer({ ...multiIo(1), outputs: ['weighted', 'nope'] }),
      'WEIR_OUTPUT_UNKNOWN',
      'outputs[1]',
      "no output 'nope'",
      'weighted, argmax',
    );
  });

  it('still serves a good request after all of these', async () => {
    const response = await core.infer(tabular(3));
    expect(response.outputs).toHaveLength(1);
    expect(response.outputs[0]).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [3, 2] });
    expect(core.status().every((s) => s.state === 'READY')).toBe(true);
  });
});

describe('responses', () => {
  it('returns every output when none are requested', async () => {
    const response = await core.infer(multiIo(2));
    expect(response.outputs.map((t) => [t.name, t.datatype, t.shape])).toEqual([
      ['weighted', 'FP32', [2, 4]],
      ['argmax', 'INT64', [2, 1]],
    ]);
  });

  it('returns only the requested outputs', async () => {
    const response = await core.infer({ ...multiIo(2), outputs: ['argmax'] });
    expect(response.outputs).toHaveLength(1);
    expect(response.outputs[0]).toMatchObject({ name: 'argmax', datatype: 'INT64', shape: [2, 1] });
    expect(response.outputs[0]?.data).toBeInstanceOf(BigInt64Array);

    const trees = await core.infer({ model: 'trees', inputs: [fp32('features', [2, 4])], outputs: ['probabilities'] });
    expect(trees.outputs.map((t) => t.name)).toEqual(['probabilities']);
  });

  it('echoes the request id, and leaves it out when there is none', async () => {
    const withId = await core.infer(tabular(1, { id: 'request-42' }));
    expect(withId.id).toBe('request-42');
    const without = await core.infer(tabular(1));
    expect(without).not.toHaveProperty('id');
    expect(without.model_name).toBe('tabular');
  });

  it('model_version names the version that served', async () => {
    const rows = 2;
    const [v1, v2, latest] = await Promise.all([
      core.infer(tabular(rows, { version: '1' })),
      core.infer(tabular(rows, { version: '2' })),
      core.infer(tabular(rows)),
    ]);
    expect(v1.model_version).toBe('1');
    expect(v2.model_version).toBe('2');
    expect(latest.model_version).toBe('2');
    // The same input through different weights: version 1 and 2 answer differently.
    expect(Array.from(v1.outputs[0]?.data as Float32Array)).not.toEqual(Array.from(v2.outputs[0]?.data as Float32Array));
    expect(Array.from(latest.outputs[0]?.data as Float32Array)).toEqual(Array.from(v2.outputs[0]?.data as Float32Array));
  });

  it('an empty version string means the newest version', async () => {
    const response = await core.infer(tabular(1, { version: '' }));
    expect(response.model_version).toBe('2');
  });
});

describe('inferInto (the front ends\' path)', () => {
  /** A reply that records every call it gets, and whether it came before inferInto returned. */
  const recorder = () => {
    const calls: Array<{ method: 'answer' | 'fail'; value: unknown; synchronous: boolean }> = [];
    let returned = false;
    let settle = () => {};
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const record = (method: 'answer' | 'fail') => (value: unknown) => {
      calls.push({ method, value, synchronous: !returned });
      settle();
    };
    return { reply: { answer: record('answer'), fail: record('fail') }, calls, settled, markReturned: () => (returned = true) };
  };

  it('answers a good request once, after it returned, as infer() does', async () => {
    const { reply, calls, settled, markReturned } = recorder();
    core.inferInto(tabular(2, { id: 'into' }), reply);
    markReturned();
    await settled;
    await new Promise((resolve) => setTimeout(resolve, 20)); // nothing more comes
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: 'answer', synchronous: false, value: { model_name: 'tabular', model_version: '2', id: 'into' } });
    const expected = await core.infer(tabular(2));
    expect(Array.from((calls[0]?.value as { outputs: Tensor[] }).outputs[0]?.data as Float32Array)).toEqual(Array.from(expected.outputs[0]?.data as Float32Array));
  });

  it('refuses an unknown model and an invalid request once, before it returns', async () => {
    const refused: Array<[InferRequest, string]> = [
      [{ model: 'nope', inputs: [] }, 'WEIR_MODEL_NOT_FOUND'],
      [tabular(1, { inputs: [fp32('features', [1, 31])] }), 'WEIR_SHAPE_MISMATCH'],
    ];
    for (const [request, code] of refused) {
      const { reply, calls, markReturned } = recorder();
      core.inferInto(request, reply);
      markReturned();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ method: 'fail', synchronous: true });
      expect((calls[0]?.value as { code: string }).code).toBe(code);
    }
    await expectError(() => core.infer({ model: 'nope', inputs: [] }), 'WEIR_MODEL_NOT_FOUND');
  });
});

describe('an observer that throws (a second core)', () => {
  it("never costs a request its answer: a success becomes the observer's error, a failure keeps its own, and the core keeps serving", async () => {
    let throwing = true;
    const observer = {
      requestFinished: () => {
        if (throwing) throw new Error('the observer broke');
      },
      batchRan: () => {},
      jobRan: () => {},
    };
    const second = await InferenceCore.start({ modelRepository: EXAMPLE_REPOSITORY, workers: 1, observer });
    try {
      await expect(second.infer(tabular(1))).rejects.toThrow('the observer broke');
      // Failures keep their own error, whether refused at once, by validation, or inside the batcher.
      await expectError(() => second.infer({ model: 'nope', inputs: [] }), 'WEIR_MODEL_NOT_FOUND');
      await expectError(() => second.infer(tabular(1, { inputs: [fp32('features', [1, 31])] })), 'WEIR_SHAPE_MISMATCH');
      await expectError(() => second.infer(tabular(1, { cancellation: { cancelled: true } })), 'WEIR_REQUEST_CANCELLED');
      throwing = false;
      const answers = await Promise.all([1, 2, 3].map((rows) => second.infer(tabular(rows))));
      expect(answers.map((a) => a.outputs[0]?.shape)).toEqual([[1, 2], [2, 2], [3, 2]]);
    } finally {
      await second.stop();
    }
  });
});

describe('BYTES tensors and shared buffers (a second core)', () => {
  let other: InferenceCore;
  let root: string;

  beforeAll(async () => {
    root = await makeRepository({
      strings: { versions: { 1: identityModel('BYTES', ['N']) } },
      pair: {
        versions: {
          1: buildModel({
            graphName: 'pair',
            inputs: [valueInfo('a', 'FP32', ['N', 'M']), valueInfo('b', 'FP32', ['N', 'M'])],
            outputs: [valueInfo('y', 'FP32', ['N', 'M'])],
            nodes: [node('Add', ['a', 'b'], ['y'])],
          }),
        },
      },
    });
    other = await InferenceCore.start({ modelRepository: root, workers: 1 });
  });

  afterAll(async () => {
    await other?.stop();
    await removeRepository(root);
  });

  it('round-trips BYTES elements', async () => {
    const response = await other.infer({
      model: 'strings',
      inputs: [{ name: 'x', datatype: 'BYTES', shape: [3], data: encodeBytesTensor(['a', '', 'héllo']) }],
    });
    const [y] = response.outputs;
    expect(y).toMatchObject({ name: 'y', datatype: 'BYTES', shape: [3] });
    expect(decodeBytesTensor(y?.data as Uint8Array).map((b) => Buffer.from(b).toString('utf8'))).toEqual(['a', '', 'héllo']);
  });

  it('BYTES whose length prefixes do not add up', async () => {
    const overlong = encodeBytesTensor(['ab', 'cd']);
    new DataView(overlong.buffer).setUint32(6, 100, true); // the second element claims 100 bytes
    await expectError(
      () => other.infer({ model: 'strings', inputs: [{ name: 'x', datatype: 'BYTES', shape: [2], data: overlong }] }),
      'WEIR_DATA_SIZE_MISMATCH',
      'inputs[0].data',
      "4-byte length prefixes do not add up to the data's 12 bytes",
    );
    const truncated = new Uint8Array([...encodeBytesTensor(['ab']), 1, 0]); // a 2-byte tail where a prefix should be
    await expectError(
      () => other.infer({ model: 'strings', inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], data: truncated }] }),
      'WEIR_DATA_SIZE_MISMATCH',
      'inputs[0].data',
      'length prefixes do not add up',
    );
  });

  it('BYTES with more elements than the shape says', async () => {
    await expectError(
      () => other.infer({ model: 'strings', inputs: [{ name: 'x', datatype: 'BYTES', shape: [2], data: encodeBytesTensor(['a', 'b', 'c']) }] }),
      'WEIR_DATA_SIZE_MISMATCH',
      'inputs[0].data',
      'shape [2] needs 2 BYTES elements, got 3',
    );
  });

  // Small tensors are copied into one packed buffer; large ones (over 64 KiB) are moved.
  it.each([
    ['small', 4],
    ['large', 300],
  ])('serves a request whose two inputs hold the very same (%s) array', async (_size, columns) => {
    const rows = 64;
    const data = new Float32Array(rows * columns).map((_, i) => i % 97);
    const expected = Array.from(data, (v) => 2 * v);
    const response = await other.infer({
      model: 'pair',
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [rows, columns], data },
        { name: 'b', datatype: 'FP32', shape: [rows, columns], data },
      ],
    });
    expect(response.outputs[0]?.shape).toEqual([rows, columns]);
    expect(Array.from(response.outputs[0]?.data as Float32Array)).toEqual(expected);
  });

  it('a request sent in the same turn as one with a shared large array is not failed with it', async () => {
    const shared = new Float32Array(64 * 300).fill(1);
    const odd = other.infer({
      model: 'pair',
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [64, 300], data: shared },
        { name: 'b', datatype: 'FP32', shape: [64, 300], data: shared },
      ],
    });
    const innocent = other.infer({
      model: 'pair',
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [1, 2], data: new Float32Array([1, 2]) },
        { name: 'b', datatype: 'FP32', shape: [1, 2], data: new Float32Array([3, 4]) },
      ],
    });
    const [oddResult, innocentResult] = await Promise.allSettled([odd, innocent]);
    expect(innocentResult).toMatchObject({ status: 'fulfilled' });
    expect(Array.from((innocentResult as PromiseFulfilledResult<Awaited<typeof innocent>>).value.outputs[0]?.data as Float32Array)).toEqual([4, 6]);
    expect(oddResult).toMatchObject({ status: 'fulfilled' });
  });
});

describe('stop()', () => {
  it('finishes the requests in flight, then refuses new ones', async () => {
    const stopping = await InferenceCore.start({ modelRepository: EXAMPLE_REPOSITORY, workers: 2 });
    const inflight = [
      ...Array.from({ length: 6 }, () => stopping.infer(tabular(16))),
      ...Array.from({ length: 2 }, () => stopping.infer({ model: 'cnn', inputs: [fp32('image', [4, 3, 32, 32])] })),
      stopping.infer({ model: 'no_batch', inputs: [fp32('matrix', [3, 4]), fp32('scale', [])] }),
    ];
    const stopped = stopping.stop();
    expect(stopping.live()).toBe(false);
    expect(stopping.ready()).toBe(false);
    await expectError(() => stopping.infer(tabular(1)), 'WEIR_SERVER_STOPPING', 'shutting down');

    const responses = await Promise.all(inflight);
    expect(responses.map((r) => r.model_name)).toEqual([...new Array(6).fill('tabular'), 'cnn', 'cnn', 'no_batch']);
    expect(responses[0]?.outputs[0]?.shape).toEqual([16, 2]);
    await stopped;

    await expectError(() => stopping.infer(tabular(1)), 'WEIR_SERVER_STOPPING');
    await stopping.stop(); // a second stop() is a no-op

    // The first core was not disturbed by the second one stopping.
    const response = await core.infer(tabular(2));
    expect(response.outputs[0]?.shape).toEqual([2, 2]);
  });
});
