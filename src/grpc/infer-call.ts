/**
 * Inference over gRPC: one ModelInferRequest through the core (shared by
 * ModelInfer and ModelStreamInfer), the call's deadline as the request's
 * queue timeout, and the bidirectional stream, whose requests run
 * concurrently and are answered as each finishes.
 */
import type { InferenceCore } from '../core/core.js';
import { ERRORS, toWeirError } from '../errors.js';
import { decodeInferRequest, encodeInferResponse } from './infer-codec.js';
import { DECODE_MODEL_INFER, type DecodedMessage, type Echo, UndecodedRequest } from './large-requests.js';
import type { CallStatus } from './call.js';
import type { ModelInferRequest, ModelInferResponse, ModelStreamInferResponse } from './messages.js';
import type { Cancellation } from '../workers/task.js';
import type { ServerStream, StreamHandler } from './transport.js';

export interface InferContext {
  core: InferenceCore;
}

/** Any error as a gRPC status, through the error table. */
export function grpcError(error: unknown): CallStatus {
  const { code, message } = toWeirError(error);
  return { code: ERRORS[code].grpc, details: message };
}

/** What inference needs of the call a request came on: its deadline, and whether the client is still there. */
export interface CallContext extends Cancellation {
  remainingMs(): number | undefined;
}

/**
 * Runs one request through the core. Decode failures are counted as refused,
 * as over HTTP. A request still queued when its call is cancelled is dropped.
 * Promise steps rather than two async functions, whose frames and awaits
 * were garbage on every call.
 */
export function inferMessage(context: InferContext, message: ModelInferRequest | UndecodedRequest, call: CallContext): Promise<ModelInferResponse> {
  // A request with large typed inputs is decoded in a worker (large-requests.ts); any other at once.
  if (message instanceof UndecodedRequest) {
    return context.core.offload(DECODE_MODEL_INFER, { bytes: message.bytes }, [message.bytes.buffer as ArrayBuffer]).then(
      (decoded) => inferDecoded(context, decoded, call),
      (error: unknown) => refused(context, message, error),
    );
  }
  let decoded: DecodedMessage;
  try {
    decoded = { request: decodeInferRequest(message), parameters: message.parameters };
  } catch (error) {
    return refused(context, message, error);
  }
  return inferDecoded(context, decoded, call);
}

function refused(context: InferContext, message: ModelInferRequest | UndecodedRequest, error: unknown): Promise<never> {
  context.core.requestRefused(echoOf(message).model_name, error);
  return Promise.reject(error);
}

function inferDecoded(context: InferContext, { request, parameters }: DecodedMessage, call: CallContext): Promise<ModelInferResponse> {
  // The request's `timeout` parameter and the call's deadline both shorten the
  // queue timeout; the core also caps it with the server's own.
  const remainingMs = call.remainingMs();
  if (remainingMs !== undefined) request.timeoutMs = Math.min(request.timeoutMs ?? remainingMs, remainingMs);
  request.cancellation = call;
  return context.core.infer(request).then((response) => encodeInferResponse(response, parameters));
}

/** What an answer repeats of its request (for one left undecoded, what the scan read of it). */
function echoOf(message: ModelInferRequest | UndecodedRequest): Echo {
  if (message instanceof UndecodedRequest) return message.echo;
  return { model_name: message.model_name, model_version: message.model_version, id: message.id };
}

/**
 * ModelStreamInfer: every request starts at once and is answered when it
 * finishes, so answers may overtake each other (each carries its request's
 * id). A failed request is answered with error_message, naming its model
 * and id, and the stream goes on. The stream ends once the client has ended
 * its side and every answer is written; if the client cancels, requests
 * still queued are dropped, those running finish and their answers are dropped.
 */
export function streamInfer(context: InferContext, stream: ServerStream): StreamHandler {
  let pending = 0;
  let clientDone = false;
  const maybeEnd = () => {
    if (clientDone && pending === 0 && stream.open) stream.end();
  };
  return {
    message(request) {
      const message = request as ModelInferRequest | UndecodedRequest;
      pending += 1;
      inferMessage(context, message, stream.call)
        .then(
          (response): ModelStreamInferResponse => ({ error_message: '', infer_response: response }),
          (error: unknown): ModelStreamInferResponse => ({ error_message: toWeirError(error).message, infer_response: echoOf(message) }),
        )
        .then((answer) => {
          pending -= 1;
          if (stream.open) stream.send(answer);
          maybeEnd();
        });
    },
    end() {
      clientDone = true;
      maybeEnd();
    },
    cancelled() {},
  };
}
