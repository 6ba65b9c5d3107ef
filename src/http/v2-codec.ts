/**
 * The KServe V2 inference body over HTTP, with Triton's binary tensor
 * extension: a JSON header, optionally followed by raw tensor bytes
 * (`Inference-Header-Content-Length` gives the JSON's length; each binary
 * input says its size in `parameters.binary_data_size`). Responses use the
 * same layout for the outputs asked for as binary.
 */
import type { InferResponse } from '../core/core.js';
import { type InferRequest, inferRequest } from '../core/infer-request.js';
import { WeirError } from '../errors.js';
import { DATATYPES, type DataType, type TypedArray, isDataType } from '../tensors/datatypes.js';
import { fromJsonData, fromJsonNumbers, toJsonText } from '../tensors/json-data.js';
import { type Tensor, shapeFrom } from '../tensors/tensor.js';
import { type ParsedBody, parseV2Json } from './v2-json.js';

export interface DecodedRequest {
  request: InferRequest;
  /** Outputs to send as binary; `all` when the request asked for every output so. */
  binaryOutputs: ReadonlySet<string> | 'all';
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

function parseJson(bytes: Uint8Array, binaryHeader: boolean): ParsedBody {
  try {
    return parseV2Json(bytes, binaryHeader);
  } catch (error) {
    return invalid(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** What a body's JSON says, checked: everything but the tensors' data. */
interface RequestHeader {
  inputs: InputHeader[];
  outputs?: readonly string[];
  binaryOutputs: ReadonlySet<string> | 'all';
  id?: string;
  timeoutMs?: number;
}

interface InputHeader {
  name: string;
  datatype: DataType;
  shape: readonly number[];
  /** Bytes that follow the JSON (Triton's binary extension); undefined: the data is JSON. */
  binarySize: number | undefined;
  /** `inputs[i]`, to name it in errors. */
  field: string;
  /** The raw `data` when it is JSON (used when the addon did not lift it). */
  data: unknown;
}

/**
 * Headers derived from cached skeletons (v2-json.ts): a client's requests
 * mostly share one, so it is checked once, not per request.
 */
const sharedHeaders = new WeakMap<object, RequestHeader>();

/** Decodes an infer body; `headerLength` is the Inference-Header-Content-Length header, if any. */
export function decodeInferRequest(body: Uint8Array, headerLength: number | undefined, model: string, version?: string): DecodedRequest {
  if (headerLength !== undefined && !(Number.isInteger(headerLength) && headerLength >= 0 && headerLength <= body.byteLength)) {
    invalid(`Inference-Header-Content-Length ${headerLength} does not fit the ${body.byteLength}-byte body`);
  }
  const jsonEnd = headerLength ?? body.byteLength;
  const parsed = parseJson(jsonEnd === body.byteLength ? body : body.subarray(0, jsonEnd), headerLength !== undefined);
  let header = parsed.shared ? sharedHeaders.get(parsed.json as object) : undefined;
  if (header === undefined) {
    header = readHeader(parsed.json);
    if (parsed.shared) sharedHeaders.set(parsed.json as object, header);
  }

  let offset = jsonEnd;
  const inputs = header.inputs.map((input, i): Tensor => {
    const { name, datatype, binarySize, field } = input;
    // The shape is copied: a shared header serves every request that sends its skeleton.
    const shape = shapeFrom(input.shape);
    if (binarySize === undefined) return { name, datatype, shape, data: jsonData(input, parsed.liftedData(i)) };
    if (offset + binarySize > body.byteLength) {
      invalid(`${field}.parameters.binary_data_size: ${binarySize} bytes at offset ${offset - jsonEnd} run past the ${body.byteLength - jsonEnd} binary bytes sent`);
    }
    const data = binaryData(datatype, body, offset, binarySize);
    offset += binarySize;
    return { name, datatype, shape, data };
  });
  if (offset !== body.byteLength) {
    invalid(`the binary_data_size of the inputs add up to ${offset - jsonEnd} bytes, but ${body.byteLength - jsonEnd} binary bytes were sent`);
  }

  const request = inferRequest(model, inputs, version, parsed.id ?? header.id, header.outputs as string[] | undefined, header.timeoutMs);
  return { request, binaryOutputs: header.binaryOutputs };
}

function jsonData({ datatype, field, data }: InputHeader, lifted: Float64Array | undefined): TypedArray {
  if (lifted) return fromJsonNumbers(datatype, lifted, `${field}.data`);
  if (data === undefined) invalid(`${field}.data: required unless parameters.binary_data_size is given`);
  return fromJsonData(datatype, data, `${field}.data`);
}

/** `size` bytes of the body at `offset`: viewed in place when aligned (read-body.ts aligns the first one), else copied out. */
function binaryData(datatype: DataType, body: Uint8Array, offset: number, size: number): TypedArray {
  const array = DATATYPES[datatype].array;
  const length = size / (DATATYPES[datatype].size || 1);
  if (size === 0) return new array(0); // nothing to view: and the body's memory may be borrowed
  if ((body.byteOffset + offset) % array.BYTES_PER_ELEMENT === 0) return new array(body.buffer as ArrayBuffer, body.byteOffset + offset, length);
  // Uint8Array's slice copies (a Buffer's would be a view).
  const bytes = Uint8Array.prototype.slice.call(body, offset, offset + size);
  return new array(bytes.buffer, 0, length);
}

/** Checks the JSON of an infer body: every field but the tensors' data. */
function readHeader(parsed: unknown): RequestHeader {
  const json = object(parsed, 'the request body');
  if (!Array.isArray(json.inputs)) invalid('inputs: expected an array of tensors');
  const parameters = json.parameters === undefined ? {} : object(json.parameters, 'parameters');

  const inputs = (json.inputs as unknown[]).map((raw, i): InputHeader => {
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
    if (binarySize !== undefined) {
      if (!Number.isInteger(binarySize) || (binarySize as number) < 0) invalid(`${field}.parameters.binary_data_size: expected a byte count`);
      const elementSize = DATATYPES[datatype].size || 1;
      if ((binarySize as number) % elementSize !== 0) {
        invalid(`${field}.parameters.binary_data_size: ${binarySize} is not a multiple of ${datatype}'s ${elementSize} bytes`);
      }
    }
    return { name: input.name as string, datatype, shape: input.shape as number[], binarySize: binarySize as number | undefined, field, data: input.data };
  });

  const binaryOutputs = new Set<string>();
  const header: RequestHeader = { inputs, binaryOutputs: parameters.binary_data_output === true ? 'all' : binaryOutputs };
  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs)) invalid('outputs: expected an array of { name }');
    // Frozen: a shared header hands this one array to every request that sends its skeleton.
    header.outputs = Object.freeze((json.outputs as unknown[]).map((raw, i) => {
      const output = object(raw, `outputs[${i}]`);
      if (typeof output.name !== 'string') invalid(`outputs[${i}].name: expected a string`);
      const outputParameters = output.parameters === undefined ? {} : object(output.parameters, `outputs[${i}].parameters`);
      if (outputParameters.binary_data === true) binaryOutputs.add(output.name as string);
      return output.name as string;
    }));
  }
  if (json.id !== undefined) {
    if (typeof json.id !== 'string') invalid('id: expected a string');
    header.id = json.id as string;
  }
  if (parameters.timeout !== undefined) {
    if (!Number.isInteger(parameters.timeout) || (parameters.timeout as number) <= 0) invalid('parameters.timeout: expected microseconds, a positive integer');
    header.timeoutMs = (parameters.timeout as number) / 1000;
  }
  return header;
}

/**
 * The constant parts of responses, kept: the same few models, versions and
 * outputs recur in every response, and a quoted name costs more to write
 * than to look up. Each map starts again when it grows past its bound.
 */
class TextCache {
  private readonly texts = new Map<string, Map<string, string>>();

  constructor(
    private readonly write: (outer: string, inner: string) => string,
    private readonly bound = 1024,
  ) {}

  get(outer: string, inner: string): string {
    let byInner = this.texts.get(outer);
    if (byInner === undefined) {
      if (this.texts.size >= this.bound) this.texts.clear();
      this.texts.set(outer, (byInner = new Map()));
    }
    let text = byInner.get(inner);
    if (text === undefined) {
      if (byInner.size >= this.bound) byInner.clear();
      byInner.set(inner, (text = this.write(outer, inner)));
    }
    return text;
  }
}

const responseHeads = new TextCache((model, version) => `{"model_name":${JSON.stringify(model)},"model_version":${JSON.stringify(version)}`);
const outputHeads = new TextCache((name, datatype) => `{"name":${JSON.stringify(name)},"datatype":"${datatype}","shape":[`);

/**
 * Encodes a response: its JSON, written as text directly (no object graph to
 * stringify), and the outputs asked for as binary, which follow the JSON in
 * the body (Inference-Header-Content-Length gives the JSON's length).
 */
export function encodeInferResponse(response: InferResponse, binaryOutputs: ReadonlySet<string> | 'all'): EncodedResponse {
  const binary: TypedArray[] = [];
  let json = responseHeads.get(response.model_name, response.model_version);
  if (response.id !== undefined) json += `,"id":${JSON.stringify(response.id)}`;
  json += ',"outputs":[';
  for (let i = 0; i < response.outputs.length; i++) {
    const { name, datatype, shape, data } = response.outputs[i] as Tensor;
    if (i > 0) json += ',';
    json += outputHeads.get(name, datatype);
    for (let d = 0; d < shape.length; d++) json += d === 0 ? `${shape[d]}` : `,${shape[d]}`;
    json += '],';
    if (binaryOutputs === 'all' || binaryOutputs.has(name)) {
      json += `"parameters":{"binary_data_size":${data.byteLength}}}`;
      binary.push(data);
    } else {
      json += `"data":${toJsonText(datatype, data)}}`;
    }
  }
  return { json: `${json}]}`, binary };
}
