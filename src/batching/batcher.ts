/**
 * Dynamic batching for one model version, with Triton's knobs and rule: a
 * batch is formed when the requests waiting reach the preferred size (the
 * largest preferred size, else max_batch_size), or when the oldest has waited
 * max_queue_delay; never beyond max_batch_size rows, and never mixing
 * requests whose non-batch dimensions (or requested outputs) differ. Like a
 * Triton model instance, the version runs at most `concurrency` batches at a
 * time: while they run, requests accumulate into larger batches.
 *
 * Node's timers have millisecond resolution, so a queue delay under 1 ms
 * batches what arrives within the same event-loop turn (end-of-turn.ts)
 * rather than sleeping or spinning; under load, requests still accumulate
 * while the version's batches run.
 *
 * Bounded: a full queue refuses at once (WEIR_QUEUE_FULL), and a request that
 * waited past its deadline is answered WEIR_REQUEST_TIMEOUT, never computed.
 * A request whose client went away is dropped when its turn comes (or when
 * the queue is full), WEIR_REQUEST_CANCELLED, never computed either.
 * A merged batch that fails inside the model is re-run request by request, so
 * that only the culprit gets the error.
 */
import { atEndOfTurn } from '../end-of-turn.js';
import { WeirError, toWeirError } from '../errors.js';
import type { RunResult } from '../native/addon.js';
import type { Tensor } from '../tensors/tensor.js';
import type { BatchInput, Cancellation, RunTask } from '../workers/task.js';
import { splitRows } from './batch-tensors.js';

export interface BatchingPolicy {
  /** Rows per batch; 0: the model has no batch dimension and requests never merge. */
  maxBatchSize: number;
  /** false: every request runs as a batch of its own (still queued and bounded). */
  merge: boolean;
  preferredBatchSizes: readonly number[];
  maxQueueDelayMicroseconds: number;
  /**
   * Whether some input has a dynamic non-batch dimension, so that valid
   * requests may differ in shape beyond their rows (and must not merge).
   */
  rowShapesVary: boolean;
  /** Requests waiting, across all shapes. */
  maxQueueSize: number;
  /**
   * Batches of this version running at once when merging (typically the
   * worker count): while they run, requests accumulate into larger batches.
   * Requests that never merge are not held back: the worker pool groups them.
   */
  concurrency: number;
}

export interface BatchRequest {
  inputs: Tensor[];
  /** Requested outputs; undefined: all. */
  outputs?: string[];
  /** performance.now() after which the request is refused instead of run. */
  deadline: number;
  /** performance.now() when the request arrived, if the caller has it already; else when it is queued. */
  arrivedAt?: number;
  cancellation?: Cancellation;
}

/** Runs a batch; one still waiting for a worker at `deadline`, or cancelled by then, is refused, not run. */
export type RunBatch = (task: RunTask, deadline?: number, cancellation?: Cancellation) => Promise<RunResult>;

/** What one batch that ran was made of, for metrics. */
export interface BatchStats {
  rows: number;
  requests: number;
  /** ONNX Runtime's Run time. */
  computeNs: number;
  /** How long each request waited in the queue before its batch started. */
  queueMs: number[];
}

/**
 * Where a queued request's outcome goes: exactly one method is called, once,
 * possibly before `enqueue` returns. Neither may throw.
 */
export interface BatchReply {
  resolve(result: RunResult): void;
  reject(error: Error): void;
}

interface Queued extends BatchRequest {
  rows: number;
  enqueuedAt: number;
  reply: BatchReply;
}

/** Errors that mean the batch never ran as a whole: re-running alone would not help. */
const NOT_THE_REQUESTS_FAULT = new Set(['WEIR_WORKER_EXITED', 'WEIR_SERVER_STOPPING', 'WEIR_SESSION_NOT_LOADED']);

export class Batcher {
  /** Waiting requests by compatibility key, each list oldest first. */
  private readonly queues = new Map<string, Queued[]>();
  private waiting = 0;
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  private scheduledSoon = false;
  private timerAt = Number.POSITIVE_INFINITY;
  /** The earliest deadline of any waiting request (a lower bound). */
  private nextDeadline = Number.POSITIVE_INFINITY;
  private stopped: WeirError | null = null;
  private readonly target: number;
  private readonly concurrency: number;

  constructor(
    private readonly sessionKey: string,
    private readonly policy: BatchingPolicy,
    private readonly runBatch: RunBatch,
    private readonly onBatch: (stats: BatchStats) => void = () => {},
  ) {
    const preferred = policy.preferredBatchSizes.filter((size) => size <= policy.maxBatchSize);
    this.target = preferred.length > 0 ? Math.max(...preferred) : policy.maxBatchSize;
    this.concurrency = policy.merge ? policy.concurrency : Number.POSITIVE_INFINITY;
  }

  /** Queues a validated request; resolves with its own slice of the batch's outputs. */
  submit(request: BatchRequest): Promise<RunResult> {
    return new Promise((resolve, reject) => this.enqueue(request, { resolve, reject }));
  }

  /**
   * Queues a validated request; `reply` gets its own slice of the batch's
   * outputs, or why it has none. The front ends' path: one object carries a
   * request through, where a promise and its resolving functions were
   * garbage on every request.
   */
  enqueue(request: BatchRequest, reply: BatchReply): void {
    if (this.stopped) {
      reply.reject(this.stopped);
      return;
    }
    if (this.queuedCount() >= this.policy.maxQueueSize) this.dropCancelled();
    if (this.queuedCount() >= this.policy.maxQueueSize) {
      reply.reject(new WeirError('WEIR_QUEUE_FULL', `the queue of '${this.sessionKey.split('#')[0]}' is full (${this.policy.maxQueueSize} requests waiting); retry later`));
      return;
    }
    if (!this.policy.merge) {
      this.runAlone(request).then(
        (result) => reply.resolve(result),
        (error: Error) => reply.reject(error),
      );
      return;
    }
    const rows = this.policy.maxBatchSize > 0 ? ((request.inputs[0]?.shape[0] as number | undefined) ?? 0) : 0;
    const { inputs, outputs, deadline, cancellation } = request;
    const queued: Queued = { inputs, outputs, deadline, cancellation, rows, enqueuedAt: request.arrivedAt ?? performance.now(), reply };
    const key = this.compatibilityKey(request);
    const queue = this.queues.get(key);
    if (queue) queue.push(queued);
    else this.queues.set(key, [queued]);
    this.waiting += 1;
    this.nextDeadline = Math.min(this.nextDeadline, request.deadline);
    this.scheduleSoon();
  }

  /**
   * A request that never merges goes straight to the pool, in this turn: a
   * detour through the queue would only delay it, and split the batches the
   * pool would otherwise send to a worker together.
   */
  private async runAlone(request: BatchRequest): Promise<RunResult> {
    this.running += 1;
    try {
      const task = { sessionKey: this.sessionKey, inputs: request.inputs, outputs: request.outputs };
      const result = await this.runBatch(task, request.deadline, request.cancellation);
      const rows = this.policy.maxBatchSize > 0 ? ((request.inputs[0]?.shape[0] as number | undefined) ?? 0) : 0;
      this.onBatch({ rows, requests: 1, computeNs: result.runNs, queueMs: [0] });
      return result;
    } finally {
      this.running -= 1;
    }
  }

  /** Batches beyond the version's concurrency wait in the worker pool: they count as queued. */
  private queuedCount(): number {
    return this.waiting + Math.max(0, this.running - this.policy.concurrency);
  }

  /** Schedules at the end of this event-loop turn, so that what arrives in one turn can merge. */
  private scheduleSoon(): void {
    if (this.scheduledSoon) return;
    this.scheduledSoon = true;
    atEndOfTurn(() => {
      this.scheduledSoon = false;
      if (!this.stopped) this.schedule();
    });
  }

  /** Requests waiting to be batched. */
  get queuedRequests(): number {
    return this.waiting;
  }

  /** Batches running now. */
  get runningBatches(): number {
    return this.running;
  }

  /** Refuses everything waiting and anything submitted from now on. */
  stop(error: WeirError): void {
    this.stopped = error;
    this.clearTimer();
    for (const queue of this.queues.values()) for (const request of queue) request.reply.reject(error);
    this.queues.clear();
    this.waiting = 0;
  }

  /** Requests may share a batch only if these match; built only from what can differ. */
  private compatibilityKey({ inputs, outputs }: BatchRequest): string {
    let key = outputs ? outputs.join('\0') : '*';
    if (!this.policy.rowShapesVary) return key;
    for (const input of inputs) key += `\0${input.name}\0${input.shape.slice(1).join(',')}`;
    return key;
  }

  /** Starts what can start now; arms the timer for what must wait. */
  private schedule(): void {
    const now = performance.now();
    this.refuseExpired(now);
    while (this.running < this.concurrency) {
      const queue = this.readyQueue(now);
      if (!queue) break;
      const batch = this.takeBatch(queue);
      if (batch.length > 0) this.start(batch);
    }
    this.armTimer(now);
  }

  /** The queue whose head should run now, oldest first, or undefined. */
  private readyQueue(now: number): Queued[] | undefined {
    let ready: Queued[] | undefined;
    for (const queue of this.queues.values()) {
      const head = queue[0] as Queued;
      if (ready && (ready[0] as Queued).enqueuedAt <= head.enqueuedAt) continue;
      if (this.isReady(queue, now)) ready = queue;
    }
    return ready;
  }

  private isReady(queue: Queued[], now: number): boolean {
    // Under a millisecond, a delay cannot be slept: waiting for the turn to end was the delay.
    if (!this.policy.merge || this.policy.maxQueueDelayMicroseconds < 1000) return true;
    const waitedUs = (now - (queue[0] as Queued).enqueuedAt) * 1000;
    if (waitedUs >= this.policy.maxQueueDelayMicroseconds) return true;
    let rows = 0;
    for (const request of queue) {
      rows += request.rows;
      if (rows >= this.target) return true;
    }
    return false;
  }

  /**
   * Takes requests from the head while they fit in max_batch_size rows,
   * dropping those whose client has gone; empty when all of them had.
   */
  private takeBatch(queue: Queued[]): Queued[] {
    const batch: Queued[] = [];
    let rows = 0;
    let taken = 0;
    for (; taken < queue.length; taken++) {
      const next = queue[taken] as Queued;
      if (next.cancellation?.cancelled) {
        next.reply.reject(cancelledError());
        continue;
      }
      if (batch.length > 0 && !(this.policy.merge && rows < this.target && rows + next.rows <= this.policy.maxBatchSize)) break;
      batch.push(next);
      rows += next.rows;
    }
    queue.splice(0, taken);
    if (queue.length === 0) {
      for (const [key, q] of this.queues) if (q === queue) this.queues.delete(key);
    }
    this.waiting -= taken;
    return batch;
  }

  /** Drops every waiting request whose client has gone (the queue is full: they may be what fills it). */
  private dropCancelled(): void {
    this.refuseWhere((request) => (request.cancellation?.cancelled ? cancelledError() : null));
  }

  private start(batch: Queued[]): void {
    this.running += 1;
    this.execute(batch).finally(() => {
      this.running -= 1;
      if (!this.stopped) this.schedule();
    });
  }

  private async execute(batch: Queued[]): Promise<void> {
    const started = performance.now();
    const ran = (result: RunResult, requests: Queued[]) => {
      const rows = requests.reduce((sum, r) => sum + r.rows, 0);
      const queueMs = requests.map((r) => started - r.enqueuedAt);
      this.onBatch({ rows, requests: requests.length, computeNs: result.runNs, queueMs });
      return result;
    };
    const first = batch[0] as Queued;
    if (batch.length === 1) {
      await this.runBatch({ sessionKey: this.sessionKey, inputs: first.inputs, outputs: first.outputs })
        .then((result) => ran(result, batch))
        .then(
          (result) => first.reply.resolve(result),
          (error: Error) => first.reply.reject(error),
        );
      return;
    }
    const inputs = first.inputs.map((input, i) => batchInput(input, batch, i));
    let result: RunResult;
    try {
      result = await this.runBatch({ sessionKey: this.sessionKey, inputs, outputs: first.outputs });
    } catch (error) {
      const { code } = toWeirError(error);
      if (NOT_THE_REQUESTS_FAULT.has(code)) {
        for (const request of batch) request.reply.reject(error as Error);
        return;
      }
      // Some request broke the batch: run each alone so only the culprit fails.
      await Promise.all(
        batch.map((r) =>
          this.runBatch({ sessionKey: this.sessionKey, inputs: r.inputs, outputs: r.outputs })
            .then((result) => ran(result, [r]))
            .then(
              (result) => r.reply.resolve(result),
              (error: Error) => r.reply.reject(error),
            ),
        ),
      );
      return;
    }
    ran(result, batch);
    const rows = batch.map((request) => request.rows);
    const slices = result.outputs.map((output) => splitRows(output, rows));
    batch.forEach((request, i) => request.reply.resolve({ runNs: result.runNs, outputs: slices.map((s) => s[i] as Tensor) }));
  }

  private refuseExpired(now: number): void {
    if (now < this.nextDeadline) return;
    this.nextDeadline = Number.POSITIVE_INFINITY;
    this.refuseWhere((request) => {
      if (request.deadline > now) {
        this.nextDeadline = Math.min(this.nextDeadline, request.deadline);
        return null;
      }
      const waitedMs = (now - request.enqueuedAt).toFixed(1);
      return new WeirError('WEIR_REQUEST_TIMEOUT', `the request waited ${waitedMs} ms in the queue, past its timeout; it was not run`);
    });
  }

  /** Takes out of the queues every request `refusal` has an error for, and answers it with that error. */
  private refuseWhere(refusal: (request: Queued) => WeirError | null): void {
    for (const [key, queue] of this.queues) {
      const kept = queue.filter((request) => {
        const error = refusal(request);
        if (error) request.reply.reject(error);
        return error === null;
      });
      this.waiting -= queue.length - kept.length;
      if (kept.length === 0) this.queues.delete(key);
      else if (kept.length !== queue.length) this.queues.set(key, kept);
    }
  }

  /**
   * Wakes up at the next queue-delay expiry or request deadline. A timer
   * already set to fire earlier is kept: it re-checks and re-arms.
   */
  private armTimer(now: number): void {
    let next = this.nextDeadline;
    if (this.running < this.concurrency && this.policy.maxQueueDelayMicroseconds >= 1000) {
      for (const queue of this.queues.values()) {
        next = Math.min(next, (queue[0] as Queued).enqueuedAt + this.policy.maxQueueDelayMicroseconds / 1000);
      }
    }
    if (next === Number.POSITIVE_INFINITY || next >= this.timerAt) return;
    this.clearTimer();
    this.timerAt = next;
    const wake = () => {
      this.timer = null;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.schedule();
    };
    this.timer = setTimeout(wake, Math.max(1, next - now));
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
  }
}

function cancelledError(): WeirError {
  return new WeirError('WEIR_REQUEST_CANCELLED', 'the client went away while the request waited in the queue; it was not run');
}

/**
 * The batch's input `input` (index `i` of the first request), as every
 * request's rows in order: the wire format joins them, not this thread.
 */
function batchInput(input: Tensor, batch: readonly Queued[], i: number): BatchInput {
  let rows = 0;
  const parts = batch.map((request) => {
    // Requests list their inputs in any order; most in the same one.
    const own = request.inputs[i]?.name === input.name ? (request.inputs[i] as Tensor) : (request.inputs.find((t) => t.name === input.name) as Tensor);
    rows += own.shape[0] as number;
    return own.data;
  });
  return { name: input.name, datatype: input.datatype, shape: [rows, ...input.shape.slice(1)], data: parts };
}
