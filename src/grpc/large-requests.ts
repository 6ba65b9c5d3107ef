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
import { LENGTH_DELIMITED, Reader } from './infer-wire.js';
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
 * `field` with each length-delimited one's number and where its content
 * lies (offsets, not a view: this runs on every request).
 * Returns false for anything malformed (the decoder then says what).
 */
function forEachTopLevelField(message: Buffer, field: (number: number, start: number, end: number) => void): boolean {
  const reader = new Reader(message, message.length);
  try {
    for (let tag = reader.nextTag(); tag >= 0; tag = reader.nextTag()) {
      if ((tag & 7) !== LENGTH_DELIMITED) {
        reader.skip(tag & 7);
        continue;
      }
      const outer = reader.enter();
      field(tag >>> 3, reader.position, reader.end);
      reader.leave(outer);
    }
  } catch {
    return false;
  }
  return true;
}

/** The bytes of a ModelInferRequest's `inputs` (typed contents included); 0 when malformed. Runs on every request: it builds nothing. */
export function inputsBytesOf(message: Buffer): number {
  let bytes = 0;
  const counted = forEachTopLevelField(message, (number, start, end) => {
    if (number === INPUTS_FIELD) bytes += end - start;
  });
  return counted ? bytes : 0;
}

/** The names a request's answer repeats, read from its bytes (only for a request left undecoded). */
export function readEcho(message: Buffer): Echo {
  const echo: Echo = { model_name: '', model_version: '', id: '' };
  forEachTopLevelField(message, (number, start, end) => {
    if (number === MODEL_NAME_FIELD) echo.model_name = message.toString('utf8', start, end);
    else if (number === MODEL_VERSION_FIELD) echo.model_version = message.toString('utf8', start, end);
    else if (number === ID_FIELD) echo.id = message.toString('utf8', start, end);
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
