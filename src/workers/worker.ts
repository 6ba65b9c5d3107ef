/**
 * An inference worker thread. It answers groups of batches sent by the pool:
 * the addon runs a whole group in one call, straight from the wire format
 * (batches one after another, each failing alone), and answers in it. A group
 * the addon cannot read is answered as failed, never dropped. It also runs
 * front ends' jobs (jobs.ts; large JSON bodies) for the main thread.
 *
 * Work arrives through the worker's mailbox (mailbox.ts): a group laid out
 * flat in it, or word that a message waits on the port (a job, or a group
 * with tensors that cross on their own). The thread blocks on the mailbox
 * between them; its event loop runs only while a job awaits.
 */
import { type MessagePort, receiveMessageOnPort, workerData } from 'node:worker_threads';

import { toWeirError } from '../errors.js';
import { nativeAddon } from '../native/addon.js';
import { runJobHere } from './jobs.js';
import { Mailbox, MailboxState } from './mailbox.js';
import { PACKED_TENSOR_LIMIT, type WireMessage, transfersOf } from './wire.js';

/** What a worker posts to the pool: a group's replies go as the bare wire message, the rest say their kind. */
export type WorkerMessage =
  | WireMessage
  | { kind: 'ready' }
  | { kind: 'failed'; code: string; message: string }
  | { kind: 'job-done'; output: unknown }
  | { kind: 'job-failed'; code: string; message: string };

/** What the pool posts besides groups of batches (which are bare wire messages). */
export interface JobMessage {
  kind: 'job';
  /** The job's module URL and export name (jobs.ts). */
  module: string;
  name: string;
  input: unknown;
}

export interface WorkerData {
  /** The pool's own channel: cheaper per message than the Worker's built-in port. */
  port: MessagePort;
  mailbox: SharedArrayBuffer;
  /** Rung once a group's replies are in the mailbox (native/src/doorbell.h). */
  doorbell: number;
}

const { port, mailbox, doorbell } = workerDataOf();
const addon = nativeAddon();

port.postMessage({ kind: 'ready' } satisfies WorkerMessage);
void serve();

async function serve(): Promise<void> {
  for (;;) {
    const work = mailbox.awaitWork();
    const started = performance.now();
    if (work === MailboxState.REQUEST) {
      runFlatGroup();
    } else {
      // Idle again before answering: the pool sends the next thing only once it has the answer.
      mailbox.set(MailboxState.IDLE);
      const received = receiveMessageOnPort(port) as { message: WireMessage | JobMessage } | undefined;
      if (received) await runMessage(received.message);
    }
    mailbox.addBusy(performance.now() - started);
  }
}

function runFlatGroup(): void {
  let outcome: true | WireMessage;
  try {
    outcome = addon.runFlatBatchGroup(mailbox.request, mailbox.reply, PACKED_TENSOR_LIMIT);
  } catch (error) {
    fail(error);
    return;
  }
  if (outcome === true) {
    mailbox.set(MailboxState.REPLY);
    if (!mailbox.leaveReplyForPool()) addon.ringDoorbell(doorbell);
    return;
  }
  // The replies did not fit the mailbox: they go as a message. The state turns
  // IDLE first, so that it never overwrites a request sent once they arrived.
  mailbox.set(MailboxState.IDLE);
  port.postMessage(outcome satisfies WorkerMessage, transfersOf(outcome));
}

function runMessage(message: WireMessage | JobMessage): Promise<void> | undefined {
  if ('kind' in message) return runJob(message);
  let reply: WireMessage;
  try {
    reply = addon.runBatchGroup(message, PACKED_TENSOR_LIMIT);
  } catch (error) {
    fail(error);
    return undefined;
  }
  port.postMessage(reply satisfies WorkerMessage, transfersOf(reply));
  return undefined;
}

/** A group the addon could not read fails as a whole. */
function fail(error: unknown): void {
  const { code, message } = toWeirError(error);
  if (mailbox.current === MailboxState.REQUEST) mailbox.set(MailboxState.IDLE);
  port.postMessage({ kind: 'failed', code, message } satisfies WorkerMessage);
}

function runJob({ module, name, input }: JobMessage): Promise<void> {
  return (
    runJobHere(module, name, input)
      .then(({ output, transfer }) => port.postMessage({ kind: 'job-done', output } satisfies WorkerMessage, transfer))
      // A job that throws, or whose output cannot be posted, is answered as failed.
      .catch((error: unknown) => {
        const { code, message } = toWeirError(error);
        port.postMessage({ kind: 'job-failed', code, message } satisfies WorkerMessage);
      })
  );
}

function workerDataOf(): { port: MessagePort; mailbox: Mailbox; doorbell: number } {
  const data = workerData as Partial<WorkerData> | null;
  if (!data?.port || !(data.mailbox instanceof SharedArrayBuffer) || typeof data.doorbell !== 'number') {
    throw new Error('worker.ts runs as a worker thread of the inference pool, given { port, mailbox, doorbell } as workerData');
  }
  return { port: data.port, mailbox: new Mailbox(data.mailbox), doorbell: data.doorbell };
}
