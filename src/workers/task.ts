import type { ErrorCode } from '../errors.js';
import type { Tensor } from '../tensors/tensor.js';

/** One batch for one model version. */
export interface RunTask {
  sessionKey: string;
  inputs: Tensor[];
  /** Requested outputs; undefined: all of them. */
  outputs?: string[];
}

/**
 * A worker's answer to one batch. Failures come back as data, not as thrown
 * errors: structured cloning drops an Error's `code`.
 */
export type RunReply =
  | { ok: true; outputs: Tensor[]; runNs: number }
  | { ok: false; code: ErrorCode; message: string };
