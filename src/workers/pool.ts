/**
 * The pool of inference worker threads. Inference runs only here, never on
 * the main thread.
 *
 * Each worker has at most one group of batches in flight. The pool dispatches
 * once per event-loop turn, at its end (end-of-turn.ts, after the batchers'
 * own end-of-turn work), so batches that arrive in one turn leave together,
 * and batches that arrive while every worker is busy wait here and leave
 * together when one frees up: an idle pool adds no loop turn of wait, a busy
 * one amortises each thread round trip over many batches. What crosses is
 * packed by wire.ts, through each worker's shared mailbox (mailbox.ts) when
 * it can lie flat, else as a message on its port. The pool reads a flat
 * reply as the worker's wake returns when it is already in (on a core the two
 * share, the woken worker runs first); else the worker rings a native
 * doorbell once it is.
 *
 * The pool owns its threads (worker_threads) rather than piscina: a piscina
 * task per batch cost about 40 µs of CPU here, and piscina stops replacing
 * workers once one dies while starting, which would leave batches waiting
 * forever. See docs/architecture.md. A worker that dies fails only the group
 * it held and is replaced; if workers keep dying before they are ready, the
 * batches waiting are refused rather than kept.
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';

import { atEndOfTurn } from '../end-of-turn.js';
import { type ErrorCode, WeirError, isErrorCode } from '../errors.js';
import { type RunResult, nativeAddon } from '../native/addon.js';
import { isDataType } from '../tensors/datatypes.js';
import type { Job } from './jobs.js';
import type { Cancellation, RunReply, RunTask } from './task.js';
import { Mailbox, MailboxState } from './mailbox.js';
import { type WireWriter, decodeReplies, readFlatMessage, writeTasks } from './wire.js';
import type { JobMessage, WorkerData, WorkerMessage } from './worker.js';

export interface PoolOptions {
  workers: number;
  /** Most batches sent to a worker as one group. */
  maxBatchesPerGroup?: number;
}

interface PendingBatch {
  task: RunTask;
  /** performance.now() after which the batch is refused instead of sent. */
  deadline: number;
  /** A batch whose client has gone is refused instead of sent. */
  cancellation: Cancellation | undefined;
  resolve: (result: RunResult) => void;
  reject: (error: Error) => void;
}

interface PendingJob {
  job: Job<unknown, unknown>;
  input: unknown;
  transfer: ArrayBuffer[];
  resolve: (output: unknown) => void;
  reject: (error: Error) => void;
}

/** One worker thread and what it holds. */
interface Slot {
  worker: Worker | null;
  /** The main thread's end of the worker's channel. */
  port: MessagePort | null;
  /** Shared with the worker: groups that lie flat cross here, and the worker hears of port messages here. */
  mailbox: Mailbox | null;
  /** The doorbell the worker rings once it has written replies into the mailbox; 0 when none is open. */
  doorbell: number;
  /** When the worker started, for its utilisation. */
  startedAt: number;
  ready: boolean;
  /** The group in flight, answered in one reply; null when the worker is idle. */
  group: PendingBatch[] | null;
  /** The job in flight instead of a group. */
  job: PendingJob | null;
  /** Deaths in a row before becoming ready: spaces out restarts. */
  failedStarts: number;
  lastError: Error | null;
}

const WORKER_FILE = new URL('./worker.js', import.meta.url);
const MAX_RESTART_DELAY_MS = 1000;
/** Jobs waiting at most (each holds a large body): more are refused, as a full queue is. */
const MAX_WAITING_JOBS = 16;
/** After this many failed starts in a row on every slot, waiting batches are refused. */
const FAILED_STARTS_BEFORE_REFUSING = 3;

export class WorkerPool {
  private readonly slots: Slot[];
  private readonly maxBatchesPerGroup: number;
  private readonly waiting: PendingBatch[] = [];
  private readonly waitingJobs: PendingJob[] = [];
  private dispatchScheduled = false;
  /** Whether the last worker served took a job (jobs and groups alternate). */
  private lastWasJob = false;
  private closing = false;
  private readOnWake = 0;

  constructor(options: PoolOptions) {
    this.maxBatchesPerGroup = options.maxBatchesPerGroup ?? 32;
    this.slots = Array.from({ length: options.workers }, () => ({
      worker: null,
      port: null,
      mailbox: null,
      doorbell: 0,
      startedAt: 0,
      ready: false,
      group: null,
      job: null,
      failedStarts: 0,
      lastError: null,
    }));
    for (const slot of this.slots) this.start(slot);
  }

  /**
   * Runs one batch in a worker. Inputs larger than PACKED_TENSOR_LIMIT are
   * moved (their buffers detach): do not reuse input buffers. A batch still
   * waiting for a worker at `deadline` is refused (WEIR_REQUEST_TIMEOUT), and
   * one whose `cancellation` turned cancelled (WEIR_REQUEST_CANCELLED): not run.
   */
  run(task: RunTask, deadline = Number.POSITIVE_INFINITY, cancellation?: Cancellation): Promise<RunResult> {
    if (this.closing) return Promise.reject(new WeirError('WEIR_SERVER_STOPPING', 'the worker pool is closing'));
    const malformed = malformedField(task);
    if (malformed) return Promise.reject(new WeirError('WEIR_BAD_TENSOR', malformed));
    return new Promise((resolve, reject) => {
      this.waiting.push({ task, deadline, cancellation, resolve, reject });
      this.scheduleDispatch();
    });
  }

  /**
   * Runs a job (jobs.ts) in a worker; `transfer` lists buffers of
   * `input` to move there (they detach here). When both wait, free workers
   * take jobs and groups of batches in turn, so neither starves the other.
   */
  runJob<I, O>(job: Job<I, O>, input: I, transfer: ArrayBuffer[] = []): Promise<O> {
    if (this.closing) return Promise.reject(new WeirError('WEIR_SERVER_STOPPING', 'the worker pool is closing'));
    if (this.waitingJobs.length >= MAX_WAITING_JOBS) {
      return Promise.reject(new WeirError('WEIR_QUEUE_FULL', `${MAX_WAITING_JOBS} large bodies are already waiting for a worker to decode or encode them; retry later`));
    }
    return new Promise((resolve, reject) => {
      this.waitingJobs.push({ job: job as Job<unknown, unknown>, input, transfer, resolve: resolve as (output: unknown) => void, reject });
      this.scheduleDispatch();
    });
  }

  private start(slot: Slot): void {
    // A channel of its own per worker: a MessagePort costs less per message than Worker#postMessage.
    const { port1, port2 } = new MessageChannel();
    // A new mailbox per worker: one that died may have left its state mid-exchange.
    const mailbox = new Mailbox();
    const doorbell = nativeAddon().openDoorbell(() => this.onMailboxReply(slot));
    const worker = new Worker(WORKER_FILE, { workerData: { port: port2, mailbox: mailbox.buffer, doorbell } satisfies WorkerData, transferList: [port2] });
    slot.worker = worker;
    slot.port = port1;
    slot.mailbox = mailbox;
    slot.doorbell = doorbell;
    slot.startedAt = performance.now();
    port1.on('message', (message: WorkerMessage) => this.onMessage(slot, message));
    worker.on('error', (error) => (slot.lastError = error));
    worker.on('exit', () => this.onExit(slot, worker));
  }

  private onMessage(slot: Slot, message: WorkerMessage): void {
    if (!('kind' in message)) {
      const group = slot.group ?? [];
      slot.group = null;
      decodeReplies(message).forEach((reply, i) => settle(group[i] as PendingBatch, reply));
    } else if (message.kind === 'ready') {
      slot.ready = true;
      slot.failedStarts = 0;
    } else if (message.kind === 'job-done' || message.kind === 'job-failed') {
      const job = slot.job;
      slot.job = null;
      if (message.kind === 'job-done') job?.resolve(message.output);
      else job?.reject(new WeirError(isErrorCode(message.code) ? message.code : 'WEIR_INTERNAL', message.message));
    } else {
      // The group failed as a whole.
      const group = slot.group ?? [];
      slot.group = null;
      const code: ErrorCode = isErrorCode(message.code) ? message.code : 'WEIR_INTERNAL';
      for (const pending of group) pending.reject(new WeirError(code, message.message));
    }
    this.workerFreed();
  }

  private onExit(slot: Slot, worker: Worker): void {
    if (slot.worker !== worker) return;
    const reason = slot.lastError?.message ?? 'it exited';
    if (slot.group) {
      const failure = new WeirError('WEIR_WORKER_EXITED', `the inference worker running this batch failed: ${reason}`);
      for (const pending of slot.group) pending.reject(failure);
    }
    slot.job?.reject(new WeirError('WEIR_WORKER_EXITED', `the worker running this request's ${slot.job.job.name} failed: ${reason}`));
    if (!slot.ready) slot.failedStarts += 1;
    slot.port?.close();
    closeDoorbell(slot);
    Object.assign(slot, { worker: null, port: null, mailbox: null, ready: false, group: null, job: null, lastError: null });
    if (this.closing) return;

    if (this.slots.every((s) => !s.ready && s.failedStarts >= FAILED_STARTS_BEFORE_REFUSING)) {
      const refusal = new WeirError('WEIR_WORKER_EXITED', `no inference worker could start: ${reason}`);
      for (const pending of [...this.waiting.splice(0), ...this.waitingJobs.splice(0)]) pending.reject(refusal);
    }
    // A first death restarts at once; only repeated deaths while starting back off.
    if (slot.failedStarts <= 1) {
      this.start(slot);
    } else {
      const delay = Math.min(MAX_RESTART_DELAY_MS, 25 * 2 ** slot.failedStarts);
      setTimeout(() => this.closing || this.start(slot), delay).unref();
    }
  }

  /** A worker is free (or ready): what waits for one goes at the end of this turn. Nothing waiting, no extra turn. */
  private workerFreed(): void {
    if (this.waiting.length > 0 || this.waitingJobs.length > 0) this.scheduleDispatch();
  }

  private scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    // After the batchers' own end-of-turn work: what they batch this turn goes out in one group.
    atEndOfTurn(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    this.refuseStale();
    for (const slot of this.slots) {
      if (this.waiting.length === 0 && this.waitingJobs.length === 0) return;
      if (!slot.ready || slot.group || slot.job || !slot.port) continue;
      const jobTurn = this.waitingJobs.length > 0 && (this.waiting.length === 0 || !this.lastWasJob);
      this.lastWasJob = jobTurn;
      if (jobTurn) {
        this.postJob(slot, slot.port, this.waitingJobs.shift() as PendingJob);
        continue;
      }
      // Share what waits across the workers rather than hand it all to the first free one.
      const take = Math.min(this.maxBatchesPerGroup, Math.ceil(this.waiting.length / this.slots.length));
      this.sendGroup(slot, slot.port, this.waiting.splice(0, take));
    }
  }

  /**
   * Written once; through the mailbox when the group lies flat in it, else as
   * a message (whose arrival the mailbox announces).
   */
  private sendGroup(slot: Slot, port: MessagePort, batches: PendingBatch[]): void {
    const group = writable(batches);
    if (group.batches.length === 0) return;
    const mailbox = slot.mailbox as Mailbox;
    let flat = false;
    let replied = false;
    try {
      flat = mailbox.current === MailboxState.IDLE && group.writer.finishInto(mailbox.request);
      if (flat) {
        slot.group = group.batches;
        replied = mailbox.sendRequest();
      } else {
        const { message, transferList } = group.writer.finish();
        port.postMessage(message, transferList);
      }
    } catch (error) {
      // Tasks are checked before they queue (malformedField): this is the pool's own failure, never silence.
      for (const pending of group.batches) pending.reject(new WeirError('WEIR_INTERNAL', `the group could not be sent to a worker: ${(error as Error).message}`));
      return;
    }
    if (!flat) {
      slot.group = group.batches;
      mailbox.signal(MailboxState.PORT);
      return;
    }
    // On a core it shares with this thread, the woken worker runs first: its reply is usually in as the wake returns.
    if (replied) {
      this.readOnWake += 1;
      this.onMailboxReply(slot);
    }
  }

  /** The worker wrote the group's replies into the mailbox. */
  private onMailboxReply(slot: Slot): void {
    const mailbox = slot.mailbox;
    if (mailbox?.current !== MailboxState.REPLY) return;
    const replies = decodeReplies(readFlatMessage(mailbox.reply));
    mailbox.set(MailboxState.IDLE); // the worker waits for a request, not for this
    const group = slot.group ?? [];
    slot.group = null;
    replies.forEach((reply, i) => settle(group[i] as PendingBatch, reply));
    this.workerFreed();
  }

  private postJob(slot: Slot, port: MessagePort, pending: PendingJob): void {
    const { module, name } = pending.job;
    try {
      port.postMessage({ kind: 'job', module, name, input: pending.input } satisfies JobMessage, pending.transfer);
      slot.job = pending;
      slot.mailbox?.signal(MailboxState.PORT);
    } catch (error) {
      pending.reject(new WeirError('WEIR_INTERNAL', `the ${name} job cannot be sent to a worker: ${(error as Error).message}`));
    }
  }

  /** Refuses the batches waiting past their deadline, or for a client that has gone. */
  private refuseStale(): void {
    if (this.waiting.length === 0) return;
    const now = performance.now();
    const stale = (pending: PendingBatch) => pending.deadline <= now || pending.cancellation?.cancelled === true;
    if (!this.waiting.some(stale)) return;
    const kept = this.waiting.filter((pending) => {
      if (!stale(pending)) return true;
      pending.reject(
        pending.deadline <= now
          ? new WeirError('WEIR_REQUEST_TIMEOUT', 'the request waited for a worker past its timeout; it was not run')
          : new WeirError('WEIR_REQUEST_CANCELLED', 'the client went away while the request waited for a worker; it was not run'),
      );
      return false;
    });
    this.waiting.splice(0, this.waiting.length, ...kept);
  }

  get workers(): number {
    return this.slots.length;
  }

  /** The worker threads now running (tests terminate one mid-run). */
  get threads(): readonly Worker[] {
    return this.slots.flatMap((slot) => (slot.worker ? [slot.worker] : []));
  }

  /** Batches waiting for a free worker. */
  get queuedBatches(): number {
    return this.waiting.length;
  }

  /** Groups whose reply was in as the worker's wake returned, so read without the doorbell: most, on a core shared with the worker. */
  get repliesReadOnWake(): number {
    return this.readOnWake;
  }

  /** Time each running worker has spent working, in ms. */
  get busyMs(): number[] {
    return this.slots.flatMap((slot) => (slot.worker && slot.mailbox ? [slot.mailbox.busyMs] : []));
  }

  /**
   * Fraction of time the worker threads were busy since they started (0..1),
   * as they count it: blocked on their mailbox, their event loops never idle.
   */
  get utilization(): number {
    const now = performance.now();
    const running = this.slots.filter((slot) => slot.worker && slot.mailbox);
    const busy = running.reduce((sum, slot) => sum + Math.min(1, (slot.mailbox as Mailbox).busyMs / Math.max(1, now - slot.startedAt)), 0);
    return running.length === 0 ? 0 : busy / running.length;
  }

  /** Stops the workers; batches still waiting or running are refused. */
  async close(): Promise<void> {
    this.closing = true;
    const refusal = new WeirError('WEIR_SERVER_STOPPING', 'the worker pool is closing');
    for (const pending of [...this.waiting.splice(0), ...this.waitingJobs.splice(0)]) pending.reject(refusal);
    await Promise.all(
      this.slots.map(async (slot) => {
        for (const pending of slot.group ?? []) pending.reject(refusal);
        slot.job?.reject(refusal);
        slot.group = null;
        slot.job = null;
        const exited = slot.worker?.terminate();
        slot.mailbox?.wakeWorker(); // blocked on its mailbox, it would notice only at the end of its wait slice
        await exited;
        slot.port?.close();
        closeDoorbell(slot);
      }),
    );
  }
}

/**
 * What is wrong with a batch's structure, naming the field, or null. The
 * core validates requests against the model; this guards the pool's own
 * contract, so that a malformed batch is refused alone, up front.
 */
function malformedField(task: RunTask): string | null {
  if (typeof task?.sessionKey !== 'string') return 'sessionKey must be a string';
  if (!Array.isArray(task.inputs)) return 'inputs must be an array of tensors';
  for (let i = 0; i < task.inputs.length; i++) {
    const input = task.inputs[i];
    if (typeof input?.name !== 'string') return `inputs[${i}].name must be a string`;
    if (!isDataType(input.datatype)) return `inputs[${i}].datatype must be a V2 datatype, got ${String(input.datatype)}`;
    if (!Array.isArray(input.shape) || !input.shape.every(isDimension)) return `inputs[${i}].shape must be an array of non-negative integers`;
    const { data } = input;
    if (!(isTypedArray(data) || (Array.isArray(data) && data.length > 0 && data.every(isTypedArray)))) {
      return `inputs[${i}].data must be a TypedArray, or a non-empty array of them`;
    }
  }
  if (task.outputs !== undefined && !(Array.isArray(task.outputs) && task.outputs.every((o) => typeof o === 'string'))) {
    return 'outputs must be an array of output names';
  }
  return null;
}

const isDimension = (d: unknown): boolean => Number.isInteger(d) && (d as number) >= 0;
const isTypedArray = (value: unknown): boolean => ArrayBuffer.isView(value) && !(value instanceof DataView);

/**
 * Writes a group; a batch that cannot be written (a malformed tensor handed
 * to the pool directly) is refused alone and the rest still go.
 */
function writable(batches: PendingBatch[]): { batches: PendingBatch[]; writer: WireWriter } {
  try {
    return { batches, writer: writeTasks(batches.map((pending) => pending.task)) };
  } catch {
    const good = batches.filter((pending) => {
      try {
        writeTasks([pending.task]);
        return true;
      } catch (error) {
        pending.reject(new WeirError('WEIR_BAD_TENSOR', `the batch cannot be sent to a worker: ${(error as Error).message}`));
        return false;
      }
    });
    return { batches: good, writer: writeTasks(good.map((pending) => pending.task)) };
  }
}

function closeDoorbell(slot: Slot): void {
  if (slot.doorbell !== 0) nativeAddon().closeDoorbell(slot.doorbell);
  slot.doorbell = 0;
}

function settle(pending: PendingBatch, reply: RunReply): void {
  if (reply.ok) pending.resolve(reply);
  else pending.reject(new WeirError(reply.code, reply.message));
}
