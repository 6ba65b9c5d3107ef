/**
 * The worker-thread side of the pool. Each worker runs one long-lived piscina
 * task, `serve`, which answers groups of batches arriving on its own
 * MessagePort until the port closes. The addon runs a whole group in one
 * call, straight from the wire format (batches one after another, each
 * failing alone), and answers in it.
 */
import type { MessagePort } from 'node:worker_threads';

import { nativeAddon } from '../native/addon.js';
import { PACKED_TENSOR_LIMIT, type WireMessage, transfersOf } from './wire.js';

const addon = nativeAddon();

export default function serve({ port }: { port: MessagePort }): Promise<void> {
  return new Promise((resolve) => {
    port.on('message', (group: WireMessage) => {
      const reply = addon.runBatchGroup(group, PACKED_TENSOR_LIMIT);
      port.postMessage(reply, transfersOf(reply));
    });
    port.once('close', resolve);
  });
}
