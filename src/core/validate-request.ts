/**
 * Checks an inference request against the signature of the version that will
 * serve it, before anything is queued or sent to a worker. Each failure is a
 * coded error whose message names the exact field and what was expected.
 */
import { WeirError } from '../errors.js';
import { DATATYPES, countBytesElements, elementCount, isDataType } from '../tensors/datatypes.js';
import type { Tensor } from '../tensors/tensor.js';
import type { ServedVersion } from '../repository/model-version.js';
import { formatShape } from '../repository/signature.js';

/** Validates `inputs` and `outputs`; returns the requested outputs (undefined: all). */
export function validateRequest(
  served: ServedVersion,
  inputs: readonly Tensor[],
  outputs: readonly string[] | undefined,
): string[] | undefined {
  const { signature, inputsByName } = served;
  const where = `model '${served.model}' version ${served.version}`;
  const seen = new Set<string>();
  let batchSize = -1;

  inputs.forEach((tensor, i) => {
    const field = `inputs[${i}]`;
    if (typeof tensor !== 'object' || tensor === null) {
      throw new WeirError('WEIR_BAD_ARGUMENT', `${field}: expected a tensor { name, datatype, shape, data }, got ${tensor === null ? 'null' : typeof tensor}`);
    }
    const spec = inputsByName.get(tensor.name);
    if (!spec) {
      throw new WeirError('WEIR_INPUT_UNKNOWN', `${field}.name: ${where} has no input '${tensor.name}'; expected one of: ${[...inputsByName.keys()].join(', ')}`);
    }
    if (seen.has(tensor.name)) throw new WeirError('WEIR_INPUT_DUPLICATE', `${field}.name: input '${tensor.name}' appears more than once`);
    seen.add(tensor.name);

    if (tensor.datatype !== spec.datatype) {
      const got = isDataType(tensor.datatype) ? tensor.datatype : `'${String(tensor.datatype)}'`;
      throw new WeirError('WEIR_DATATYPE_MISMATCH', `${field}.datatype: input '${spec.name}' expects ${spec.datatype}, got ${got}`);
    }

    const { shape } = tensor;
    const shapeOk = Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d >= 0);
    if (!shapeOk) throw new WeirError('WEIR_SHAPE_MISMATCH', `${field}.shape: expected an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (shape.length !== spec.shape.length) {
      throw new WeirError('WEIR_SHAPE_MISMATCH', `${field}.shape: input '${spec.name}' expects ${spec.shape.length} dimensions ${formatShape(spec.shape)}, got ${formatShape(shape)}`);
    }
    spec.shape.forEach((expected, d) => {
      if (expected !== -1 && shape[d] !== expected) {
        throw new WeirError('WEIR_SHAPE_MISMATCH', `${field}.shape[${d}]: input '${spec.name}' expects ${formatShape(spec.shape)}, got ${formatShape(shape)}`);
      }
    });

    if (signature.maxBatchSize > 0) {
      const rows = shape[0] as number;
      if (rows > signature.maxBatchSize) {
        throw new WeirError('WEIR_BATCH_TOO_LARGE', `${field}.shape[0]: batch of ${rows} exceeds max_batch_size ${signature.maxBatchSize} of ${where}`);
      }
      if (batchSize >= 0 && rows !== batchSize) {
        throw new WeirError('WEIR_SHAPE_MISMATCH', `${field}.shape[0]: batch size ${rows} differs from the other inputs' ${batchSize}`);
      }
      batchSize = rows;
    }

    checkData(tensor, field);
  });

  for (const spec of signature.inputs) {
    if (!seen.has(spec.name)) {
      throw new WeirError('WEIR_INPUT_MISSING', `inputs: ${where} needs input '${spec.name}' (${spec.datatype} ${formatShape(spec.shape)}), which the request lacks`);
    }
  }

  if (outputs === undefined) return undefined;
  if (!Array.isArray(outputs)) throw new WeirError('WEIR_BAD_ARGUMENT', `outputs: expected an array of output names, got ${typeof outputs}`);
  outputs.forEach((name, i) => {
    if (!served.outputNames.has(name)) {
      throw new WeirError('WEIR_OUTPUT_UNKNOWN', `outputs[${i}]: ${where} has no output '${name}'; expected one of: ${[...served.outputNames].join(', ')}`);
    }
  });
  return [...new Set(outputs)];
}

function checkData(tensor: Tensor, field: string): void {
  const { data, datatype, shape } = tensor;
  const expected = DATATYPES[datatype].array;
  if (!(data instanceof expected)) {
    const got = (data as object | null)?.constructor?.name ?? typeof data;
    throw new WeirError('WEIR_BAD_ARGUMENT', `${field}.data: ${datatype} data must be a ${expected.name}, got ${got}`);
  }
  const count = elementCount(shape);
  const actual = datatype === 'BYTES' ? countBytesElements(data as Uint8Array) : data.length;
  if (actual === -1) {
    throw new WeirError('WEIR_DATA_SIZE_MISMATCH', `${field}.data: the BYTES elements' 4-byte length prefixes do not add up to the data's ${data.byteLength} bytes`);
  }
  if (actual !== count) {
    throw new WeirError('WEIR_DATA_SIZE_MISMATCH', `${field}.data: shape ${formatShape(shape)} needs ${count} ${datatype} elements, got ${actual}`);
  }
}
