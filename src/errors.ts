/**
 * Every error Weir reports, in one table: its stable code, the HTTP status
 * and gRPC status a V2 client expects, and what it means. Front ends map an
 * error through this table only; README's error list is checked against it.
 * Errors that cross threads are cloned, so code branches on `err.code`.
 */

/** gRPC status codes (grpc/status.h), by name. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

interface ErrorSpec {
  http: number;
  grpc: number;
  meaning: string;
}

const bad = (meaning: string): ErrorSpec => ({ http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, meaning });
const internal = (meaning: string): ErrorSpec => ({ http: 500, grpc: GrpcStatus.INTERNAL, meaning });
const unavailable = (meaning: string): ErrorSpec => ({ http: 503, grpc: GrpcStatus.UNAVAILABLE, meaning });

export const ERRORS = {
  // The request names something that does not exist.
  WEIR_MODEL_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND, meaning: 'no model of that name is in the repository' },
  WEIR_VERSION_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND, meaning: 'the model has no such version' },
  // The request does not follow the protocol.
  WEIR_INVALID_REQUEST: bad('the request body does not follow the V2 protocol (malformed JSON, a missing field, binary sizes that do not add up)'),
  WEIR_BODY_TOO_LARGE: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED, meaning: 'the request body exceeds the configured limit' },
  WEIR_UNSUPPORTED_ENCODING: { http: 415, grpc: GrpcStatus.UNIMPLEMENTED, meaning: "the request body's Content-Encoding is not gzip, deflate or identity" },
  WEIR_BODY_TIMEOUT: { http: 408, grpc: GrpcStatus.DEADLINE_EXCEEDED, meaning: 'the request body arrived too slowly' },
  WEIR_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND, meaning: 'no such endpoint' },
  // The request is malformed for the model it addresses.
  WEIR_INPUT_MISSING: bad('a required model input is absent from the request'),
  WEIR_INPUT_UNKNOWN: bad('the request has an input the model does not have'),
  WEIR_INPUT_DUPLICATE: bad('the request names the same input twice'),
  WEIR_DATATYPE_MISMATCH: bad("an input's datatype is not the one the model expects"),
  WEIR_SHAPE_MISMATCH: bad("an input's shape does not fit the model's shape"),
  WEIR_DATA_SIZE_MISMATCH: bad("an input's data does not hold as many elements as its shape says"),
  WEIR_BATCH_TOO_LARGE: bad("the request's batch dimension exceeds the model's max_batch_size"),
  WEIR_OUTPUT_UNKNOWN: bad('a requested output is not an output of the model'),
  WEIR_BAD_TENSOR: bad('a tensor handed to the native core is malformed'),
  WEIR_BAD_ARGUMENT: bad('an argument to the core API has the wrong type or value'),
  // The model or server cannot serve right now.
  WEIR_MODEL_UNAVAILABLE: unavailable('the model version exists but is not ready (loading, failed or unloading)'),
  WEIR_SESSION_NOT_LOADED: unavailable('the version was unloaded while the request was in flight'),
  WEIR_WORKER_EXITED: unavailable('the worker thread running the request exited; the pool replaces it'),
  WEIR_SERVER_STOPPING: unavailable('the server is shutting down and accepts no new work'),
  WEIR_QUEUE_FULL: unavailable("the model version's queue is full; retry later (Retry-After)"),
  WEIR_REQUEST_TIMEOUT: { http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED, meaning: 'the request waited in the queue past its timeout and was not run' },
  // No client hears this one (it left): it names the outcome in metrics and logs.
  WEIR_REQUEST_CANCELLED: { http: 499, grpc: GrpcStatus.CANCELLED, meaning: 'the client went away while the request waited in the queue; it was not run' },
  // Loading a model version failed; the version is UNAVAILABLE with this reason.
  WEIR_CONFIG_INVALID: internal("a model's config file is malformed or contradicts the model"),
  WEIR_MODEL_FILE_MISSING: internal('a version folder has no model.onnx'),
  WEIR_UNSUPPORTED_TYPE: internal('a model input or output is not a tensor of a V2 datatype'),
  WEIR_EP_UNAVAILABLE: internal('the configured execution provider (e.g. CUDA) cannot be used'),
  WEIR_SESSION_CONFLICT: internal('a session key is already loaded from another file'),
  WEIR_REPOSITORY_INVALID: internal('the model repository folder is missing or unreadable'),
  // ONNX Runtime itself: its status codes, with its message.
  ORT_FAIL: internal('ONNX Runtime failed'),
  ORT_INVALID_ARGUMENT: bad('ONNX Runtime rejected an input value'),
  ORT_NO_SUCHFILE: internal('ONNX Runtime could not find a file'),
  ORT_NO_MODEL: internal('ONNX Runtime found no model'),
  ORT_ENGINE_ERROR: internal('ONNX Runtime engine error'),
  ORT_RUNTIME_EXCEPTION: internal('an operator failed while running the model'),
  ORT_INVALID_PROTOBUF: internal('the model file is not a valid ONNX protobuf'),
  ORT_MODEL_LOADED: internal('ONNX Runtime model already loaded'),
  ORT_NOT_IMPLEMENTED: internal('the model uses an operator or type ONNX Runtime does not implement'),
  ORT_INVALID_GRAPH: internal('the model graph is invalid'),
  ORT_EP_FAIL: internal('an ONNX Runtime execution provider failed'),
  // The runtime library and everything else.
  WEIR_RUNTIME_LOAD_FAILED: internal('the ONNX Runtime library could not be opened'),
  WEIR_RUNTIME_CONFLICT: internal('another ONNX Runtime library is already loaded in the process'),
  WEIR_RUNTIME_NOT_INITIALIZED: internal('the native core was used before ONNX Runtime was loaded'),
  WEIR_OUT_OF_MEMORY: { http: 500, grpc: GrpcStatus.RESOURCE_EXHAUSTED, meaning: 'memory ran out' },
  WEIR_INTERNAL: internal('an unexpected failure inside Weir'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class WeirError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'WeirError';
    this.code = code;
  }

  get httpStatus(): number {
    return ERRORS[this.code].http;
  }

  get grpcStatus(): number {
    return ERRORS[this.code].grpc;
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/**
 * Any thrown value as a WeirError: coded errors keep their code (native ones
 * included), anything else becomes WEIR_INTERNAL.
 */
export function toWeirError(error: unknown): WeirError {
  if (error instanceof WeirError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return new WeirError(isErrorCode(code) ? code : 'WEIR_INTERNAL', message);
}
