/**
 * What the core reports about models, in the KServe V2 shapes (metadata) and
 * Triton's (the effective config): plain objects, ready to serialise.
 */
import type { Model } from '../repository/repository.js';
import type { ServedVersion } from '../repository/model-version.js';
import type { TensorSpec } from '../repository/signature.js';

export const PLATFORM = 'onnxruntime_onnx';

export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export function modelMetadata(model: Model, served: ServedVersion): ModelMetadata {
  const tensor = ({ name, datatype, shape }: TensorSpec): TensorMetadata => ({ name, datatype, shape: [...shape] });
  return {
    name: model.name,
    versions: model.readyVersions().map((v) => String(v.version)),
    platform: PLATFORM,
    inputs: served.signature.inputs.map(tensor),
    outputs: served.signature.outputs.map(tensor),
  };
}

export interface TensorDeclarationView {
  name: string;
  /** Triton's TYPE_* name. */
  data_type: string;
  /** Without the batch dimension when max_batch_size > 0. */
  dims: number[];
}

/** The config a version runs with, in Triton's field names (the /config endpoints). */
export interface EffectiveConfig {
  name: string;
  platform: string;
  backend: string;
  max_batch_size: number;
  input: TensorDeclarationView[];
  output: TensorDeclarationView[];
  dynamic_batching?: { preferred_batch_size: number[]; max_queue_delay_microseconds: number; max_queue_size: number };
  version_policy: Record<string, unknown>;
  runtime: Record<string, string | number | boolean>;
}

/** The config a version actually runs with, in Triton's field names. */
export function effectiveConfig(served: ServedVersion): EffectiveConfig {
  const { signature, batching, config, sessionOptions } = served;
  const declaration = ({ name, datatype, shape }: TensorSpec): TensorDeclarationView => ({
    name,
    data_type: `TYPE_${datatype === 'BYTES' ? 'STRING' : datatype}`,
    dims: signature.maxBatchSize > 0 ? shape.slice(1) : [...shape],
  });
  const policy = config.versionPolicy;
  return {
    name: served.model,
    platform: PLATFORM,
    backend: 'onnxruntime',
    max_batch_size: signature.maxBatchSize,
    input: signature.inputs.map(declaration),
    output: signature.outputs.map(declaration),
    ...(batching && {
      dynamic_batching: {
        preferred_batch_size: batching.preferredBatchSize,
        max_queue_delay_microseconds: batching.maxQueueDelayMicroseconds,
        max_queue_size: batching.maxQueueSize,
      },
    }),
    version_policy:
      policy.kind === 'all'
        ? { all: {} }
        : policy.kind === 'latest'
          ? { latest: { num_versions: policy.numVersions } }
          : { specific: { versions: policy.versions } },
    runtime: {
      intra_op_threads: sessionOptions.intraOpThreads,
      inter_op_threads: sessionOptions.interOpThreads,
      graph_optimization: sessionOptions.graphOptimization,
      execution_provider: sessionOptions.executionProvider,
      device_id: sessionOptions.deviceId,
      cpu_fallback: sessionOptions.cpuFallback,
      active_execution_provider: served.provider,
    },
  };
}
