import type { ErrorCode } from '../errors.js';
import type { Tensor } from '../tensors/tensor.js';

/** One batch for one model version, as sent to a worker. */
export interface RunTask {
  sessionKey: string;
  inputs: Tensor[];
  /** Requested outputs; undefined: all of them. */
  outputs?: string[];
}

/**
 * A worker's answer. Failures come back as data, not as thrown errors:
 * structured cloning drops an Error's `code`.
 */
export type RunReply =
  | { ok: true; outputs: Tensor[]; runNs: number; runCpuNs: number }
  | { ok: false; code: ErrorCode; message: string };
