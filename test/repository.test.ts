/**
 * The model repository on real folders: version policies, auto-complete of
 * the batch settings, config declarations checked against the model, broken
 * versions beside good ones, execution providers, reloading, and the
 * repository folder itself. Real ONNX Runtime sessions, real worker threads.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InferenceCore, type Tensor } from '../dist/index.js';
import { attr, buildModel, identityModel, node, randomFloats, tensorInitializer, valueInfo } from '../scripts/onnx-builder.mjs';
import { noBatchModel } from '../scripts/build-models.mjs';
import { makeRepository, removeRepository } from './helpers/repository.js';
import { type CodedError, expectError } from './helpers/errors.js';

/** y = x + k over x: FP32 [N,4]; k tells which version answered. */
function addModel(k: number): Uint8Array {
  return buildModel({
    graphName: `add_${k}`,
    inputs: [valueInfo('x', 'FP32', ['N', 4])],
    outputs: [valueInfo('y', 'FP32', ['N', 4])],
    initializers: [tensorInitializer('k', 'FP32', [1], [k])],
    nodes: [node('Add', ['x', 'k'], ['y'])],
  });
}

/** Bytes that are not an ONNX protobuf. */
const GARBAGE = new Uint8Array(randomFloats(99, 64, 1e6).buffer);

/** Two inputs and an output whose batch dimensions have three different symbolic names. */
const MIXED_NAMES = buildModel({
  graphName: 'mixed_names',
  inputs: [valueInfo('a', 'FP32', ['batch', 4]), valueInfo('b', 'FP32', ['N', 4])],
  outputs: [valueInfo('y', 'FP32', ['B', 4])],
  nodes: [node('Add', ['a', 'b'], ['y'])],
});

/** A dynamic first dimension on the input only: y [4] = column sums of x [N,4]. */
const REDUCE_ROWS = buildModel({
  graphName: 'reduce_rows',
  inputs: [valueInfo('x', 'FP32', ['N', 4])],
  outputs: [valueInfo('y', 'FP32', [4])],
  initializers: [tensorInitializer('axes', 'INT64', [1], [0])],
  nodes: [node('ReduceSum', ['x', 'axes'], ['y'], { keepdims: 0 })],
});

/** A sequence output: SplitToSequence of x [N,4] along axis 1. */
const SEQUENCE_OUTPUT = buildModel({
  graphName: 'sequence_output',
  inputs: [valueInfo('x', 'FP32', ['N', 4])],
  outputs: [{ name: 'parts', type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } }],
  nodes: [node('SplitToSequence', ['x'], ['parts'], { axis: 1 })],
});

/** A classifier exported with ZipMap: probabilities as seq(map(int64, float)). */
const ZIPMAP_OUTPUT = buildModel({
  graphName: 'zipmap_output',
  inputs: [valueInfo('features', 'FP32', ['N', 2])],
  outputs: [
    valueInfo('label', 'INT64', ['N']),
    { name: 'probabilities', type: { sequenceType: { elemType: { mapType: { keyType: 7, valueType: { tensorType: { elemType: 1 } } } } } } },
  ],
  nodes: [
    node('TreeEnsembleClassifier', ['features'], ['label', 'scores'], {
      nodes_treeids: [0, 0, 0],
      nodes_nodeids: [0, 1, 2],
      nodes_featureids: [0, 0, 0],
      nodes_modes: ['BRANCH_LEQ', 'LEAF', 'LEAF'],
      nodes_values: attr.floats([0.5, 0, 0]),
      nodes_truenodeids: [1, 0, 0],
      nodes_falsenodeids: [2, 0, 0],
      class_treeids: [0, 0],
      class_nodeids: [1, 2],
      class_ids: [0, 0],
      class_weights: attr.floats([0.25, 0.75]),
      classlabels_int64s: [0, 1],
      post_transform: 'NONE',
    }, 'ai.onnx.ml'),
    node('ZipMap', ['scores'], ['probabilities'], { classlabels_int64s: [0, 1] }, 'ai.onnx.ml'),
  ],
  opsets: { '': 17, 'ai.onnx.ml': 3 },
});

const x = (rows: number, fill = 1): Tensor => ({ name: 'x', datatype: 'FP32', shape: [rows, 4], data: new Float32Array(rows * 4).fill(fill) });

let root: string;
let core: InferenceCore;

/** The versions of one model in core.status(), as [version, state]. */
const versions = (model: string) =>
  core
    .status()
    .filter((s) => s.model === model)
    .map((s) => [s.version, s.state]);

/** Why a version is UNAVAILABLE: its code and message. */
function reason(model: string, version: number): { code: string; message: string } | null {
  return core.repository.model(model)?.versions.get(version)?.reason ?? null;
}

beforeAll(async () => {
  const identity4 = identityModel('FP32', ['batch', 4]);
  root = await makeRepository({
    // Version policies.
    latest_default: { versions: { 2: addModel(2), 9: addModel(9), 10: addModel(10) } },
    latest_two: { config: { version_policy: { latest: { num_versions: 2 } } }, versions: { 1: addModel(1), 2: addModel(2), 3: addModel(3) } },
    all_versions: { config: { version_policy: { all: {} } }, versions: { 1: addModel(1), 2: addModel(2), 3: addModel(3) } },
    specific: { config: { version_policy: { specific: { versions: [1, 3, 5] } } }, versions: { 1: addModel(1), 2: addModel(2), 3: addModel(3) } },
    // Auto-complete.
    dyn_batch: { versions: { 1: identity4 } },
    fixed_first: { versions: { 1: identityModel('FP32', [1, 4]) } },
    mixed_names: { versions: { 1: MIXED_NAMES } },
    reduce_rows: { versions: { 1: REDUCE_ROWS } },
    scalars: { versions: { 1: noBatchModel() } },
    forced_batch: { config: { max_batch_size: 8 }, versions: { 1: identityModel('FP32', [1, 4]) } },
    // Declarations checked against the model.
    decl_datatype: { config: { input: [{ name: 'x', data_type: 'TYPE_INT32', dims: [4] }] }, versions: { 1: identity4 } },
    decl_unknown: { config: { input: [{ name: 'z', data_type: 'TYPE_FP32', dims: [4] }] }, versions: { 1: identity4 } },
    decl_dims: { config: { input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [5] }] }, versions: { 1: identity4 } },
    decl_rank: { config: { output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [4, 1] }] }, versions: { 1: identity4 } },
    decl_output_datatype: { config: { output: [{ name: 'y', data_type: 'FP64', dims: [4] }] }, versions: { 1: identity4 } },
    decl_fixes_dim: {
      config: {
        input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [4] }],
        output: [{ name: 'y', data_type: 'FP32', dims: [-1] }],
      },
      versions: { 1: identityModel('FP32', ['N', 'F']) },
    },
    decl_no_batch: {
      config: { max_batch_size: 0, input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [-1, 3] }] },
      versions: { 1: identityModel('FP32', ['N', 'F']) },
    },
    // Broken versions and models beside good ones.
    corrupt: { versions: { 1: GARBAGE } },
    missing_file: { versions: { 1: null } },
    partly_broken: { config: { version_policy: { all: {} } }, versions: { 1: addModel(1), 2: GARBAGE, 3: null } },
    bad_config: { config: { max_batch_sise: 8 }, versions: { 1: addModel(1) } },
    sequence_output: { versions: { 1: SEQUENCE_OUTPUT } },
    zipmap_output: { versions: { 1: ZIPMAP_OUTPUT } },
    // Execution providers (this machine has no usable CUDA provider).
    cuda: { config: { runtime: { execution_provider: 'cuda' } }, versions: { 1: identity4 } },
    cuda_fallback: { config: { runtime: { execution_provider: 'cuda', cpu_fallback: true } }, versions: { 1: identity4 } },
    // Reloading.
    reload: { versions: { 1: addModel(1) } },
    reload_live: { versions: { 1: addModel(1) } },
  });
  // Folders and files that are not versions.
  for (const name of ['abc', '0', '007', '1.5', '-3', 'v4']) await mkdir(join(root, 'all_versions', name));
  await writeFile(join(root, 'all_versions', '4'), 'a file, not a version folder');
  await mkdir(join(root, '.hidden', '1'), { recursive: true });

  core = await InferenceCore.start({ modelRepository: root, workers: 2 });
});

afterAll(async () => {
  await core?.stop();
  if (root) await removeRepository(root);
});

describe('version policy', () => {
  it('latest 1 by default: only the newest of three versions loads (10 is newer than 9)', async () => {
    expect(versions('latest_default')).toEqual([[10, 'READY']]);
    const response = await core.infer({ model: 'latest_default', inputs: [x(1, 0)] });
    expect(response.model_version).toBe('10');
    expect(Array.from(response.outputs[0]?.data as Float32Array)).toEqual([10, 10, 10, 10]);
    await expectError(() => core.infer({ model: 'latest_default', version: '9', inputs: [x(1)] }), 'WEIR_VERSION_NOT_FOUND', 'its versions: 10');
  });

  it('latest 2', () => {
    expect(versions('latest_two')).toEqual([[2, 'READY'], [3, 'READY']]);
    expect(core.modelMetadata('latest_two').versions).toEqual(['3', '2']);
  });

  it('all, ignoring folders and files whose names are not positive integers', async () => {
    expect(versions('all_versions')).toEqual([[1, 'READY'], [2, 'READY'], [3, 'READY']]);
    expect(core.modelMetadata('all_versions').versions).toEqual(['3', '2', '1']);
    for (const version of [1, 2, 3]) {
      const response = await core.infer({ model: 'all_versions', version, inputs: [x(1, 0)] });
      expect(response.model_version).toBe(String(version));
      expect((response.outputs[0]?.data as Float32Array)[0]).toBe(version);
    }
  });

  it('specific, skipping listed versions that are not on disk', () => {
    expect(versions('specific')).toEqual([[1, 'READY'], [3, 'READY']]);
  });

  it('hidden folders are not models', () => {
    expect(core.repository.model('.hidden')).toBeUndefined();
  });
});

describe('auto-complete (no config)', () => {
  it('every first dimension dynamic: batches, with max_batch_size 64 and dynamic batching', async () => {
    const config = core.modelConfig('dyn_batch');
    expect(config).toMatchObject({
      max_batch_size: 64,
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [4] }],
      output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [4] }],
      dynamic_batching: { preferred_batch_size: [], max_queue_delay_microseconds: 100, max_queue_size: 1024 },
    });
    expect(core.modelMetadata('dyn_batch').inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }]);
    await expectError(() => core.infer({ model: 'dyn_batch', inputs: [x(65)] }), 'WEIR_BATCH_TOO_LARGE', 'max_batch_size 64');
  });

  it('a fixed first dimension: max_batch_size 0, no dynamic batching', async () => {
    const config = core.modelConfig('fixed_first');
    expect(config).toMatchObject({ max_batch_size: 0, input: [{ name: 'x', dims: [1, 4] }], output: [{ name: 'y', dims: [1, 4] }] });
    expect(config).not.toHaveProperty('dynamic_batching');
    expect(core.modelMetadata('fixed_first').inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [1, 4] }]);
    await expectError(() => core.infer({ model: 'fixed_first', inputs: [x(2)] }), 'WEIR_SHAPE_MISMATCH', 'inputs[0].shape[0]', 'expects [1,4], got [2,4]');
  });

  it('different symbolic names for the batch dimensions still batch', async () => {
    expect(core.modelConfig('mixed_names')).toMatchObject({
      max_batch_size: 64,
      input: [{ name: 'a', dims: [4] }, { name: 'b', dims: [4] }],
      output: [{ name: 'y', dims: [4] }],
      dynamic_batching: {},
    });
    const response = await core.infer({
      model: 'mixed_names',
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [2, 4], data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]) },
        { name: 'b', datatype: 'FP32', shape: [2, 4], data: new Float32Array(8).fill(10) },
      ],
    });
    expect(response.outputs[0]?.shape).toEqual([2, 4]);
    expect(Array.from(response.outputs[0]?.data as Float32Array)).toEqual([11, 12, 13, 14, 15, 16, 17, 18]);
  });

  it('an output without a dynamic first dimension means no batching, even when the inputs have one', async () => {
    const config = core.modelConfig('reduce_rows');
    expect(config).toMatchObject({ max_batch_size: 0, input: [{ name: 'x', dims: [-1, 4] }], output: [{ name: 'y', dims: [4] }] });
    expect(config).not.toHaveProperty('dynamic_batching');
    // Without a batch dimension there is no batch limit: 100 rows go through whole.
    const response = await core.infer({ model: 'reduce_rows', inputs: [x(100, 0.5)] });
    expect(response.outputs[0]?.shape).toEqual([4]);
    expect(Array.from(response.outputs[0]?.data as Float32Array)).toEqual([50, 50, 50, 50]);
  });

  it('scalar (rank-0) inputs and outputs: max_batch_size 0, and they work through infer', async () => {
    expect(core.modelConfig('scalars')).toMatchObject({
      max_batch_size: 0,
      input: [{ name: 'matrix', dims: [3, 4] }, { name: 'scale', dims: [] }],
      output: [{ name: 'scaled', dims: [3, 4] }, { name: 'total', dims: [] }],
    });
    const response = await core.infer({
      model: 'scalars',
      inputs: [
        { name: 'matrix', datatype: 'FP32', shape: [3, 4], data: new Float32Array(12).map((_, i) => i) },
        { name: 'scale', datatype: 'FP32', shape: [], data: new Float32Array([2]) },
      ],
    });
    const [scaled, total] = response.outputs;
    expect(scaled?.shape).toEqual([3, 4]);
    expect(Array.from(scaled?.data as Float32Array)).toEqual(Array.from({ length: 12 }, (_, i) => 2 * i));
    expect(total?.shape).toEqual([]);
    expect(Array.from(total?.data as Float32Array)).toEqual([132]);
  });

  it('max_batch_size 8 on a model with a fixed first dimension: UNAVAILABLE, naming the tensor', async () => {
    expect(versions('forced_batch')).toEqual([[1, 'UNAVAILABLE']]);
    const why = reason('forced_batch', 1);
    expect(why?.code).toBe('WEIR_CONFIG_INVALID');
    expect(why?.message).toContain("model 'forced_batch'");
    expect(why?.message).toContain('max_batch_size 8 needs a dynamic first dimension');
    expect(why?.message).toContain("'x' has shape [1,4]");
    expect(core.modelReady('forced_batch')).toBe(false);
    await expectError(() => core.infer({ model: 'forced_batch', inputs: [x(1)] }), 'WEIR_MODEL_UNAVAILABLE', "'x' has shape [1,4]");
  });
});

describe('config declarations checked against the model', () => {
  it.each([
    ['decl_datatype', "config declares input 'x' as INT32, but the model has FP32"],
    ['decl_unknown', "config declares input 'z', but the model's inputs are: x"],
    ['decl_dims', "config declares input 'x' with dims [5], but the model has [4] (batch dimension excluded)"],
    ['decl_rank', "config declares output 'y' with dims [4,1], but the model has [4]"],
    ['decl_output_datatype', "config declares output 'y' as FP64, but the model has FP32"],
  ])('%s: UNAVAILABLE, naming the tensor', (model, message) => {
    expect(versions(model)).toEqual([[1, 'UNAVAILABLE']]);
    const why = reason(model, 1);
    expect(why?.code).toBe('WEIR_CONFIG_INVALID');
    expect(why?.message).toContain(`model '${model}'`);
    expect(why?.message).toContain(message);
  });

  it('a compatible declaration fixes a dynamic dimension in the metadata and in validation', async () => {
    expect(versions('decl_fixes_dim')).toEqual([[1, 'READY']]);
    expect(core.modelMetadata('decl_fixes_dim')).toMatchObject({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, -1] }],
    });
    expect(core.modelConfig('decl_fixes_dim')).toMatchObject({ max_batch_size: 64, input: [{ name: 'x', dims: [4] }], output: [{ name: 'y', dims: [-1] }] });
    await expectError(
      () => core.infer({ model: 'decl_fixes_dim', inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 5], data: new Float32Array(10) }] }),
      'WEIR_SHAPE_MISMATCH',
      'inputs[0].shape[1]',
      'expects [-1,4], got [2,5]',
    );
    const response = await core.infer({ model: 'decl_fixes_dim', inputs: [x(2, 3)] });
    expect(response.outputs[0]?.shape).toEqual([2, 4]);
  });

  it('with max_batch_size 0 the declared dims include the first dimension', () => {
    expect(core.modelMetadata('decl_no_batch').inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 3] }]);
    expect(core.modelConfig('decl_no_batch')).toMatchObject({ max_batch_size: 0, input: [{ name: 'x', dims: [-1, 3] }] });
  });
});

describe('broken versions beside good ones', () => {
  it('a corrupt model file: UNAVAILABLE with ONNX Runtime\'s message', async () => {
    expect(versions('corrupt')).toEqual([[1, 'UNAVAILABLE']]);
    const why = reason('corrupt', 1);
    expect(why?.code).toBe('ORT_INVALID_PROTOBUF');
    expect(why?.message).toContain(join(root, 'corrupt', '1', 'model.onnx'));
    expect(why?.message).toContain('Protobuf parsing failed');
    expect(core.status().find((s) => s.model === 'corrupt')?.reason).toBe(why?.message);
    await expectError(() => core.infer({ model: 'corrupt', inputs: [x(1)] }), 'WEIR_MODEL_UNAVAILABLE', "model 'corrupt'", 'Protobuf parsing failed');
    await expectError(() => core.modelMetadata('corrupt'), 'WEIR_MODEL_UNAVAILABLE', "model 'corrupt'");
  });

  it('a version folder without model.onnx: UNAVAILABLE with WEIR_MODEL_FILE_MISSING', () => {
    expect(versions('missing_file')).toEqual([[1, 'UNAVAILABLE']]);
    expect(reason('missing_file', 1)).toEqual({ code: 'WEIR_MODEL_FILE_MISSING', message: "model 'missing_file' version 1: the version folder has no model.onnx" });
  });

  it('within one model, the good version serves while the broken ones are UNAVAILABLE', async () => {
    expect(versions('partly_broken')).toEqual([[1, 'READY'], [2, 'UNAVAILABLE'], [3, 'UNAVAILABLE']]);
    expect(reason('partly_broken', 2)?.code).toBe('ORT_INVALID_PROTOBUF');
    expect(reason('partly_broken', 3)?.code).toBe('WEIR_MODEL_FILE_MISSING');
    expect(core.modelReady('partly_broken')).toBe(true);
    expect(core.modelReady('partly_broken', '2')).toBe(false);
    expect(core.modelMetadata('partly_broken').versions).toEqual(['1']);
    const response = await core.infer({ model: 'partly_broken', inputs: [x(1, 0)] });
    expect(response.model_version).toBe('1');
    expect(Array.from(response.outputs[0]?.data as Float32Array)).toEqual([1, 1, 1, 1]);
    await expectError(() => core.infer({ model: 'partly_broken', version: '3', inputs: [x(1)] }), 'WEIR_MODEL_UNAVAILABLE', 'version 3 is UNAVAILABLE', 'no model.onnx');
  });

  it('a broken config makes the whole model UNAVAILABLE, naming the field', async () => {
    const [status] = core.status().filter((s) => s.model === 'bad_config');
    expect(status).toMatchObject({ model: 'bad_config', version: null, state: 'UNAVAILABLE' });
    expect(status?.reason).toContain('max_batch_sise');
    expect(status?.reason).toContain('is not a known field');
    expect(core.modelReady('bad_config')).toBe(false);
    await expectError(() => core.infer({ model: 'bad_config', inputs: [x(1)] }), 'WEIR_MODEL_UNAVAILABLE', 'max_batch_sise');
  });

  it('a sequence output: UNAVAILABLE with WEIR_UNSUPPORTED_TYPE naming the output and its type', () => {
    expect(versions('sequence_output')).toEqual([[1, 'UNAVAILABLE']]);
    const why = reason('sequence_output', 1);
    expect(why?.code).toBe('WEIR_UNSUPPORTED_TYPE');
    expect(why?.message).toContain("output 'parts' is seq(tensor(float))");
  });

  it('a ZipMap output: UNAVAILABLE with WEIR_UNSUPPORTED_TYPE naming the output and its type', () => {
    expect(versions('zipmap_output')).toEqual([[1, 'UNAVAILABLE']]);
    const why = reason('zipmap_output', 1);
    expect(why?.code).toBe('WEIR_UNSUPPORTED_TYPE');
    expect(why?.message).toContain("output 'probabilities' is seq(map(int64,tensor(float)))");
    expect(why?.message).toContain('without ZipMap');
  });

  it('the other models in the same repository are READY and serve correctly', async () => {
    for (const model of ['dyn_batch', 'mixed_names', 'scalars', 'all_versions', 'decl_fixes_dim', 'cuda_fallback']) {
      expect(core.modelReady(model)).toBe(true);
    }
    const response = await core.infer({
      model: 'dyn_batch',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 4], data: new Float32Array(12).map((_, i) => i / 4) }],
    });
    expect(response.outputs[0]).toMatchObject({ name: 'y', datatype: 'FP32', shape: [3, 4] });
    expect(Array.from(response.outputs[0]?.data as Float32Array)).toEqual(Array.from({ length: 12 }, (_, i) => i / 4));
  });
});

describe('execution providers', () => {
  it("'cuda' without a usable CUDA provider: UNAVAILABLE with WEIR_EP_UNAVAILABLE", () => {
    expect(versions('cuda')).toEqual([[1, 'UNAVAILABLE']]);
    const why = reason('cuda', 1);
    expect(why?.code).toBe('WEIR_EP_UNAVAILABLE');
    expect(why?.message).toContain('the CUDA execution provider cannot be used on device 0');
  });

  it("'cuda' with cpu_fallback: READY on the CPU provider, saying why", async () => {
    expect(versions('cuda_fallback')).toEqual([[1, 'READY']]);
    expect(core.modelConfig('cuda_fallback')).toMatchObject({
      runtime: { execution_provider: 'cuda', cpu_fallback: true, active_execution_provider: 'cpu' },
    });
    expect(core.repository.model('cuda_fallback')?.versions.get(1)?.ready?.fallbackReason).toContain('CUDA execution provider cannot be used');
    const response = await core.infer({ model: 'cuda_fallback', inputs: [x(2, 7)] });
    expect(Array.from(response.outputs[0]?.data as Float32Array)).toEqual(new Array(8).fill(7));
  });
});

describe('reloading', () => {
  it('loadModel after a new version appears loads it and unloads the old, failing no request in flight', async () => {
    expect(versions('reload')).toEqual([[1, 'READY']]);
    await mkdir(join(root, 'reload', '2'));
    await writeFile(join(root, 'reload', '2', 'model.onnx'), addModel(2));

    const inflight = Array.from({ length: 8 }, (_, i) => core.infer({ model: 'reload', inputs: [x(4, i)] }));
    expect(core.repository.model('reload')?.versions.get(1)?.inflightRequests).toBe(8);
    await core.repository.loadModel('reload');

    const responses = await Promise.all(inflight);
    responses.forEach((response, i) => {
      expect(response.model_version).toBe('1');
      expect(Array.from(response.outputs[0]?.data as Float32Array)).toEqual(new Array(16).fill(i + 1));
    });
    expect(versions('reload')).toEqual([[2, 'READY']]);
    expect(core.modelMetadata('reload').versions).toEqual(['2']);
    const after = await core.infer({ model: 'reload', inputs: [x(1, 0)] });
    expect(after.model_version).toBe('2');
    expect(Array.from(after.outputs[0]?.data as Float32Array)).toEqual([2, 2, 2, 2]);
    await expectError(() => core.infer({ model: 'reload', version: '1', inputs: [x(1)] }), 'WEIR_VERSION_NOT_FOUND', 'its versions: 2');
  });

  it('requests that arrive while a reload is loading the new version are served (no window without a READY version)', async () => {
    expect(versions('reload_live')).toEqual([[1, 'READY']]);
    await mkdir(join(root, 'reload_live', '2'));
    await writeFile(join(root, 'reload_live', '2', 'model.onnx'), addModel(2));

    let reloaded = false;
    const reload = core.repository.loadModel('reload_live').then(() => {
      reloaded = true;
    });
    // Once per turn of the event loop until the reload is done: the model must
    // stay ready, and a request sent then must be served by version 1 or 2.
    const readiness: boolean[] = [];
    const requests: Array<Promise<string>> = [];
    while (!reloaded) {
      readiness.push(core.modelReady('reload_live'));
      requests.push(
        core.infer({ model: 'reload_live', inputs: [x(1, 0)] }).then(
          (r) => `${r.model_version}:${(r.outputs[0]?.data as Float32Array)[0]}`,
          (e: CodedError) => `${e.code}: ${e.message}`,
        ),
      );
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await reload;
    const answers = await Promise.all(requests);

    expect(versions('reload_live')).toEqual([[2, 'READY']]);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a !== '1:1' && a !== '2:2')).toEqual([]);
    expect(readiness.every(Boolean)).toBe(true);
  });
});

describe('the repository folder', () => {
  it('a missing repository folder: start rejects with WEIR_REPOSITORY_INVALID', async () => {
    const missing = join(root, 'no-such-folder');
    await expectError(() => InferenceCore.start({ modelRepository: missing, workers: 1 }), 'WEIR_REPOSITORY_INVALID', missing, 'is not a folder');
  });

  it('a file instead of a folder: start rejects with WEIR_REPOSITORY_INVALID', async () => {
    const file = join(root, 'all_versions', '4');
    await expectError(() => InferenceCore.start({ modelRepository: file, workers: 1 }), 'WEIR_REPOSITORY_INVALID', file);
  });

  it('two cores in one process serve same-named models from different repositories', async () => {
    const first = await makeRepository({ twin: { versions: { 1: addModel(1) } } });
    const second = await makeRepository({ twin: { versions: { 1: addModel(100) } } });
    const a = await InferenceCore.start({ modelRepository: first, workers: 1 });
    const b = await InferenceCore.start({ modelRepository: second, workers: 1 });
    try {
      expect(a.status()).toEqual([{ model: 'twin', version: 1, state: 'READY', reason: null }]);
      expect(b.status()).toEqual([{ model: 'twin', version: 1, state: 'READY', reason: null }]);
      const [fromA, fromB] = await Promise.all([
        a.infer({ model: 'twin', inputs: [x(1, 0)] }),
        b.infer({ model: 'twin', inputs: [x(1, 0)] }),
      ]);
      expect((fromA.outputs[0]?.data as Float32Array)[0]).toBe(1);
      expect((fromB.outputs[0]?.data as Float32Array)[0]).toBe(100);
    } finally {
      await a.stop();
      await b.stop();
      await removeRepository(first);
      await removeRepository(second);
    }
  });
});
