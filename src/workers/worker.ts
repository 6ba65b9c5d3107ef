/**
 * The worker-thread side of the pool. Each worker runs one long-lived piscina
 * task, `serve`, which answers groups of batches arriving on its own
 * MessagePort until the port closes. Batches run one after another and
 * synchronously (this thread has nothing else to do meanwhile); one batch
 * failing does not fail the others.
 */
import type { MessagePort } from 'node:worker_threads';

import { toWeirError } from '../errors.js';
import { nativeAddon } from '../native/addon.js';
import type { RunReply, RunTask } from './task.js';
import { type WireMessage, decodeTasks, encodeReplies } from './wire.js';

const addon = nativeAddon();

function runOne(task: RunTask): RunReply {
  try {
    return { ok: true, ...addon.run(task.sessionKey, task.inputs, task.outputs) };
  } catch (error) {
    const { code, message } = toWeirError(error);
    return { ok: false, code, message };
  }
}

export default function serve({ port }: { port: MessagePort }): Promise<void> {
  return new Promise((resolve) => {
    port.on('message', (group: WireMessage) => {
      const { message, transferList } = encodeReplies(decodeTasks(group).map(runOne));
      port.postMessage(message, transferList);
    });
    port.once('close', resolve);
  });
}
