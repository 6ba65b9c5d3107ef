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
 * What crosses between threads is packed by wire.ts: small tensors are copied
 * into one buffer per group, large ones moved (or shared when they live in a
 * SharedArrayBuffer).
 */
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';

import { Piscina } from 'piscina';

import { WeirError } from '../errors.js';
import type { RunResult } from '../native/addon.js';
import type { RunReply, RunTask } from './task.js';
import { type WireMessage, decodeReplies, encodeTasks } from './wire.js';

export interface PoolOptions {
  workers: number;
  /** Most batches sent to a worker as one task. */
  maxBatchesPerTask?: number;
}

interface PendingBatch {
  task: RunTask;
  resolve: (result: RunResult) => void;
  reject: (error: Error) => void;
}

export class WorkerPool {
  private readonly piscina: Piscina<WireMessage, WireMessage>;
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

  /**
   * Runs one batch in a worker. Inputs larger than PACKED_TENSOR_LIMIT are
   * moved (their buffers detach): do not reuse input buffers.
   */
  run(task: RunTask): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ task, resolve, reject });
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
      const { message, transferList } = encodeTasks(group.map((pending) => pending.task));
      this.piscina
        .run(message, { transferList })
        .then(
          (reply) => decodeReplies(reply).forEach((result, i) => settle(group[i] as PendingBatch, result)),
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
