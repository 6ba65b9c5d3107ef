/**
 * The request the core serves, as every front end hands it over.
 */
import type { Tensor } from '../tensors/tensor.js';
import type { Cancellation } from '../workers/task.js';

export interface InferRequest {
  model: string;
  /** A V2 version string ("2") or number; absent: the newest READY version. */
  version?: string | number;
  id?: string;
  inputs: Tensor[];
  /** Outputs to return; absent: all of them. */
  outputs?: string[];
  /** Shortens the server's queue timeout for this request (it cannot extend it). */
  timeoutMs?: number;
  /** Turns cancelled when the client goes away: the request, if still waiting, is then dropped, not run. */
  cancellation?: Cancellation;
}

/**
 * A request with every field present, in one order, whichever front end
 * decoded it. The code both protocols share (validation, batching, the
 * wire) then sees one object shape, which V8 optimises for; with a shape
 * per protocol, each switch between HTTP and gRPC traffic deoptimised it.
 */
export function inferRequest(
  model: string,
  inputs: Tensor[],
  version: string | number | undefined,
  id: string | undefined,
  outputs: string[] | undefined,
  timeoutMs: number | undefined,
): InferRequest {
  return { model, version, id, inputs, outputs, timeoutMs, cancellation: undefined };
}
