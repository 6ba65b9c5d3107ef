/**
 * ModelInferRequest → the core's InferRequest, and InferResponse →
 * ModelInferResponse. Input data comes either typed (`contents`) or raw
 * (`raw_input_contents`, one entry per input), never both; answers are
 * always raw (`raw_output_contents`), the only form tritonclient reads.
 * The request's `id` and `parameters` come back in the response.
 */
import type { InferResponse } from '../core/core.js';
import { type InferRequest, inferRequest } from '../core/infer-request.js';
import { WeirError } from '../errors.js';
import { type DataType, isDataType } from '../tensors/datatypes.js';
import { type Tensor, shapeFrom } from '../tensors/tensor.js';
import type { InferParameter, ModelInferRequest, ModelInferResponse, Parameters } from './messages.js';
import { fromContents, fromRawContents, hasContents } from './tensor-contents.js';

const invalid = (message: string): never => {
  throw new WeirError('WEIR_INVALID_REQUEST', message);
};

export function decodeInferRequest(message: ModelInferRequest): InferRequest {
  const raw = message.raw_input_contents;
  const useRaw = raw.length > 0;
  if (useRaw && raw.length !== message.inputs.length) {
    invalid(`raw_input_contents: ${raw.length} entries for ${message.inputs.length} inputs; give one per input, in the order of inputs`);
  }
  const inputs = message.inputs.map((input, i): Tensor => {
    if (!isDataType(input.datatype)) invalid(`inputs[${i}].datatype: expected a V2 datatype such as FP32, got ${JSON.stringify(input.datatype)}`);
    const datatype = input.datatype as DataType;
    const shape = shapeFrom(input.shape);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) invalid(`inputs[${i}].shape: expected non-negative integers, got [${input.shape.join(',')}]`);
    if (!useRaw) return { name: input.name, datatype, shape, data: fromContents(datatype, shape, input.contents, `inputs[${i}]`) };
    if (hasContents(input.contents)) {
      invalid(`inputs[${i}].contents: the request also has raw_input_contents; give every input's data in contents, or every input's in raw_input_contents, not both`);
    }
    return { name: input.name, datatype, shape, data: fromRawContents(datatype, shape, raw[i] as Buffer, i) };
  });

  const timeout = message.parameters.timeout;
  return inferRequest(
    message.model_name,
    inputs,
    message.model_version === '' ? undefined : message.model_version,
    message.id === '' ? undefined : message.id,
    message.outputs.length > 0 ? message.outputs.map((output) => output.name) : undefined,
    timeout === undefined ? undefined : timeoutMicroseconds(timeout) / 1000,
  );
}

/** The `timeout` parameter: microseconds, as Triton's int64_param (uint64_param is accepted too). */
function timeoutMicroseconds(parameter: InferParameter): number {
  const choice = parameter.parameter_choice;
  const value = choice === 'int64_param' || choice === 'uint64_param' ? Number(parameter[choice]) : Number.NaN;
  if (!(Number.isSafeInteger(value) && value > 0)) {
    invalid(`parameters.timeout: expected int64_param microseconds, a positive integer, got ${choice ? `${choice} ${String(parameter[choice])}` : 'no value'}`);
  }
  return value;
}

/** The response, each output's bytes viewed (not copied) until the serializer writes them out. */
export function encodeInferResponse(response: InferResponse, parameters: Parameters): ModelInferResponse {
  return {
    model_name: response.model_name,
    model_version: response.model_version,
    id: response.id ?? '',
    parameters,
    outputs: response.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    raw_output_contents: response.outputs.map(({ data }) => Buffer.from(data.buffer, data.byteOffset, data.byteLength)),
  };
}
