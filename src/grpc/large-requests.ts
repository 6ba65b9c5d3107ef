/**
 * ModelInferRequests whose typed `contents` are large are decoded in a
 * worker: protobufjs reads every element of a repeated field into a
 * JavaScript array, then the codec copies them into a TypedArray, which
 * for megabytes of numbers holds the event loop for milliseconds. Raw
 * tensors (`raw_input_contents`) cost nothing to decode (they are views), so
 * a request goes to a worker only for what lies in its `inputs`, found by a
 * scan of the top-level protobuf fields before anything is decoded.
 */
import type { InferRequest } from '../core/core.js';
import { type ErrorCode, toWeirError } from '../errors.js';
import { buffersOf } from '../tensors/datatypes.js';
import { type JobResult, defineJob } from '../workers/jobs.js';
import { decodeInferRequest } from './infer-codec.js';
import type { ModelInferRequest, Parameters } from './messages.js';
import { inferenceService } from './proto.js';

/** Bytes of `inputs` (typed contents included) past which a request is decoded in a worker. */
export const LARGE_INPUTS_BYTES = 64 * 1024;

/** ModelInferRequest's field number for `inputs`. */
const INPUTS_FIELD = 5;

/** What an answer repeats of its request, even a failed one (stream clients match answers by id). */
export interface Echo {
  model_name: string;
  model_version: string;
  id: string;
}

/** A ModelInferRequest left as bytes, for a worker to decode; `echo` is known once it has. */
export class UndecodedRequest {
  echo: Echo | null = null;
  constructor(readonly bytes: Uint8Array) {}
}

/** What a worker's decoding gives back: the request (or why it is not one), and what the answer echoes. */
export interface DecodedMessage {
  echo: Echo;
  parameters: Parameters;
  request?: InferRequest;
  error?: { code: ErrorCode; message: string };
}

/** Wraps a ModelInferRequest deserializer: requests with large `inputs` are left undecoded (and copied out of grpc-js's buffer). */
export function deferringLargeInputs(deserialize: (bytes: Buffer) => unknown): (bytes: Buffer) => unknown {
  return (bytes) => (inputsBytes(bytes) > LARGE_INPUTS_BYTES ? new UndecodedRequest(Uint8Array.prototype.slice.call(bytes)) : deserialize(bytes));
}

/**
 * The bytes of the top-level `inputs` fields of a serialized
 * ModelInferRequest; 0 for anything malformed (the decoder then says what).
 */
export function inputsBytes(message: Uint8Array): number {
  let position = 0;
  let total = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 50; shift += 7) {
      if (position >= message.length) return -1;
      const byte = message[position++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    return -1;
  };
  while (position < message.length) {
    const tag = varint();
    if (tag < 0) return 0;
    const wireType = tag % 8;
    if (wireType === 0) {
      if (varint() < 0) return 0;
    } else if (wireType === 1 || wireType === 5) {
      position += wireType === 1 ? 8 : 4;
    } else if (wireType === 2) {
      const length = varint();
      if (length < 0 || position + length > message.length) return 0;
      if (Math.floor(tag / 8) === INPUTS_FIELD) total += length;
      position += length;
    } else {
      return 0;
    }
  }
  return total;
}

/** The worker's side: decodes the request as the main thread would, its tensors moved back. */
export function decodeModelInfer(input: { bytes: Uint8Array }): JobResult<DecodedMessage> {
  const { bytes } = input;
  const method = inferenceService().ModelInfer as unknown as { requestDeserialize: (bytes: Buffer) => ModelInferRequest };
  const message = method.requestDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const decoded = { echo: { model_name: message.model_name, model_version: message.model_version, id: message.id }, parameters: message.parameters };
  try {
    const request = decodeInferRequest(message);
    return { output: { ...decoded, request }, transfer: buffersOf(request.inputs.map((tensor) => tensor.data)) };
  } catch (error) {
    const { code, message: text } = toWeirError(error);
    return { output: { ...decoded, error: { code, message: text } }, transfer: [] };
  }
}

export const DECODE_MODEL_INFER = defineJob<{ bytes: Uint8Array }, DecodedMessage>(import.meta.url, 'decodeModelInfer');
