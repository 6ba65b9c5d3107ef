/**
 * Model config parsing: Triton's field names in config.json / config.yaml,
 * validated into a typed ModelConfig. Pure parsing (plus reading real files
 * from temp folders); no runtime, no workers.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ModelConfig, parseModelConfig, readModelConfig } from '../dist/repository/model-config.js';
import { type CodedError, caught } from './helpers/errors.js';

const MODEL = 'm';
const SOURCE = 'm/config.json';

const parse = (raw: unknown): ModelConfig => parseModelConfig(raw, MODEL, SOURCE);

/** Asserts WEIR_CONFIG_INVALID whose message names the source, the field and what was expected. */
async function expectInvalid(fn: () => unknown, field: string, ...expected: string[]): Promise<CodedError> {
  const error = await caught(fn);
  expect(error.code).toBe('WEIR_CONFIG_INVALID');
  expect(error.message).toContain(field);
  for (const fragment of expected) expect(error.message).toContain(fragment);
  return error;
}

const DEFAULT_RUNTIME = { graphOptimization: 'all', executionProvider: 'cpu', deviceId: 0, cpuFallback: false };

let root: string;
let counter = 0;

/** A fresh model folder named MODEL holding the given files. */
async function modelDir(files: Record<string, string>): Promise<string> {
  const dir = join(root, String(++counter), MODEL);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
  return dir;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weir-config-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('defaults', () => {
  it('a folder without a config file gets latest 1, cpu, graph optimization all', async () => {
    const config = await readModelConfig(await modelDir({}), MODEL);
    expect(config).toEqual({ versionPolicy: { kind: 'latest', numVersions: 1 }, runtime: DEFAULT_RUNTIME });
    expect(config.maxBatchSize).toBeUndefined();
    expect(config.dynamicBatching).toBeUndefined();
    expect(config.inputs).toBeUndefined();
    expect(config.outputs).toBeUndefined();
    expect(config.runtime.intraOpThreads).toBeUndefined();
    expect(config.runtime.interOpThreads).toBeUndefined();
  });

  it('an empty object and an empty YAML file give the same defaults', async () => {
    const expected = { versionPolicy: { kind: 'latest', numVersions: 1 }, runtime: DEFAULT_RUNTIME };
    expect(parse({})).toEqual(expected);
    expect(await readModelConfig(await modelDir({ 'config.yaml': '' }), MODEL)).toEqual(expected);
  });

  it('dynamic_batching without knobs gets the default queue settings', () => {
    expect(parse({ dynamic_batching: {} }).dynamicBatching).toEqual({
      preferredBatchSize: [],
      maxQueueDelayMicroseconds: 100,
      maxQueueSize: 1024,
    });
  });

  it('latest without num_versions means the newest one', () => {
    expect(parse({ version_policy: { latest: {} } }).versionPolicy).toEqual({ kind: 'latest', numVersions: 1 });
  });
});

describe('every field parsed', () => {
  it('reads a full Triton-style config', () => {
    const config = parse({
      name: MODEL,
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: 16,
      dynamic_batching: { preferred_batch_size: [4, 16], max_queue_delay_microseconds: 250, max_queue_size: 99 },
      version_policy: { latest: { num_versions: 3 } },
      runtime: {
        intra_op_threads: 2,
        inter_op_threads: 3,
        graph_optimization: 'basic',
        execution_provider: 'cuda',
        device_id: 1,
        cpu_fallback: true,
      },
      input: [
        { name: 'a', data_type: 'TYPE_FP32', dims: [4, -1] },
        { name: 'b', data_type: 'FP32', dims: [] },
        { name: 'c', data_type: 'TYPE_STRING', dims: [2] },
      ],
      output: [
        { name: 'y', data_type: 'TYPE_INT64', dims: [-1] },
        { name: 'z', data_type: 'BYTES', dims: [1] },
      ],
    });
    expect(config).toEqual({
      maxBatchSize: 16,
      dynamicBatching: { preferredBatchSize: [4, 16], maxQueueDelayMicroseconds: 250, maxQueueSize: 99 },
      versionPolicy: { kind: 'latest', numVersions: 3 },
      runtime: {
        intraOpThreads: 2,
        interOpThreads: 3,
        graphOptimization: 'basic',
        executionProvider: 'cuda',
        deviceId: 1,
        cpuFallback: true,
      },
      inputs: [
        { name: 'a', datatype: 'FP32', dims: [4, -1] },
        { name: 'b', datatype: 'FP32', dims: [] },
        { name: 'c', datatype: 'BYTES', dims: [2] },
      ],
      outputs: [
        { name: 'y', datatype: 'INT64', dims: [-1] },
        { name: 'z', datatype: 'BYTES', dims: [1] },
      ],
    });
  });

  it('max_batch_size 0 is allowed (no batch dimension)', () => {
    expect(parse({ max_batch_size: 0 }).maxBatchSize).toBe(0);
  });

  it.each([
    ['all', { all: {} }, { kind: 'all' }],
    ['latest', { latest: { num_versions: 2 } }, { kind: 'latest', numVersions: 2 }],
    ['specific', { specific: { versions: [3, 1] } }, { kind: 'specific', versions: [3, 1] }],
  ])('version_policy %s', (_kind, policy, expected) => {
    expect(parse({ version_policy: policy }).versionPolicy).toEqual(expected);
  });

  it.each(['disable', 'basic', 'extended', 'all'])('graph_optimization %s', (level) => {
    expect(parse({ runtime: { graph_optimization: level } }).runtime.graphOptimization).toBe(level);
  });

  it.each([
    ['TYPE_FP32', 'FP32'],
    ['FP32', 'FP32'],
    ['TYPE_STRING', 'BYTES'],
    ['STRING', 'BYTES'],
    ['BYTES', 'BYTES'],
    ['TYPE_INT64', 'INT64'],
    ['TYPE_BOOL', 'BOOL'],
    ['FP16', 'FP16'],
    ['TYPE_UINT8', 'UINT8'],
  ])('data_type %s is %s', (written, datatype) => {
    const config = parse({ input: [{ name: 'x', data_type: written, dims: [1] }] });
    expect(config.inputs).toEqual([{ name: 'x', datatype, dims: [1] }]);
  });

  it('reads config.json from the model folder', async () => {
    const dir = await modelDir({ 'config.json': JSON.stringify({ max_batch_size: 8, version_policy: { all: {} } }) });
    const config = await readModelConfig(dir, MODEL);
    expect(config.maxBatchSize).toBe(8);
    expect(config.versionPolicy).toEqual({ kind: 'all' });
  });

  it('reads config.yaml', async () => {
    const yaml = [
      'name: m',
      'max_batch_size: 32',
      'dynamic_batching:',
      '  preferred_batch_size: [8, 16]',
      '  max_queue_delay_microseconds: 200',
      'version_policy:',
      '  specific:',
      '    versions: [1, 2]',
      'runtime:',
      '  graph_optimization: extended',
      '  cpu_fallback: true',
      'input:',
      '  - name: features',
      '    data_type: TYPE_FP32',
      '    dims: [32]',
      'output:',
      '  - name: label',
      '    data_type: TYPE_STRING',
      '    dims: [-1]',
      '',
    ].join('\n');
    const config = await readModelConfig(await modelDir({ 'config.yaml': yaml }), MODEL);
    expect(config).toEqual({
      maxBatchSize: 32,
      dynamicBatching: { preferredBatchSize: [8, 16], maxQueueDelayMicroseconds: 200, maxQueueSize: 1024 },
      versionPolicy: { kind: 'specific', versions: [1, 2] },
      runtime: { ...DEFAULT_RUNTIME, graphOptimization: 'extended', cpuFallback: true },
      inputs: [{ name: 'features', datatype: 'FP32', dims: [32] }],
      outputs: [{ name: 'label', datatype: 'BYTES', dims: [-1] }],
    });
  });

  it('reads config.yml as YAML too', async () => {
    const config = await readModelConfig(await modelDir({ 'config.yml': 'max_batch_size: 4\n' }), MODEL);
    expect(config.maxBatchSize).toBe(4);
  });
});

describe('invalid configs', () => {
  it('an unknown top-level field (a typo) names the field and the known ones', async () => {
    const error = await expectInvalid(() => parse({ max_batch_sise: 8 }), 'max_batch_sise', 'is not a known field', 'max_batch_size');
    expect(error.message).toContain(SOURCE);
  });

  it.each([
    ['dynamic_batching', { dynamic_batching: { max_queue_delay: 5 } }, 'dynamic_batching.max_queue_delay', 'max_queue_delay_microseconds'],
    ['runtime', { runtime: { threads: 2 } }, 'runtime.threads', 'intra_op_threads'],
    ['version_policy.latest', { version_policy: { latest: { count: 2 } } }, 'version_policy.latest.count', 'num_versions'],
    ['version_policy.all', { version_policy: { all: { n: 1 } } }, 'version_policy.all.n', 'is not a known field'],
    ['version_policy.specific', { version_policy: { specific: { version: [1] } } }, 'version_policy.specific.version', 'versions'],
    ['input[0]', { input: [{ name: 'x', data_type: 'FP32', dims: [1], shape: [1] }] }, 'input[0].shape', 'data_type'],
    ['output[1]', { output: [{ name: 'y', data_type: 'FP32', dims: [1] }, { name: 'z', data_type: 'FP32', dims: [1], reshape: {} }] }, 'output[1].reshape', 'dims'],
  ])('an unknown field in %s', async (_where, raw, field, expected) => {
    await expectInvalid(() => parse(raw), field, 'is not a known field', expected);
  });

  it.each([
    ['max_batch_size as a string', { max_batch_size: '8' }, 'max_batch_size', 'must be an integer >= 0'],
    ['max_batch_size fractional', { max_batch_size: 1.5 }, 'max_batch_size', 'must be an integer >= 0'],
    ['max_batch_size boolean', { max_batch_size: true }, 'max_batch_size', 'must be an integer >= 0'],
    ['dynamic_batching as an array', { dynamic_batching: [] }, 'dynamic_batching', 'must be an object'],
    ['preferred_batch_size not an array', { dynamic_batching: { preferred_batch_size: 8 } }, 'dynamic_batching.preferred_batch_size', 'must be an array of integers'],
    ['preferred_batch_size element a string', { dynamic_batching: { preferred_batch_size: [4, 'x'] } }, 'dynamic_batching.preferred_batch_size[1]', 'must be an integer >= 1'],
    ['max_queue_delay_microseconds a string', { dynamic_batching: { max_queue_delay_microseconds: '100' } }, 'dynamic_batching.max_queue_delay_microseconds', 'must be an integer >= 0'],
    ['version_policy a string', { version_policy: 'all' }, 'version_policy', 'must be an object'],
    ['version_policy.latest a number', { version_policy: { latest: 2 } }, 'version_policy.latest', 'must be an object'],
    ['specific.versions not an array', { version_policy: { specific: { versions: 3 } } }, 'version_policy.specific.versions', 'must be an array of integers'],
    ['runtime a string', { runtime: 'cpu' }, 'runtime', 'must be an object'],
    ['intra_op_threads a string', { runtime: { intra_op_threads: 'two' } }, 'runtime.intra_op_threads', 'must be an integer >= 1'],
    ['execution_provider unknown', { runtime: { execution_provider: 'tpu' } }, 'runtime.execution_provider', "must be one of 'cpu', 'cuda'"],
    ['graph_optimization unknown', { runtime: { graph_optimization: 'max' } }, 'runtime.graph_optimization', "'disable', 'basic', 'extended', 'all'"],
    ['cpu_fallback a string', { runtime: { cpu_fallback: 'yes' } }, 'runtime.cpu_fallback', 'must be true or false'],
    ['platform unknown', { platform: 'tensorrt_plan' }, 'platform', "must be one of 'onnxruntime_onnx'"],
    ['backend unknown', { backend: 'pytorch' }, 'backend', "must be one of 'onnxruntime'"],
    ['input an object', { input: { name: 'x' } }, 'input', 'must be an array of { name, data_type, dims }'],
    ['input entry a string', { input: ['x'] }, 'input[0]', 'must be an object'],
    ['input name empty', { input: [{ name: '', data_type: 'FP32', dims: [1] }] }, 'input[0].name', 'must be a non-empty string'],
    ['input name a number', { input: [{ name: 3, data_type: 'FP32', dims: [1] }] }, 'input[0].name', 'must be a non-empty string'],
    ['input dims missing', { input: [{ name: 'x', data_type: 'FP32' }] }, 'input[0].dims', 'must be an array of integers (-1 for dynamic)'],
    ['input dims element a string', { input: [{ name: 'x', data_type: 'FP32', dims: [4, '4'] }] }, 'input[0].dims[1]', 'must be an integer >= 0'],
    ['output dims fractional', { output: [{ name: 'y', data_type: 'FP32', dims: [2.5] }] }, 'output[0].dims[0]', 'must be an integer >= 0'],
    ['the config an array', [], 'the config', 'must be an object'],
    ['the config a string', 'max_batch_size: 8', 'the config', 'must be an object'],
  ])('wrong type: %s', async (_case, raw, field, expected) => {
    await expectInvalid(() => parse(raw), field, expected);
  });

  it.each([
    ['max_batch_size', { max_batch_size: -1 }, 'max_batch_size', 'must be an integer >= 0'],
    ['max_queue_delay_microseconds', { dynamic_batching: { max_queue_delay_microseconds: -5 } }, 'dynamic_batching.max_queue_delay_microseconds', 'must be an integer >= 0'],
    ['max_queue_size', { dynamic_batching: { max_queue_size: 0 } }, 'dynamic_batching.max_queue_size', 'must be an integer >= 1'],
    ['preferred_batch_size', { dynamic_batching: { preferred_batch_size: [0] } }, 'dynamic_batching.preferred_batch_size[0]', 'must be an integer >= 1'],
    ['num_versions', { version_policy: { latest: { num_versions: 0 } } }, 'version_policy.latest.num_versions', 'must be an integer >= 1'],
    ['specific versions', { version_policy: { specific: { versions: [2, -1] } } }, 'version_policy.specific.versions[1]', 'must be an integer >= 1'],
    ['intra_op_threads', { runtime: { intra_op_threads: 0 } }, 'runtime.intra_op_threads', 'must be an integer >= 1'],
    ['inter_op_threads', { runtime: { inter_op_threads: -2 } }, 'runtime.inter_op_threads', 'must be an integer >= 1'],
    ['device_id', { runtime: { device_id: -1 } }, 'runtime.device_id', 'must be an integer >= 0'],
    ['dims below -1', { input: [{ name: 'x', data_type: 'FP32', dims: [-2] }] }, 'input[0].dims[0]', 'must be an integer >= 0'],
  ])('negative or too small: %s', async (_case, raw, field, expected) => {
    await expectInvalid(() => parse(raw), field, expected);
  });

  it('preferred_batch_size larger than max_batch_size', async () => {
    await expectInvalid(
      () => parse({ max_batch_size: 8, dynamic_batching: { preferred_batch_size: [4, 16] } }),
      'dynamic_batching.preferred_batch_size',
      'has 16, larger than max_batch_size 8',
    );
  });

  it('preferred_batch_size is checked whatever the key order', async () => {
    await expectInvalid(
      () => parse({ dynamic_batching: { preferred_batch_size: [32] }, max_batch_size: 16 }),
      'dynamic_batching.preferred_batch_size',
      'has 32, larger than max_batch_size 16',
    );
  });

  it('two version policies at once', async () => {
    await expectInvalid(
      () => parse({ version_policy: { latest: { num_versions: 1 }, all: {} } }),
      'version_policy',
      "must have exactly one of 'latest', 'all', 'specific'",
    );
  });

  it('an empty version policy', async () => {
    await expectInvalid(() => parse({ version_policy: {} }), 'version_policy', "must have exactly one of 'latest', 'all', 'specific'");
  });

  it('an unknown version policy kind', async () => {
    await expectInvalid(() => parse({ version_policy: { newest: {} } }), 'version_policy.newest', 'is not a known field', 'latest, all, specific');
  });

  it('a specific policy with no versions', async () => {
    await expectInvalid(() => parse({ version_policy: { specific: { versions: [] } } }), 'version_policy.specific.versions', 'must list at least one version');
  });

  it('a name that is not the folder name', async () => {
    await expectInvalid(() => parse({ name: 'other' }), 'name', "must be the model folder's name 'm'");
  });

  it.each([
    ['input', { input: [{ name: 'x', data_type: 'FLOAT32', dims: [1] }] }, 'input[0].data_type'],
    ['output', { output: [{ name: 'y', data_type: 'FP32', dims: [1] }, { name: 'z', data_type: 'TYPE_COMPLEX64', dims: [1] }] }, 'output[1].data_type'],
    ['lower case', { input: [{ name: 'x', data_type: 'fp32', dims: [1] }] }, 'input[0].data_type'],
    ['missing', { input: [{ name: 'x', dims: [1] }] }, 'input[0].data_type'],
  ])('a bad data_type (%s)', async (_case, raw, field) => {
    await expectInvalid(() => parse(raw), field, 'must be a V2 datatype such as FP32 or TYPE_FP32');
  });

  it('malformed JSON names the file', async () => {
    const dir = await modelDir({ 'config.json': '{ "max_batch_size": 8, }' });
    await expectInvalid(() => readModelConfig(dir, MODEL), 'm/config.json', 'is not valid JSON');
  });

  it('malformed YAML names the file', async () => {
    const dir = await modelDir({ 'config.yaml': 'max_batch_size: [8\nruntime: {\n' });
    await expectInvalid(() => readModelConfig(dir, MODEL), 'm/config.yaml', 'is not valid YAML');
  });

  it('a field error in a YAML file names that file', async () => {
    const dir = await modelDir({ 'config.yaml': 'max_batch_size: -3\n' });
    await expectInvalid(() => readModelConfig(dir, MODEL), 'm/config.yaml: max_batch_size', 'must be an integer >= 0');
  });

  it('both config.json and config.yaml present', async () => {
    const dir = await modelDir({ 'config.json': '{}', 'config.yaml': 'max_batch_size: 1\n' });
    await expectInvalid(() => readModelConfig(dir, MODEL), "model 'm'", 'several config files', 'config.json', 'config.yaml', 'keep one');
  });
});
