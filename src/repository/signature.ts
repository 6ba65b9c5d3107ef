/**
 * The signature a model version serves: its inputs and outputs, checked
 * against the config's declarations, and whether (and how far) it batches.
 * Like Triton's auto-complete, what the config leaves out comes from the
 * model: it batches only when every input and output has a dynamic first
 * dimension (their symbolic names may differ).
 */
import { WeirError } from '../errors.js';
import type { SessionInfo, ValueInfo } from '../native/addon.js';
import type { DataType } from '../tensors/datatypes.js';
import type { ModelConfig, TensorDeclaration } from './model-config.js';

/** The largest batch a derived config accepts, as rows per run. */
export const DERIVED_MAX_BATCH_SIZE = 64;

export interface TensorSpec {
  name: string;
  datatype: DataType;
  /** The full shape, batch dimension first when batching; -1 is dynamic. */
  shape: number[];
}

export interface Signature {
  /** 0: no batch dimension; requests pass through with their full shapes. */
  maxBatchSize: number;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** Errors name the tensor and the field at fault; the caller adds the model and version. */
export function resolveSignature(config: ModelConfig, session: SessionInfo): Signature {
  const fail = (message: string): never => {
    throw new WeirError('WEIR_CONFIG_INVALID', message);
  };
  const inputs = session.inputs.map((value) => tensorOf('input', value));
  const outputs = session.outputs.map((value) => tensorOf('output', value));

  const unbatchable = [...inputs, ...outputs].find((t) => t.shape.length === 0 || t.shape[0] !== -1);
  let maxBatchSize = config.maxBatchSize ?? (unbatchable ? 0 : DERIVED_MAX_BATCH_SIZE);
  if (maxBatchSize > 0 && unbatchable) {
    fail(
      `max_batch_size ${maxBatchSize} needs a dynamic first dimension on every input and output, ` +
        `but '${unbatchable.name}' has shape ${formatShape(unbatchable.shape)}; set max_batch_size to 0`,
    );
  }

  return {
    maxBatchSize,
    inputs: applyDeclarations('input', inputs, config.inputs),
    outputs: applyDeclarations('output', outputs, config.outputs),
  };

  function applyDeclarations(kind: string, model: TensorSpec[], declared: TensorDeclaration[] | undefined): TensorSpec[] {
    if (!declared) return model;
    const byName = new Map(model.map((t) => [t.name, t]));
    const result = new Map(byName);
    for (const declaration of declared) {
      const actual = byName.get(declaration.name) ??
        fail(`config declares ${kind} '${declaration.name}', but the model's ${kind}s are: ${[...byName.keys()].join(', ')}`);
      if (declaration.datatype !== actual.datatype) {
        fail(`config declares ${kind} '${declaration.name}' as ${declaration.datatype}, but the model has ${actual.datatype}`);
      }
      const modelDims = maxBatchSize > 0 ? actual.shape.slice(1) : actual.shape;
      const dims = mergeDims(declaration.dims, modelDims) ??
        fail(
          `config declares ${kind} '${declaration.name}' with dims ${formatShape(declaration.dims)}, ` +
            `but the model has ${formatShape(modelDims)}${maxBatchSize > 0 ? ' (batch dimension excluded)' : ''}`,
        );
      result.set(declaration.name, { ...actual, shape: maxBatchSize > 0 ? [-1, ...dims] : dims });
    }
    return model.map((t) => result.get(t.name) as TensorSpec);
  }
}

function tensorOf(kind: 'input' | 'output', value: ValueInfo): TensorSpec {
  if (value.datatype === null) {
    throw new WeirError(
      'WEIR_UNSUPPORTED_TYPE',
      `${kind} '${value.name}' is ${value.type}, which has no V2 tensor representation; ` +
        'Weir serves tensors of V2 datatypes only (export classifiers without ZipMap)',
    );
  }
  return { name: value.name, datatype: value.datatype, shape: value.shape };
}

/** A declaration may fix a dimension the model leaves dynamic, never change a fixed one. */
function mergeDims(declared: number[], model: number[]): number[] | undefined {
  if (declared.length !== model.length) return undefined;
  const merged: number[] = [];
  for (const [i, d] of declared.entries()) {
    const m = model[i] as number;
    if (m !== -1 && d !== -1 && m !== d) return undefined;
    merged.push(m === -1 ? d : m);
  }
  return merged;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
