/**
 * The KServe V2 inference body over HTTP, with Triton's binary tensor
 * extension: a JSON header, optionally followed by raw tensor bytes
 * (`Inference-Header-Content-Length` gives the JSON's length; each binary
 * input says its size in `parameters.binary_data_size`). Responses use the
 * same layout for the outputs asked for as binary.
 */
import type { InferRequest, InferResponse } from '../core/core.js';
import { WeirError } from '../errors.js';
import { DATATYPES, type DataType, type TypedArray, isDataType } from '../tensors/datatypes.js';
import { fromJsonData, fromJsonNumbers, toJsonText } from '../tensors/json-data.js';
import type { Tensor } from '../tensors/tensor.js';
import { type ParsedBody, parseV2Json } from './v2-json.js';

export interface DecodedRequest {
  request: InferRequest;
  /** Outputs to send as binary; `all` when the request asked for every output so. */
  binaryOutputs: Set<string> | 'all';
}

export interface EncodedResponse {
  /** The JSON part of the body (all of it when no output is binary). */
  json: string;
  /** The outputs sent as binary, in order, to follow the JSON: views, not copies. */
  binary: TypedArray[];
}

type Json = Record<string, unknown>;

const invalid = (message: string): never => {
  throw new WeirError('WEIR_INVALID_REQUEST', message);
};

function object(value: unknown, field: string): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : invalid(`${field}: expected a JSON object`);
}

function parseJson(bytes: Uint8Array): ParsedBody {
  try {
    return parseV2Json(bytes);
  } catch (error) {
    return invalid(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Decodes an infer body; `headerLength` is the Inference-Header-Content-Length header, if any. */
export function decodeInferRequest(body: Uint8Array, headerLength: number | undefined, model: string, version?: string): DecodedRequest {
  if (headerLength !== undefined && !(Number.isInteger(headerLength) && headerLength >= 0 && headerLength <= body.byteLength)) {
    invalid(`Inference-Header-Content-Length ${headerLength} does not fit the ${body.byteLength}-byte body`);
  }
  const jsonEnd = headerLength ?? body.byteLength;
  const parsed = parseJson(jsonEnd === body.byteLength ? body : body.subarray(0, jsonEnd));
  const json = object(parsed.json, 'the request body');
  if (!Array.isArray(json.inputs)) invalid('inputs: expected an array of tensors');
  const parameters = json.parameters === undefined ? {} : object(json.parameters, 'parameters');

  let offset = jsonEnd;
  const inputs = (json.inputs as unknown[]).map((raw, i): Tensor => {
    const field = `inputs[${i}]`;
    const input = object(raw, field);
    if (typeof input.name !== 'string') invalid(`${field}.name: expected a string`);
    if (!isDataType(input.datatype)) invalid(`${field}.datatype: expected a V2 datatype such as FP32, got ${JSON.stringify(input.datatype)}`);
    if (!Array.isArray(input.shape) || !input.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      invalid(`${field}.shape: expected an array of non-negative integers`);
    }
    const datatype = input.datatype as DataType;
    const inputParameters = input.parameters === undefined ? {} : object(input.parameters, `${field}.parameters`);
    const binarySize = inputParameters.binary_data_size;
    let data: TypedArray;
    if (binarySize !== undefined) {
      if (!Number.isInteger(binarySize) || (binarySize as number) < 0) invalid(`${field}.parameters.binary_data_size: expected a byte count`);
      const size = binarySize as number;
      if (offset + size > body.byteLength) {
        invalid(`${field}.parameters.binary_data_size: ${size} bytes at offset ${offset - jsonEnd} run past the ${body.byteLength - jsonEnd} binary bytes sent`);
      }
      const elementSize = DATATYPES[datatype].size || 1;
      if (size % elementSize !== 0) invalid(`${field}.parameters.binary_data_size: ${size} is not a multiple of ${datatype}'s ${elementSize} bytes`);
      // Viewed in place when aligned (read-body.ts aligns the first one), else copied out.
      const array = DATATYPES[datatype].array;
      const start = body.byteOffset + offset;
      if (size === 0) {
        data = new array(0); // nothing to view: and the body's memory may be borrowed
      } else if (start % array.BYTES_PER_ELEMENT === 0) {
        data = new array(body.buffer as ArrayBuffer, start, size / elementSize);
      } else {
        // Uint8Array's slice copies (a Buffer's would be a view).
        const bytes = Uint8Array.prototype.slice.call(body, offset, offset + size);
        data = new array(bytes.buffer, 0, size / elementSize);
      }
      offset += size;
    } else {
      const numbers = parsed.liftedData(i);
      if (numbers) {
        data = fromJsonNumbers(datatype, numbers, `${field}.data`);
      } else {
        if (input.data === undefined) invalid(`${field}.data: required unless parameters.binary_data_size is given`);
        data = fromJsonData(datatype, input.data, `${field}.data`);
      }
    }
    // The shape is copied: a cached skeleton (v2-json.ts) is shared by every request that sends it.
    return { name: input.name as string, datatype, shape: [...(input.shape as number[])], data };
  });
  if (offset !== body.byteLength) {
    invalid(`the binary_data_size of the inputs add up to ${offset - jsonEnd} bytes, but ${body.byteLength - jsonEnd} binary bytes were sent`);
  }

  let outputs: string[] | undefined;
  const binaryOutputs = new Set<string>();
  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs)) invalid('outputs: expected an array of { name }');
    outputs = (json.outputs as unknown[]).map((raw, i) => {
      const output = object(raw, `outputs[${i}]`);
      if (typeof output.name !== 'string') invalid(`outputs[${i}].name: expected a string`);
      const outputParameters = output.parameters === undefined ? {} : object(output.parameters, `outputs[${i}].parameters`);
      if (outputParameters.binary_data === true) binaryOutputs.add(output.name as string);
      return output.name as string;
    });
  }

  const request: InferRequest = { model, inputs };
  if (version !== undefined) request.version = version;
  if (outputs) request.outputs = outputs;
  if (json.id !== undefined) {
    if (typeof json.id !== 'string') invalid('id: expected a string');
    request.id = json.id as string;
  }
  if (parameters.timeout !== undefined) {
    if (!Number.isInteger(parameters.timeout) || (parameters.timeout as number) <= 0) invalid('parameters.timeout: expected microseconds, a positive integer');
    request.timeoutMs = (parameters.timeout as number) / 1000;
  }
  return { request, binaryOutputs: parameters.binary_data_output === true ? 'all' : binaryOutputs };
}

/** Model, version and output names as JSON strings, kept: the same few recur in every response. */
const quotedNames = new Map<string, string>();
const QUOTED_NAMES = 1024;

function quoted(name: string): string {
  let text = quotedNames.get(name);
  if (text === undefined) {
    if (quotedNames.size >= QUOTED_NAMES) quotedNames.clear();
    quotedNames.set(name, (text = JSON.stringify(name)));
  }
  return text;
}

/**
 * Encodes a response: its JSON, written as text directly (no object graph to
 * stringify), and the outputs asked for as binary, which follow the JSON in
 * the body (Inference-Header-Content-Length gives the JSON's length).
 */
export function encodeInferResponse(response: InferResponse, binaryOutputs: Set<string> | 'all'): EncodedResponse {
  const binary: TypedArray[] = [];
  let json = `{"model_name":${quoted(response.model_name)},"model_version":${quoted(response.model_version)}`;
  if (response.id !== undefined) json += `,"id":${JSON.stringify(response.id)}`;
  json += ',"outputs":[';
  for (let i = 0; i < response.outputs.length; i++) {
    const { name, datatype, shape, data } = response.outputs[i] as Tensor;
    if (i > 0) json += ',';
    json += `{"name":${quoted(name)},"datatype":"${datatype}","shape":[${shape.join(',')}],`;
    if (binaryOutputs === 'all' || binaryOutputs.has(name)) {
      json += `"parameters":{"binary_data_size":${data.byteLength}}}`;
      binary.push(data);
    } else {
      json += `"data":${toJsonText(datatype, data)}}`;
    }
  }
  return { json: `${json}]}`, binary };
}
