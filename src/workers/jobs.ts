/**
 * Work besides inference that runs in the inference workers so that it stays
 * off the main thread: decoding and encoding large V2 JSON bodies, whose
 * cost grows with the tensors (a few megabytes of JSON hold the event loop
 * for tens of milliseconds). Each job takes structured-clonable input and
 * names the buffers of its output, which move back instead of being copied.
 */
import type { InferResponse } from '../core/core.js';
import { type DecodedRequest, type EncodedResponse, decodeInferRequest, encodeInferResponse } from '../http/v2-codec.js';
import { buffersOf } from '../tensors/datatypes.js';

/** JSON bodies and JSON-encoded outputs larger than this are handled in a worker. */
export const LARGE_JSON_BYTES = 64 * 1024;

interface JobResult<T> {
  output: T;
  /** Buffers of `output` to move to the main thread. */
  transfer: ArrayBuffer[];
}

export const JOBS = {
  /** A V2 JSON infer body (no binary part) → the request, its tensors in buffers of their own. */
  decodeV2Json(input: { body: Uint8Array; model: string; version?: string }): JobResult<DecodedRequest> {
    const decoded = decodeInferRequest(input.body, undefined, input.model, input.version);
    return { output: decoded, transfer: buffersOf(decoded.request.inputs.map((tensor) => tensor.data)) };
  },

  /** A response → its V2 body as bytes (JSON, with any binary outputs after it). */
  encodeV2Response(input: { response: InferResponse; binaryOutputs: Set<string> | 'all' }): JobResult<EncodedResponse> {
    const encoded = encodeInferResponse(input.response, input.binaryOutputs);
    const body = typeof encoded.body === 'string' ? new TextEncoder().encode(encoded.body) : encoded.body;
    return { output: { ...encoded, body }, transfer: buffersOf([body]) };
  },
} as const;

export type JobName = keyof typeof JOBS;
export type JobInput<N extends JobName> = Parameters<(typeof JOBS)[N]>[0];
export type JobOutput<N extends JobName> = ReturnType<(typeof JOBS)[N]>['output'];
