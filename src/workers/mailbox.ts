/**
 * A worker's mailbox: one SharedArrayBuffer between the pool and one
 * inference worker, through which a group of batches and its replies cross
 * in the flat wire layout (wire.ts), so that nothing is cloned. On a core the
 * main thread shares, a MessagePort round trip with a group as a message cost
 * 20-29 µs of CPU (cloning it, waking the worker's event loop, dispatching it
 * as an event); through the mailbox 8 (docs/architecture.md).
 *
 * The pool has at most one thing outstanding per worker, so one state word
 * says whose turn it is:
 *
 * - IDLE: nothing is outstanding.
 * - REQUEST: the pool wrote a group into `request`.
 * - PORT: the pool posted a message on the worker's port (a job, or a group
 *   that cannot lie flat); the worker takes it with receiveMessageOnPort.
 * - REPLY: the worker wrote the group's replies into `reply`.
 *
 * The worker blocks while the state is IDLE or REPLY, and the pool wakes it
 * with REQUEST or PORT, through the addon's futex (waitOnWord / wakeWord):
 * Atomics.notify signals its waiter while holding a process-wide V8 mutex,
 * so on a shared core the woken worker slept again on that mutex, two
 * context switches more per batch. A wait in native code is not
 * interrupted by terminate(), so the worker waits in slices and the pool
 * wakes it when it terminates it. The worker tells the pool of a REPLY by
 * ringing a doorbell of the addon's (a thread-safe function:
 * native/src/doorbell.h), which costs both threads less than the one-number
 * port message it replaced, with no clone and no event to dispatch; Node
 * 20's Atomics.waitAsync, as cheap, was seen to lose a wake-up under load,
 * leaving a reply unread. The worker also adds up the time it spends
 * working, since its event loop, blocked on the mailbox, no longer tells
 * busy from idle.
 *
 * The pool looks for a group's reply as soon as its wake returns: on a core
 * it shares with the worker, the woken worker runs first, so the reply is
 * usually in by then, and the pool reads it in the same turn, with no
 * doorbell and no turn of the event loop to wait for one. A second word
 * settles who reads it, whoever changes it first: the worker leaves the
 * reply to the pool (LEFT_FOR_POOL) if the pool still looks (POOL_LOOKS),
 * and otherwise rings as before, the pool having stopped looking (NONE).
 */
import { nativeAddon } from '../native/addon.js';

export const MailboxState = { IDLE: 0, REQUEST: 1, PORT: 2, REPLY: 3 } as const;

/** Bytes for a group's request, and for its replies: a group that needs more crosses as a message. */
export const MAILBOX_REQUEST_BYTES = 256 * 1024;
export const MAILBOX_REPLY_BYTES = 256 * 1024;

/** The longest the worker blocks at once before re-checking: a terminate() not followed by a wake ends it within this. */
const WAIT_SLICE_MS = 100;

/** Who reads a reply: the pool as its wake returns, or the doorbell. */
const Look = { NONE: 0, POOL_LOOKS: 1, LEFT_FOR_POOL: 2 } as const;

/** The state word and the look word, then the worker's busy time in µs (a BigInt64), then the two areas. */
const STATE_INDEX = 0;
const LOOK_INDEX = 1;
const BUSY_OFFSET = 8;
const AREAS_OFFSET = 16;

export class Mailbox {
  private readonly state: Int32Array;
  private readonly busy: BigInt64Array;
  readonly request: Uint8Array;
  readonly reply: Uint8Array;

  constructor(readonly buffer = new SharedArrayBuffer(AREAS_OFFSET + MAILBOX_REQUEST_BYTES + MAILBOX_REPLY_BYTES)) {
    this.state = new Int32Array(buffer, 0, 2);
    this.busy = new BigInt64Array(buffer, BUSY_OFFSET, 1);
    this.request = new Uint8Array(buffer, AREAS_OFFSET, MAILBOX_REQUEST_BYTES);
    this.reply = new Uint8Array(buffer, AREAS_OFFSET + MAILBOX_REQUEST_BYTES, MAILBOX_REPLY_BYTES);
  }

  get current(): number {
    return Atomics.load(this.state, STATE_INDEX);
  }

  /** Sets the state without waking anyone: for states the other side does not wait for. */
  set(state: number): void {
    Atomics.store(this.state, STATE_INDEX, state);
  }

  /** The pool: sets REQUEST or PORT and wakes the worker. */
  signal(state: number): void {
    Atomics.store(this.state, STATE_INDEX, state);
    nativeAddon().wakeWord(this.state);
  }

  /**
   * The pool: sends the group written into `request` and looks for its
   * reply as the wake returns. True when the reply is in and the pool is to
   * read it now; false when the doorbell will ring for it.
   */
  sendRequest(): boolean {
    Atomics.store(this.state, LOOK_INDEX, Look.POOL_LOOKS);
    this.signal(MailboxState.REQUEST);
    if (Atomics.compareExchange(this.state, LOOK_INDEX, Look.POOL_LOOKS, Look.NONE) !== Look.LEFT_FOR_POOL) return false;
    Atomics.store(this.state, LOOK_INDEX, Look.NONE);
    return true;
  }

  /** The worker, its reply written (REPLY set): true when the pool is still looking for it, so no doorbell is needed. */
  leaveReplyForPool(): boolean {
    return Atomics.compareExchange(this.state, LOOK_INDEX, Look.POOL_LOOKS, Look.LEFT_FOR_POOL) === Look.POOL_LOOKS;
  }

  /** The pool: wakes the worker without news, so that a terminate() just asked of it takes effect now. */
  wakeWorker(): void {
    nativeAddon().wakeWord(this.state);
  }

  /** The worker: blocks until the pool has sent something; returns REQUEST or PORT. */
  awaitWork(): number {
    for (;;) {
      const state = this.current;
      if (state === MailboxState.REQUEST || state === MailboxState.PORT) return state;
      nativeAddon().waitOnWord(this.state, state, WAIT_SLICE_MS);
    }
  }

  /** The worker: adds time spent working. */
  addBusy(ms: number): void {
    Atomics.add(this.busy, 0, BigInt(Math.round(ms * 1000)));
  }

  /** Time the worker spent working, in ms. */
  get busyMs(): number {
    return Number(Atomics.load(this.busy, 0)) / 1000;
  }
}
