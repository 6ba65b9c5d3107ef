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
import { buffersOf } from '../tensors/datatypes.js';
import { type JobResult, defineJob } from '../workers/jobs.js';
import { decodeInferRequest } from './infer-codec.js';
import type { ModelInferRequest, Parameters } from './messages.js';
import { inferenceService } from './proto.js';

/** Bytes of `inputs` (typed contents included) past which a request is decoded in a worker. */
export const LARGE_INPUTS_BYTES = 64 * 1024;

/** ModelInferRequest's field numbers: model_name, model_version, id (1 to 3, in that order), inputs. */
const MODEL_NAME_FIELD = 1;
const MODEL_VERSION_FIELD = 2;
const ID_FIELD = 3;
const INPUTS_FIELD = 5;

/** What an answer repeats of its request, even a failed one (stream clients match answers by id). */
export interface Echo {
  model_name: string;
  model_version: string;
  id: string;
}

/** A ModelInferRequest left as bytes, for a worker to decode, with what its answer repeats. */
export class UndecodedRequest {
  constructor(
    readonly bytes: Uint8Array,
    readonly echo: Echo,
  ) {}
}

/** What a worker's decoding gives back: the request, and the parameters its answer repeats. */
export interface DecodedMessage {
  request: InferRequest;
  parameters: Parameters;
}

/** Wraps a ModelInferRequest deserializer: requests with large `inputs` are left undecoded (and copied out of the received message, to be moved to a worker). */
export function deferringLargeInputs(deserialize: (bytes: Buffer) => unknown): (bytes: Buffer) => unknown {
  return (bytes) => {
    if (inputsBytesOf(bytes) <= LARGE_INPUTS_BYTES) return deserialize(bytes);
    return new UndecodedRequest(Uint8Array.prototype.slice.call(bytes), readEcho(bytes));
  };
}

/**
 * A serialized message's top-level fields, read without decoding it: calls
 * `field` with each length-delimited one's number, start and length.
 * Returns false for anything malformed (the decoder then says what).
 */
function forEachTopLevelField(message: Uint8Array, field: (number: number, start: number, length: number) => void): boolean {
  let position = 0;
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
    if (tag < 0) return false;
    const wireType = tag % 8;
    if (wireType === 0) {
      if (varint() < 0) return false;
    } else if (wireType === 1 || wireType === 5) {
      position += wireType === 1 ? 8 : 4;
    } else if (wireType === 2) {
      const length = varint();
      if (length < 0 || position + length > message.length) return false;
      field(Math.floor(tag / 8), position, length);
      position += length;
    } else {
      return false;
    }
  }
  return position === message.length;
}

/** The bytes of a ModelInferRequest's `inputs` (typed contents included); 0 when malformed. Runs on every request: it builds nothing. */
export function inputsBytesOf(message: Uint8Array): number {
  let bytes = 0;
  const counted = forEachTopLevelField(message, (number, _start, length) => {
    if (number === INPUTS_FIELD) bytes += length;
  });
  return counted ? bytes : 0;
}

/** The names a request's answer repeats, read from its bytes (only for a request left undecoded). */
export function readEcho(message: Uint8Array): Echo {
  const echo: Echo = { model_name: '', model_version: '', id: '' };
  const text = (start: number, length: number) => Buffer.from(message.buffer, message.byteOffset + start, length).toString('utf8');
  forEachTopLevelField(message, (number, start, length) => {
    if (number === MODEL_NAME_FIELD) echo.model_name = text(start, length);
    else if (number === MODEL_VERSION_FIELD) echo.model_version = text(start, length);
    else if (number === ID_FIELD) echo.id = text(start, length);
  });
  return echo;
}

/** The worker's side: decodes the request as the main thread would, its tensors moved back. */
export function decodeModelInfer(input: { bytes: Uint8Array }): JobResult<DecodedMessage> {
  const { bytes } = input;
  const method = inferenceService().ModelInfer as unknown as { requestDeserialize: (bytes: Buffer) => ModelInferRequest };
  const message = method.requestDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const request = decodeInferRequest(message);
  return { output: { request, parameters: message.parameters }, transfer: buffersOf(request.inputs.map((tensor) => tensor.data)) };
}

export const DECODE_MODEL_INFER = defineJob(import.meta.url, 'decodeModelInfer', decodeModelInfer);
