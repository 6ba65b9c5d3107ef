/**
 * The V2 body work the HTTP front end hands to a worker (core.offload) when
 * a body is large: a few megabytes of JSON hold an event loop for tens of
 * milliseconds. Run in a worker thread; the tensors move back, not copied.
 */
import type { InferResponse } from '../core/core.js';
import { type TypedArray, buffersOf } from '../tensors/datatypes.js';
import { type JobResult, defineJob } from '../workers/jobs.js';
import { type DecodedRequest, decodeInferRequest, encodeInferResponse } from './v2-codec.js';

/** JSON bodies, and JSON-encoded outputs, larger than this are handled in a worker. */
export const LARGE_JSON_BYTES = 64 * 1024;

interface DecodeInput {
  body: Uint8Array;
  model: string;
  version?: string;
}

interface EncodeInput {
  response: InferResponse;
  binaryOutputs: ReadonlySet<string> | 'all';
}

export interface EncodedBody {
  json: Uint8Array;
  binary: TypedArray[];
}

/** A V2 JSON infer body (no binary part) → the request, its tensors in buffers of their own. */
export function decodeV2Json(input: DecodeInput): JobResult<DecodedRequest> {
  const decoded = decodeInferRequest(input.body, undefined, input.model, input.version);
  // Small tensors are views into a slab (small-arrays.ts): moving that would take it from under the next decode.
  for (const tensor of decoded.request.inputs) {
    if (tensor.data.byteLength !== tensor.data.buffer.byteLength) tensor.data = tensor.data.slice();
  }
  return { output: decoded, transfer: buffersOf(decoded.request.inputs.map((tensor) => tensor.data)) };
}

/** A response → its JSON as UTF-8 bytes, and its binary outputs (moved back as they came). */
export function encodeV2Response(input: EncodeInput): JobResult<EncodedBody> {
  const { json, binary } = encodeInferResponse(input.response, input.binaryOutputs);
  const bytes = new TextEncoder().encode(json);
  return { output: { json: bytes, binary }, transfer: buffersOf([bytes, ...binary]) };
}

export const DECODE_V2_JSON = defineJob(import.meta.url, 'decodeV2Json', decodeV2Json);
export const ENCODE_V2_RESPONSE = defineJob(import.meta.url, 'encodeV2Response', encodeV2Response);
