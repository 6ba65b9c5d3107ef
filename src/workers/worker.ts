/**
 * An inference worker thread. It answers groups of batches posted by the
 * pool: the addon runs a whole group in one call, straight from the wire
 * format (batches one after another, each failing alone), and answers in it.
 * A group the addon cannot read is answered as failed, never dropped. It
 * also runs front ends' jobs (jobs.ts; large JSON bodies) for the main thread.
 */
import { type MessagePort, workerData } from 'node:worker_threads';

import { toWeirError } from '../errors.js';
import { nativeAddon } from '../native/addon.js';
import { runJobHere } from './jobs.js';
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

// The pool's own channel: cheaper per message than the Worker's built-in port.
const port = poolChannel();
const addon = nativeAddon();

port.on('message', (message: WireMessage | JobMessage) => {
  if ('kind' in message) runJob(message);
  else runGroup(message);
});

function runGroup(group: WireMessage): void {
  let reply: WireMessage;
  try {
    reply = addon.runBatchGroup(group, PACKED_TENSOR_LIMIT);
  } catch (error) {
    const { code, message } = toWeirError(error);
    port.postMessage({ kind: 'failed', code, message } satisfies WorkerMessage);
    return;
  }
  port.postMessage(reply satisfies WorkerMessage, transfersOf(reply));
}

function runJob({ module, name, input }: JobMessage): void {
  runJobHere(module, name, input)
    .then(({ output, transfer }) => port.postMessage({ kind: 'job-done', output } satisfies WorkerMessage, transfer))
    // A job that throws, or whose output cannot be posted, is answered as failed.
    .catch((error: unknown) => {
      const { code, message } = toWeirError(error);
      port.postMessage({ kind: 'job-failed', code, message } satisfies WorkerMessage);
    });
}

port.postMessage({ kind: 'ready' } satisfies WorkerMessage);

function poolChannel(): MessagePort {
  const channel = (workerData as { port?: MessagePort } | null)?.port;
  if (!channel) throw new Error('worker.ts runs as a worker thread of the inference pool, given { port } as workerData');
  return channel;
}
