/**
 * An inference worker thread. It answers groups of batches posted by the
 * pool: the addon runs a whole group in one call, straight from the wire
 * format (batches one after another, each failing alone), and answers in it.
 * A group the addon cannot read is answered as failed, never dropped.
 */
import { type MessagePort, workerData } from 'node:worker_threads';

import { toWeirError } from '../errors.js';
import { nativeAddon } from '../native/addon.js';
import { PACKED_TENSOR_LIMIT, type WireMessage, transfersOf } from './wire.js';

/** What a worker posts to the pool. */
export type WorkerMessage =
  | { kind: 'ready' }
  | { kind: 'replies'; message: WireMessage }
  | { kind: 'failed'; code: string; message: string };

// The pool's own channel: cheaper per message than the Worker's built-in port.
const port = (workerData as { port?: MessagePort } | null)?.port;
if (!port) throw new Error('worker.ts runs as a worker thread of the inference pool, given { port } as workerData');
const addon = nativeAddon();

port.on('message', (group: WireMessage) => {
  let reply: WireMessage;
  try {
    reply = addon.runBatchGroup(group, PACKED_TENSOR_LIMIT);
  } catch (error) {
    const { code, message } = toWeirError(error);
    port.postMessage({ kind: 'failed', code, message } satisfies WorkerMessage);
    return;
  }
  port.postMessage({ kind: 'replies', message: reply } satisfies WorkerMessage, transfersOf(reply));
});
port.postMessage({ kind: 'ready' } satisfies WorkerMessage);
