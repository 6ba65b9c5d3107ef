/**
 * The pool of inference worker threads (piscina). Inference runs only here,
 * never on the main thread.
 *
 * A piscina task costs tens of microseconds of CPU to post and answer (a
 * structured clone and a thread wake-up on each side), more than a small
 * model's whole run, so the pool pays it as rarely as it can: batches are
 * dispatched once per event-loop turn (setImmediate), so that those that
 * arrive in one turn leave together; each worker has at most one task in
 * flight; and batches that arrive while every worker is busy wait here and
 * leave together when one frees up. An idle pool adds at most one loop turn
 * of wait; a busy one amortises the cost over many batches.
 *
 * Input bytes move to the worker by transfer (or are shared when they live
 * in a SharedArrayBuffer); output bytes come back by transfer.
 */
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';

import { Piscina } from 'piscina';

import { WeirError } from '../errors.js';
import type { RunResult } from '../native/addon.js';
import type { Tensor } from '../tensors/tensor.js';
import type { RunReply, RunTask } from './task.js';

export interface PoolOptions {
  workers: number;
  /** Most batches sent to a worker as one task. */
  maxBatchesPerTask?: number;
}

interface PendingBatch {
  task: RunTask;
  transferList: ArrayBuffer[];
  resolve: (result: RunResult) => void;
  reject: (error: Error) => void;
}

export class WorkerPool {
  private readonly piscina: Piscina<RunTask[], RunReply[]>;
  private readonly workerCount: number;
  private readonly maxBatchesPerTask: number;
  private readonly waiting: PendingBatch[] = [];
  private tasksInFlight = 0;
  private dispatchScheduled = false;

  constructor(options: PoolOptions) {
    this.workerCount = options.workers;
    this.maxBatchesPerTask = options.maxBatchesPerTask ?? 32;
    this.piscina = new Piscina({
      filename: fileURLToPath(new URL('./worker.js', import.meta.url)),
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Number.POSITIVE_INFINITY,
      recordTiming: false,
    });
    // A worker that dies is replaced by piscina; its task is rejected in dispatch().
    this.piscina.on('error', () => {});
  }

  /** Runs one batch in a worker. The inputs' buffers are moved: do not reuse them. */
  run(task: RunTask): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const transferList = task.inputs.map(movableBuffer).filter((b): b is ArrayBuffer => b !== null);
      this.waiting.push({ task, transferList, resolve, reject });
      this.scheduleDispatch();
    });
  }

  private scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.tasksInFlight < this.workerCount && this.waiting.length > 0) {
      // Share what waits across the workers rather than hand it all to the first free one.
      const take = Math.min(this.maxBatchesPerTask, Math.ceil(this.waiting.length / this.workerCount));
      const group = this.waiting.splice(0, take);
      this.tasksInFlight += 1;
      this.piscina
        .run(
          group.map((pending) => pending.task),
          { transferList: group.flatMap((pending) => pending.transferList) },
        )
        .then(
          (replies) => group.forEach((pending, i) => settle(pending, replies[i] as RunReply)),
          (error: Error) => {
            const failure = new WeirError('WEIR_WORKER_EXITED', `the inference worker failed: ${error.message}`);
            for (const pending of group) pending.reject(failure);
          },
        )
        .finally(() => {
          this.tasksInFlight -= 1;
          this.scheduleDispatch();
        });
    }
  }

  get workers(): number {
    return this.workerCount;
  }

  /** The worker threads themselves (tests terminate one mid-run). */
  get threads(): readonly Worker[] {
    return this.piscina.threads;
  }

  /** Batches waiting for a free worker. */
  get queuedBatches(): number {
    return this.waiting.length;
  }

  /** Fraction of time the workers were busy since start (0..1). */
  get utilization(): number {
    return this.piscina.utilization;
  }

  async close(): Promise<void> {
    await this.piscina.close();
  }
}

function settle(pending: PendingBatch, reply: RunReply): void {
  if (reply.ok) pending.resolve(reply);
  else pending.reject(new WeirError(reply.code, reply.message));
}

/**
 * The buffer to transfer for a tensor's bytes, or null to leave it to
 * structured cloning (shared memory is shared, not copied). A view that
 * covers only part of its buffer is first copied out, so that transferring
 * does not take (or clone) the rest of someone else's buffer.
 */
function movableBuffer(tensor: Tensor): ArrayBuffer | null {
  const { data } = tensor;
  if (!(data.buffer instanceof ArrayBuffer)) return null;
  if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) {
    tensor.data = data.slice();
  }
  return tensor.data.buffer as ArrayBuffer;
}
