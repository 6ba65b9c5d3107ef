/**
 * Work besides inference that runs in the inference workers so that it stays
 * off the main thread: decoding and encoding large V2 JSON bodies, whose
 * cost grows with the tensors (a few megabytes of JSON hold the event loop
 * for tens of milliseconds). Each job takes structured-clonable input and
 * names the buffers of its output, which move back instead of being copied.
 */
import type { InferResponse } from '../core/core.js';
import { type DecodedRequest, decodeInferRequest, encodeInferResponse } from '../http/v2-codec.js';
import { type TypedArray, buffersOf } from '../tensors/datatypes.js';

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

  /** A response → its JSON as UTF-8 bytes, and its binary outputs (moved back as they came). */
  encodeV2Response(input: { response: InferResponse; binaryOutputs: Set<string> | 'all' }): JobResult<{ json: Uint8Array; binary: TypedArray[] }> {
    const { json, binary } = encodeInferResponse(input.response, input.binaryOutputs);
    const bytes = new TextEncoder().encode(json);
    return { output: { json: bytes, binary }, transfer: buffersOf([bytes, ...binary]) };
  },
} as const;

export type JobName = keyof typeof JOBS;
export type JobInput<N extends JobName> = Parameters<(typeof JOBS)[N]>[0];
export type JobOutput<N extends JobName> = ReturnType<(typeof JOBS)[N]>['output'];
