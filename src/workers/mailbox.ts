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
 * The worker blocks (Atomics.wait) while the state is IDLE or REPLY, and the
 * pool wakes it (Atomics.notify) with REQUEST or PORT. The worker tells the
 * pool of a REPLY by ringing a doorbell of the addon's (a thread-safe
 * function: native/src/doorbell.h), which costs both threads less than the
 * one-number port message it replaced, with no clone and no event to
 * dispatch; Node 20's Atomics.waitAsync, as cheap, was seen to lose a
 * wake-up under load, leaving a reply unread. The worker also adds up the
 * time it spends working, since its event loop, blocked in Atomics.wait, no
 * longer tells busy from idle.
 */
export const MailboxState = { IDLE: 0, REQUEST: 1, PORT: 2, REPLY: 3 } as const;

/** Bytes for a group's request, and for its replies: a group that needs more crosses as a message. */
export const MAILBOX_REQUEST_BYTES = 256 * 1024;
export const MAILBOX_REPLY_BYTES = 256 * 1024;

/** The state word, then the worker's busy time in µs (a BigInt64), then the two areas. */
const STATE_INDEX = 0;
const BUSY_OFFSET = 8;
const AREAS_OFFSET = 16;

export class Mailbox {
  private readonly state: Int32Array;
  private readonly busy: BigInt64Array;
  readonly request: Uint8Array;
  readonly reply: Uint8Array;

  constructor(readonly buffer = new SharedArrayBuffer(AREAS_OFFSET + MAILBOX_REQUEST_BYTES + MAILBOX_REPLY_BYTES)) {
    this.state = new Int32Array(buffer, 0, 1);
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
    Atomics.notify(this.state, STATE_INDEX);
  }

  /** The worker: blocks until the pool has sent something; returns REQUEST or PORT. */
  awaitWork(): number {
    for (;;) {
      const state = this.current;
      if (state === MailboxState.REQUEST || state === MailboxState.PORT) return state;
      Atomics.wait(this.state, STATE_INDEX, state);
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
