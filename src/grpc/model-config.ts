/**
 * The core's effective config (Triton's field names, as the HTTP config
 * endpoint returns it) as the ModelConfig message of proto/model_config.proto.
 * The fields Triton's ModelConfig has are carried as they are; Weir's
 * `runtime` section, which Triton has no field for, goes into `parameters`.
 */
import { WeirError } from '../errors.js';

/** The parts of effectiveConfig() (src/core/model-views.ts) that reach the message. */
interface EffectiveConfig {
  name: string;
  platform: string;
  backend: string;
  max_batch_size: number;
  input: TensorDeclaration[];
  output: TensorDeclaration[];
  dynamic_batching?: { preferred_batch_size: number[]; max_queue_delay_microseconds: number; max_queue_size: number };
  version_policy: Record<string, unknown>;
  runtime?: Record<string, unknown>;
}

interface TensorDeclaration {
  name: string;
  data_type: string;
  dims: number[];
}

export interface ModelConfigMessage {
  name: string;
  platform: string;
  backend: string;
  max_batch_size: number;
  input: TensorDeclaration[];
  output: TensorDeclaration[];
  dynamic_batching: { preferred_batch_size: number[]; max_queue_delay_microseconds: number; default_queue_policy: { max_queue_size: number } } | null;
  version_policy: Record<string, unknown>;
  parameters: Record<string, { string_value: string }>;
}

export function toModelConfig(config: Record<string, unknown>): ModelConfigMessage {
  const effective = config as unknown as EffectiveConfig;
  if (typeof effective.name !== 'string' || !Array.isArray(effective.input) || !Array.isArray(effective.output)) {
    throw new WeirError('WEIR_INTERNAL', 'the effective config lacks name, input or output');
  }
  const batching = effective.dynamic_batching;
  const declaration = ({ name, data_type, dims }: TensorDeclaration): TensorDeclaration => ({ name, data_type, dims });
  return {
    name: effective.name,
    platform: effective.platform,
    backend: effective.backend,
    max_batch_size: effective.max_batch_size,
    input: effective.input.map(declaration),
    output: effective.output.map(declaration),
    dynamic_batching: batching
      ? {
          preferred_batch_size: batching.preferred_batch_size,
          max_queue_delay_microseconds: batching.max_queue_delay_microseconds,
          default_queue_policy: { max_queue_size: batching.max_queue_size },
        }
      : null,
    version_policy: effective.version_policy,
    parameters: Object.fromEntries(
      Object.entries(effective.runtime ?? {})
        .filter(([, value]) => value !== null && value !== undefined)
        .map(([key, value]) => [key, { string_value: String(value) }]),
    ),
  };
}
