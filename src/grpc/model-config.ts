/**
 * The core's effective config (Triton's field names, as the HTTP config
 * endpoint returns it) as the ModelConfig message of proto/model_config.proto.
 * The fields Triton's ModelConfig has are carried as they are; Weir's
 * `runtime` section, which Triton has no field for, goes into `parameters`.
 */
import type { EffectiveConfig, TensorDeclarationView as TensorDeclaration } from '../core/model-views.js';

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

export function toModelConfig(effective: EffectiveConfig): ModelConfigMessage {
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
      Object.entries(effective.runtime).map(([key, value]) => [key, { string_value: String(value) }]),
    ),
  };
}
