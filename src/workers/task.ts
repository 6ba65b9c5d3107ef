import type { ErrorCode } from '../errors.js';
import type { TypedArray } from '../tensors/datatypes.js';
import type { Tensor } from '../tensors/tensor.js';

/**
 * A batch input. Its data may come in parts, each request's rows in order:
 * the parts are joined on their way to the worker (small ones) or in it
 * (shared memory), never on the main thread.
 */
export interface BatchInput extends Omit<Tensor, 'data'> {
  data: TypedArray | readonly TypedArray[];
}

/** One batch for one model version. */
export interface RunTask {
  sessionKey: string;
  inputs: BatchInput[];
  /** Requested outputs; undefined: all of them. */
  outputs?: string[];
}

/**
 * Whether the client of a request still wants its answer: front ends pass
 * something that turns `cancelled` once the client has gone (an HTTP
 * exchange, a gRPC call), and work still waiting is then dropped, not run.
 */
export interface Cancellation {
  readonly cancelled: boolean;
}

/**
 * A worker's answer to one batch. Failures come back as data, not as thrown
 * errors: structured cloning drops an Error's `code`.
 */
export type RunReply =
  | { ok: true; outputs: Tensor[]; runNs: number }
  | { ok: false; code: ErrorCode; message: string };
