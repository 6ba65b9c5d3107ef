/**
 * The pool of inference worker threads. Inference runs only here, never on
 * the main thread.
 *
 * piscina owns the threads: it starts them, replaces one that dies and stops
 * them. The data path is the pool's own: each thread runs one long-lived
 * piscina task that serves a dedicated MessagePort (see worker.ts), because a
 * piscina task per batch costs about 40 µs of CPU to post and answer here,
 * three times a bare MessagePort round trip and more than a small model's run.
 *
 * The pool pays even that round trip as rarely as it can: it dispatches once
 * per event-loop turn (setImmediate), so batches that arrive in one turn leave
 * together; each worker has at most one group of batches in flight; and
 * batches that arrive while every worker is busy wait here and leave together
 * when one frees up. An idle pool adds at most one loop turn of wait; a busy
 * one amortises the round trip over many batches. What crosses is packed by
 * wire.ts: small tensors are copied into one buffer per group, large ones
 * moved (or shared when they live in a SharedArrayBuffer).
 */
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';

import { Piscina } from 'piscina';

import { WeirError } from '../errors.js';
import type { RunResult } from '../native/addon.js';
import type { RunReply, RunTask } from './task.js';
import { type WireMessage, decodeReplies, encodeTasks } from './wire.js';

export interface PoolOptions {
  workers: number;
  /** Most batches sent to a worker as one group. */
  maxBatchesPerGroup?: number;
}

interface PendingBatch {
  task: RunTask;
  resolve: (result: RunResult) => void;
  reject: (error: Error) => void;
}

/** The main thread's end of one worker's serve loop. */
interface Channel {
  port: MessagePort;
  /** The group in flight, answered in one reply; null when the worker is idle. */
  group: PendingBatch[] | null;
}

export class WorkerPool {
  private readonly piscina: Piscina<{ port: MessagePort }, void>;
  private readonly workerCount: number;
  private readonly maxBatchesPerGroup: number;
  private readonly channels = new Set<Channel>();
  private readonly waiting: PendingBatch[] = [];
  private dispatchScheduled = false;
  private closing = false;

  constructor(options: PoolOptions) {
    this.workerCount = options.workers;
    this.maxBatchesPerGroup = options.maxBatchesPerGroup ?? 32;
    this.piscina = new Piscina({
      filename: fileURLToPath(new URL('./worker.js', import.meta.url)),
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Number.POSITIVE_INFINITY,
      recordTiming: false,
    });
    // A thread that dies is replaced by piscina; its channel is reopened below.
    this.piscina.on('error', () => {});
    for (let i = 0; i < options.workers; i++) this.openChannel();
  }

  /**
   * Runs one batch in a worker. Inputs larger than PACKED_TENSOR_LIMIT are
   * moved (their buffers detach): do not reuse input buffers.
   */
  run(task: RunTask): Promise<RunResult> {
    if (this.closing) return Promise.reject(new WeirError('WEIR_SERVER_STOPPING', 'the worker pool is closing'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ task, resolve, reject });
      this.scheduleDispatch();
    });
  }

  private openChannel(): void {
    const { port1, port2 } = new MessageChannel();
    const channel: Channel = { port: port1, group: null };
    this.channels.add(channel);
    port1.on('message', (reply: WireMessage) => this.onReply(channel, reply));
    // The serve task ends when its port closes, or rejects when its thread dies.
    this.piscina.run({ port: port2 }, { transferList: [port2] }).then(
      () => this.onChannelClosed(channel, null),
      (error: Error) => this.onChannelClosed(channel, error),
    );
  }

  private onReply(channel: Channel, reply: WireMessage): void {
    const group = channel.group ?? [];
    channel.group = null;
    decodeReplies(reply).forEach((result, i) => settle(group[i] as PendingBatch, result));
    this.scheduleDispatch();
  }

  private onChannelClosed(channel: Channel, error: Error | null): void {
    this.channels.delete(channel);
    channel.port.close();
    if (channel.group) {
      const reason = error?.message ?? 'its channel closed';
      const failure = new WeirError('WEIR_WORKER_EXITED', `the inference worker failed: ${reason}`);
      for (const pending of channel.group) pending.reject(failure);
    }
    if (!this.closing) {
      this.openChannel();
      this.scheduleDispatch();
    }
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
    for (const channel of this.channels) {
      if (this.waiting.length === 0) return;
      if (channel.group) continue;
      // Share what waits across the workers rather than hand it all to the first free one.
      const take = Math.min(this.maxBatchesPerGroup, Math.ceil(this.waiting.length / this.workerCount));
      const group = this.waiting.splice(0, take);
      const { message, transferList } = encodeTasks(group.map((pending) => pending.task));
      channel.group = group;
      channel.port.postMessage(message, transferList);
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

  /** Fraction of time the worker threads were busy since start (0..1). */
  get utilization(): number {
    const threads = this.piscina.threads;
    const busy = threads.reduce((sum, thread) => sum + thread.performance.eventLoopUtilization().utilization, 0);
    return threads.length === 0 ? 0 : busy / threads.length;
  }

  /** Stops the workers; batches still waiting are refused. */
  async close(): Promise<void> {
    this.closing = true;
    const refusal = new WeirError('WEIR_SERVER_STOPPING', 'the worker pool is closing');
    for (const pending of this.waiting.splice(0)) pending.reject(refusal);
    for (const channel of this.channels) channel.port.close();
    await this.piscina.close();
  }
}

function settle(pending: PendingBatch, reply: RunReply): void {
  if (reply.ok) pending.resolve(reply);
  else pending.reject(new WeirError(reply.code, reply.message));
}
