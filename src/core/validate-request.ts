/**
 * Checks an inference request against the signature of the version that will
 * serve it, before anything is queued or sent to a worker. Each failure is a
 * coded error whose message names the exact field and what was expected.
 */
import { WeirError } from '../errors.js';
import { DATATYPES, countBytesElements, elementCount, isDataType } from '../tensors/datatypes.js';
import type { Tensor } from '../tensors/tensor.js';
import type { ServedVersion } from '../repository/model-version.js';
import { type TensorSpec, formatShape } from '../repository/signature.js';

/**
 * Validates `inputs` and `outputs`; returns the requested outputs (undefined: all).
 * It runs for every request, so it allocates nothing unless it fails.
 */
export function validateRequest(
  served: ServedVersion,
  inputs: readonly Tensor[],
  outputs: readonly string[] | undefined,
): string[] | undefined {
  const { signature, inputsByName } = served;
  let batchSize = -1;

  for (let i = 0; i < inputs.length; i++) {
    const tensor = inputs[i] as Tensor;
    if (typeof tensor !== 'object' || tensor === null) {
      throw new WeirError('WEIR_BAD_ARGUMENT', `inputs[${i}]: expected a tensor { name, datatype, shape, data }, got ${tensor === null ? 'null' : typeof tensor}`);
    }
    const spec = inputsByName.get(tensor.name);
    if (!spec) {
      throw new WeirError('WEIR_INPUT_UNKNOWN', `inputs[${i}].name: ${where(served)} has no input '${tensor.name}'; expected one of: ${[...inputsByName.keys()].join(', ')}`);
    }
    for (let j = 0; j < i; j++) {
      if ((inputs[j] as Tensor).name === tensor.name) throw new WeirError('WEIR_INPUT_DUPLICATE', `inputs[${i}].name: input '${tensor.name}' appears more than once`);
    }

    if (tensor.datatype !== spec.datatype) {
      const got = isDataType(tensor.datatype) ? tensor.datatype : `'${String(tensor.datatype)}'`;
      throw new WeirError('WEIR_DATATYPE_MISMATCH', `inputs[${i}].datatype: input '${spec.name}' expects ${spec.datatype}, got ${got}`);
    }

    checkShape(tensor.shape, spec, i);
    if (signature.maxBatchSize > 0) {
      const rows = tensor.shape[0] as number;
      if (rows > signature.maxBatchSize) {
        throw new WeirError('WEIR_BATCH_TOO_LARGE', `inputs[${i}].shape[0]: batch of ${rows} exceeds max_batch_size ${signature.maxBatchSize} of ${where(served)}`);
      }
      if (batchSize >= 0 && rows !== batchSize) {
        throw new WeirError('WEIR_SHAPE_MISMATCH', `inputs[${i}].shape[0]: batch size ${rows} differs from the other inputs' ${batchSize}`);
      }
      batchSize = rows;
    }
    checkData(tensor, i);
  }

  // Every input is known and none repeats, so all are present when the counts match.
  if (inputs.length !== signature.inputs.length) {
    const spec = signature.inputs.find((s) => !inputs.some((t) => t.name === s.name)) as TensorSpec;
    throw new WeirError('WEIR_INPUT_MISSING', `inputs: ${where(served)} needs input '${spec.name}' (${spec.datatype} ${formatShape(spec.shape)}), which the request lacks`);
  }

  if (outputs === undefined) return undefined;
  if (!Array.isArray(outputs)) throw new WeirError('WEIR_BAD_ARGUMENT', `outputs: expected an array of output names, got ${typeof outputs}`);
  for (let i = 0; i < outputs.length; i++) {
    if (!served.outputNames.has(outputs[i] as string)) {
      throw new WeirError('WEIR_OUTPUT_UNKNOWN', `outputs[${i}]: ${where(served)} has no output '${outputs[i]}'; expected one of: ${[...served.outputNames].join(', ')}`);
    }
  }
  return [...new Set(outputs)];
}

function where(served: ServedVersion): string {
  return `model '${served.model}' version ${served.version}`;
}

function malformedShape(shape: unknown, index: number): WeirError {
  return new WeirError('WEIR_SHAPE_MISMATCH', `inputs[${index}].shape: expected an array of non-negative integers, got ${JSON.stringify(shape)}`);
}

function checkShape(shape: unknown, spec: TensorSpec, index: number): void {
  if (!Array.isArray(shape)) throw malformedShape(shape, index);
  // Indexed: this runs on every request, and for-of allocated an iterator result per dimension here.
  for (let d = 0; d < shape.length; d++) if (!Number.isInteger(shape[d]) || (shape[d] as number) < 0) throw malformedShape(shape, index);
  if (shape.length !== spec.shape.length) {
    throw new WeirError('WEIR_SHAPE_MISMATCH', `inputs[${index}].shape: input '${spec.name}' expects ${spec.shape.length} dimensions ${formatShape(spec.shape)}, got ${formatShape(shape)}`);
  }
  for (let d = 0; d < shape.length; d++) {
    const expected = spec.shape[d] as number;
    if (expected !== -1 && shape[d] !== expected) {
      throw new WeirError('WEIR_SHAPE_MISMATCH', `inputs[${index}].shape[${d}]: input '${spec.name}' expects ${formatShape(spec.shape)}, got ${formatShape(shape)}`);
    }
  }
}

function checkData(tensor: Tensor, index: number): void {
  const { data, datatype, shape } = tensor;
  const expected = DATATYPES[datatype].array;
  if (!(data instanceof expected)) {
    const got = (data as object | null)?.constructor?.name ?? typeof data;
    throw new WeirError('WEIR_BAD_ARGUMENT', `inputs[${index}].data: ${datatype} data must be a ${expected.name}, got ${got}`);
  }
  const count = elementCount(shape);
  const actual = datatype === 'BYTES' ? countBytesElements(data as Uint8Array) : data.length;
  if (actual === -1) {
    throw new WeirError('WEIR_DATA_SIZE_MISMATCH', `inputs[${index}].data: the BYTES elements' 4-byte length prefixes do not add up to the data's ${data.byteLength} bytes`);
  }
  if (actual !== count) {
    throw new WeirError('WEIR_DATA_SIZE_MISMATCH', `inputs[${index}].data: shape ${formatShape(shape)} needs ${count} ${datatype} elements, got ${actual}`);
  }
}
