/**
 * The one owner of thread counts. Worker threads × ONNX Runtime intra-op
 * threads are sized together to the cores, so that a busy server neither
 * oversubscribes the CPU nor leaves cores idle.
 *
 * Sessions are shared by all workers, and concurrent runs of one session
 * share its intra-op pool; so the default is one worker per core with one
 * intra-op thread each (best throughput for many small batches). Fewer
 * workers get more intra-op threads each (lower latency for large models).
 */
import { availableParallelism } from 'node:os';

export interface ThreadPlan {
  cores: number;
  workers: number;
  intraOpThreads: number;
  interOpThreads: number;
}

export interface ThreadRequest {
  cores?: number;
  workers?: number;
  intraOpThreads?: number;
}

export function planThreads(request: ThreadRequest = {}): ThreadPlan {
  const cores = Math.max(1, request.cores ?? availableParallelism());
  const workers = Math.max(1, request.workers ?? cores);
  const intraOpThreads = Math.max(1, request.intraOpThreads ?? Math.floor(cores / workers));
  return { cores, workers, intraOpThreads, interOpThreads: 1 };
}
