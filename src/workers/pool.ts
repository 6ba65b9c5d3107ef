/**
 * The pool of inference worker threads (piscina). Inference runs only here,
 * never on the main thread. A task carries a whole batch: one task's round
 * trip costs far more than a small model's run, so it is paid once per batch.
 * Input bytes move to the worker by transfer (or are shared when they live in
 * a SharedArrayBuffer); output bytes come back by transfer.
 */
import { fileURLToPath } from 'node:url';

import { Piscina } from 'piscina';

import { WeirError } from '../errors.js';
import type { RunResult } from '../native/addon.js';
import type { Tensor } from '../tensors/tensor.js';
import type { RunReply, RunTask } from './task.js';

export interface PoolOptions {
  workers: number;
}

export class WorkerPool {
  private readonly piscina: Piscina<RunTask, RunReply>;

  constructor(options: PoolOptions) {
    this.piscina = new Piscina({
      filename: fileURLToPath(new URL('./worker.js', import.meta.url)),
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Number.POSITIVE_INFINITY,
      // The batcher above bounds what is queued; the pool's own queue must
      // never be the one that refuses.
      maxQueue: Number.POSITIVE_INFINITY as number,
    });
    // A worker that dies is replaced by piscina; its task is rejected below.
    this.piscina.on('error', () => {});
  }

  /** Runs one batch in a worker. The inputs' buffers are moved: do not reuse them. */
  async run(task: RunTask, signal?: AbortSignal): Promise<RunResult> {
    const transferList = task.inputs.map(movableBuffer).filter((b): b is ArrayBuffer => b !== null);
    let reply: RunReply;
    try {
      reply = await this.piscina.run(task, { transferList, signal: signal ?? null });
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw new WeirError('WEIR_WORKER_EXITED', `the inference worker failed: ${(error as Error).message}`);
    }
    if (!reply.ok) throw new WeirError(reply.code, reply.message);
    return reply;
  }

  get workers(): number {
    return this.piscina.threads.length;
  }

  /** The worker threads themselves (tests terminate one mid-run). */
  get threads(): readonly import('node:worker_threads').Worker[] {
    return this.piscina.threads;
  }

  /** Fraction of time the workers were busy since start (0..1). */
  get utilization(): number {
    return this.piscina.utilization;
  }

  async close(): Promise<void> {
    await this.piscina.close();
  }
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
