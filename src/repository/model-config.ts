/**
 * A model's config file (config.json or config.yaml beside its version
 * folders), in Triton's field names, validated into a typed ModelConfig.
 * Every field is optional: what the file leaves out is derived from the
 * model itself (see signature.ts). Unknown fields are errors, so that a typo
 * does not silently fall back to a default.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { parse as parseYaml } from 'yaml';

import { WeirError } from '../errors.js';
import { type DataType, isDataType } from '../tensors/datatypes.js';

export interface TensorDeclaration {
  name: string;
  datatype: DataType;
  /** Dimensions without the batch dimension when max_batch_size > 0; -1 is dynamic. */
  dims: number[];
}

export interface DynamicBatching {
  preferredBatchSize: number[];
  maxQueueDelayMicroseconds: number;
  maxQueueSize: number;
}

export type VersionPolicy =
  | { kind: 'latest'; numVersions: number }
  | { kind: 'all' }
  | { kind: 'specific'; versions: number[] };

export interface RuntimeSettings {
  /** Undefined: sized by the thread plan (src/config/threads.ts). */
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimization: 'disable' | 'basic' | 'extended' | 'all';
  executionProvider: 'cpu' | 'cuda';
  deviceId: number;
  cpuFallback: boolean;
}

export interface ModelConfig {
  /** Undefined: derived from the model (batching iff every first dimension is dynamic). */
  maxBatchSize?: number;
  dynamicBatching?: DynamicBatching;
  versionPolicy: VersionPolicy;
  runtime: RuntimeSettings;
  inputs?: TensorDeclaration[];
  outputs?: TensorDeclaration[];
}

export const DEFAULT_DYNAMIC_BATCHING: DynamicBatching = {
  preferredBatchSize: [],
  maxQueueDelayMicroseconds: 100,
  maxQueueSize: 1024,
};

export const CONFIG_FILES = ['config.json', 'config.yaml', 'config.yml'] as const;

type Raw = Record<string, unknown>;

/** Reads and validates a model folder's config; the defaults when it has none. */
export async function readModelConfig(modelDir: string, modelName: string): Promise<ModelConfig> {
  const found = CONFIG_FILES.filter((file) => existsSync(join(modelDir, file)));
  if (found.length > 1) {
    throw new WeirError('WEIR_CONFIG_INVALID', `model '${modelName}' has several config files (${found.join(', ')}); keep one`);
  }
  const file = found[0];
  if (file === undefined) return parseModelConfig({}, modelName, 'defaults');
  const text = await readFile(join(modelDir, file), 'utf8');
  let raw: unknown;
  try {
    raw = file === 'config.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new WeirError('WEIR_CONFIG_INVALID', `${modelName}/${file} is not valid ${file === 'config.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
  }
  return parseModelConfig(raw ?? {}, modelName, `${modelName}/${file}`);
}

export function parseModelConfig(raw: unknown, modelName: string, source: string): ModelConfig {
  const fail = (field: string, expected: string): never => {
    throw new WeirError('WEIR_CONFIG_INVALID', `${source}: ${field} ${expected}`);
  };
  const object = (value: unknown, field: string): Raw =>
    typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Raw) : fail(field, 'must be an object');
  const onlyKeys = (value: Raw, field: string, allowed: readonly string[]) => {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) fail(field ? `${field}.${key}` : key, `is not a known field; expected one of: ${allowed.join(', ')}`);
    }
  };
  const integer = (value: unknown, field: string, min: number): number =>
    Number.isInteger(value) && (value as number) >= min ? (value as number) : fail(field, `must be an integer >= ${min}`);
  const integers = (value: unknown, field: string, min: number): number[] =>
    Array.isArray(value) ? value.map((v, i) => integer(v, `${field}[${i}]`, min)) : fail(field, 'must be an array of integers');
  const oneOf = <T extends string>(value: unknown, field: string, allowed: readonly T[]): T =>
    allowed.includes(value as T) ? (value as T) : fail(field, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);

  const top = object(raw, 'the config');
  onlyKeys(top, '', ['name', 'platform', 'backend', 'max_batch_size', 'dynamic_batching', 'version_policy', 'runtime', 'input', 'output']);
  if (top.name !== undefined && top.name !== modelName) fail('name', `must be the model folder's name '${modelName}'`);
  if (top.platform !== undefined) oneOf(top.platform, 'platform', ['onnxruntime_onnx']);
  if (top.backend !== undefined) oneOf(top.backend, 'backend', ['onnxruntime']);

  const config: ModelConfig = { versionPolicy: { kind: 'latest', numVersions: 1 }, runtime: parseRuntime(top.runtime) };
  if (top.max_batch_size !== undefined) config.maxBatchSize = integer(top.max_batch_size, 'max_batch_size', 0);

  if (top.dynamic_batching !== undefined) {
    const db = object(top.dynamic_batching, 'dynamic_batching');
    onlyKeys(db, 'dynamic_batching', ['preferred_batch_size', 'max_queue_delay_microseconds', 'max_queue_size']);
    config.dynamicBatching = {
      preferredBatchSize: db.preferred_batch_size === undefined ? [] : integers(db.preferred_batch_size, 'dynamic_batching.preferred_batch_size', 1),
      maxQueueDelayMicroseconds: db.max_queue_delay_microseconds === undefined ? DEFAULT_DYNAMIC_BATCHING.maxQueueDelayMicroseconds : integer(db.max_queue_delay_microseconds, 'dynamic_batching.max_queue_delay_microseconds', 0),
      maxQueueSize: db.max_queue_size === undefined ? DEFAULT_DYNAMIC_BATCHING.maxQueueSize : integer(db.max_queue_size, 'dynamic_batching.max_queue_size', 1),
    };
    const tooLarge = config.dynamicBatching.preferredBatchSize.find((size) => config.maxBatchSize !== undefined && size > config.maxBatchSize);
    if (tooLarge !== undefined) fail('dynamic_batching.preferred_batch_size', `has ${tooLarge}, larger than max_batch_size ${config.maxBatchSize}`);
  }

  if (top.version_policy !== undefined) config.versionPolicy = parseVersionPolicy(object(top.version_policy, 'version_policy'));
  if (top.input !== undefined) config.inputs = parseDeclarations(top.input, 'input');
  if (top.output !== undefined) config.outputs = parseDeclarations(top.output, 'output');
  return config;

  function parseVersionPolicy(policy: Raw): VersionPolicy {
    const kinds = Object.keys(policy);
    if (kinds.length !== 1) fail('version_policy', "must have exactly one of 'latest', 'all', 'specific'");
    onlyKeys(policy, 'version_policy', ['latest', 'all', 'specific']);
    if (policy.all !== undefined) {
      onlyKeys(object(policy.all, 'version_policy.all'), 'version_policy.all', []);
      return { kind: 'all' };
    }
    if (policy.latest !== undefined) {
      const latest = object(policy.latest, 'version_policy.latest');
      onlyKeys(latest, 'version_policy.latest', ['num_versions']);
      return { kind: 'latest', numVersions: integer(latest.num_versions ?? 1, 'version_policy.latest.num_versions', 1) };
    }
    const specific = object(policy.specific, 'version_policy.specific');
    onlyKeys(specific, 'version_policy.specific', ['versions']);
    const versions = integers(specific.versions, 'version_policy.specific.versions', 1);
    if (versions.length === 0) fail('version_policy.specific.versions', 'must list at least one version');
    return { kind: 'specific', versions };
  }

  function parseRuntime(value: unknown): RuntimeSettings {
    const runtime: RuntimeSettings = { graphOptimization: 'all', executionProvider: 'cpu', deviceId: 0, cpuFallback: false };
    if (value === undefined) return runtime;
    const r = object(value, 'runtime');
    onlyKeys(r, 'runtime', ['intra_op_threads', 'inter_op_threads', 'graph_optimization', 'execution_provider', 'device_id', 'cpu_fallback']);
    if (r.intra_op_threads !== undefined) runtime.intraOpThreads = integer(r.intra_op_threads, 'runtime.intra_op_threads', 1);
    if (r.inter_op_threads !== undefined) runtime.interOpThreads = integer(r.inter_op_threads, 'runtime.inter_op_threads', 1);
    if (r.graph_optimization !== undefined) runtime.graphOptimization = oneOf(r.graph_optimization, 'runtime.graph_optimization', ['disable', 'basic', 'extended', 'all']);
    if (r.execution_provider !== undefined) runtime.executionProvider = oneOf(r.execution_provider, 'runtime.execution_provider', ['cpu', 'cuda']);
    if (r.device_id !== undefined) runtime.deviceId = integer(r.device_id, 'runtime.device_id', 0);
    if (r.cpu_fallback !== undefined) runtime.cpuFallback = typeof r.cpu_fallback === 'boolean' ? r.cpu_fallback : fail('runtime.cpu_fallback', 'must be true or false');
    return runtime;
  }

  function parseDeclarations(value: unknown, field: string): TensorDeclaration[] {
    if (!Array.isArray(value)) return fail(field, 'must be an array of { name, data_type, dims }');
    return value.map((entry, i) => {
      const path = `${field}[${i}]`;
      const d = object(entry, path);
      onlyKeys(d, path, ['name', 'data_type', 'dims']);
      if (typeof d.name !== 'string' || d.name === '') fail(`${path}.name`, 'must be a non-empty string');
      // Triton writes TYPE_FP32 in configs and FP32 on the wire; take both.
      const datatype = typeof d.data_type === 'string' ? d.data_type.replace(/^TYPE_/, '').replace(/^STRING$/, 'BYTES') : '';
      if (!isDataType(datatype)) fail(`${path}.data_type`, 'must be a V2 datatype such as FP32 or TYPE_FP32');
      const dims = Array.isArray(d.dims) ? d.dims.map((v, j) => (v === -1 ? -1 : integer(v, `${path}.dims[${j}]`, 0))) : fail(`${path}.dims`, 'must be an array of integers (-1 for dynamic)');
      return { name: d.name as string, datatype: datatype as DataType, dims };
    });
  }
}
